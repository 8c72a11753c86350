#!/usr/bin/python3
"""Legacy-client audit: sessions with TLS 1.0, TLS 1.1, TLS 1.3 + AUTH,
plaintext AUTH, an allowlisted address without AUTH and a non-allowlisted
one with AUTH; then `mxrelayctl audit` (table and --json, read-only while
the daemon runs) lists them riskiest first with the right fields and counts;
--since filters; clear errors without a spool; the spool schema upgrade."""

import json
import os
import re
import sqlite3
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

FAR = "127.0.0.9"     # not in relay_from: must AUTH
USERS = [
    ("copier", "copier-pw", "*", False),
    ("oldbox", "oldbox-pw", "*", False),
    ("crm", "crm-pw", "*", False),
    ("scanner", "scanner-pw", "*", False),
    ("remote", "remote-pw", "*", False),
]


def daemon():
    def make():
        tmp = mxtest.tmpdir()
        creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
        return mxtest.Daemon(
            tmp=tmp, shared=True,
            conf={"credentials": creds, "relay_from": "127.0.0.1/32"},
            listeners={"legacy": {"tls": "starttls", "legacy_tls": "yes"},
                       "sub": {"tls": "starttls"},
                       "plain": {"tls": "none", "auth_without_tls": "yes"}}).start()
    return mxtest.shared_daemon("audit", make)


def ctl(d, *args, check=0):
    return mxtest.run([mxtest.MXRELAYCTL, "audit", "-c", d.conf_path] + list(args), check=check)


def session(d, listener, src=None, ctx=None, user=None, mech="PLAIN"):
    s = d.connect(listener, src=src)
    s.ehlo()
    if ctx is not None:
        s.starttls(ctx)
        s.ehlo()
    if user:
        pw = user + "-pw"
        r = s.auth_plain(user, pw) if mech == "PLAIN" else s.auth_login(user, pw)
        r.expect(235, "2.7.0")
    return s


def send(s, sender, from_header, n=1):
    for i in range(n):
        body = (f"From: {from_header}\r\nTo: <r@example.net>\r\nSubject: audit {i}\r\n"
                "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n")
        s.cmd(f"MAIL FROM:<{sender}>", 250)
        s.cmd("RCPT TO:<r@example.net>", 250)
        s.data(body).qid()


def populate():
    """Once per file: the traffic every test reads back."""
    d = daemon()
    if getattr(d, "populated", False):
        return d
    # 1. TLS 1.0 with AUTH (an old copier), 2 messages
    s = session(d, "legacy", ctx=mxtest.legacy_ctx(ssl.TLSVersion.TLSv1), user="copier")
    assert s.tls[0] == "TLSv1", s.tls
    send(s, "scans@example.com", "Copier <scans@example.com>", 2)
    s.quit()
    # 2. TLS 1.1 with AUTH LOGIN from the far address
    s = session(d, "legacy", src=FAR, ctx=mxtest.legacy_ctx(ssl.TLSVersion.TLSv1_1),
                user="oldbox", mech="LOGIN")
    assert s.tls[0] == "TLSv1.1", s.tls
    send(s, "old@example.com", "<old@example.com>")
    s.quit()
    # 3. TLS 1.3 + AUTH: the good case; two header From addresses (one per message: a
    # From of two mailboxes is refused, RFC 5322 3.6.2)
    s = session(d, "sub", ctx=mxtest.client_ctx(), user="crm")
    assert s.tls[0] == "TLSv1.3", s.tls
    send(s, "crm@example.com", "CRM <crm@example.com>")
    send(s, "crm@example.com", "Sales <sales@example.com>")
    s.quit()
    # 4. plaintext AUTH, 1 message
    s = session(d, "plain", user="scanner")
    send(s, "scanner@example.com", "scanner@example.com")
    s.quit()
    # 5. allowlisted, no AUTH, no TLS: 3 messages, 2 senders (one the null sender)
    s = session(d, "plain")
    send(s, "app@example.com", "App <app@example.com>", 2)
    send(s, "", "Mailer <mailer-daemon@example.com>")
    s.quit()
    # 6. not allowlisted, AUTH over TLS 1.3
    s = session(d, "sub", src=FAR, ctx=mxtest.client_ctx(), user="remote")
    send(s, "remote@example.com", "<remote@example.com>")
    s.quit()
    d.populated = True
    return d


def rows_json(d, *args):
    p = ctl(d, "--json", *args)
    return json.loads(p.stdout)


def test_json_rows_and_risk_order():
    d = populate()
    assert d.alive(), "the daemon must be running: audit reads the spool while it works"
    rows = rows_json(d)
    keys = [(r["client_ip"], r["user"]) for r in rows]
    assert len(rows) == 6, f"expected 6 rows, got {keys}"
    risks = [r["risk"] for r in rows]
    assert risks[:4] == ["plaintext-auth", "tls1.0", "tls1.1", "noauth-plain"], risks
    assert risks[4:] == ["ok", "ok"], risks
    assert [r["risk_rank"] for r in rows] == [1, 2, 3, 4, 5, 5]
    by = {(r["client_ip"], r["user"]): r for r in rows}
    assert keys[:4] == [("127.0.0.1", "scanner"), ("127.0.0.1", "copier"), (FAR, "oldbox"),
                        ("127.0.0.1", "")], keys
    assert set(keys[4:]) == {("127.0.0.1", "crm"), (FAR, "remote")}, keys

    r = by[("127.0.0.1", "scanner")]
    assert r["plaintext_auth"] is True and r["tls_version"] == "" and r["tls_cipher"] == "", r
    assert r["auth_mech"] == "PLAIN" and r["messages"] == 1 and r["allowlisted"] is False, r
    assert r["senders"] == ["scanner@example.com"], r

    r = by[("127.0.0.1", "copier")]
    assert r["tls_version"] == "TLSv1" and r["worst_tls"] == "TLSv1" and r["tls_cipher"], r
    assert r["plaintext_auth"] is False and r["messages"] == 2, r
    assert r["senders"] == ["scans@example.com"] and r["header_from"] == ["scans@example.com"], r

    r = by[(FAR, "oldbox")]
    assert r["tls_version"] == "TLSv1.1" and r["auth_mech"] == "LOGIN" and r["messages"] == 1, r

    r = by[("127.0.0.1", "")]
    assert r["allowlisted"] is True and r["auth_mech"] == "" and r["tls_version"] == "", r
    assert r["messages"] == 3, r
    assert r["senders"] == ["app@example.com", "<>"], r
    assert r["header_from"] == ["app@example.com", "mailer-daemon@example.com"], r

    r = by[("127.0.0.1", "crm")]
    assert r["tls_version"] == "TLSv1.3" and r["worst_tls"] == "TLSv1.3", r
    assert r["header_from"] == ["crm@example.com", "sales@example.com"], r
    assert r["allowlisted"] is False and r["plaintext_auth"] is False, r

    r = by[(FAR, "remote")]
    assert r["allowlisted"] is False and r["tls_version"] == "TLSv1.3" and r["messages"] == 1, r

    now = int(time.time())
    for r in rows:
        assert now - 300 <= r["first_seen_unix"] <= r["last_seen_unix"] <= now + 5, r
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["last_seen"]), r


def test_table_text():
    d = populate()
    p = ctl(d)
    lines = p.stdout.splitlines()
    head = lines[0].split()
    for col in ("RISK", "CLIENT", "USER", "TLS", "CIPHER", "AUTH", "MSGS", "SENDERS"):
        assert col in head, f"column {col} missing: {lines[0]}"
    assert "FIRST SEEN" in lines[0] and "LAST SEEN" in lines[0], lines[0]
    body = lines[1:]
    assert len(body) == 6, p.stdout
    assert [ln.split()[0] for ln in body] == ["plaintext-auth", "tls1.0", "tls1.1",
                                              "noauth-plain", "ok", "ok"], p.stdout
    first = body[0].split()
    assert first[1:5] == ["127.0.0.1", "scanner", "none", "-"] and first[5] == "PLAIN", body[0]
    assert "1" in first and "scanner@example.com" in body[0], body[0]
    assert re.search(r"\b127\.0\.0\.1\s+copier\s+TLSv1\s+\S+\s+PLAIN\s+2\s+scans@example\.com",
                     body[1]), body[1]
    assert re.search(r"\b127\.0\.0\.1\s+-\s+none\s+-\s+-\s+3\s+app@example\.com,<>", body[3]), body[3]


def test_since_filters():
    d = populate()
    assert len(rows_json(d, "--since", "1h")) == 6
    # make one row look 10 days old (the daemon is stopped: no writer in between)
    path = os.path.join(d.data_dir, "spool.db")
    d.stop()
    con = sqlite3.connect(path)
    old = int(time.time()) - 10 * 86400
    con.execute("UPDATE audit SET first_seen = ?, last_seen = ? WHERE auth_user = 'copier'",
                (old, old))
    con.commit()
    con.close()
    # works with the daemon stopped, too
    rows = rows_json(d, "--since", "7d")
    assert len(rows) == 5 and "copier" not in [r["user"] for r in rows], rows
    assert len(rows_json(d, "--since", "2w")) == 6
    assert len(rows_json(d)) == 6
    con = sqlite3.connect(path)
    con.execute("UPDATE audit SET last_seen = ?", (old,))
    con.commit()
    con.close()
    p = ctl(d, "--since", "7d")
    assert p.stdout.startswith("no clients seen since"), p.stdout
    assert rows_json(d, "--since", "7d") == []
    p = ctl(d, "--since", "7x", check=2)
    assert "bad duration" in p.stderr, p.stderr
    d.start()   # later tests of this file expect it running


def test_no_spool_and_old_schema():
    tmp = mxtest.tmpdir()
    conf = mxtest.write_file(os.path.join(tmp, "c.conf"), f"data_dir = {tmp}/nothing\n")
    p = mxtest.run([mxtest.MXRELAYCTL, "audit", "-c", conf], check=1)
    assert "no spool database at" in p.stderr and f"{tmp}/nothing" in p.stderr, p.stderr
    assert not os.path.exists(f"{tmp}/nothing"), "audit created the data_dir"
    # a spool from before the audit (schema version 1)
    os.mkdir(f"{tmp}/v1")
    con = sqlite3.connect(f"{tmp}/v1/spool.db")
    con.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY)")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    conf = mxtest.write_file(os.path.join(tmp, "v1.conf"), f"data_dir = {tmp}/v1\n")
    p = mxtest.run([mxtest.MXRELAYCTL, "audit", "-c", conf], check=1)
    assert "schema version 1" in p.stderr and "upgrade" in p.stderr, p.stderr


def test_upgrade_from_schema_1_keeps_mail():
    """A version-1 spool with a queued message: the daemon migrates it and audits new mail."""
    d = mxtest.Daemon(listeners={"main": {"tls": "none"}})
    d.start()
    qid = d.connect().mail("a@example.com", ["b@example.net"], mxtest.message())
    d.stop()
    path = os.path.join(d.data_dir, "spool.db")
    con = sqlite3.connect(path)
    con.execute("DROP TABLE audit")
    for t in ("sts_policies", "tls_stats", "tls_failures", "tlsrpt_sent"):  # schema version 6
        con.execute(f"DROP TABLE {t}")
    for t in ("bounce_digest", "bounce_digest_dropped"):           # schema version 9
        con.execute(f"DROP TABLE {t}")
    con.execute("ALTER TABLE messages DROP COLUMN listener")     # schema version 8
    con.execute("ALTER TABLE messages DROP COLUMN message_id")
    con.execute("ALTER TABLE messages DROP COLUMN unfinished")   # schema version 3
    con.execute("DROP INDEX recipients_dom")                      # schema version 5
    con.execute("ALTER TABLE recipients DROP COLUMN domain")
    # schema version 4 moved bodies out of body_chunks (dropped once empty): move them back
    con.execute("CREATE TABLE IF NOT EXISTS body_chunks (msg_id INTEGER NOT NULL REFERENCES"
                " messages(id) ON DELETE CASCADE, seq INTEGER NOT NULL, data BLOB NOT NULL,"
                " PRIMARY KEY (msg_id, seq)) WITHOUT ROWID")
    con.execute("INSERT INTO body_chunks SELECT msg_id, seq, data FROM bodies")
    con.execute("DROP TABLE bodies")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    d.start()
    assert d.query("PRAGMA user_version")[0]["user_version"] == 9
    assert d.message(qid)["sender"] == "a@example.com", "the queued message was lost"
    assert b"\r\n\r\n" in d.message(qid)["body"], "the queued message lost its body"
    # schema 5 filled in the domain of the recipient already queued (queue flush DOMAIN)
    assert [r["domain"] for r in d.query("SELECT domain FROM recipients")] == ["example.net"]
    assert d.query("SELECT count(*) AS n FROM audit")[0]["n"] == 0
    d.connect().mail("c@example.com", ["b@example.net"], mxtest.message())
    rows = json.loads(mxtest.run([mxtest.MXRELAYCTL, "audit", "-c", d.conf_path, "--json"],
                                 check=0).stdout)
    assert len(rows) == 1 and rows[0]["senders"] == ["c@example.com"], rows


def test_same_transaction_as_message():
    """Every accepted message is counted exactly once: audit messages == spooled messages."""
    d = populate()
    total = sum(r["messages"] for r in rows_json(d))
    assert total == d.count(received_only=True), (total, d.count(received_only=True))


mxtest.main()
