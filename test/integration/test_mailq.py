#!/usr/bin/python3
"""mailq, mxrelay-sendmail -bp, -q and -bs (issue 16) against the running
daemon: nsd serves the test zone, aiosmtpd sinks answer `tempforever-*`
with 451 always and `temp1-*` with 451 once, then 250; retry_min =
retry_max = 1h, so after the first deferral only a flush tries again.

Covered: the Postfix mailq shape (header, `*`/`!` marks, size, arrival
time, MAILER-DAEMON, each recipient under its last reply, the closing
`-- N Kbytes in M Requests.`, `Mail queue is empty`), mailq as a symlink,
the same from -bp; a user outside the socket's group gets exit 77 and says
why; exit 69 with no daemon; -q, -qR DOMAIN, -qI ID deliver at once and
print nothing; -bs driven by swaks --pipe and by Python over stdin/stdout
(pipelining, LF line ends, a From added, bare names qualified, every
refusal with its code and enhanced code, the bounds: line length, size,
recipients, errors, silence (session_timeout); EOF inside DATA queues
nothing)."""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
import privns  # noqa: E402
from mxpeers import ZONE, SENDER, submit, wait_event  # noqa: E402

SENDMAIL = os.environ.get("MXRELAY_SENDMAIL") or os.path.join(mxtest.SRC, "build", "tools",
                                                               "mxrelay-sendmail")
SLOW = {"retry_min": "1h", "retry_max": "1h"}
OTHER_UID = "23456"     # in no group of the daemon's sockets


def sm(d, args, stdin="", check=None, env=None, exe=SENDMAIL, timeout=30):
    sock = os.path.join(d.data_dir, "control.sock")
    if d.alive():
        mxtest.wait_for(lambda: os.path.exists(sock), 20, what="the control socket")
    return mxtest.run([exe, "-C", d.conf_path] + list(args), input=stdin, timeout=timeout,
                      check=check, env=env)


def deferred(d, qid, rcpt):
    return wait_event(d, "delivery", qid=qid, to=f"<{rcpt}>", status="deferred")


def test_mailq_shape_marks_and_symlink():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, SLOW)
    p = sm(d, ["-bp"], check=0)
    assert p.stdout == "Mail queue is empty\n", p.stdout
    a, b = f"tempforever-a@sink.{ZONE}", f"tempforever-b@sink2.{ZONE}"
    q1 = submit(d, [a], subject="first")
    q2 = submit(d, [a, b], subject="second")
    q3 = submit(d, [b], sender="", body=mxtest.message(SENDER, b, "a bounce", "x\r\n"))
    for q, r in ((q1, a), (q2, a), (q2, b), (q3, b)):
        deferred(d, q, r)
    mxtest.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path, "hold", q3], check=0)

    # mailq is the same program called by that name
    tmp = mxtest.tmpdir()
    mailq = os.path.join(tmp, "mailq")
    os.symlink(SENDMAIL, mailq)
    out = sm(d, [], exe=mailq, check=0).stdout
    assert out == sm(d, ["-bp"], check=0).stdout, "mailq and -bp differ"
    lines = out.splitlines()
    assert lines[0].split() == ["-Queue", "ID-", "--Size--", "----Arrival", "Time----",
                                "-Sender/Recipient-------"], lines[0]
    head = re.compile(r"^([0-9a-f]{16})([ *!]) +(\d+) (\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d)  (\S+)$")
    entries = {}
    for i, ln in enumerate(lines):
        m = head.match(ln)
        if m:
            body = []
            for nxt in lines[i + 1:]:
                if nxt == "":
                    break
                body.append(nxt)
            entries[m.group(1)] = (m, body)
    assert set(entries) == {q1, q2, q3}, out
    m, body = entries[q2]
    assert m.group(2) == " " and m.group(5) == SENDER and int(m.group(3)) > 100, out
    # time.strftime's arrival matches the spool's received time (local time)
    rcv = d.query("SELECT received FROM messages WHERE qid = ?", (q2,))[0]["received"]
    assert m.group(4) == time.strftime("%a %b %e %H:%M:%S", time.localtime(rcv)), (m.group(4), rcv)
    indent = " " * 48     # under the sender
    assert body[0].startswith("(") and "451" in body[0] and body[0].endswith(")"), body
    rcpts = [x[len(indent):] for x in body if x.startswith(indent)]
    assert sorted(rcpts) == sorted([a, b]), body
    assert entries[q3][0].group(2) == "!" and entries[q3][0].group(5) == "MAILER-DAEMON", out
    sizes = sum(int(e[0].group(3)) for e in entries.values())
    assert lines[-1] == f"-- {sizes // 1024} Kbytes in 3 Requests.", lines[-1]
    assert lines[-2] == "", "a blank line ends each entry"


def test_mailq_refused_outside_the_group_and_without_daemon():
    assert shutil.which("setpriv"), "setpriv not installed (package util-linux)"
    d = mxtest.Daemon().start()
    exe, env = privns.copy_for_other_user(SENDMAIL, "MXRELAY_CONTROL_SOCKET",
                                          os.path.join(d.data_dir, "control.sock"))
    as_other = ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups", exe]
    p = mxtest.run(as_other + ["-bp"], env=env, check=77)
    assert "group mxrelay" in p.stderr and f"uid {OTHER_UID}" in p.stderr, p.stderr
    mxtest.run(as_other + ["-q"], env=env, check=77)
    d.stop()
    p = sm(d, ["-bp"], check=69)
    assert "mxrelayd is not running" in p.stderr and "control.sock" in p.stderr, p.stderr
    p = sm(d, ["-bp", "someone@example.com"], check=64)


def test_q_flushes_all_domain_and_id():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, SLOW)
    r1, r2, r3 = (f"temp1-q@sink.{ZONE}", f"temp1-qr@sink2.{ZONE}", f"temp1-qi@sink.{ZONE}")
    q1 = submit(d, [r1])
    deferred(d, q1, r1)
    p = sm(d, ["-q"], check=0)
    assert p.stdout == "" and p.stderr == "", "-q is silent"
    wait_event(d, "delivery", qid=q1, status="sent")
    q2 = submit(d, [r2])
    q3 = submit(d, [r3])
    deferred(d, q2, r2)
    deferred(d, q3, r3)
    sm(d, ["-qR", f"sink2.{ZONE}"], check=0)
    wait_event(d, "delivery", qid=q2, status="sent")
    time.sleep(1)
    assert not mxpeers.events(d, "delivery", qid=q3, status="sent"), "-qR flushed another domain"
    sm(d, [f"-qI{q3}"], check=0)
    wait_event(d, "delivery", qid=q3, status="sent")
    sm(d, ["-q30m"], check=0)          # a queue runner's interval: accepted, nothing to do
    p = sm(d, ["-qI", "no/such"], check=65)
    assert "is not a queue id" in p.stderr, p.stderr


# ---- -bs ---------------------------------------------------------------------

def test_bs_swaks_pipe_reaches_the_sink():
    assert shutil.which("swaks"), "swaks not installed"
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks)
    rcpt = f"piped@sink.{ZONE}"
    p = mxtest.run(["swaks", "--pipe", f"{SENDMAIL} -bs -C {d.conf_path}", "--from", SENDER,
                    "--to", rcpt, "--header", "Subject: through a pipe", "--body", "piped body"],
                   timeout=60, check=0)
    assert "250 2.0.0 Ok: queued as" in p.stdout, p.stdout
    assert "PIPELINING" in p.stdout and "ENHANCEDSTATUSCODES" in p.stdout, p.stdout
    (m,) = sinks.wait_messages(1, "mx.sink")
    assert m.mail_from == SENDER and m.rcpts == [rcpt], (m.mail_from, m.rcpts)
    assert b"piped body" in m.data
    rcv = mxtest.header_values(m.data, "Received")[-1]
    assert rcv.startswith("from local (uid 0)"), rcv


class Pipe:
    """mxrelay-sendmail -bs with its stdin and stdout as an SMTP connection."""

    def __init__(self, d, args=()):
        self.p = subprocess.Popen([SENDMAIL, "-bs", "-C", d.conf_path] + list(args),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        mxtest.on_cleanup(self.kill)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()

    def send(self, data):
        mxtest.note("C: " + repr(data)[:300])
        self.p.stdin.write(data.encode() if isinstance(data, str) else data)
        self.p.stdin.flush()

    def reply(self):
        lines = []
        while True:
            ln = self.p.stdout.readline().decode("utf-8", "replace")
            assert ln, f"end of output; so far {lines}"
            mxtest.note("S: " + ln.rstrip("\r\n"))
            assert ln.endswith("\r\n"), f"reply line without CRLF: {ln!r}"
            lines.append(ln[:-2])
            if ln[3:4] == " ":
                return lines

    def expect(self, code, enh=None):
        r = self.reply()
        assert r[-1].startswith(str(code)), r
        if enh:
            assert r[-1][4:].startswith(enh + " "), r
        return r[-1]

    def close(self):
        self.p.stdin.close()
        out = self.p.stdout.read()
        return self.p.wait(10), out


def test_bs_pipelined_session_lf_from_and_refusals():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, {"max_recipients": "3", "max_message_size": "4K"})
    s = Pipe(d)
    s.expect(220)
    rcpt = f"bs@sink.{ZONE}"
    # pipelined (RFC 2920), LF-only line ends, a bare sender name, no From header
    s.send(f"EHLO me\nMAIL FROM:<cron>\nRCPT TO:<{rcpt}>\nDATA\n")
    ehlo = s.reply()
    assert any("SIZE 4096" in x for x in ehlo) and not any("AUTH" in x or "STARTTLS" in x
                                                          for x in ehlo), ehlo
    s.expect(250, "2.1.0")
    s.expect(250, "2.1.5")
    s.expect(354)
    s.send("Subject: no from\n\n..leading dot\nlast line\n.\n")
    qid = re.search(r"queued as ([0-9a-f]{16})", s.expect(250, "2.0.0")).group(1)
    (m,) = sinks.wait_messages(1, "mx.sink")
    assert m.mail_from == f"cron@{mxtest.HOSTNAME}", m.mail_from
    assert mxtest.header_values(m.data, "From") == [f"cron@{mxtest.HOSTNAME}"], m.data[:300]
    assert m.data.endswith(b"\r\n\r\n.leading dot\r\nlast line\r\n"), m.data
    wait_event(d, "accepted", qid=qid, uid="0")

    # refusals, each with its code and RFC 3463 code
    for line, code, enh in [(f"RCPT TO:<{rcpt}>", 503, "5.5.1"),
                            ("STARTTLS", 502, "5.5.1"),
                            ("AUTH PLAIN AGFsaWNlAHB3", 502, "5.5.1"),
                            ("FOO", 500, "5.5.1"),
                            ("MAIL FROM:<a@b.example> RET=FULL", 555, "5.5.4"),
                            ("MAIL FROM:<a@b.example> SIZE=999999", 552, "5.3.4"),
                            ("MAIL FROM:<a b@c>", 501, "5.1.7"),
                            ("X" * 3000, 500, "5.5.2")]:
        s.send(line + "\r\n")
        s.expect(code, enh)
    s.send(f"MAIL FROM:<{SENDER}>\r\n")
    s.expect(250)
    s.send("RCPT TO:<user%host@sink.dlv.test>\r\n")
    s.expect(501, "5.1.3")
    for i in range(3):
        s.send(f"RCPT TO:<r{i}@sink.{ZONE}>\r\n")
        s.expect(250)
    s.send(f"RCPT TO:<r9@sink.{ZONE}>\r\n")
    s.expect(452, "4.5.3")
    s.send("DATA\r\n")
    s.expect(354)
    s.send("Subject: long\r\n\r\n" + "y" * 1200 + "\r\n.\r\n")
    s.expect(550, "5.6.0")
    # the daemon's own refusal comes back with its code: a NUL byte
    s.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
    s.expect(250)
    s.expect(250)
    s.expect(354)
    s.send(b"Subject: nul\r\n\r\nbad \x00 byte\r\n.\r\n")
    r = s.expect(550, "5.6.0")
    assert "NUL" in r, r
    s.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
    s.expect(250)
    s.expect(250)
    s.expect(354)
    s.send("Subject: big\r\n\r\n" + ("z" * 70 + "\r\n") * 80 + ".\r\n")
    s.expect(552, "5.3.4")
    s.send("QUIT\r\n")
    s.expect(221, "2.0.0")
    rc, _ = s.close()
    assert rc == 0, rc
    time.sleep(0.5)
    assert len(sinks.messages("mx.sink")) == 1, "a refused message was delivered"
    assert d.count(received_only=True) <= 1


def test_bs_end_of_input_in_data_and_too_many_errors():
    d = mxtest.Daemon().start()
    s = Pipe(d)
    s.expect(220)
    s.send("HELO me\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
    s.expect(250)
    s.expect(250)
    s.expect(250)
    s.expect(354)
    s.send("Subject: cut\r\n\r\nhalf a message\r\n")
    rc, _ = s.close()
    assert rc == 75, rc
    assert d.count() == 0, "a message without its final dot was queued"
    s = Pipe(d)
    s.expect(220)
    s.send("BAD\r\n" * 25)
    for _ in range(20):
        s.expect(500)
    s.expect(421, "4.7.0")
    rc, _ = s.close()
    assert rc == 76, rc


def test_bs_silence_ends_the_session():
    """-bs waits no longer than the listener's session_timeout, in commands and in DATA."""
    d = mxtest.Daemon(conf={"session_timeout": "2s"}).start()
    for in_data in (False, True):
        s = Pipe(d)
        s.expect(220)
        s.send("HELO me\r\n")
        s.expect(250)
        if in_data:
            s.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
            s.expect(250)
            s.expect(250)
            s.expect(354)
            s.send("Subject: then silence\r\n\r\nhalf\r\n")
        t = time.monotonic()
        s.expect(421, "4.4.2")
        waited = time.monotonic() - t
        assert 1.5 < waited < 6, f"closed after {waited:.1f}s, session_timeout is 2s"
        assert s.p.wait(10) == 75
        assert "session_timeout" in s.p.stderr.read().decode(), "no reason on stderr"
    assert d.count() == 0, "a message cut by the timeout was queued"


if __name__ == "__main__":
    mxtest.main()
