#!/usr/bin/python3
"""mxrelay-sendmail through the daemon's submit socket, delivered end to end
to aiosmtpd sinks (nsd serves the test zone).

Covered: -t (recipients from To/Cc/Bcc, Bcc removed) with -f, the envelope
and headers at the sink (Received "from local (uid N)", Date and
Message-ID added), -F full name in the From header it adds, recipients on
the command line with the default sender USER@HOSTNAME, -i keeping a lone
"." line (and without -i the "." ends the input), LF to CRLF and dot
transparency, a user other than root (uid in Received and log), the
daemon's refusals mapped to sendmail exit codes (65, 67, 64), exit 75 when
the daemon is not running, -C CONF and MXRELAY_SUBMIT_SOCKET."""

import os
import pwd
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
import privns  # noqa: E402
from mxpeers import ZONE, events, wait_event  # noqa: E402

SENDMAIL = os.environ.get("MXRELAY_SENDMAIL") or os.path.join(mxtest.SRC, "build", "tools",
                                                               "mxrelay-sendmail")


def sendmail(d, args, stdin, check=None, env=None, conf=True):
    if d.alive():
        # "ready" can come before the submit socket exists on a slow (ASan) build
        sock = os.path.join(d.data_dir, "submit.sock")
        mxtest.wait_for(lambda: os.path.exists(sock), 20, what="the submit socket")
    cmd = [SENDMAIL] + (["-C", d.conf_path] if conf else []) + list(args)
    return mxtest.run(cmd, input=stdin, timeout=30, check=check, env=env)


def one_message(sinks, listener="mx.sink"):
    (m,) = sinks.wait_messages(1, listener)
    return m


def headers(m):
    return mxtest.headers_of(m.data)


def test_t_bcc_removed_f_and_F():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks)
    to, cc, bcc = f"ann@sink.{ZONE}", f"bob@sink2.{ZONE}", f"hidden@sink.{ZONE}"
    me = f"cron@sender.{ZONE}"
    text = (f"To: Ann <{to}>\nCc: {cc}\nBcc: {bcc}\nSubject: hi\n\nbody line\n"
            "..starts with two dots\nlast\n")
    p = sendmail(d, ["-t", "-f", me, "-F", "Cron Daemon"], text, check=0)
    assert p.stdout == "" and p.stderr == "", "sendmail is silent on success"
    ms = sinks.wait_messages(2, "mx.sink")
    rcpts = sorted(r for m in ms for r in m.rcpts)
    assert rcpts == sorted([to, cc, bcc]), rcpts
    for m in ms:
        assert m.mail_from == me, m.mail_from
        data = m.data
        assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b""), "not CRLF throughout"
        h = headers(m)
        assert not [x for x in h if x.lower().startswith("bcc:")], f"Bcc not removed: {h}"
        assert bcc.encode() not in data, "the Bcc address leaked into the message"
        assert mxtest.header_values(data, "From") == [f'"Cron Daemon" <{me}>'], h
        assert mxtest.header_values(data, "To") == [f"Ann <{to}>"], h
        rcv = mxtest.header_values(data, "Received")[-1]
        assert rcv.startswith("from local (uid 0)") and "by mx.test.example (mxrelay)" in rcv, rcv
        assert mxtest.header_values(data, "Date") and mxtest.header_values(data, "Message-ID"), h
        body = data.split(b"\r\n\r\n", 1)[1]
        assert body == b"body line\r\n..starts with two dots\r\nlast\r\n", body
    (ev,) = wait_event(d, "accepted", uid="0")
    assert ev["from"] == f"<{me}>" and ev["nrcpt"] == "3", ev["_line"]


def test_command_line_rcpts_default_sender_and_dot():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks)
    rcpt = f"dot@sink.{ZONE}"
    text = "Subject: dots\n\nbefore\n.\nafter\n"
    sendmail(d, ["-i", "--", rcpt], text, check=0)
    m = one_message(sinks)
    user = pwd.getpwuid(os.getuid()).pw_name
    assert m.mail_from == f"{user}@{mxtest.HOSTNAME}", m.mail_from
    assert m.rcpts == [rcpt]
    assert mxtest.header_values(m.data, "From") == [f"{user}@{mxtest.HOSTNAME}"]
    assert m.data.endswith(b"\r\n\r\nbefore\r\n.\r\nafter\r\n"), m.data

    # without -i (or -oi) a lone "." ends the message, as with sendmail
    sendmail(d, [rcpt], text, check=0)
    ms = sinks.wait_messages(2, "mx.sink")
    assert ms[1].data.endswith(b"\r\n\r\nbefore\r\n"), ms[1].data
    sendmail(d, ["-oi", rcpt], text, check=0)
    ms = sinks.wait_messages(3, "mx.sink")
    assert ms[2].data.endswith(b"\r\n.\r\nafter\r\n"), ms[2].data


def test_local_sender_domain_for_bare_names():
    """Issue 15: cron mail gets USER@local_sender, not USER@HOSTNAME (a host
    without a mailbox, where bounces vanish); bare recipients ("ops", as in
    MAILTO=ops) get the same domain."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    domain = f"sink.{ZONE}"
    d = mxpeers.relay(sinks, conf={"local_sender": domain, "hostname": "relaybox"})
    assert not d.grep(r"event=local_sender_missing"), "local_sender is set: no warning"
    sendmail(d, ["ops"], "Subject: nightly backup\n\nok\n", check=0)
    m = one_message(sinks)
    user = pwd.getpwuid(os.getuid()).pw_name
    assert m.mail_from == f"{user}@{domain}", m.mail_from
    assert m.rcpts == [f"ops@{domain}"], m.rcpts
    assert mxtest.header_values(m.data, "From") == [f"{user}@{domain}"]
    # a bare -f name too
    sendmail(d, ["-f", "backup", "ops"], "Subject: again\n\nok\n", check=0)
    ms = sinks.wait_messages(2, "mx.sink")
    assert ms[1].mail_from == f"backup@{domain}", ms[1].mail_from


def test_dotless_hostname_warns_without_local_sender():
    tmp = mxtest.tmpdir()
    conf = os.path.join(tmp, "mxrelay.conf")
    base = f"hostname = relaybox\ndata_dir = {tmp}/data\nuser = nobody\n"
    mxtest.write_file(conf, base)
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", conf], timeout=15, check=0)
    assert "hostname relaybox has no dot" in p.stderr and "local_sender" in p.stderr, p.stderr
    mxtest.write_file(conf, base + "local_sender = example.com\n")
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", conf], timeout=15, check=0)
    assert "no dot" not in p.stderr, p.stderr
    # and at start-up, in the log
    d = mxtest.Daemon(conf={"hostname": "relaybox"}).start()
    d.wait_log(r"level=warn event=local_sender_missing hostname=relaybox ")


def test_other_user_and_env_socket():
    assert shutil.which("setpriv"), "setpriv not installed (package util-linux)"
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks)
    rcpt = f"someone@sink.{ZONE}"
    # a copy nobody can run: the checkout may sit in a private folder (/root, mktemp -d)
    exe, env = privns.copy_for_other_user(SENDMAIL, "MXRELAY_SUBMIT_SOCKET",
                                          os.path.join(d.data_dir, "submit.sock"))
    mxtest.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, rcpt],
               input="Subject: from nobody\n\nhello\n", env=env, timeout=30, check=0)
    m = one_message(sinks)
    assert m.mail_from == f"nobody@{mxtest.HOSTNAME}", m.mail_from
    rcv = mxtest.header_values(m.data, "Received")[-1]
    assert rcv.startswith("from local (uid 65534)"), rcv
    assert events(d, "accepted", uid="65534")


def test_refusals_and_exit_codes():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, {"max_message_size": "2K"})
    rcpt = f"x@sink.{ZONE}"
    p = sendmail(d, [rcpt], "Subject: long\n\n" + "a" * 1200 + "\n", check=65)
    assert "998" in p.stderr and "5.6.0" in p.stderr, p.stderr
    p = sendmail(d, [rcpt], "Subject: big\n\n" + ("b" * 70 + "\n") * 40, check=65)
    assert "too big" in p.stderr, p.stderr
    p = sendmail(d, ["bad address@@x"], "Subject: x\n\nx\n", check=67)
    assert "5.1.3" in p.stderr, p.stderr
    p = sendmail(d, ["-t"], "Subject: nobody\n\nx\n", check=64)
    assert "no recipients" in p.stderr, p.stderr
    p = sendmail(d, ["-bi"], "", check=64)    # newaliases: no aliases here
    assert "-bi is not supported" in p.stderr, p.stderr
    assert not sinks.messages(), "a refused message was delivered"
    assert d.count() == 0


def test_nul_from_and_literal_refused_as_over_smtp():
    """Issue 8: local submission applies the SMTP intake rules: a NUL byte,
    a From that is not one readable mailbox, and an address literal."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks)
    rcpt = f"x@sink.{ZONE}"
    p = sendmail(d, [rcpt], b"Subject: nul\n\nbefore\n\x00.\nafter\n", check=65)
    assert "5.6.0" in p.stderr and "NUL" in p.stderr, p.stderr
    for frm in ("a@sink.dlv.test, ceo@bank.example", "ceo@bank.example <a@sink.dlv.test>",
                "<a@sink.dlv.test"):
        p = sendmail(d, [rcpt], f"From: {frm}\nSubject: from\n\nx\n", check=65)
        assert "5.7.1" in p.stderr and "From" in p.stderr, p.stderr
    p = sendmail(d, ["u@[127.0.0.1]"], "Subject: literal\n\nx\n", check=67)
    assert "5.1.2" in p.stderr and "literal" in p.stderr, p.stderr
    p = sendmail(d, ["-t"], "To: a@sink.dlv.test, <b@sink.dlv.test\nSubject: t\n\nx\n", check=65)
    assert "To, Cc or Bcc" in p.stderr, p.stderr
    assert not sinks.messages(), "a refused message was delivered"
    assert d.count() == 0


def test_daemon_not_running_is_tempfail():
    d = mxtest.Daemon()        # configured, never started
    p = sendmail(d, ["a@b.example"], "Subject: x\n\nx\n", check=75)
    assert "mxrelayd is not running" in p.stderr and "submit.sock" in p.stderr, p.stderr
    env = dict(os.environ, MXRELAY_SUBMIT_SOCKET="/nonexistent/submit.sock")
    p = sendmail(d, ["a@b.example"], "x\n", check=75, env=env, conf=False)
    assert "/nonexistent/submit.sock" in p.stderr, p.stderr


if __name__ == "__main__":
    mxtest.main()
