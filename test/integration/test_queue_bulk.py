#!/usr/bin/python3
"""Bulk queue commands, queue cat and the postmaster's bounce copies (issue 16),
against the real daemon with nsd serving the test zone and aiosmtpd sinks:
`tempforever-*` recipients are always deferred (451), and retry_min = 1h, so
after the first attempt only a queue command moves a message.

Covered: hold --domain, release --from, release ALL, flush --to, bounce --to
(only that recipient fails, one DSN, the others stay queued), delete --domain
(only those recipients; messages left with nothing pending leave the queue),
delete of several ids with one unknown (counts, "no such message", exit 1),
bounce ALL leaving a message being delivered alone (in_flight),
ALL matching nothing (exit 0), usage errors (exit 2), the log lines
(event=held|released|deleted by=ctl, event=removed, event=ctl_bulk); the
queue gauge (curl on /metrics, state="held") after hold --domain and after a
restart, the scrape passing `promtool check metrics`; at 20,000 messages (test/bench/spoolfill): hold ALL and delete ALL
in batches while `queue summary` keeps answering; queue cat (envelope,
headers, body; -e, -h, -b alone; unknown id); postmaster_bounce_copy: a 550
makes two DSNs, the copy to the postmaster carries the headers and never the
body; a bad postmaster_bounce_copy is a config error with FILE:LINE."""

import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, SENDER, submit, events, wait_event, wait_gone  # noqa: E402
from test_bounce import Dsn  # noqa: E402

SLOW = {"retry_min": "1h", "retry_max": "1h"}
BOB = f"bob@sender.{ZONE}"
SPOOLFILL = os.environ.get("SPOOLFILL") or os.path.join(
    os.path.dirname(os.path.dirname(mxtest.MXRELAYD)), "test", "bench", "spoolfill")


def ctl(d, *args, check=None, timeout=60):
    return mxtest.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path] + list(args),
                      timeout=timeout, check=check)


def ctl_json(d, *args, check=0):
    return json.loads(ctl(d, "--json", *args, check=check).stdout)


def states(d):
    return {r["qid"]: r["state"] for r in d.query("SELECT qid, state FROM messages")}


def pending(d, qid):
    return sorted(r["address"] for r in d.query(
        "SELECT r.address FROM recipients r JOIN messages m ON m.id = r.msg_id"
        " WHERE m.qid = ? AND r.state = 0", (qid,)))


def figure(line):
    mxtest.note(line)
    print(line, flush=True)


def metrics(d, lint=False):
    """(queued, held) of the queue gauge, scraped with curl; lint: promtool check metrics too."""
    p = mxtest.run(["curl", "-sS", "--max-time", "5", f"http://{d.conf['metrics_listen']}/metrics"],
                   check=0)
    if lint:
        lp = subprocess.run(["promtool", "check", "metrics"], input=p.stdout, text=True,
                            capture_output=True, timeout=30)
        assert lp.returncode == 0, f"promtool check metrics: {lp.stdout}{lp.stderr}"
    held = re.search(r'^mxrelay_queue_messages\{state="held"\} (\d+)$', p.stdout, re.M)
    queued = re.search(r'^mxrelay_queue_messages\{state="queued"\} (\d+)$', p.stdout, re.M)
    assert held and queued, p.stdout[:2000]
    return int(queued.group(1)), int(held.group(1))


def four_messages(d):
    """q1 alice -> a@sink, b@sink2; q2 bob -> c@sink; q3 alice -> d@sink2; q4 bob -> e@sink2,
    each deferred once."""
    r = {k: f"tempforever-{k}@{dom}.{ZONE}" for k, dom in
         (("a", "sink"), ("b", "sink2"), ("c", "sink"), ("d", "sink2"), ("e", "sink2"))}
    q1 = submit(d, [r["a"], r["b"]])
    q2 = submit(d, [r["c"]], sender=BOB)
    q3 = submit(d, [r["d"]])
    q4 = submit(d, [r["e"]], sender=BOB)
    for q, k in ((q1, "a"), (q1, "b"), (q2, "c"), (q3, "d"), (q4, "e")):
        wait_event(d, "delivery", qid=q, to=f"<{r[k]}>", status="deferred")
    return (q1, q2, q3, q4), r


def test_selectors_and_several_ids():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    conf = dict(SLOW, metrics_listen=f"127.0.0.1:{mxtest.free_port()}")
    d = mxpeers.relay(sinks, conf)
    (q1, q2, q3, q4), r = four_messages(d)

    # hold by recipient domain (the Postfix habit), whole messages; the gauge follows
    p = ctl(d, "hold", "--domain", f"SINK2.{ZONE}", check=0)
    assert p.stdout.strip() == "held 3 messages", p.stdout
    st = states(d)
    assert [st[q] for q in (q1, q2, q3, q4)] == [1, 0, 1, 1], st
    mxpeers.d_wait(lambda: metrics(d) == (1, 3), 5, "queue gauge queued=1 held=3")
    d.stop()
    d.start()
    mxpeers.d_wait(lambda: metrics(d) == (1, 3), 5, "queue gauge after a restart")
    metrics(d, lint=True)

    # release by sender, then the rest with ALL
    p = ctl(d, "release", "--from", f"<{SENDER.upper()}>", check=0)
    assert p.stdout.strip() == "released 2 messages", p.stdout
    assert [states(d)[q] for q in (q1, q3, q4)] == [0, 0, 1]
    p = ctl(d, "release", "ALL", check=0)
    assert p.stdout.strip() == "released 1 message", p.stdout
    assert set(states(d).values()) == {0}
    # release means due now: each is tried again
    for q, k in ((q1, "a"), (q3, "d"), (q4, "e")):
        wait_event(d, "delivery", qid=q, to=f"<{r[k]}>", status="deferred", n=2)

    # flush by recipient: only q2 goes again
    before = len(events(d, "delivery", qid=q3))
    doc = ctl_json(d, "flush", "--to", r["c"])
    assert doc["action"] == "flushed" and doc["messages"] == 1 and doc["matched"] == 1, doc
    wait_event(d, "delivery", qid=q2, to=f"<{r['c']}>", status="deferred", n=2)
    time.sleep(0.5)
    assert len(events(d, "delivery", qid=q3)) == before, "flush --to made another message go"

    # bounce one recipient: a DSN naming only it, the other recipient stays queued
    p = ctl(d, "bounce", "--to", r["b"], check=0)
    assert p.stdout.strip() == ("bounced 1 recipient of 1 message (0 left the queue); "
                                "1 DSN queued"), p.stdout
    assert pending(d, q1) == [r["a"]]
    (m,) = sinks.wait_messages(1, "mx.sender")
    dsn = Dsn(m)
    assert len(dsn.rcpts) == 1 and dsn.rcpt(r["b"])["Status"].strip() == "5.0.0", dsn.rcpts
    (ev,) = wait_event(d, "delivery", qid=q1, to=f"<{r['b']}>", status="bounced")
    assert "by=ctl" in ev["_line"], ev["_line"]

    # delete by domain: only those recipients; q3 and q4 had nothing else and leave
    mark = d._log_size()
    doc = ctl_json(d, "delete", "--domain", f"sink2.{ZONE}")
    assert (doc["messages"], doc["recipients"], doc["removed"]) == (2, 2, 2), doc
    assert not mxpeers.in_spool(d, q3) and not mxpeers.in_spool(d, q4)
    assert pending(d, q1) == [r["a"]] and pending(d, q2) == [r["c"]]
    for q in (q3, q4):
        wait_event(d, "removed", qid=q, since=mark)
    (ev,) = wait_event(d, "deleted", qid=q3, since=mark)
    assert ev["to"] == f"<{r['d']}>" and "by=ctl" in ev["_line"], ev["_line"]

    # several ids, one of them unknown: the others go, exit 1 names it
    ghost = "0123456789abcdef"
    p = ctl(d, "delete", q1, q2.upper(), ghost, q1, check=1)
    assert p.stdout.strip() == "deleted 2 messages", p.stdout
    assert p.stderr.strip() == f"mxrelayctl queue: no such message {ghost}", p.stderr
    for q in (q1, q2):
        (ev,) = wait_event(d, "deleted", qid=q)
        assert ev.get("by") == "ctl", ev["_line"]
        wait_event(d, "removed", qid=q)
    mxpeers.wait_spool_empty(d)
    ev = events(d, "ctl_bulk", verb="deleted")[-1]
    assert ev["matched"] == "2" and ghost in ev["request"], ev["_line"]

    # nothing matching is no error
    p = ctl(d, "delete", "ALL", check=0)
    assert p.stdout.strip() == "deleted 0 messages", p.stdout
    p = ctl(d, "hold", "--from", "nobody@nowhere.test", check=0)
    assert p.stdout.strip() == "held 0 messages", p.stdout
    time.sleep(1)
    assert len(sinks.messages("mx.sender")) == 1, "one DSN in all"


def test_bounce_all_leaves_a_delivery_under_way_alone():
    sinks = mxpeers.Sinks({"mx.sink": {}, "mx.stall": {"stall": {"seconds": 3, "times": 1}}}).start()
    d = mxpeers.relay(sinks, SLOW)
    waiting = f"tempforever-w@sink.{ZONE}"
    q1 = submit(d, [waiting])
    wait_event(d, "delivery", qid=q1, status="deferred")
    q2 = submit(d, [f"stall-s@stall.{ZONE}"])
    mxpeers.d_wait(lambda: sinks.events("stall", "mx.stall"), 10, "the DATA stall")
    doc = ctl_json(d, "bounce", "ALL")
    assert (doc["matched"], doc["messages"], doc["recipients"], doc["in_flight"], doc["dsns"]) == \
        (2, 1, 1, 1, 1), doc
    (ev,) = wait_event(d, "delivery", qid=q2)
    assert ev["status"] == "sent", ev["_line"]     # its own attempt decided, not the bounce
    (m,) = sinks.wait_messages(1, "mx.sender")
    assert [b["Final-Recipient"].split(";")[1].strip() for b in Dsn(m).rcpts] == [waiting]
    wait_gone(d, q1)
    wait_gone(d, q2)


def test_usage_errors():
    d = mxtest.Daemon().start()
    for args, want in (
            (["hold", "--from", "a@b.test", "0123456789abcdef"], "not both"),
            (["list", "--to", "a@b.test"], "--from, --to and --domain are for"),
            (["delete", "--to", "nodomain"], "--to needs a recipient address"),
            (["hold", "--from", "a b@c.test"], "no spaces"),
            (["cat"], "one queue id is needed")):
        p = ctl(d, *args, check=2)
        assert want in p.stderr, (args, p.stderr)
    p = ctl(d, "hold", "ALL", "--domain", "x.test", check=2)
    p = ctl(d, "bounce", "xyz", check=1)
    assert "is not a queue id" in p.stderr, p.stderr
    p = ctl(d, "hold", "--domain", "bad..domain!", check=1)
    assert "domain= needs a domain name" in p.stderr, p.stderr
    ids = ["%016x" % i for i in range(1, 61)]
    p = ctl(d, "delete", *ids, check=2)
    assert "at most 59 queue ids" in p.stderr, p.stderr


def fill(d, n, *args):
    p = mxtest.run([SPOOLFILL, d.data_dir, str(n)] + list(args), timeout=120, check=0)
    mxtest.note(p.stdout.strip())


def test_all_in_batches_at_20k():
    n = 20_000
    d = mxpeers.relay(None, SLOW)
    d.stop()
    fill(d, n, "--domains", "10", "--size", "300")
    con = mxtest.sqlite3.connect(os.path.join(d.data_dir, "spool.db"))
    with con:
        con.execute("UPDATE messages SET next_try = strftime('%s') + 86400")
    con.close()
    st = os.stat(d.data_dir)
    for f in os.listdir(d.data_dir):
        os.chown(os.path.join(d.data_dir, f), st.st_uid, st.st_gid)
    d.start()
    wait_event(d, "queue_loaded", timeout=30)

    lat = []
    stop = threading.Event()

    def poll():   # the loop keeps answering while the batches run
        while not stop.is_set():
            t0 = time.monotonic()
            subprocess.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path, "summary"],
                           capture_output=True, timeout=30)
            lat.append(time.monotonic() - t0)

    for verb, want in (("hold", "held"), ("delete", "deleted")):
        lat.clear()
        stop.clear()
        th = threading.Thread(target=poll)
        th.start()
        t0 = time.monotonic()
        p = ctl(d, verb, "ALL", check=0, timeout=120)
        dt = time.monotonic() - t0
        stop.set()
        th.join()
        figure(f"# queue {verb} ALL at {n} messages: {dt:.2f} s; queue summary meanwhile: "
               f"{len(lat)} calls, slowest {max(lat) * 1000:.0f} ms")
        assert p.stdout.strip() == f"{want} {n} messages", p.stdout
        assert max(lat) < 2.0, f"queue summary took {max(lat):.2f} s during {verb} ALL"
        if verb == "hold":
            assert d.query("SELECT count(*) AS n FROM messages WHERE state = 1")[0]["n"] == n
            s = ctl_json(d, "summary")
            assert s["held"] == n and s["messages"] == n, s
    assert d.count() == 0
    s = ctl_json(d, "summary")
    assert s["messages"] == 0 and s["held"] == 0, s
    assert len(events(d, "removed")) == n


def test_cat():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, SLOW)
    r1, r2 = f"tempforever-x@sink.{ZONE}", f"ok-y@sink.{ZONE}"
    body = "first body line\r\nsecond body line\r\n"
    msg = mxtest.message(SENDER, r1, "cat me", body, msgid=False,
                         headers=["Message-ID: <cat.1@client.test>", "X-Cat: yes"])
    qid = submit(d, [r1, r2], msg)
    wait_event(d, "delivery", qid=qid, to=f"<{r1}>", status="deferred")
    p = ctl(d, "cat", qid, check=0)
    out = p.stdout
    for want in (f"*** ENVELOPE RECORDS {qid} ***", f"queue_id:     {qid}", "state:        queued",
                 f"sender:       {SENDER}", f"recipient:    {r1} (pending, 1 attempt)",
                 f"recipient:    {r2} (delivered, 1 attempt)", "client:       127.0.0.1",
                 f"*** MESSAGE HEADERS {qid} ***", "Subject: cat me\n", "X-Cat: yes\n",
                 f"*** MESSAGE BODY {qid} ***\nfirst body line\nsecond body line\n",
                 f"*** END OF MESSAGE {qid} ***"):
        assert want in out, f"{want!r} not in:\n{out}"
    assert "\r" not in out
    p = ctl(d, "cat", "-b", qid.upper(), check=0)
    assert p.stdout == "first body line\nsecond body line\n", repr(p.stdout)
    p = ctl(d, "cat", "-h", qid, check=0)
    assert p.stdout.startswith(("Received:", "From:", "Date:", "Subject:", "To:", "Message-ID",
                                "X-Cat", "DKIM")) and p.stdout.endswith("\n\n"), repr(p.stdout)
    assert "first body line" not in p.stdout and "X-Cat: yes" in p.stdout
    p = ctl(d, "cat", "-e", qid, check=0)
    assert "sender:" in p.stdout and "Subject:" not in p.stdout and "***" not in p.stdout
    p = ctl(d, "cat", "-e", "-h", qid, check=0)
    assert "*** ENVELOPE RECORDS" in p.stdout and "X-Cat: yes" in p.stdout
    assert "first body line" not in p.stdout
    p = ctl(d, "cat", "0123456789abcdef", check=1)
    assert p.stderr.strip() == "mxrelayctl queue cat: no such message 0123456789abcdef", p.stderr
    d.stop()    # read from the spool: works with the daemon down too
    p = ctl(d, "cat", "-b", qid, check=0)
    assert "second body line" in p.stdout


def test_postmaster_bounce_copy():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    pm = f"postmaster@sender.{ZONE}"
    d = mxpeers.relay(sinks, {"postmaster_bounce_copy": pm})
    bad = f"perm-x@sink.{ZONE}"
    secret = "the body that no postmaster copy may carry"
    msg = mxtest.message(SENDER, bad, "copy me", secret + "\r\n", msgid=False,
                         headers=["Message-ID: <pmcopy.1@client.test>"])
    qid = submit(d, [bad], msg)
    ms = sinks.wait_messages(2, "mx.sender")
    by_rcpt = {tuple(m.rcpts): m for m in ms}
    assert set(by_rcpt) == {(SENDER,), (pm,)}, [m.rcpts for m in ms]
    for m in ms:
        assert m.mail_from in ("", "<>"), m.mail_from
        assert secret.encode() not in m.data, "the original body was sent"
        dsn = Dsn(m)
        assert dsn.rcpt(bad)["Status"].strip() == "5.1.1"
        assert b"Message-ID: <pmcopy.1@client.test>" in dsn.original_headers()
    copy = Dsn(by_rcpt[(pm,)])
    assert copy.msg["Subject"].startswith("Postmaster Copy:"), copy.msg["Subject"]
    assert pm in copy.msg["To"] and f"<{SENDER}>" in copy.text, (copy.msg["To"], copy.text)
    assert Dsn(by_rcpt[(SENDER,)]).msg["Subject"] == "Undelivered Mail Returned to Sender"
    (ev,) = wait_event(d, "bounce_copy", qid=qid)
    assert ev["to"] == f"<{pm}>", ev["_line"]
    wait_gone(d, qid)
    mxpeers.wait_spool_empty(d)

    # an admin bounce is copied too
    q2 = submit(d, [f"tempforever-z@sink.{ZONE}"])
    wait_event(d, "delivery", qid=q2, status="deferred")
    ctl(d, "bounce", q2, check=0)
    ms = sinks.wait_messages(4, "mx.sender")
    assert sorted(tuple(m.rcpts) for m in ms[2:]) == [(SENDER,), (pm,)], [m.rcpts for m in ms]


def test_postmaster_bounce_copy_config():
    tmp = mxtest.tmpdir()

    def check(value, status):
        conf = mxtest.write_file(os.path.join(tmp, "p.conf"),
                                 f"data_dir = {tmp}/d\npostmaster_bounce_copy = {value}\n")
        return mxtest.run([mxtest.MXRELAYD, "-n", "-c", conf], check=status).stderr

    err = check("notamailbox", 1)
    assert re.search(r"p\.conf:2: postmaster_bounce_copy: .*not a mailbox", err), err
    check("none", 0)
    check("postmaster@example.com", 0)


if __name__ == "__main__":
    mxtest.main()
