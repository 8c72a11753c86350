#!/usr/bin/python3
"""Sunset dates (issue 15 item 3): a credential's sunset (mxrelayctl passwd
--sunset), a listener's legacy_tls_until and auth_without_tls_until. Dates
are set relative to today: far ahead (quiet), within 30 days (each use
logged as event=sunset_near and let through) and past (refused with a 5xx
that names the date and the fix; a refused TLS handshake logs the rule).
Start-up and mxrelayd -n warn about near and past dates. Clients: Python
ssl with TLS 1.0 (an old copier), openssl s_client -tls1, raw sessions."""

import base64
import datetime
import json
import os
import re
import ssl
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

TODAY = datetime.datetime.now(datetime.timezone.utc).date()
NEAR = (TODAY + datetime.timedelta(days=10)).isoformat()
FAR = (TODAY + datetime.timedelta(days=100)).isoformat()
PAST = (TODAY - datetime.timedelta(days=2)).isoformat()
OLD = "127.0.0.9"

USERS = {"gone": PAST, "soon": NEAR, "later": FAR, "none": None}


def passwd(path, user, *args, pw="pw-" + "x" * 8, check=0):
    cmd = [mxtest.MXRELAYCTL, "passwd", user, "-f", path, *args]
    return mxtest.run(cmd, input=pw + "\n", timeout=30, check=check)


def make_creds(path):
    for user, day in USERS.items():
        args = ["--senders", "@example.com"]
        if day:
            args += ["--sunset", day]
        passwd(path, user, *args)
    os.chmod(path, 0o644)
    return path


def daemon():
    def make():
        tmp = mxtest.tmpdir()
        creds = make_creds(os.path.join(tmp, "passwd"))
        return mxtest.Daemon(tmp=tmp, shared=True, conf={
            "credentials": creds, "relay_from": "192.0.2.0/24"}, listeners={
            "sub": {"tls": "starttls"},
            "legacy_far": {"tls": "starttls", "legacy_tls": "yes", "legacy_tls_until": FAR},
            "legacy_near": {"tls": "starttls", "legacy_tls": "yes", "legacy_tls_until": NEAR},
            "legacy_past": {"tls": "starttls", "legacy_tls": "yes", "legacy_tls_until": PAST},
            "from_past": {"tls": "starttls", "legacy_tls_from": f"{OLD}/32",
                          "legacy_tls_until": PAST},
            "from_far": {"tls": "starttls", "legacy_tls_from": f"{OLD}/32"},
            "plain_far": {"tls": "none", "auth_without_tls": "yes",
                          "auth_without_tls_until": FAR},
            "plain_near": {"tls": "none", "auth_without_tls": "yes",
                           "auth_without_tls_until": NEAR},
            "plain_past": {"tls": "none", "auth_without_tls": "yes",
                           "auth_without_tls_until": PAST},
        }).start()
    return mxtest.shared_daemon("sunset", make)


def tls_session(d, listener="sub"):
    s, err = d.starttls_with(listener, mxtest.client_ctx())
    assert s, err
    s.ehlo()
    return s


# ---- credential sunset ----

def test_credential_past_refused_with_date_and_fix():
    d = daemon()
    s = tls_session(d)
    r = s.auth_plain("gone", "pw-xxxxxxxx")
    r.expect(535, "5.7.13")
    assert PAST in r.text and "new credential" in r.text, r
    # refused, not authenticated: relaying stays closed
    s.cmd("MAIL FROM:<a@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 530, "5.7.0")
    s.quit()
    ln = d.wait_log(r"event=sunset_refused .*user=gone rule=credential date=" + PAST)
    assert ln and "level=warn" in ln[0], ln


def test_credential_near_warns_and_works():
    d = daemon()
    s = tls_session(d)
    s.auth_plain("soon", "pw-xxxxxxxx").expect(235, "2.7.0")
    s.mail("a@example.com", ["far@example.net"],
           mxtest.message("a@example.com", "far@example.net", "ten days left"))
    s.quit()
    assert d.wait_log(r"event=sunset_near .*user=soon rule=credential date=" + NEAR
                      + r" days_left=10\b")


def test_credential_far_or_none_quiet():
    d = daemon()
    for user in ("later", "none"):
        s = tls_session(d)
        s.auth_plain(user, "pw-xxxxxxxx").expect(235, "2.7.0")
        s.quit()
    assert d.wait_log(r"event=auth .*user=none")
    assert not d.grep(r"event=sunset_")


def test_wrong_password_after_sunset_is_a_plain_failure():
    """The sunset is told only to whoever knows the password."""
    d = daemon()
    s = tls_session(d)
    r = s.auth_plain("gone", "wrong")
    r.expect(535, "5.7.8")
    assert PAST not in r.text, r
    s.close()
    assert not d.grep(r"event=sunset_refused")


# ---- legacy_tls_until ----

def test_legacy_tls_far_quiet_near_warns():
    d = daemon()
    s, err = d.starttls_with("legacy_far", mxtest.legacy_ctx())
    assert s and s.tls[0] == "TLSv1", err
    s.quit()
    assert d.wait_log(r"event=legacy_tls .*listener=legacy_far")
    assert not d.grep(r"event=sunset_near")
    s, err = d.starttls_with("legacy_near", mxtest.legacy_ctx(ssl.TLSVersion.TLSv1_1))
    assert s and s.tls[0] == "TLSv1.1", err
    s.ehlo()
    # counted at MAIL, once the user (here none: "-") is known
    s.cmd("MAIL FROM:<dev@example.com>", 250)
    s.quit()
    assert d.wait_log(r"event=sunset_near .*listener=legacy_near .*rule=legacy_tls_until date="
                      + NEAR + r" days_left=10\b")


def test_legacy_tls_past_refused_names_rule():
    d = daemon()
    s, err = d.starttls_with("legacy_past", mxtest.legacy_ctx())
    assert s is None, f"TLS 1.0 accepted after legacy_tls_until ({s and s.tls})"
    ln = d.wait_log(r"event=tls_failed .*listener=legacy_past ")
    assert re.search(r" rule=legacy_tls_until date=" + PAST + r"\b", ln[0]), ln
    # a modern client is fine on the same listener
    s, err = d.starttls_with("legacy_past", mxtest.client_ctx())
    assert s, err
    s.quit()


def test_tls10_refusal_rules():
    d = daemon()
    cases = [("sub", None, "tls_min_version"), ("from_far", "127.0.0.1", "legacy_tls_from"),
             ("from_past", OLD, "legacy_tls_until")]
    for listener, src, rule in cases:
        s, err = d.starttls_with(listener, mxtest.legacy_ctx(), src=src)
        assert s is None, f"{listener}: TLS 1.0 accepted"
        ln = d.wait_log(r"event=tls_failed .*listener=%s " % listener)
        assert re.search(r"reason=\"[^\"]*\" rule=%s\b" % rule, ln[-1]), (listener, ln)
    # in the CIDR, before any sunset: allowed
    s, err = d.starttls_with("from_far", mxtest.legacy_ctx(), src=OLD)
    assert s and s.tls[0] == "TLSv1", err
    s.quit()


def test_openssl_s_client_tls1_after_sunset():
    d = daemon()
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{d.port('legacy_past')}",
           "-starttls", "smtp", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-crlf", "-ign_eof"]
    p = subprocess.run(cmd, input=b"QUIT\r\n", capture_output=True, timeout=30)
    out = p.stdout.decode(errors="replace")
    # s_client prints a session block even when the handshake failed: no cipher then
    assert p.returncode != 0 or "Cipher is (NONE)" in out, out[-600:]
    assert d.wait_log(r"event=tls_failed .*listener=legacy_past .*rule=legacy_tls_until")


# ---- auth_without_tls_until ----

def test_auth_without_tls_far_near_past():
    d = daemon()
    s = d.connect("plain_far")
    s.ehlo()
    s.auth_plain("later", "pw-xxxxxxxx").expect(235, "2.7.0")
    s.quit()
    assert not d.grep(r"event=sunset_")
    s = d.connect("plain_near")
    s.ehlo()
    s.auth_login("later", "pw-xxxxxxxx").expect(235, "2.7.0")
    s.quit()
    assert d.wait_log(r"event=sunset_near .*listener=plain_near .*rule=auth_without_tls_until "
                      r"date=" + NEAR + r" days_left=10\b")
    s = d.connect("plain_past")
    s.ehlo()
    r = s.cmd("AUTH PLAIN " + base64.b64encode(b"\0later\0pw-xxxxxxxx").decode(), 538, "5.7.11")
    assert PAST in r.text and "STARTTLS" in r.text and "plain_past" in r.text, r
    s.cmd("AUTH LOGIN", 538, "5.7.11")
    s.quit()
    assert d.wait_log(r"event=sunset_refused .*listener=plain_past .*"
                      r"rule=auth_without_tls_until date=" + PAST)


# ---- start-up ----

def test_startup_warnings():
    d = daemon()
    want = [r"event=sunset_past user=gone rule=credential date=" + PAST,
            r"event=sunset_near user=soon rule=credential date=" + NEAR + r" days_left=10",
            r"event=sunset_near listener=legacy_near rule=legacy_tls_until date=" + NEAR,
            r"event=sunset_past listener=legacy_past rule=legacy_tls_until date=" + PAST,
            r"event=sunset_past listener=from_past rule=legacy_tls_until",
            r"event=sunset_near listener=plain_near rule=auth_without_tls_until",
            r"event=sunset_past listener=plain_past rule=auth_without_tls_until"]
    for w in want:
        assert d.grep(w, since=0), f"no start-up line /{w}/"
    for quiet in ("user=later", "user=none", "listener=legacy_far", "listener=plain_far"):
        assert not d.grep(r"event=sunset_\w+ " + quiet, since=0), quiet
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", d.conf_path], timeout=30, check=0)
    err = p.stderr
    for w in want:
        assert re.search(w, err), f"mxrelayd -n: no /{w}/ in:\n{err}"


# ---- mxrelayctl passwd --sunset ----

def test_passwd_sunset_round_trip():
    tmp = mxtest.tmpdir()
    path = os.path.join(tmp, "passwd")
    p = passwd(path, "copier", "--senders", "copier@example.com", "--sunset", "2027-03-31")
    assert "sunset=2027-03-31" in p.stdout, p.stdout
    assert re.search(r"^copier:\$[^:]+:enabled:copier@example.com:sunset=2027-03-31$",
                     open(path).read(), re.M)
    # other changes keep it
    passwd(path, "copier", "--no-password", "--disable")
    assert re.search(r":disabled:copier@example.com:sunset=2027-03-31$", open(path).read(), re.M)
    passwd(path, "copier", "--no-password", "--sunset", "2027-06-30")
    assert open(path).read().rstrip().endswith(":sunset=2027-06-30")
    passwd(path, "copier", "--no-password", "--sunset", "none")
    assert open(path).read().rstrip().endswith(":disabled:copier@example.com")
    for bad in ("2027-02-30", "31.03.2027", "soon"):
        p = passwd(path, "copier", "--no-password", "--sunset", bad, check=2)
        assert "--sunset" in p.stderr and bad in p.stderr, p.stderr
    # a past date is taken, with a warning that the credential is refused from now on
    p = passwd(path, "copier", "--no-password", "--sunset", PAST)
    assert "warning" in p.stderr and PAST in p.stderr and "refuses" in p.stderr, p.stderr
    p = passwd(path, "copier", "--no-password", "--sunset", FAR)
    assert "warning" not in p.stderr, p.stderr
    # an old four-field file still loads and gains the field
    with open(path, "a") as f:
        f.write("# kept\n")
    passwd(path, "copier", "--no-password", "--sunset", "2030-01-01")
    text = open(path).read()
    assert "# kept" in text and ":sunset=2030-01-01" in text, text


# ---- the audit's counts ----

def audit_rows(conf_path, *args):
    p = mxtest.run([mxtest.MXRELAYCTL, "audit", "-c", conf_path, "--json", *args], check=0)
    return {(r["client_ip"], r["user"]): r for r in json.loads(p.stdout)}


def test_audit_counts_warnings_and_refusals():
    d = daemon()
    src = "127.0.0.77"
    s, err = d.starttls_with("sub", mxtest.client_ctx(), src=src)
    s.ehlo()
    s.auth_plain("gone", "pw-xxxxxxxx").expect(535, "5.7.13")
    s.quit()
    for _ in range(2):
        s, err = d.starttls_with("sub", mxtest.client_ctx(), src=src)
        s.ehlo()
        s.auth_plain("soon", "pw-xxxxxxxx").expect(235, "2.7.0")
        s.quit()
    s, err = d.starttls_with("legacy_near", mxtest.legacy_ctx(), src=src)
    assert s, err
    s.ehlo()
    s.cmd("MAIL FROM:<dev@example.com>", 250)
    s.quit()
    s = d.connect("plain_past", src=src)
    s.ehlo()
    s.cmd("AUTH LOGIN", 538, "5.7.11")
    s.quit()
    want = {("gone", "sunset_refused"): 1, ("soon", "sunset_warn"): 2,
            ("", "sunset_warn"): 1, ("", "sunset_refused"): 1}

    def counted():
        rows = audit_rows(d.conf_path)
        return all((src, u) in rows and rows[(src, u)][k] == n for (u, k), n in want.items())
    mxtest.wait_for(counted, 10, what="audit counts")
    rows = audit_rows(d.conf_path)
    assert rows[(src, "gone")]["messages"] == 0 and rows[(src, "gone")]["sunset_warn"] == 0
    for k in ("rate_limited", "repaired", "bare_lf"):
        assert rows[(src, "soon")][k] == 0, rows[(src, "soon")]
    p = mxtest.run([mxtest.MXRELAYCTL, "audit", "-c", d.conf_path], check=0)
    head = p.stdout.splitlines()[0]
    assert head.rstrip().endswith("EVENTS"), head
    line = [ln for ln in p.stdout.splitlines() if re.search(src + r"\s+gone\s", ln)]
    assert line and line[0].rstrip().endswith("sunset_refused=1"), p.stdout


def test_warnings_credited_to_the_user():
    """auth_without_tls_until counts after a successful AUTH, against that user; failed or
    cancelled AUTH counts nothing; legacy TLS counts once per session at MAIL (review)."""
    d = daemon()
    src = "127.0.0.78"
    s = d.connect("plain_near", src=src)
    s.ehlo()
    s.auth_plain("later", "wrong-password").expect(535)
    s.cmd("AUTH LOGIN", 334)
    s.cmd("*", 501)
    s.auth_plain("later", "pw-xxxxxxxx").expect(235, "2.7.0")
    s.quit()
    assert d.wait_log(r"event=sunset_near ip=" + src + r" listener=plain_near user=later "
                      r"rule=auth_without_tls_until")
    s, err = d.starttls_with("legacy_near", mxtest.legacy_ctx(), src=src)
    assert s, err
    s.ehlo()
    s.auth_plain("later", "pw-xxxxxxxx").expect(235, "2.7.0")
    for _ in range(2):
        s.cmd("MAIL FROM:<dev@example.com>", 250)
        s.cmd("RSET", 250)
    s.quit()
    s, err = d.starttls_with("legacy_near", mxtest.legacy_ctx(), src=src)
    s.ehlo()
    s.cmd("MAIL FROM:<dev@example.com>", 250)
    s.quit()
    s, err = d.starttls_with("legacy_near", mxtest.legacy_ctx(), src=src)
    s.quit()  # no MAIL: no user known, nothing counted
    want = {("later", "sunset_warn"): 2, ("", "sunset_warn"): 1}

    def counted():
        rows = audit_rows(d.conf_path)
        return all((src, u) in rows and rows[(src, u)][k] == n for (u, k), n in want.items())
    mxtest.wait_for(counted, 10, what="audit counts")
    time.sleep(1)
    assert counted(), audit_rows(d.conf_path)
    assert d.wait_log(r"event=sunset_near ip=" + src + r" listener=legacy_near user=later "
                      r"rule=legacy_tls_until")


def test_schema_6_spool_upgrades_to_7():
    d = mxtest.Daemon(listeners={"main": {"tls": "none"}})
    d.start()
    qid = d.connect().mail("a@example.com", ["b@example.net"], mxtest.message())
    d.stop()
    path = os.path.join(d.data_dir, "spool.db")
    con = sqlite3.connect(path)
    for col in ("sunset_warn", "sunset_refused", "rate_limited", "repaired", "bare_lf"):
        con.execute(f"ALTER TABLE audit DROP COLUMN {col}")
    for col in ("listener", "message_id"):  # schema 8's
        con.execute(f"ALTER TABLE messages DROP COLUMN {col}")
    con.execute("ALTER TABLE audit DROP COLUMN listener")  # schema 9's
    for t in ("bounce_digest", "bounce_digest_dropped"):
        con.execute(f"DROP TABLE {t}")
    con.execute("PRAGMA user_version = 6")
    con.commit()
    con.close()
    # mxrelayctl reads a schema 6 spool as it is: no event columns, counts 0
    rows = audit_rows(d.conf_path)
    assert rows[("127.0.0.1", "")]["messages"] == 1 and rows[("127.0.0.1", "")]["bare_lf"] == 0
    d.start()
    assert d.query("PRAGMA user_version")[0]["user_version"] == 9
    cols = [r["name"] for r in d.query("PRAGMA table_info(audit)")]
    assert cols[-6:] == ["sunset_warn", "sunset_refused", "rate_limited", "repaired",
                         "bare_lf", "listener"], cols
    assert d.message(qid)["sender"] == "a@example.com"
    rows = audit_rows(d.conf_path)
    assert rows[("127.0.0.1", "")]["messages"] == 1
    assert rows[("127.0.0.1", "")]["sunset_refused"] == 0


if __name__ == "__main__":
    mxtest.main()
