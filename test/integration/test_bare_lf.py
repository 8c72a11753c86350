#!/usr/bin/python3
"""bare_lf (issue 15 item 1): leniency without smuggling.

bare_lf = normalize (the listener default): curl --upload-file with an LF-only
Unix file is accepted and arrives at the sink (aiosmtpd behind nsd, mxpeers)
with CRLF line ends and its content intact; a bare CR is still refused; every
smuggling shape ("LF . LF", "CR LF . LF", "LF . CR LF" and the CR ones) is
refused as a whole and never yields a second message (checked in the spool
and at the sink); an emulated device (raw socket) that ends DATA with
"LF . LF" and goes quiet gets 550 5.6.0 naming LF.LF within seconds, not a
timeout, and the connection is closed. bare_lf = reject keeps the 550 for
any bare LF."""

import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE  # noqa: E402

RCPT = f"r@sink.{ZONE}"


def env():
    """A sink and a relay: listener main (default: normalize) and strict (reject)."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, start=False)
    d.configure(listeners={"main": {}, "strict": {"bare_lf": "reject"}})
    d.start()
    return sinks, d


def open_data(s, sender="dev@example.com", rcpt=RCPT):
    s.ehlo()
    s.cmd(f"MAIL FROM:<{sender}>", 250)
    s.cmd(f"RCPT TO:<{rcpt}>", 250)
    s.cmd("DATA", 354)


def marker(d, sinks, tag):
    """A clean message after the others: once it is at the sink, earlier ones are too."""
    s = d.connect()
    qid = s.mail("marker@example.com", [RCPT], mxtest.message(subject=f"marker {tag}"))
    s.quit()
    sinks.wait_messages(1, "mx.sink", pred=lambda m: b"marker " + tag.encode() in m.data)
    return qid


def audit_count(d, ip, key):
    """The audit's KEY count for ip without AUTH (mxrelayctl audit --json)."""
    p = mxtest.run([mxtest.MXRELAYCTL, "audit", "-c", d.conf_path, "--json"], check=0)
    rows = [r for r in json.loads(p.stdout) if r["client_ip"] == ip and r["user"] == ""]
    return rows[0][key] if rows else 0


def test_curl_lf_file_normalized():
    sinks, d = env()
    body = ("From: <script@example.com>\nTo: <r@sink.dlv.test>\nSubject: cron report\n\n"
            "line one\na.b\n\n  indented\nlast line\n")
    p = mxtest.curl(f"smtp://127.0.0.1:{d.port()}", frm="script@example.com", to=RCPT,
                    body=body, check=0)
    qid = mxtest.curl_qid(p)
    (m,) = sinks.wait_messages(1, "mx.sink", pred=lambda m: b"cron report" in m.data)
    bare = re.search(rb"(?<!\r)\n|\r(?!\n)", m.data)
    assert not bare, f"bare CR/LF at the sink at {bare.start()}: {m.data!r}"
    # curl adds a CRLF before "." CRLF when the file does not end in one
    assert m.data.endswith(b"\r\n\r\nline one\r\na.b\r\n\r\n  indented\r\nlast line\r\n\r\n"), \
        m.data[-120:]
    assert b"Subject: cron report\r\n" in m.data
    assert d.wait_log(rf"qid={qid} event=accepted .* bare_lf=9\b"), d.tail(20)


def test_bare_cr_still_refused():
    _, d = env()
    s = d.connect()
    open_data(s)
    s.send(b"Subject: cr\n\nline one\rline two\n\r\n.\r\n")
    r = s.reply()
    assert r.code == 550 and r.enh == "5.6.0" and "a bare CR (" in r.text, r
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()


SMUGGLE = {
    "LF.LF": b"\n.\n",
    "CRLF.LF": b"\r\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CRLF": b"\r.\r\n",
    "CR.CR": b"\r.\r",
    "CRLF.CR": b"\r\n.\r",
}


def test_smuggling_in_normalize_mode():
    sinks, d = env()
    for name, seq in SMUGGLE.items():
        before = d.count(received_only=True)
        s = d.connect()
        open_data(s, sender="outer@example.com")
        s.send(b"Subject: outer " + name.encode() + b"\r\n\r\nhello" + seq +
               b"MAIL FROM:<smuggler@evil.example>\r\n" +
               f"RCPT TO:<victim@sink.{ZONE}>\r\n".encode() +
               b"DATA\r\nFrom: <ceo@example.com>\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n"
               b"\r\n.\r\n")
        r = s.reply()
        assert r.code == 550 and r.enh == "5.6.0", f"{name}: expected 550 5.6.0, got {r}"
        s.send("NOOP\r\n")
        n = s.reply()
        assert n.code == 250 and n.enh == "2.0.0", f"{name}: smuggled commands answered: {n}"
        s.silent(0.3)
        s.quit()
        assert d.count(received_only=True) == before, f"{name}: a message was stored"
    marker(d, sinks, "smuggle")
    bad = [m for m in sinks.messages("mx.sink")
           if m.mail_from == "smuggler@evil.example" or b"smuggled" in m.data
           or b"outer" in m.data]
    assert not bad, f"smuggled or refused mail at the sink: {bad}"


def test_lf_dot_lf_then_quiet_gets_5xx_in_seconds():
    _, d = env()
    before = d.count(received_only=True)
    # an old device: LF line ends, ends DATA with LF . LF, then waits for the reply
    sock = socket.create_connection(("127.0.0.1", d.port()), 10)
    f = sock.makefile("rb")

    def reply():
        lines = [f.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(f.readline())
        return lines[-1]

    assert reply().startswith(b"220")
    for cmd, want in ((b"HELO copier\r\n", b"250"), (b"MAIL FROM:<copier@example.com>\r\n", b"250"),
                      (f"RCPT TO:<{RCPT}>\r\n".encode(), b"250"), (b"DATA\r\n", b"354")):
        sock.sendall(cmd)
        assert reply().startswith(want)
    sock.sendall(b"Subject: scan\n\nscanned page\n.\n")
    t0 = time.monotonic()
    sock.settimeout(15)
    line = f.readline()
    waited = time.monotonic() - t0
    mxtest.note(f"# LF.LF device: reply after {waited:.2f}s: {line!r}")
    assert line.startswith(b"550 5.6.0 ") and b"LF.LF" in line and b"CRLF.CRLF" in line, line
    assert 4.0 <= waited <= 8.0, f"the LF.LF reply took {waited:.2f}s"
    assert f.readline() == b"", "the connection stays open after an ambiguous end of DATA"
    sock.close()
    assert d.count(received_only=True) == before, "a message was stored"
    assert d.wait_log(r"event=rejected .*reason=\"DATA must end with CRLF\.CRLF; your client "
                      r"ended it with LF\.LF.* quiet_ms=\d+"), d.tail(20)


def test_quit_pipelined_after_lf_dot_lf_gets_5xx_in_seconds():
    """A device that pipelines QUIT right behind LF . LF (and one ending with
    CR LF . LF) still gets the 550 within seconds, not the idle timeout; the
    reply covers both ("LF.LF or another '.' line next to a bare LF")."""
    _, d = env()
    for end in (b"\n.\nQUIT\r\n", b"\r\n.\nQUIT\n"):
        sock = socket.create_connection(("127.0.0.1", d.port()), 10)
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220")
        sock.sendall(b"HELO copier\r\nMAIL FROM:<copier@example.com>\r\n"
                     + f"RCPT TO:<{RCPT}>\r\n".encode() + b"DATA\r\n")
        for want in (b"250", b"250", b"250", b"354"):
            assert f.readline().startswith(want)
        sock.sendall(b"Subject: scan\n\nscanned page" + end)
        t0 = time.monotonic()
        sock.settimeout(15)
        line = f.readline()
        waited = time.monotonic() - t0
        assert line.startswith(b"550 5.6.0 ") and b"next to a bare LF" in line, (end, line)
        assert 4.0 <= waited <= 8.0, f"{end!r}: the reply took {waited:.2f}s"
        sock.close()


def test_size_limit_counts_normalized_octets():
    """Each bare LF is stored as CRLF: max_message_size applies to that (review of issue 15)."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, {"max_message_size": "20000"}, start=False)
    d.configure(listeners={"main": {}})
    d.start()
    before = d.count(received_only=True)
    s = d.connect()
    open_data(s)
    # 19014 octets received, 38030 once stored with CRLF
    s.send(b"Subject: big\n\n" + b"\n" * 19000 + b"\r\n.\r\n")
    r = s.reply()
    assert r.code == 552 and r.enh == "5.3.4", f"twice the size limit was accepted: {r}"
    s.quit()
    assert d.count(received_only=True) == before, "a message over the limit was stored"
    # under the limit once normalized: still accepted
    s = d.connect()
    open_data(s)
    s.send(b"Subject: small\n\n" + b"\n" * 9000 + b"\r\n.\r\n")
    r = s.reply()
    assert r.code == 250, r
    s.quit()
    # both had bare LFs: the refused one and the stored one are counted
    mxtest.wait_for(lambda: audit_count(d, "127.0.0.1", "bare_lf") == 2, 10,
                    what="bare_lf=2 in the audit")


def test_reject_mode_keeps_the_550():
    _, d = env()
    before = d.count(received_only=True)
    s = d.connect("strict")
    open_data(s)
    s.send(b"Subject: lf\n\nline one\nline two\r\n\r\n.\r\n")
    r = s.reply()
    assert r.code == 550 and r.enh == "5.6.0" and "bare CR or LF" in r.text, r
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()
    assert d.count(received_only=True) == before


if __name__ == "__main__":
    mxtest.main()
