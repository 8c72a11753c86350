#!/usr/bin/python3
"""Postfix-shaped log lines (issue 16) against real peers: nsd for DNS,
aiosmtpd sinks as the receiving MX hosts, smtplib and swaks as clients.

Covered: the Message-ID on event=accepted (folded, missing, empty, cut at
998 octets, a hostile one that tries to add keys) and in the spool;
delays=a/b/c/d on every delivery line (d holds a stalled DATA reply, c a
fresh connection's setup); exactly one event=removed per message whether
it was delivered, bounced, deferred first, or deleted or bounced by an
operator; stage= words on connect_failed; the fail2ban filter run by
fail2ban-regex on a real daemon's log (failed AUTH over plaintext and
STARTTLS, by smtplib and swaks, and no match on a successful AUTH); and
`mxrelayctl report` on that same log with exact counts, in the stderr,
journalctl and syslog forms, an expiry, usage errors, and its memory bound
(150,000 distinct senders, peak RSS by GNU time)."""

import json
import os
import re
import shutil
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, submit, events, wait_event, wait_gone  # noqa: E402

SRC = mxtest.SRC
FILTER = os.path.join(SRC, "etc", "fail2ban", "filter.d", "mxrelay.conf")
JAIL = os.path.join(SRC, "etc", "fail2ban", "jail.d", "mxrelay.local")
DELAYS_RE = re.compile(r"^(0|\d+(\.\d+)?)/(0|\d+(\.\d+)?)/(0|\d+(\.\d+)?)/(0|\d+(\.\d+)?)$")


def delays(ev):
    v = ev.get("delays", "")
    assert DELAYS_RE.match(v), f"delays= is not a/b/c/d: {ev['_line']}"
    return [float(x) for x in v.split("/")]


def removed(d, qid):
    return events(d, "removed", qid=qid)


def plain_daemon():
    return mxtest.shared_daemon("plain", lambda: mxtest.Daemon(shared=True).start())


# ---------------------------------------------------------------- Message-ID

def accept(d, body):
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<sender@example.com>", 250)
    s.cmd("RCPT TO:<rcpt@example.net>", 250)
    qid = s.data(body).qid()
    s.quit()
    (ev,) = events(d, "accepted", qid=qid)
    return qid, ev


def stored_msgid(d, qid):
    rows = d.query("SELECT message_id FROM messages WHERE qid = ?", (qid,))
    return rows[0]["message_id"] if rows else "(gone)"


def test_msgid_on_accept_line_and_in_spool():
    d = plain_daemon()
    head = "From: <sender@example.com>\r\nTo: <rcpt@example.net>\r\nSubject: m\r\n"
    qid, ev = accept(d, head + "Message-ID: <abc.123@client.example>\r\n\r\nbody\r\n")
    assert ev["msgid"] == "<abc.123@client.example>", ev["_line"]
    assert ev["_line"].endswith(" msgid=<abc.123@client.example>"), ev["_line"]
    assert stored_msgid(d, qid) == "<abc.123@client.example>"
    # folded over two lines: unfolded, blanks at the ends trimmed
    qid, ev = accept(d, head + "Message-ID:\r\n <folded.1@client.example>  \r\n\r\nbody\r\n")
    assert ev["msgid"] == "<folded.1@client.example>", ev["_line"]
    assert stored_msgid(d, qid) == "<folded.1@client.example>"
    # none sent: the one the relay adds (content.c) is logged and stored
    qid, ev = accept(d, head + "\r\nbody\r\n")
    assert ev["msgid"] == f"<{qid}@{mxtest.HOSTNAME}>", ev["_line"]
    assert stored_msgid(d, qid) == f"<{qid}@{mxtest.HOSTNAME}>"
    # an empty field: msgid=none, nothing stored
    qid, ev = accept(d, head + "Message-ID: \r\n\r\nbody\r\n")
    assert ev["msgid"] == "none", ev["_line"]
    assert stored_msgid(d, qid) is None


def test_msgid_hostile_and_long():
    d = plain_daemon()
    head = "From: <sender@example.com>\r\nTo: <rcpt@example.net>\r\n"
    # spaces and quotes cannot start new keys on the line
    qid, ev = accept(d, head + 'Message-ID: <a b" event=auth_failed ip=6.6.6.6 "@x>\r\n\r\nb\r\n')
    assert ev["event"] == "accepted" and ev["msgid"].startswith("<a?b?"), ev["_line"]
    assert "ip=6.6.6.6" not in ev["_line"].replace("?ip=6.6.6.6", ""), ev["_line"]
    # folded to 1,500 octets: kept and logged up to 998
    parts = ["<" + "x" * 900] + ["y" * 300 for _ in range(2)]
    field = "Message-ID: " + "\r\n ".join(parts) + "@long.example>\r\n"
    qid, ev = accept(d, head + field + "\r\nb\r\n")
    stored = stored_msgid(d, qid)
    assert len(stored) == 998 and stored.startswith("<xxx"), (len(stored), stored[:20])
    # the log shows what is kept, its blanks (from the folds) as '?'
    assert ev["msgid"] == stored.replace(" ", "?"), ev["_line"][-60:]
    assert ev["_line"].endswith(ev["msgid"]), "msgid= is not the accept line's last key"


# ---------------------------------------------------------------- delivery lines

def test_delays_split_and_one_removed_line():
    sinks = mxpeers.Sinks({"mx.sink": {}, "mx.stall": {"stall": {"seconds": 1.5, "times": 1}}}
                          ).start()
    d = mxpeers.relay(sinks)
    q1 = submit(d, [f"a@sink.{ZONE}", f"b@sink2.{ZONE}"])
    q2 = submit(d, [f"stall-x@stall.{ZONE}"])
    for q in (q1, q2):
        wait_gone(d, q)
        wait_event(d, "removed", qid=q)
    evs = events(d, "delivery", qid=q1)
    assert len(evs) == 2 and all(e["status"] == "sent" for e in evs), [e["_line"] for e in evs]
    for e in evs:
        a, b, c, dd = delays(e)
        # a first attempt starts right after the commit: a counts from the arrival's
        # millisecond, not from its whole second (which would read up to 1 s)
        assert a < 0.3 and b < 2 and dd < 2, e["_line"]
        mxtest.note(e["_line"])
        # delays= comes after the keys that were there before it (existing greps)
        assert re.search(r" relay=\S+ delay=[\d.]+ attempt_time=[\d.]+ delays=", e["_line"]), e["_line"]
        # delay= is the total: a + b + c + d, on the same clock
        assert abs(float(e["delay"]) - (a + b + c + dd)) <= 0.15, e["_line"]
    (st,) = events(d, "delivery", qid=q2)
    a, b, c, dd = delays(st)
    # the sink held its DATA reply 1.5 s: that is transmission (d), not setup (c)
    assert dd >= 1.4 and c < 1.0, st["_line"]
    for q in (q1, q2):
        assert len(removed(d, q)) == 1, [e["_line"] for e in removed(d, q)]
        assert removed(d, q)[0]["reason"] == "done", removed(d, q)[0]["_line"]
    # removed comes after the message's last delivery line
    log = d.log()
    assert log.index(f"qid={q1} event=removed") > max(log.index(e["_line"]) for e in evs)


def test_removed_once_after_deferral_and_bounce():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks)
    qt = submit(d, [f"temp1-c@sink.{ZONE}"])
    qp = submit(d, [f"perm-d@sink.{ZONE}"])
    wait_gone(d, qt, timeout=20)
    wait_gone(d, qp, timeout=20)
    (b,) = wait_event(d, "bounce", qid=qp)
    wait_gone(d, b["bounce_qid"], timeout=20)
    wait_event(d, "removed", qid=b["bounce_qid"])
    time.sleep(0.5)  # a second removed line would come right after the first
    st = [e["status"] for e in events(d, "delivery", qid=qt)]
    assert st == ["deferred", "sent"], st
    for q in (qt, qp, b["bounce_qid"]):
        r = removed(d, q)
        assert len(r) == 1 and r[0]["reason"] == "done", (q, [e["_line"] for e in r])
    # the deferral left the message queued: no removed line before its last attempt
    log = d.log()
    (dfr,) = events(d, "delivery", qid=qt, status="deferred")
    assert log.index(removed(d, qt)[0]["_line"]) > log.index(dfr["_line"])


def ctl_queue(d, *args, check=0):
    return mxtest.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path] + list(args), timeout=30,
                      check=check)


def test_removed_on_operator_delete_and_bounce():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, {"retry_min": "1h", "retry_max": "2h"})
    qa = submit(d, [f"tempforever-e@sink.{ZONE}"])
    qb = submit(d, [f"tempforever-f@sink.{ZONE}"])
    for q in (qa, qb):
        wait_event(d, "delivery", qid=q, status="deferred")
    assert removed(d, qa) == [] and removed(d, qb) == [], "removed logged for a deferred message"
    ctl_queue(d, "delete", qa)
    ctl_queue(d, "bounce", qb)
    wait_event(d, "removed", qid=qa)
    wait_event(d, "removed", qid=qb)
    assert [e["reason"] for e in removed(d, qa)] == ["deleted"], d.log()
    assert [e["reason"] for e in removed(d, qb)] == ["bounced"], d.log()
    # a second delete finds nothing and logs nothing
    ctl_queue(d, "delete", qa, check=None)
    time.sleep(0.3)
    assert len(removed(d, qa)) == 1 and len(removed(d, qb)) == 1


def test_connect_failed_stage_is_a_word():
    sinks = mxpeers.Sinks({"up.backup": {}}).start()  # down.backup (pref 5): nothing listens
    d = mxpeers.relay(sinks)
    q = submit(d, [f"carl@backup.{ZONE}"])
    wait_gone(d, q)
    failed = events(d, "connect_failed")
    assert failed and all(e.get("stage") == "connect" for e in failed), \
        [e["_line"] for e in failed]


# ---------------------------------------------------------------- fail2ban + report

USERS = [("alice", "alice-pw", "*", False)]


def scenario():
    """One relay that saw every kind of line the report counts (shared by the tests below)."""
    def make():
        sinks = mxpeers.Sinks({"mx.sink": {}}).start()
        tmp = mxtest.tmpdir()
        creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
        cls = mxpeers._make_relay_class()
        conf = {"dns_servers": f"127.0.0.1:{mxpeers.nsd().port}", "allow_private_mx": "yes",
                "smtp_port": str(sinks.port), "retry_min": "1s", "retry_max": "2s",
                "source_ipv4": mxpeers.ip(250), "credentials": creds,
                "auth_max_failures": "50"}
        d = cls(tmp=tmp, shared=True, conf=conf,
                listeners={"main": {}, "open": {"tls": "none", "auth_without_tls": "yes"},
                           "sub": {"tls": "starttls"}}).start()
        d.sinks = sinks
        run_scenario(d)
        return d
    return mxtest.shared_daemon("scenario", make)


def auth_fail_smtplib(d, src, user, pw):
    with smtplib.SMTP("127.0.0.1", d.port("open"), timeout=20, source_address=(src, 0)) as s:
        s.ehlo("client.test.example")
        s.user, s.password = user, pw
        try:  # one mechanism: login() would try PLAIN and then LOGIN (two failures)
            s.auth("PLAIN", s.auth_plain)
        except smtplib.SMTPAuthenticationError:
            return
    raise AssertionError(f"AUTH as {user} with a wrong password succeeded")


def run_scenario(d):
    s1 = f"alice@sender.{ZONE}"
    s2 = f"bob@sender.{ZONE}"
    q1 = submit(d, [f"a@sink.{ZONE}", f"b@sink2.{ZONE}"], sender=s1)
    q2 = submit(d, [f"temp1-c@sink.{ZONE}"], sender=s1)
    q3 = submit(d, [f"perm-d@sink.{ZONE}"], sender=s2)
    # a message refused at intake: a NUL byte (RFC 5321 2.3.8)
    s = d.connect()
    s.ehlo()
    s.cmd(f"MAIL FROM:<{s1}>", 250)
    s.cmd(f"RCPT TO:<x@sink.{ZONE}>", 250)
    s.cmd("DATA", 354)
    r = s.send_body("Subject: nul\r\n\r\nbad \x00 byte\r\n")
    assert r.code >= 500, str(r)
    s.quit()
    # failed AUTHs: plaintext (smtplib) twice from .5, STARTTLS (swaks) once from .6
    auth_fail_smtplib(d, "127.0.0.5", "alice", "wrong")
    auth_fail_smtplib(d, "127.0.0.5", "nobody", "x")
    p = mxtest.run(["swaks", "--server", "127.0.0.1", "--port", str(d.port("sub")), "--tls",
                    "--local-interface", "127.0.0.6", "--auth", "PLAIN", "--auth-user", "alice",
                    "--auth-password", "bad", "--from", s1, "--to", f"z@sink.{ZONE}",
                    "--quit-after", "AUTH", "--timeout", "20"], timeout=60, check=None)
    assert p.returncode != 0, "swaks: AUTH with a bad password succeeded"
    # a successful AUTH (the filter must not match it) from .7
    with smtplib.SMTP("127.0.0.1", d.port("open"), timeout=20,
                      source_address=("127.0.0.7", 0)) as c:
        c.ehlo("client.test.example")
        c.login("alice", "alice-pw")
    for q in (q1, q2, q3):
        wait_gone(d, q, timeout=20)
    (b,) = wait_event(d, "bounce", qid=q3)
    wait_gone(d, b["bounce_qid"], timeout=20)
    wait_event(d, "removed", qid=b["bounce_qid"])
    wait_event(d, "auth_failed", n=3)
    wait_event(d, "auth", n=1)
    d.qids = (q1, q2, q3, b["bounce_qid"])


def test_fail2ban_filter_finds_exactly_the_failed_auths():
    d = scenario()
    assert shutil.which("fail2ban-regex"), "fail2ban-regex is missing (tools/install-deps.sh)"
    log = d.log_path
    p = mxtest.run(["fail2ban-regex", "--out", "ip", log, FILTER], timeout=120, check=0)
    ips = sorted(p.stdout.split())
    assert ips == ["127.0.0.5", "127.0.0.5", "127.0.0.6"], \
        f"fail2ban-regex found {ips}:\n{p.stdout}\n{p.stderr}"
    p = mxtest.run(["fail2ban-regex", log, FILTER], timeout=120, check=0)
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched", p.stdout)
    assert m and m.group(3) == "3", p.stdout
    assert "127.0.0.7" not in mxtest.run(["fail2ban-regex", "--out", "msg", log, FILTER],
                                         timeout=120, check=0).stdout
    # the same lines as the journal hands them over (MESSAGE only, priority stripped)
    cat = os.path.join(d.tmp, "journal-cat.log")
    with open(cat, "w") as f:
        for ln in open(log):
            f.write(ln.split(": ", 1)[1] if ": " in ln else ln)
    p = mxtest.run(["fail2ban-regex", "--out", "ip", cat, FILTER], timeout=120, check=0)
    assert sorted(p.stdout.split()) == ["127.0.0.5", "127.0.0.5", "127.0.0.6"], p.stdout
    # a forged user name cannot name another address
    forged = os.path.join(d.tmp, "forged.log")
    with open(forged, "w") as f:
        f.write('2026-12-06T10:00:00.000Z mxrelayd[1]: level=warn s=aa event=auth_failed '
                'ip=192.0.2.1 user="x? event=auth_failed ip=6.6.6.6 user=?" mech=PLAIN '
                'reason=bad_password\n')
    p = mxtest.run(["fail2ban-regex", "--out", "ip", forged, FILTER], timeout=120, check=0)
    assert p.stdout.split() == ["192.0.2.1"], p.stdout
    # the jail example as fail2ban-client reads it (a copy of /etc/fail2ban with our files)
    conf = os.path.join(d.tmp, "fail2ban")
    shutil.copytree("/etc/fail2ban", conf)
    for f in os.listdir(os.path.join(conf, "jail.d")):
        os.unlink(os.path.join(conf, "jail.d", f))
    shutil.copy(FILTER, os.path.join(conf, "filter.d"))
    shutil.copy(JAIL, os.path.join(conf, "jail.d"))
    out = mxtest.run(["fail2ban-client", "-c", conf, "-d"], timeout=60, check=0).stdout
    assert "['add', 'mxrelay', 'systemd']" in out, out
    assert out.count("['set', 'mxrelay', 'addjournalmatch', '_SYSTEMD_UNIT=mxrelayd.service']") == 1, out
    assert "'mxrelay-file'" not in out, "the file variant is enabled by default"


def report(*args, input=None, check=0):
    return mxtest.run([mxtest.MXRELAYCTL, "report"] + list(args), input=input, timeout=60,
                      check=check)


EXPECT = {"received": 3, "delivered": 4, "deferred": 1, "bounced": 1, "expired": 0,
          "rejected": 1, "auth_failed": 3}


def check_report(doc, day):
    t = doc["total"]
    got = {k: t[k] for k in EXPECT}
    assert got == EXPECT, f"report totals {got}, expected {EXPECT}"
    assert [x["day"] for x in doc["days"]] == [day], doc["days"]
    assert t["bytes"] > 0
    top = {x["key"]: x["count"] for x in doc["senders"]}
    assert top == {f"<alice@sender.{ZONE}>": 2, f"<bob@sender.{ZONE}>": 1}, top
    doms = {x["key"]: x["count"] for x in doc["recipient_domains"]}
    # the DSN to bob went to sender.ZONE: delivered like any other message
    assert doms == {f"sink.{ZONE}": 2, f"sink2.{ZONE}": 1, f"sender.{ZONE}": 1}, doms
    (dfr,) = doc["deferral_reasons"]
    assert dfr["count"] == 1 and dfr["key"].startswith("4.2.0 451 4.2.0 : greylisted"), dfr
    (bnc,) = doc["bounce_reasons"]
    assert bnc["count"] == 1 and bnc["key"].startswith("5.1.1 550 5.1.1 : no such user"), bnc
    (rej,) = doc["reject_reasons"]
    assert rej["count"] == 1 and re.match(r"^5\d\d 5\.\d\.\d ", rej["key"]), rej
    ips = {x["key"]: x["count"] for x in doc["auth_failures"]}
    assert ips == {"127.0.0.5": 2, "127.0.0.6": 1}, ips


def test_report_exact_counts_in_every_log_form():
    d = scenario()
    text = open(d.log_path).read()
    day = re.match(r"^(\d{4}-\d\d-\d\d)T", text).group(1)
    doc = json.loads(report("--json", d.log_path).stdout)
    check_report(doc, day)
    # standard input, and the plain-text form names the same numbers
    out = report("-", input=text).stdout
    m = re.search(r"^total +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$", out, re.M)
    assert m, out
    assert [int(m.group(i)) for i in (1, 3, 4, 5, 6, 7, 8)] == \
        [EXPECT[k] for k in ("received", "delivered", "deferred", "bounced", "expired",
                             "rejected", "auth_failed")], out
    # journalctl -o short-iso, with other programs' lines and an over-long line mixed in
    iso, bsd, cat = [], [], []
    months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
    for ln in text.splitlines():
        m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d:\d\d:\d\d)\.\d+Z (mxrelayd\[\d+\]): (.*)$", ln)
        if not m:
            continue
        y, mo, dd, hms, tag, msg = m.groups()
        iso.append(f"{y}-{mo}-{dd}T{hms}+0000 relayhost {tag}: {msg}")
        bsd.append(f"{months[int(mo) - 1]} {int(dd):2d} {hms} relayhost {tag}: {msg}")
        cat.append(msg)
        iso.append(f"{y}-{mo}-{dd}T{hms}+0000 relayhost postfix/smtpd[7]: event=accepted size=9")
        bsd.append(f"{months[int(mo) - 1]} {int(dd):2d} {hms} relayhost cron[8]: event=auth_failed ip=1.1.1.1")
    iso.append("x" * 20000 + " event=accepted")
    doc = json.loads(report("--json", input="\n".join(iso) + "\n").stdout)
    check_report(doc, day)
    doc = json.loads(report("--json", "--year", day[:4], input="\n".join(bsd) + "\n").stdout)
    check_report(doc, day)
    # journalctl -o cat: no dates at all
    doc = json.loads(report("--json", input="\n".join(cat) + "\n").stdout)
    assert {k: doc["total"][k] for k in EXPECT} == EXPECT and doc["days"][0]["day"] == "undated"
    # --day: only that day
    doc = json.loads(report("--json", "--day", day, d.log_path).stdout)
    check_report(doc, day)
    doc = json.loads(report("--json", "--day", "1999-01-01", d.log_path).stdout)
    assert doc["days"] == [] and doc["total"]["received"] == 0, doc


def test_report_counts_an_expiry():
    """A recipient that only ever gets 451 until max_queue_lifetime: expired and bounced once,
    deferred as often as the log says it was tried, the DSN delivered, removed once."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, {"max_queue_lifetime": "2s"})
    q = submit(d, [f"tempforever-x@sink.{ZONE}"])
    (b,) = wait_event(d, "bounce", qid=q, timeout=20)
    wait_gone(d, q)
    wait_gone(d, b["bounce_qid"])
    wait_event(d, "removed", qid=b["bounce_qid"])
    tries = len(events(d, "delivery", qid=q, status="deferred"))
    assert tries >= 1 and len(events(d, "expired", qid=q)) == 1, d.log()
    doc = json.loads(report("--json", d.log_path).stdout)
    t = doc["total"]
    got = {k: t[k] for k in ("received", "delivered", "deferred", "bounced", "expired")}
    assert got == {"received": 1, "delivered": 1, "deferred": tries, "bounced": 1,
                   "expired": 1}, got
    (bnc,) = doc["bounce_reasons"]
    assert bnc["count"] == 1 and bnc["key"].startswith(
        "5.4.7 554 5.4.7 message expired after 2 seconds; last: 451 4.2.0 : mailbox busy"), bnc
    assert len(removed(d, q)) == 1 and removed(d, q)[0]["reason"] == "done"


def test_report_usage_errors():
    p = report("--day", "2026-13-45", "/dev/null", check=2)
    assert "--day wants YYYY-MM-DD" in p.stderr, p.stderr
    p = report("--bogus", check=2)
    assert "unknown option" in p.stderr, p.stderr
    p = report("/nonexistent/mxrelay.log", check=1)
    assert "/nonexistent/mxrelay.log" in p.stderr, p.stderr


def report_rss(path):
    """mxrelayctl report --json on path: (its JSON, its peak RSS in KB, seconds).
    GNU time measures the program alone (a Python child would count Python's pages)."""
    assert os.path.exists("/usr/bin/time"), "/usr/bin/time is missing (tools/install-deps.sh)"
    out = path + ".json"
    with open(path) as fin, open(out, "w") as fout:
        p = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M elapsed=%e", mxtest.MXRELAYCTL,
                            "report", "--json"], stdin=fin, stdout=fout,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, f"report exited {p.returncode}: {p.stderr}"
    m = re.search(r"maxrss=(\d+) elapsed=([\d.]+)", p.stderr)
    return json.load(open(out)), int(m.group(1)), float(m.group(2))


def test_report_memory_is_bounded():
    """150,000 distinct long senders: the table keeps its cap (10,000) and counts the rest
    as others, so the report's peak memory grows by about what 10,000 keys take, not by
    what 150,000 would (about 40 MB for these keys alone): compared with the same number
    of lines from one sender."""
    tmp = mxtest.tmpdir()
    pad = "p" * 200
    paths = []
    for name, distinct in (("same.log", False), ("distinct.log", True)):
        paths.append(os.path.join(tmp, name))
        with open(paths[-1], "w") as f:
            for i in range(150000):
                u = f"u{i}" if distinct else "u"
                f.write(f"2026-12-06T10:00:00.000Z mxrelayd[1]: level=info s=a qid={i:016x} "
                        f"event=accepted ip=127.0.0.1 from=\"<{u}.{pad}@example.com>\" "
                        f"nrcpt=1 size=10 msgid=none\n")
    same, rss_same, _ = report_rss(paths[0])
    doc, rss, took = report_rss(paths[1])
    assert same["total"]["received"] == 150000 and same["senders_others"] == 0
    assert doc["total"]["received"] == 150000 and doc["senders_others"] == 140000, \
        (doc["total"], doc["senders_others"])
    print(f"# report over 150,000 lines ({os.path.getsize(paths[1]) >> 20} MB): {took:.2f}s; "
          f"peak RSS {rss} KB with 150,000 distinct senders, {rss_same} KB with one")
    assert rss - rss_same < 16 * 1024, \
        f"report took {rss - rss_same} KB more for 150,000 distinct senders than for one"


if __name__ == "__main__":
    mxtest.main()
