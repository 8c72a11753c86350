#!/usr/bin/python3
"""Intake review: header From checks a receiver cannot be talked around
(obsolete "From :" syntax, a non-header line hiding the real header block),
AUTH state across STARTTLS, and the implicit-TLS per-address cap."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

USERS = [("alice", "alice-pw", "alice@example.com", False)]


def daemon():
    def make():
        tmp = mxtest.tmpdir()
        creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
        return mxtest.Daemon(
            tmp=tmp, shared=True,
            conf={"credentials": creds, "relay_from": "192.0.2.0/24", "auth_max_failures": "50"},
            listeners={"sub": {"tls": "starttls"},
                       "mixed": {"tls": "starttls", "auth_without_tls": "yes"}}).start()
    return mxtest.shared_daemon("review", make)


def header_block(body):
    """The stored header block as a receiver sees it: up to the first empty line."""
    return body.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")


def from_is_evil(lines):
    """Any header line a lenient reader (RFC 5322 4.5 obsolete syntax) takes for From."""
    import re
    return [ln for ln in lines if re.match(r"(?i)^from[ \t]*:", ln) and "evil" in ln]


HIDDEN_FROM = [
    ("obsolete space before the colon", "From : <ceo@evil.example>\r\n"),
    ("tab before the colon", "From\t: <ceo@evil.example>\r\n"),
    ("non-header line first", "X-Junk\r\nFrom: <ceo@evil.example>\r\n"),
    ("space in a field name first", "Bad Name: x\r\nFrom: <ceo@evil.example>\r\n"),
]


def test_hidden_header_from_never_reaches_the_receiver():
    """A forbidden From is refused, or at least left in the body where no reader sees a header."""
    d = daemon()
    s = d.connect("sub", src="127.0.0.21")
    s.ehlo()
    s.starttls()
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    bad = []
    for label, lines in HIDDEN_FROM:
        mark = mxtest.transcript_mark()
        s.cmd("MAIL FROM:<alice@example.com>", 250)
        s.cmd("RCPT TO:<far@example.net>", 250)
        r = s.data(lines + "To: far@example.net\r\nSubject: " + label + "\r\n\r\nbody\r\n")
        if r.code == 550 and r.enh == "5.7.1":
            continue
        if r.code != 250:
            bad.append(f"{label}: unexpected {r}")
            continue
        hdr = header_block(d.message(r.qid())["body"])
        if from_is_evil(hdr):
            bad.append(f"{label}: stored with a forbidden From in the header block: {hdr}\n"
                       + mxtest.transcript_since(mark))
    s.quit()
    assert not bad, "\n".join(bad)


def test_nul_in_header_from_is_refused():
    """A NUL ends the address for our parser, not for every reader: never accept one in From."""
    d = daemon()
    before = d.count(received_only=True)
    s = d.connect("sub", src="127.0.0.24")
    s.ehlo()
    s.starttls()
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.cmd("MAIL FROM:<alice@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 250)
    # issue 8: a NUL anywhere refuses the whole message as content (550 5.6.0)
    s.data(b"From: alice@example.com\0ceo@evil.example\r\nSubject: nul\r\n\r\nbody\r\n") \
        .expect(550, "5.6.0")
    s.quit()
    assert d.count(received_only=True) == before


def test_long_folded_header_from_is_checked_whole():
    """A From folded past the capture buffer must not hide its last mailbox."""
    d = daemon()
    before = d.count(received_only=True)
    s = d.connect("sub", src="127.0.0.25")
    s.ehlo()
    s.starttls()
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.cmd("MAIL FROM:<alice@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 250)
    frm = ("From: alice@example.com,\r\n (" + "x" * 990 + ")\r\n ceo@evil.example\r\n")
    r = s.data(frm + "Subject: long\r\n\r\nbody\r\n")
    s.quit()
    assert r.code == 550 and r.enh == "5.7.1", f"long folded From: {r}"
    assert d.count(received_only=True) == before


def test_obsolete_from_syntax_is_checked():
    """'From :' (RFC 5322 4.5.3 obs-from) is a From header: an allowed one passes, as a header."""
    d = daemon()
    s = d.connect("sub", src="127.0.0.22")
    s.ehlo()
    s.starttls()
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    qid = s.mail("alice@example.com", ["far@example.net"],
                 "From : <alice@example.com>\r\nSubject : old client\r\n\r\nbody\r\n")
    s.quit()
    hdr = header_block(d.message(qid)["body"])
    assert "From : <alice@example.com>" in hdr, hdr
    assert "Subject : old client" in hdr, hdr


def test_body_without_blank_line_gets_one():
    """Content whose first line is no header: the relay's added fields end the header block."""
    d = mxtest.Daemon().start()
    s = d.connect()
    qid = s.mail("a@example.com", ["b@example.net"], "just a line of text\r\nmore\r\n")
    s.quit()
    body = d.message(qid)["body"]
    hdr = header_block(body)
    assert not [ln for ln in hdr if "just a line" in ln], f"body line in the header block: {hdr}"
    assert body.endswith(b"\r\n\r\njust a line of text\r\nmore\r\n"), body


def test_starttls_forgets_plaintext_auth():
    """RFC 3207 4.2: after STARTTLS nothing learned before it holds, AUTH included."""
    d = daemon()
    s = d.connect("mixed", src="127.0.0.23")
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.starttls()
    s.ehlo()
    assert "AUTH" in s.ext, f"AUTH not offered again after STARTTLS: {s.ext}"
    s.cmd("MAIL FROM:<alice@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 530, "5.7.0")
    s.cmd("RSET", 250)
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.cmd("MAIL FROM:<alice@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 250)
    s.quit()


def test_implicit_tls_over_cap_cannot_hold_every_slot():
    """Connections over the per-address cap on an implicit-TLS port must not fill max_connections."""
    d = mxtest.Daemon(conf={"max_connections_per_ip": "2", "max_connections": "10"},
                      listeners={"main": {"tls": "starttls"}, "smtps": {"tls": "implicit"}}).start()
    idle = []
    for _ in range(12):
        idle.append(socket.create_connection(("127.0.0.1", d.port("smtps")), 5,
                                             source_address=("127.0.0.31", 0)))
    time.sleep(0.5)
    try:
        s = d.connect("main", src="127.0.0.32")
        s.banner.expect(220)
        s.quit()
    finally:
        for c in idle:
            c.close()


def test_two_from_fields_refused_for_everyone():
    """RFC 5322 3.6: one From. A second one could pick the DKIM signing domain, even
    for an allowlisted client that never authenticated."""
    d = mxtest.Daemon().start()
    before = d.count(received_only=True)
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<a@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 250)
    s.data(b"From: <a@example.com>\r\nFrom: <b@example.org>\r\nSubject: two\r\n\r\nbody\r\n") \
        .expect(550, "5.7.1")
    s.cmd("MAIL FROM:<a@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 250)
    s.data(b"From: <a@example.com>\r\nSubject: one\r\n\r\nbody\r\n").expect(250, "2.0.0")
    s.quit()
    assert d.count(received_only=True) == before + 1


if __name__ == "__main__":
    mxtest.main()
