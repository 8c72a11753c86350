#!/usr/bin/python3
"""Basic SMTP conversation: banner, EHLO, simple commands, a relayed message
from an allowlisted client with raw sockets, smtplib, swaks, curl and msmtp."""

import os
import re
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
from mxtest import HOSTNAME  # noqa: E402

MAX_SIZE = 1048576  # "1M"


def daemon():
    def make():
        return mxtest.Daemon(conf={"max_message_size": "1M"}, shared=True).start()
    return mxtest.shared_daemon("basic", make)


def test_banner():
    s = daemon().connect()
    assert s.banner.lines == [f"220 {HOSTNAME} ESMTP mxrelay"] or \
        re.match(rf"^220 {re.escape(HOSTNAME)} ESMTP mxrelay\b", s.banner.lines[-1]), \
        f"banner: {s.banner}"
    assert s.banner.code == 220
    s.quit()


def test_ehlo_keywords():
    s = daemon().connect()
    r = s.ehlo()
    assert r.lines[0].startswith(f"250-{HOSTNAME}"), f"EHLO first line: {r.lines[0]}"
    for kw in ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "STARTTLS"):
        assert kw in s.ext, f"EHLO lacks {kw}: {r}"
    assert s.ext.get("SIZE") == str(MAX_SIZE), f"SIZE should be {MAX_SIZE}: {r}"
    assert "AUTH" not in s.ext, f"AUTH offered without a credentials file: {r}"
    s.starttls()
    r = s.ehlo()
    assert "STARTTLS" not in s.ext, f"STARTTLS still offered inside TLS: {r}"
    assert "AUTH" not in s.ext, f"AUTH offered without a credentials file: {r}"
    assert "PIPELINING" in s.ext and s.ext.get("SIZE") == str(MAX_SIZE), f"after TLS: {r}"
    s.quit()


def test_helo():
    s = daemon().connect()
    r = s.cmd("HELO client.test.example", 250)
    assert HOSTNAME in r.lines[0], f"HELO reply should name the host: {r}"
    s.cmd("MAIL FROM:<a@example.com>", 250)
    s.quit()


def test_helo_without_argument():
    s = daemon().connect()
    r = s.cmd("EHLO")
    assert r.code == 501, f"EHLO without a domain: {r}"
    r = s.cmd("HELO")
    assert r.code == 501, f"HELO without a domain: {r}"
    s.ehlo()
    s.quit()


def test_mail_before_helo():
    s = daemon().connect()
    s.cmd("MAIL FROM:<a@example.com>", 503, "5.5.1")
    s.cmd("RCPT TO:<b@example.net>", 503, "5.5.1")
    s.cmd("DATA", 503, "5.5.1")
    s.quit()


def test_rcpt_and_data_out_of_order():
    s = daemon().connect()
    s.ehlo()
    s.cmd("RCPT TO:<b@example.net>", 503, "5.5.1")
    s.cmd("DATA", 503, "5.5.1")
    s.cmd("MAIL FROM:<a@example.com>", 250)
    s.cmd("MAIL FROM:<a@example.com>", 503, "5.5.1")
    r = s.cmd("DATA")
    assert r.code in (503, 554) and r.enh and r.enh.startswith("5."), \
        f"DATA without a recipient must be refused: {r}"
    s.quit()


def test_unknown_command():
    s = daemon().connect()
    s.cmd("FOOBAR baz", 500, "5.5.1")
    s.ehlo()
    s.cmd("XYZZY", 500, "5.5.1")
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()


def test_command_line_too_long():
    s = daemon().connect()
    s.ehlo()
    s.cmd("MAIL FROM:<" + "a" * 520 + "@example.com>", 500, "5.5.2")
    s.cmd("NOOP " + "x" * 600, 500, "5.5.2")
    # the session survives and is in a sane state
    s.cmd("NOOP", 250, "2.0.0")
    s.cmd("MAIL FROM:<a@example.com>", 250)
    s.quit()


def test_simple_commands():
    s = daemon().connect()
    s.cmd("NOOP", 250, "2.0.0")
    s.ehlo()
    s.cmd("RSET", 250, "2.0.0")
    r = s.cmd("HELP")
    assert r.code == 214, f"HELP: {r}"
    s.cmd("VRFY postmaster", 252, "2.5.2")
    s.cmd("EXPN staff", 502, "5.5.1")
    s.cmd("MAIL FROM:<a@example.com>", 250)
    s.cmd("RSET", 250, "2.0.0")
    # RSET cleared the transaction: RCPT needs a new MAIL
    s.cmd("RCPT TO:<b@example.net>", 503, "5.5.1")
    s.cmd("QUIT", 221, "2.0.0")
    assert s.closed(3), "connection not closed after QUIT"


def test_raw_relay_and_spool():
    d = daemon()
    s = d.connect()
    s.ehlo("raw.test.example")
    r = s.cmd("MAIL FROM:<sender@example.com>", 250)
    assert r.enh and r.enh.startswith("2."), f"MAIL reply lacks an enhanced code: {r}"
    s.cmd("RCPT TO:<one@example.net>", 250)
    s.cmd("RCPT TO:<two@example.org>", 250)
    body = mxtest.message(subject="raw", body="line one\r\nline two\r\n")
    qid = s.data(body).qid()
    s.quit()
    m = d.message(qid)
    assert m["sender"] == "sender@example.com", m["sender"]
    assert sorted(m["rcpts"]) == ["one@example.net", "two@example.org"], m["rcpts"]
    assert m["client_ip"] == "127.0.0.1", m["client_ip"]
    assert m["helo"] == "raw.test.example", m["helo"]
    assert not m["auth_user"], m["auth_user"]
    assert m["body"].endswith(b"\r\n\r\nline one\r\nline two\r\n"), m["body"][-80:]
    assert b"Subject: raw\r\n" in m["body"]
    assert abs(m["received"] - time.time()) < 120, f"received column: {m['received']}"
    assert m["flags"] == 0, f"flags for a plain 7-bit message: {m['flags']}"
    states = d.query("SELECT state FROM recipients WHERE msg_id = ?", (m["id"],))
    assert [x["state"] for x in states] == [0, 0], f"new recipients should be pending (0): {states}"
    assert m["size"] in (len(m["body"]), len(body)), \
        f"size column {m['size']} matches neither stored ({len(m['body'])}) nor received ({len(body)}) length"


def test_null_sender():
    d = daemon()
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<>", 250)
    s.cmd("RCPT TO:<bounce@example.net>", 250)
    qid = s.data(mxtest.message(frm="mailer-daemon@example.com")).qid()
    s.quit()
    assert d.message(qid)["sender"] == ""


def test_two_messages_one_session():
    d = daemon()
    s = d.connect()
    q1 = s.mail("a@example.com", ["x@example.net"], mxtest.message(subject="first"))
    q2 = s.mail("b@example.com", ["y@example.net"], mxtest.message(subject="second"))
    s.quit()
    assert q1 != q2
    assert d.message(q1)["rcpts"] == ["x@example.net"]
    assert d.message(q2)["rcpts"] == ["y@example.net"]
    assert d.message(q2)["sender"] == "b@example.com"


def test_smtplib():
    d = daemon()
    with smtplib.SMTP("127.0.0.1", d.port(), timeout=15) as c:
        code, _ = c.ehlo("smtplib.test.example")
        assert code == 250
        c.starttls()
        c.ehlo("smtplib.test.example")
        refused = c.sendmail("lib@example.com", ["r1@example.net", "r2@example.net"],
                             mxtest.message("lib@example.com", "r1@example.net", "smtplib"))
        assert refused == {}, refused
        code, resp = c.noop()
        assert code == 250
    msgs = [m for m in d.messages(received_only=True) if m["sender"] == "lib@example.com"]
    assert len(msgs) == 1, msgs
    assert msgs[0]["rcpts"] == ["r1@example.net", "r2@example.net"]


def test_swaks_plain():
    d = daemon()
    p = mxtest.swaks(d.port(), "--header", "Subject: swaks plain", check=0)
    qid = mxtest.swaks_qid(p)
    m = d.message(qid)
    assert m["sender"] == "sender@example.com" and m["rcpts"] == ["rcpt@example.net"]
    assert b"Subject: swaks plain" in m["body"]


def test_swaks_starttls():
    d = daemon()
    p = mxtest.swaks(d.port(), "--tls", "--header", "Subject: swaks tls", check=0)
    assert re.search(r"TLS started", p.stdout), "swaks did not start TLS"
    qid = mxtest.swaks_qid(p)
    assert b"Subject: swaks tls" in d.message(qid)["body"]


def test_curl_plain_and_starttls():
    d = daemon()
    p = mxtest.curl(f"smtp://127.0.0.1:{d.port()}", frm="curl@example.com", check=0)
    q1 = mxtest.curl_qid(p)
    p = mxtest.curl(f"smtp://127.0.0.1:{d.port()}", "--ssl-reqd", "-k", frm="curl@example.com", check=0)
    q2 = mxtest.curl_qid(p)
    for q in (q1, q2):
        m = d.message(q)
        assert m["sender"] == "curl@example.com" and m["rcpts"] == ["rcpt@example.net"], m
        assert b"sent with curl" in m["body"]


def test_msmtp():
    d = daemon()
    msg = mxtest.message("msmtp@example.com", "rcpt@example.net", "via msmtp", "msmtp body\r\n")
    p = mxtest.run(["msmtp", "--host=127.0.0.1", f"--port={d.port()}", "--from=msmtp@example.com",
                    "--tls=on", "--tls-starttls=on", "--tls-certcheck=off", "--auth=off",
                    "--domain=msmtp.test.example", "rcpt@example.net"], input=msg, check=0)
    assert p.returncode == 0
    msgs = [m for m in d.messages(received_only=True) if m["sender"] == "msmtp@example.com"]
    assert len(msgs) == 1 and b"msmtp body" in msgs[0]["body"], msgs


def test_ipv6_listener():
    d = mxtest.Daemon(listeners={"v6": {"address": f"[::1]:{mxtest.free_port('::1')}"}}).start()
    s = d.connect("v6", host="::1")
    assert s.banner.code == 220, s.banner
    # ::1/128 is in the default relay_from
    qid = s.mail("v6@example.com", ["r@example.net"], mxtest.message(subject="v6"))
    s.quit()
    assert d.message(qid)["client_ip"] == "::1"


def test_lowercase_commands():
    d = daemon()
    s = d.connect()
    s.cmd("ehlo lower.example", 250)
    s.cmd("mail from:<lower@example.com>", 250)
    s.cmd("rcpt to:<r@example.net>", 250)
    qid = s.data(mxtest.message(subject="lower")).qid()
    s.cmd("noop", 250, "2.0.0")
    s.cmd("quit", 221, "2.0.0")
    assert d.message(qid)["sender"] == "lower@example.com"


def test_command_line_512_boundary():
    s = daemon().connect()
    s.ehlo()
    # RFC 5321 4.5.3.1.4: 512 octets including the CRLF are allowed
    s.cmd("NOOP " + "x" * (512 - 2 - 5), 250, "2.0.0")
    s.cmd("NOOP " + "x" * (513 - 2 - 5), 500, "5.5.2")
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()


def test_huge_command_line():
    d = daemon()
    s = d.connect()
    s.ehlo()
    s.send(b"MAIL FROM:<" + b"A" * 200000 + b"@example.com>\r\n")
    r = s.reply(timeout=15)
    assert r.code == 500 and r.enh == "5.5.2", f"200 KB command line: {r}"
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()
    assert d.alive()


def test_bdat_not_available():
    """CHUNKING is not advertised, so BDAT must not start a message."""
    d = daemon()
    before = d.count(received_only=True)
    s = d.connect()
    s.ehlo()
    assert "CHUNKING" not in s.ext
    s.cmd("MAIL FROM:<b@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    r = s.cmd("BDAT 8 LAST")
    assert r.code in (500, 502) and r.enh == "5.5.1", f"BDAT: {r}"
    s.quit()
    assert d.count(received_only=True) == before


if __name__ == "__main__":
    mxtest.main()
