#!/usr/bin/python3
"""DATA: the end-of-data rule, dot-unstuffing, bare CR/LF and SMTP smuggling,
line, message and header limits, SIZE=, the headers the relay adds, 8BITMIME
and SMTPUTF8, and big bodies spread over several spool chunks."""

import email.utils
import json
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
from mxtest import HOSTNAME  # noqa: E402

MAX = 1024 * 1024          # max_message_size = 1M
MAX_HEADER = 8 * 1024      # max_header_size = 8K


def daemon():
    def make():
        # bare_lf = reject: the strict rule these smuggling tests were written for
        # (normalize, the default since issue 15, has its own in test_bare_lf.py)
        return mxtest.Daemon(shared=True, conf={"max_message_size": "1M", "max_header_size": "8K"},
                             listeners={"main": {"bare_lf": "reject"}}).start()
    return mxtest.shared_daemon("data", make)


def session(d=None):
    d = d or daemon()
    s = d.connect()
    s.ehlo()
    return s


def open_data(s, sender="data@example.com", rcpt="r@example.net", params=""):
    s.cmd(f"MAIL FROM:<{sender}>{params}", 250)
    s.cmd(f"RCPT TO:<{rcpt}>", 250)
    s.cmd("DATA", 354)


def test_queued_reply_format():
    d = daemon()
    s = session(d)
    open_data(s)
    s.send(mxtest.message(subject="format").encode() + b".\r\n")
    r = s.reply()
    assert re.fullmatch(r"250 2\.0\.0 Ok: queued as [0-9A-Fa-f]{16}", r.lines[-1]), f"reply: {r}"
    qid = r.qid()
    s.quit()
    m = d.message(qid)
    assert m["sender"] == "data@example.com" and m["rcpts"] == ["r@example.net"]


def test_dot_unstuffing():
    d = daemon()
    s = session(d)
    open_data(s)
    raw = (b"Subject: dots\r\n\r\n"
           b"..x\r\n"
           b"..\r\n"
           b"...three\r\n"
           b"a.b\r\n"
           b". space\r\n"
           b"end\r\n"
           b".\r\n")
    s.send(raw)
    qid = s.reply().qid()
    s.quit()
    body = d.message(qid)["body"]
    want = b"\r\n\r\n.x\r\n.\r\n..three\r\na.b\r\n space\r\nend\r\n"
    assert body.endswith(want), f"unstuffed body tail: {body[-60:]!r}"


def test_end_only_at_crlf_dot_crlf():
    d = daemon()
    s = session(d)
    open_data(s)
    s.send(b"Subject: split\r\n\r\nfirst\r\n")
    s.send(b"x.\r\n.x\r\n. \r\n")
    s.silent(0.3)
    s.send(b"last\r\n.")          # terminator split across writes
    s.silent(0.3)
    s.send(b"\r")
    s.silent(0.3)
    s.send(b"\n")
    qid = s.reply().qid()
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()
    body = d.message(qid)["body"]
    assert body.endswith(b"\r\n\r\nfirst\r\nx.\r\nx\r\n \r\nlast\r\n"), body[-60:]


def _rejected_5_6_0(raw, what):
    d = daemon()
    before = d.count(received_only=True)
    s = session(d)
    open_data(s)
    s.send(raw + b"\r\n.\r\n")
    r = s.reply()
    assert r.code == 550 and r.enh == "5.6.0", f"{what}: expected 550 5.6.0 after the data, got: {r}"
    s.cmd("NOOP", 250, "2.0.0")
    s.silent(0.3)
    assert d.count(received_only=True) == before, f"{what}: a message was stored"
    # the session is still usable
    qid = s.mail("after@example.com", ["r@example.net"], mxtest.message(subject="after"))
    s.quit()
    assert d.message(qid)


def test_bare_lf_in_body():
    _rejected_5_6_0(b"Subject: lf\r\n\r\nline one\nline two\r\n", "bare LF in body")


def test_bare_cr_in_body():
    _rejected_5_6_0(b"Subject: cr\r\n\r\nline one\rline two\r\n", "bare CR in body")


def test_bare_lf_in_header():
    _rejected_5_6_0(b"Subject: lf\nX-Other: y\r\n\r\nbody\r\n", "bare LF in header")


def test_bare_lf_at_end():
    _rejected_5_6_0(b"Subject: lf\r\n\r\nbody\n", "bare LF before the terminator")


def test_nul_in_body():
    _rejected_5_6_0(b"From: <a@example.com>\r\nSubject: nul\r\n\r\nline\x00one\r\n", "NUL in body")


def test_nul_in_header():
    _rejected_5_6_0(b"From: <a@example.com>\x00<b@example.com>\r\nSubject: nul\r\n\r\nx\r\n",
                    "NUL in header From")


def test_nul_before_dot_smuggles_nothing():
    """CR LF NUL . CR LF: a next hop that drops NUL would see an end of data there.
    The relay refuses the message once, after the real end, and never runs what follows."""
    d = daemon()
    before = d.count(received_only=True)
    s = session(d)
    open_data(s)
    s.send(b"From: <a@example.com>\r\nSubject: nul dot\r\n\r\nbefore\r\n\x00.\r\n"
           b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n"
           b"smuggled\r\n.\r\n")
    s.reply().expect(550, "5.6.0")
    s.cmd("NOOP", 250, "2.0.0")
    s.silent(0.3)
    s.quit()
    assert d.count(received_only=True) == before, "a message with a NUL byte was stored"


def _submit_raw(d, body):
    """The submit socket's own protocol (submit.c), for octets mxrelay-sendmail never sends."""
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(30)
        c.connect(os.path.join(d.data_dir, "submit.sock"))
        c.sendall(b"SUBMIT\nFROM <local@example.com>\nTO <r@example.net>\nDATA %d\n" % len(body)
                  + body)
        out = b""
        while not out.endswith(b"\n"):
            chunk = c.recv(4096)
            if not chunk:
                break
            out += chunk
    mxtest.note(f"submit: {body!r} -> {out!r}")
    return json.loads(out)


def test_submit_socket_bare_cr_at_the_very_end():
    """Found by fuzz_data: the last octets of a local submission come without LF;
    "x\\r*" there was taken for a line end and a bare CR was stored."""
    d = daemon()
    before = d.count(received_only=True)
    for tail in (b"x\r*", b".\r.", b"x\r"):
        r = _submit_raw(d, b"From: <local@example.com>\r\nSubject: s\r\n\r\nbody\r\n" + tail)
        assert r.get("code") == "550 5.6.0", r
    r = _submit_raw(d, b"From: <local@example.com>\r\nSubject: s\r\n\r\nbody\x00\r\n")
    assert r.get("code") == "550 5.6.0" and "NUL" in r.get("error", ""), r
    assert d.count(received_only=True) == before
    r = _submit_raw(d, b"From: <local@example.com>\r\nSubject: s\r\n\r\nbody\r\n")
    assert "queued" in r, r


def test_missing_from_filled_from_envelope():
    d = daemon()
    s = session(d)
    qid = s.mail("device@example.com", ["r@example.net"], "Subject: copier\r\n\r\nscan\r\n")
    # the null sender has nothing to fill in: refused, as with missing_from = refuse
    s.cmd("MAIL FROM:<>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.data("Subject: bounce without From\r\n\r\nx\r\n").expect(550, "5.7.1")
    s.quit()
    body = d.message(qid)["body"]
    assert mxtest.header_values(body, "From") == ["<device@example.com>"], body
    head = body.split(b"\r\n\r\n", 1)[0]
    assert head.index(b"Subject:") < head.index(b"From: <device@example.com>"), head


def test_missing_from_refused():
    d = mxtest.Daemon(conf={"missing_from": "refuse"}).start()
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<device@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    r = s.data("Subject: copier\r\n\r\nscan\r\n")
    r.expect(550, "5.7.1")
    assert "no From" in r.text, r
    qid = s.mail("device@example.com", ["r@example.net"], mxtest.message("device@example.com"))
    s.quit()
    assert d.count(received_only=True) == 1 and d.message(qid)


def test_from_must_be_one_mailbox_for_everyone():
    """Not only AUTH users: DKIM picks its domain from From, so every relayed
    From must read as exactly one mailbox (RFC 5322 3.6.2)."""
    d = daemon()
    before = d.count(received_only=True)
    s = session(d)
    for frm in ("a@example.com, b@example.com", "ceo@bank.example <a@example.com>",
                "<a@example.com", "Team: a@example.com;", '"\\', "Device"):
        s.cmd("MAIL FROM:<a@example.com>", 250)
        s.cmd("RCPT TO:<r@example.net>", 250)
        r = s.data(f"From: {frm}\r\nSubject: x\r\n\r\nx\r\n")
        assert r.code == 550 and r.enh == "5.7.1" and "From" in r.text, f"From: {frm}: {r}"
    s.quit()
    assert d.count(received_only=True) == before


SMUGGLE = {
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CRLF": b"\r.\r\n",
    "LF.LF": b"\n.\n",
    "CR.CR": b"\r.\r",
    "CRLF.CR": b"\r\n.\r",
}


def _smuggle(name):
    seq = SMUGGLE[name]
    d = daemon()
    before = d.count(received_only=True)
    s = session(d)
    open_data(s, sender="outer@example.com")
    payload = (b"Subject: outer\r\n\r\nhello" + seq +
               b"MAIL FROM:<smuggler@evil.example>\r\n"
               b"RCPT TO:<victim@example.net>\r\n"
               b"DATA\r\n"
               b"From: <ceo@example.com>\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n"
               b"\r\n.\r\n")
    s.send(payload)
    r = s.reply()
    s.send("NOOP\r\n")
    n = s.reply()
    assert n.code == 250 and n.enh == "2.0.0", \
        f"{name}: the reply after the data's reply must answer NOOP, got: {n} (smuggled commands answered)"
    s.silent(0.5)
    s.quit()
    msgs = d.messages(received_only=True)[before:]
    assert len(msgs) <= 1, f"{name}: {len(msgs)} messages stored from one DATA"
    assert not [m for m in msgs if m["sender"] == "smuggler@evil.example"], f"{name}: smuggled message stored"
    assert r.code == 550 and r.enh == "5.6.0", f"{name}: expected 550 5.6.0 for data with bare CR/LF, got: {r}"
    assert len(msgs) == 0, f"{name}: message stored despite 550"


def test_smuggle_lf_dot_crlf():
    _smuggle("LF.CRLF")


def test_smuggle_crlf_dot_lf():
    _smuggle("CRLF.LF")


def test_smuggle_cr_dot_crlf():
    _smuggle("CR.CRLF")


def test_smuggle_lf_dot_lf():
    _smuggle("LF.LF")


def test_smuggle_cr_dot_cr():
    _smuggle("CR.CR")


def test_smuggle_crlf_dot_cr():
    _smuggle("CRLF.CR")


def test_line_length_limit():
    d = daemon()
    s = session(d)
    open_data(s)
    ok_line = b"a" * 998
    s.send(b"Subject: long ok\r\n\r\n" + ok_line + b"\r\n.\r\n")
    qid = s.reply().qid()
    assert d.message(qid)["body"].endswith(ok_line + b"\r\n")
    before = d.count(received_only=True)
    for n in (999, 5000):
        open_data(s)
        s.send(b"Subject: too long\r\n\r\nshort\r\n" + b"b" * n + b"\r\nafter\r\n.\r\n")
        s.reply().expect(550, "5.6.0")
    assert d.count(received_only=True) == before, "an over-long line was stored"
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()


def test_long_line_drained_at_its_cr_still_ends_at_crlf_dot_crlf():
    """An over-long line dropped in a chunk that ends in its CR, then LF . CRLF: that is
    CRLF.CRLF and ends DATA with the line-length 550 at once (review of issue 15)."""
    import time
    d = daemon()
    s = session(d)
    open_data(s)
    s.send(b"Subject: x\r\n\r\n" + b"a" * 1500 + b"\r")
    time.sleep(0.5)
    t0 = time.monotonic()
    s.send(b"\n.\r\n")
    r = s.reply(timeout=15)
    waited = time.monotonic() - t0
    r.expect(550, "5.6.0")
    assert "LF.LF" not in r.text, f"a CRLF.CRLF got the LF.LF refusal: {r}"
    assert waited < 3.0, f"the reply took {waited:.2f}s"
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()


def test_message_too_big():
    d = daemon()
    before = d.count(received_only=True)
    s = session(d)
    open_data(s)
    line = b"y" * 78 + b"\r\n"
    big = b"Subject: big\r\n\r\n" + line * ((MAX + 200000) // len(line))
    s.send(big + b".\r\n")
    s.reply(timeout=30).expect(552, "5.3.4")
    s.cmd("NOOP", 250, "2.0.0")
    assert d.count(received_only=True) == before, "an oversized message was stored"
    s.quit()


def test_size_parameter():
    s = session()
    s.cmd(f"MAIL FROM:<big@example.com> SIZE={MAX + 1}", 552, "5.3.4")
    s.cmd(f"MAIL FROM:<big@example.com> SIZE={10 * MAX}", 552, "5.3.4")
    s.cmd("MAIL FROM:<big@example.com> SIZE=1000", 250)
    s.cmd("RSET", 250, "2.0.0")
    s.quit()


def test_header_block_too_big():
    d = daemon()
    before = d.count(received_only=True)
    s = session(d)
    open_data(s)
    headers = b"".join(b"X-Filler-%04d: %s\r\n" % (i, b"h" * 60) for i in range((MAX_HEADER // 70) + 40))
    assert len(headers) > MAX_HEADER
    s.send(b"Subject: many headers\r\n" + headers + b"\r\nbody\r\n.\r\n")
    s.reply().expect(552, "5.3.4")
    assert d.count(received_only=True) == before
    # a small header block with a larger body is fine
    open_data(s)
    s.send(b"Subject: small head\r\n\r\n" + (b"z" * 70 + b"\r\n") * 300 + b".\r\n")
    assert d.message(s.reply().qid())
    s.quit()


def test_big_body_over_several_chunks():
    d = daemon()
    s = session(d)
    open_data(s)
    lines = [(b"%06d " % i) + bytes(range(33, 127)) for i in range(8000)]   # ~800 KB
    text = b"Subject: chunks\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    s.send(mxtest.dot_stuff(text) + b".\r\n")
    qid = s.reply(timeout=30).qid()
    s.quit()
    m = d.message(qid)
    assert m["body"].endswith(text[len(b"Subject: chunks\r\n"):]), "big body not stored byte for byte"
    n = d.query("SELECT count(*) AS n FROM bodies WHERE msg_id = ?", (m["id"],))[0]["n"]
    assert n >= 2, f"an 800 KB body should span several chunks, got {n}"


def test_received_header_first():
    d = daemon()
    s = d.connect()
    s.ehlo("recv-client.test.example")
    qid = s.mail("r@example.com", ["t@example.net"], mxtest.message(subject="recv"))
    s.quit()
    body = d.message(qid)["body"]
    first = body.split(b"\r\n", 1)[0]
    assert first.startswith(b"Received: "), f"first stored line: {first!r}"
    rec = mxtest.header_values(body, "Received")[0]
    assert HOSTNAME in rec and "recv-client.test.example" in rec and "127.0.0.1" in rec, rec
    assert not re.search(r"TLSv1", rec), f"plaintext session's Received names TLS: {rec}"


def test_message_id_and_date_added():
    d = daemon()
    s = session(d)
    msg = mxtest.message(subject="bare", date=False, msgid=False)
    qid = s.mail("bare@example.com", ["t@example.net"], msg)
    s.quit()
    body = d.message(qid)["body"]
    mids = mxtest.header_values(body, "Message-ID")
    dates = mxtest.header_values(body, "Date")
    assert len(mids) == 1 and re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", mids[0]), f"Message-ID: {mids}"
    assert len(dates) == 1 and email.utils.parsedate_to_datetime(dates[0]), f"Date: {dates}"
    assert body.endswith(b"\r\n\r\nhello\r\n")


def test_message_id_and_date_not_duplicated():
    d = daemon()
    s = session(d)
    msg = ("From: <k@example.com>\r\nTo: <t@example.net>\r\nSubject: has both\r\n"
           "date: Tue, 02 Jan 2024 11:00:00 +0000\r\nMESSAGE-ID: <keep-me@client.example>\r\n\r\nhi\r\n")
    qid = s.mail("k@example.com", ["t@example.net"], msg)
    s.quit()
    body = d.message(qid)["body"]
    assert mxtest.header_values(body, "Message-ID") == ["<keep-me@client.example>"], \
        mxtest.header_values(body, "Message-ID")
    assert mxtest.header_values(body, "Date") == ["Tue, 02 Jan 2024 11:00:00 +0000"], \
        mxtest.header_values(body, "Date")


def test_8bitmime():
    d = daemon()
    s = session(d)
    open_data(s, sender="eight@example.com", params=" BODY=8BITMIME")
    raw = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße, ça va ✓\r\n".encode()
    s.send(raw + b".\r\n")
    qid = s.reply().qid()
    s.quit()
    m = d.message(qid)
    assert m["body"].endswith("\r\n\r\nGrüße, ça va ✓\r\n".encode()), m["body"][-40:]
    assert m["flags"] & 1, f"flags {m['flags']} lack 8BITMIME"


def test_smtputf8():
    d = daemon()
    s = session(d)
    # ASCII domains: the delivery engine would bounce (and drop) an IDN recipient at once
    s.cmd("MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8", 250)
    s.cmd("RCPT TO:<用户@example.net>", 250)
    qid = s.data("From: <δοκιμή@παράδειγμα.δοκιμή>\r\nSubject: utf8\r\n\r\nΓειά\r\n").qid()
    s.quit()
    m = d.message(qid)
    assert m["sender"] == "δοκιμή@παράδειγμα.δοκιμή", m["sender"]
    assert m["rcpts"] == ["用户@example.net"], m["rcpts"]
    assert m["flags"] & 2, f"flags {m['flags']} lack SMTPUTF8"


def test_data_reply_after_reject_keeps_session():
    """After a 552 for size the next transaction in the same session works."""
    d = daemon()
    s = session(d)
    open_data(s)
    s.send(b"Subject: x\r\n" + b"X-Big: " + b"q" * 900 + b"\r\n" + (b"X-More: " + b"w" * 900 + b"\r\n") * 12 +
           b"\r\nbody\r\n.\r\n")
    s.reply().expect(552, "5.3.4")
    qid = s.mail("again@example.com", ["r@example.net"], mxtest.message(subject="again"))
    s.quit()
    assert d.message(qid)["sender"] == "again@example.com"


def test_header_block_without_end():
    """A message that is all header lines (no blank line) is still held to max_header_size."""
    d = daemon()
    before = d.count(received_only=True)
    s = session(d)
    open_data(s)
    headers = b"".join(b"X-Filler-%04d: %s\r\n" % (i, b"h" * 60) for i in range((MAX_HEADER // 70) + 40))
    s.send(b"Subject: no body\r\n" + headers + b".\r\n")
    s.reply().expect(552, "5.3.4")
    assert d.count(received_only=True) == before
    s.quit()


def test_one_huge_header():
    """One header folded over many lines counts as header, not body."""
    d = daemon()
    before = d.count(received_only=True)
    s = session(d)
    open_data(s)
    folded = b"X-Long: start\r\n" + b"".join(b"\tcontinued %04d %s\r\n" % (i, b"f" * 60) for i in range(200))
    s.send(b"Subject: folded\r\n" + folded + b"\r\nbody\r\n.\r\n")
    s.reply().expect(552, "5.3.4")
    assert d.count(received_only=True) == before
    s.quit()


def test_crlf_and_dots_split_across_writes():
    """CR and LF of one line end arriving in different reads are not bare; stuffing and line
    length are judged across read boundaries."""
    d = daemon()
    s = session(d)
    open_data(s)
    parts = [b"Subject: split\r", b"\nX-Split: yes\r\n\r", b"\nline one\r", b"\n.", b".dots\r\n",
             b"a" * 500, b"a" * 498 + b"\r", b"\nend\r\n", b".", b"\r", b"\n"]
    for p in parts[:-1]:
        s.send(p)
        s.silent(0.05)
    s.send(parts[-1])
    qid = s.reply().qid()
    body = d.message(qid)["body"]
    assert b"\r\nSubject: split\r\nX-Split: yes\r\n" in body.split(b"\r\n\r\n", 1)[0] + b"\r\n", body[:300]
    assert body.endswith(b"\r\n\r\nline one\r\n.dots\r\n" + b"a" * 998 + b"\r\nend\r\n"), \
        body[:80] + b" ... " + body[-1100:-1000] + b" ... " + body[-20:]
    # 999 characters split over two writes is still too long
    open_data(s)
    s.send(b"Subject: split long\r\n\r\n" + b"b" * 600)
    s.silent(0.05)
    s.send(b"b" * 399 + b"\r\n.\r\n")
    s.reply().expect(550, "5.6.0")
    s.quit()


if __name__ == "__main__":
    mxtest.main()
