#!/usr/bin/python3
"""bounce_owner (issue 15 item 5): a device that sends as an address without
a mailbox (scanner@...) has its DSNs sent to an owner address instead.

A device credential with `bounce_owner = user:scanner OWNER` sends to a
recipient the scripted MX refuses with 550: the DSN arrives at OWNER (and
not at the device's sender), its To is OWNER and its text names the
sender and the bounce_owner setting; the log's event=bounce says to=OWNER
with the sender and the rule. A CIDR rule covers allowlisted devices
without AUTH (the user rule, more specific, wins for the credential); mail
matching no rule still bounces to its envelope sender. With `digest`, the
owner also gets one digest listing the failures (queue ids, recipients,
reasons), triggered as the daily job does with `mxrelayctl queue
bounce-digest`. listener: rules match the listener stored with each
message, and both a listener rule and the waiting digest entries survive a
restart (they are in the spool, not in memory)."""

import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, events, submit, wait_event  # noqa: E402
from test_bounce import Dsn, check_dsn_envelope  # noqa: E402

DEVICE = f"scanner@sender.{ZONE}"          # the device's sender: no one reads it
OWNER = f"it-owner@sender.{ZONE}"
NET_OWNER = f"net-owner@sender.{ZONE}"


def relay(sinks, rules):
    d = mxpeers.relay(sinks, start=False)
    creds = mxtest.make_creds(os.path.join(d.tmp, "passwd"),
                              [("scanner", "scanner-pw", "*", False),
                               ("crm", "crm-pw", "*", False)])
    d.configure({"credentials": creds, "bounce_owner": "\nbounce_owner = ".join(rules)},
                {"main": {"tls": "none", "auth_without_tls": "yes"}})
    return d.start()


def send_auth(d, user, sender, rcpt):
    body = mxtest.message(sender, rcpt, "scan to email", "scan attached\r\n")
    mark = d._log_size()
    with smtplib.SMTP("127.0.0.1", d.port(), timeout=20) as s:
        s.ehlo("copier.test.example")
        s.login(user, user + "-pw")
        s.sendmail(sender, [rcpt], body.encode())
    (acc,) = wait_event(d, "accepted", since=mark, auth=user)
    return acc["qid"]


def test_dsn_goes_to_the_owner_of_a_device_credential():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks, [f"user:scanner {OWNER}", f"127.0.0.0/8 {NET_OWNER}"])
    bad = f"perm-nobody@sink.{ZONE}"
    qid = send_auth(d, "scanner", DEVICE, bad)
    (b,) = wait_event(d, "bounce", qid=qid)
    assert b["to"] == f"<{OWNER}>" and b["sender"] == f"<{DEVICE}>", b["_line"]
    assert b["bounce_owner"] == "user:scanner" and int(b["line"]) > 0, b["_line"]
    (m,) = sinks.wait_messages(1, "mx.sender", timeout=20)
    check_dsn_envelope(m, to=OWNER)
    dsn = Dsn(m)
    assert OWNER in (dsn.msg["To"] or "") and DEVICE not in (dsn.msg["To"] or ""), dsn.msg["To"]
    text = " ".join(dsn.text.split())
    assert "bounce owner" in text and f"<{DEVICE}>" in text and "bounce_owner" in text, text
    assert dsn.rcpt(bad)["Status"].strip() == "5.1.1"


def test_cidr_rule_and_no_rule():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks, [f"user:scanner {OWNER}", f"127.0.0.0/8 {NET_OWNER}"])
    # an allowlisted device without AUTH: the CIDR rule
    qid = submit(d, [f"perm-a@sink.{ZONE}"], sender=DEVICE)
    (b,) = wait_event(d, "bounce", qid=qid)
    assert b["to"] == f"<{NET_OWNER}>" and b["bounce_owner"] == "127.0.0.0/8", b["_line"]
    (m,) = sinks.wait_messages(1, "mx.sender", timeout=20)
    check_dsn_envelope(m, to=NET_OWNER)
    # a relay without the CIDR rule: crm's mail bounces to its own sender, as before
    d2 = relay(sinks, [f"user:scanner {OWNER}"])
    crm = f"crm@sender.{ZONE}"
    qid = send_auth(d2, "crm", crm, f"perm-b@sink.{ZONE}")
    (b,) = wait_event(d2, "bounce", qid=qid)
    assert b["to"] == f"<{crm}>" and "bounce_owner" not in b, b["_line"]
    ms = sinks.wait_messages(2, "mx.sender", timeout=20)
    check_dsn_envelope(ms[1], to=crm)
    # a DSN that was built and queued is no bounce_failed (review of 0c7abde)
    for r in (d, d2):
        assert not events(r, "bounce_failed"), [e["_line"] for e in events(r, "bounce_failed")]


def test_daily_digest_to_the_owner():
    """bounce_owner ... digest: `mxrelayctl queue bounce-digest` (the daily job's verb)
    queues one message for the owner listing every failure since the last digest."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks, [f"user:scanner {OWNER} digest"])
    q1 = send_auth(d, "scanner", DEVICE, f"perm-one@sink.{ZONE}")
    wait_event(d, "bounce", qid=q1)
    q2 = send_auth(d, "scanner", DEVICE, f"perm-two@sink.{ZONE}")
    wait_event(d, "bounce", qid=q2)
    sinks.wait_messages(2, "mx.sender", timeout=20)      # the two DSNs
    ctl = [mxtest.MXRELAYCTL, "queue", "-c", d.conf_path]
    p = mxtest.run(ctl + ["bounce-digest"], check=0)
    assert p.stdout.strip() == "bounce digests queued: 1, refused: 0", p.stdout
    (ev,) = wait_event(d, "bounce_digest")
    assert ev["to"] == f"<{OWNER}>", ev["_line"]
    ms = sinks.wait_messages(3, "mx.sender", timeout=20)
    m = ms[2]
    assert m.mail_from in ("", "<>") and m.rcpts == [OWNER], (m.mail_from, m.rcpts)
    body = m.data.decode()
    assert "Subject: Undelivered mail digest: 2 recipients" in body, body[:600]
    for qid, rcpt in ((q1, "perm-one"), (q2, "perm-two")):
        assert f"queue id {qid}" in body and f"to <{rcpt}@sink.{ZONE}>" in body, body
    assert not events(d, "bounce_failed"), [e["_line"] for e in events(d, "bounce_failed")]
    assert f"from <{DEVICE}>" in body and "5.1.1 550 5.1.1" in body, body
    # taken: the next run has nothing to send
    p = mxtest.run(ctl + ["--json", "bounce-digest"], check=0)
    assert '"digests":0' in p.stdout.replace(" ", ""), p.stdout


def send_on(d, listener, sender, rcpt):
    """One message without AUTH (relay_from) on the named listener; its queue id."""
    body = mxtest.message(sender, rcpt, "scan to email", "scan attached\r\n")
    mark = d._log_size()
    with smtplib.SMTP("127.0.0.1", d.port(listener), timeout=20) as s:
        s.ehlo("copier.test.example")
        s.sendmail(sender, [rcpt], body.encode())
    (acc,) = wait_event(d, "accepted", since=mark)
    return acc["qid"]


def test_listener_rule_survives_a_restart():
    """`bounce_owner = listener:NAME` (issue 15 round 2): the accepting
    listener is stored with the message (messages.listener), so a rule for
    [listener scanners] still routes the DSN after a restart between
    acceptance and the failure. The first daemon's MX port is dead: the
    message is deferred, the relay stops, starts again pointed at the sink,
    and the sink's 550 bounces it to the listener's owner, not the device."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, {"smtp_port": str(mxtest.free_port())}, start=False)
    d.configure({"bounce_owner": f"listener:scanners {OWNER}\nbounce_owner = 127.0.0.0/8 "
                                 f"{NET_OWNER}"},
                {"main": {"tls": "none"}, "scanners": {"tls": "none"}})
    d.start()
    bad = f"perm-scan@sink.{ZONE}"
    qid = send_on(d, "scanners", DEVICE, bad)
    dl = wait_event(d, "delivery", qid=qid, timeout=20)[0]
    assert dl["status"] == "deferred", dl["_line"]
    rows = d.query("SELECT listener FROM messages WHERE qid = ?", (qid,))
    assert [r["listener"] for r in rows] == ["scanners"], rows
    d.stop()
    d.configure({"smtp_port": str(sinks.port)})
    d.start()
    (b,) = wait_event(d, "bounce", qid=qid, timeout=30)
    # the listener rule is more specific than the CIDR rule that also matches
    assert b["to"] == f"<{OWNER}>" and b["bounce_owner"] == "listener:scanners", b["_line"]
    (m,) = sinks.wait_messages(1, "mx.sender", timeout=20)
    check_dsn_envelope(m, to=OWNER)
    # mail of the other listener follows the CIDR rule
    qid2 = send_on(d, "main", DEVICE, f"perm-main@sink.{ZONE}")
    (b,) = wait_event(d, "bounce", qid=qid2, timeout=20)
    assert b["to"] == f"<{NET_OWNER}>" and b["bounce_owner"] == "127.0.0.0/8", b["_line"]


def test_listener_rule_naming_no_listener_is_a_config_error():
    """A listener: rule whose name has no [listener NAME] section would never match: a
    typo is a config error at start and with mxrelayd -n, naming the line and the key."""
    tmp = mxtest.tmpdir()
    path = mxtest.write_file(os.path.join(tmp, "typo.conf"),
                             "hostname = x.example\n"
                             f"bounce_owner = listener:scaners {OWNER}\n"
                             "[listener scanners]\naddress = 127.0.0.1:2999\n")
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15)
    assert p.returncode != 0 and (f"{path}:2: bounce_owner: listener:scaners names no "
                                  "[listener scaners] section") in p.stderr, p.stderr


def test_digest_survives_a_restart():
    """bounce_owner ... digest: the failures waiting for the digest are in the
    spool (schema 9, bounce_digest), so a restart before the daily run loses
    none; once the digest is queued they are gone (the next run sends nothing)."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks, [f"user:scanner {OWNER} digest"])
    q1 = send_auth(d, "scanner", DEVICE, f"perm-kept@sink.{ZONE}")
    wait_event(d, "bounce", qid=q1)
    sinks.wait_messages(1, "mx.sender", timeout=20)      # its DSN
    rows = d.query("SELECT owner, qid, rcpt FROM bounce_digest")
    assert [(r["owner"], r["qid"], r["rcpt"]) for r in rows] == \
        [(OWNER, q1, f"perm-kept@sink.{ZONE}")], rows
    d.stop()
    d.start()
    ctl = [mxtest.MXRELAYCTL, "queue", "-c", d.conf_path]
    p = mxtest.run(ctl + ["bounce-digest"], check=0)
    assert p.stdout.strip() == "bounce digests queued: 1, refused: 0", p.stdout
    ms = sinks.wait_messages(2, "mx.sender", timeout=20)
    body = ms[1].data.decode()
    assert "Subject: Undelivered mail digest: 1 recipient" in body, body[:600]
    assert f"queue id {q1}" in body and f"to <perm-kept@sink.{ZONE}>" in body, body
    mxtest.wait_for(lambda: d.query("SELECT count(*) AS n FROM bounce_digest")[0]["n"] == 0,
                    10, what="the digest's entries removed")
    p = mxtest.run(ctl + ["--json", "bounce-digest"], check=0)
    assert '"digests":0' in p.stdout.replace(" ", ""), p.stdout


if __name__ == "__main__":
    mxtest.main()
