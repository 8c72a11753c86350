#!/usr/bin/python3
"""Relay policy: relay_from, address tricks, malformed addresses, recipient,
connection and idle limits, and PIPELINING order."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

OUTSIDER = "127.0.0.9"   # not in relay_from


def daemon():
    def make():
        return mxtest.Daemon(conf={"relay_from": "127.0.0.1/32 ::1/128", "max_recipients": "3"},
                             shared=True).start()
    return mxtest.shared_daemon("policy", make)


def test_allowlisted_relays():
    d = daemon()
    s = d.connect()
    qid = s.mail("in@example.com", ["out@example.net"], mxtest.message())
    s.quit()
    assert d.message(qid)["rcpts"] == ["out@example.net"]


def test_outsider_without_auth_offered_gets_554():
    d = daemon()
    s = d.connect(src=OUTSIDER)
    s.ehlo()
    assert "AUTH" not in s.ext
    s.cmd("MAIL FROM:<in@example.com>", 250)
    s.cmd("RCPT TO:<out@example.net>", 554, "5.7.1")
    s.starttls()
    s.ehlo()
    s.cmd("MAIL FROM:<in@example.com>", 250)
    s.cmd("RCPT TO:<out@example.net>", 554, "5.7.1")
    r = s.cmd("DATA")
    assert r.code in (503, 554), f"DATA with no accepted recipient: {r}"
    s.quit()
    assert not [m for m in d.messages(received_only=True) if m["client_ip"] == OUTSIDER]


def test_outsider_with_auth_offered_gets_530():
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"),
                              [("app", "app-secret", "@example.com", False)])
    d = mxtest.Daemon(tmp=tmp, conf={"credentials": creds},
                      listeners={"main": {"tls": "starttls"},
                                 "open": {"tls": "none", "auth_without_tls": "yes"}}).start()
    s = d.connect("main", src=OUTSIDER)
    s.ehlo()
    assert "AUTH" not in s.ext, "AUTH offered in plaintext without auth_without_tls"
    s.cmd("MAIL FROM:<in@example.com>", 250)
    s.cmd("RCPT TO:<out@example.net>", 554, "5.7.1")
    s.starttls()
    s.ehlo()
    assert "AUTH" in s.ext
    s.cmd("MAIL FROM:<in@example.com>", 250)
    s.cmd("RCPT TO:<out@example.net>", 530, "5.7.0")
    s.quit()
    s = d.connect("open", src=OUTSIDER)
    s.ehlo()
    assert "AUTH" in s.ext and "STARTTLS" not in s.ext, s.ext
    s.cmd("MAIL FROM:<in@example.com>", 250)
    s.cmd("RCPT TO:<out@example.net>", 530, "5.7.0")
    s.quit()


TRICKS = [
    "<user%other.example@example.net>",
    "<relay.example!user@example.net>",
    "<@a.example:user@b.example>",
    "<@a.example,@c.example:user@b.example>",
    "<\"a@b\"@example.net>",
]


def test_address_tricks_553():
    d = daemon()
    for src in (None, OUTSIDER):
        s = d.connect(src=src)
        s.ehlo()
        s.cmd("MAIL FROM:<in@example.com>", 250)
        for t in TRICKS:
            s.cmd(f"RCPT TO:{t}", 553, "5.1.3")
        s.quit()
    stored = [r for m in d.messages(received_only=True) for r in m["rcpts"]]
    assert not [r for r in stored if any(c in r for c in "%!:\"")], stored


def test_address_literals_refused_at_rcpt():
    """Issue 8: u@[127.0.0.1] has no MX; accepted, it could only bounce later.
    Refused at RCPT, unless a route names that literal."""
    port = mxtest.free_port()
    d = mxtest.Daemon(conf={"route": f"[127.0.0.2] 127.0.0.1:{port}"}).start()
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<in@example.com>", 250)
    for lit in ("<u@[127.0.0.1]>", "<u@[IPv6:::1]>", "<u@[127.0.0.3]>",
                "<u@[IPv6:0:0:0:0:0:0:0:1]>"):
        r = s.cmd(f"RCPT TO:{lit}", 550, "5.1.2")
        assert "literal" in r.text, r
    s.cmd("RCPT TO:<u@[127.0.0.2]>", 250, "2.1.5")
    s.cmd("RCPT TO:<fine@example.net>", 250, "2.1.5")
    qid = s.data(mxtest.message("in@example.com", "fine@example.net")).qid()
    s.quit()
    assert sorted(d.message(qid)["rcpts"]) == ["fine@example.net", "u@[127.0.0.2]"]


def test_malformed_addresses():
    d = daemon()
    s = d.connect()
    s.ehlo()
    for bad in ("<not an address>", "<missing-close@example.com", "<a@b@example.com>",
                "<user@>", "<user@exa mple.com>"):
        s.cmd(f"MAIL FROM:{bad}", 501, "5.1.7")
    s.cmd("MAIL FROM:<ok@example.com>", 250)
    for bad in ("<not an address>", "<missing-close@example.net", "<>", "<user@>",
                "<a@b@example.net>"):
        s.cmd(f"RCPT TO:{bad}", 501, "5.1.3")
    s.cmd("RCPT TO:<fine@example.net>", 250)
    s.quit()


def test_max_recipients():
    d = daemon()
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<many@example.com>", 250)
    for i in range(3):
        s.cmd(f"RCPT TO:<r{i}@example.net>", 250)
    s.cmd("RCPT TO:<r3@example.net>", 452, "4.5.3")
    s.cmd("RCPT TO:<r4@example.net>", 452, "4.5.3")
    qid = s.data(mxtest.message(subject="three")).qid()
    s.quit()
    assert d.message(qid)["rcpts"] == ["r0@example.net", "r1@example.net", "r2@example.net"]


def test_pipelined_transaction():
    """MAIL, RCPTs (one rejected), DATA in one write: every reply, in order."""
    d = daemon()
    s = d.connect()
    s.ehlo()
    assert "PIPELINING" in s.ext
    s.send("MAIL FROM:<pipe@example.com>\r\n"
           "RCPT TO:<p1@example.net>\r\n"
           "RCPT TO:<bad%hack@example.net>\r\n"
           "RCPT TO:<p2@example.net>\r\n"
           "RCPT TO:<not an address>\r\n"
           "RCPT TO:<p3@example.net>\r\n"
           "DATA\r\n")
    got = [s.reply() for _ in range(7)]
    want = [(250, "2."), (250, "2."), (553, "5.1.3"), (250, "2."), (501, "5.1.3"), (250, "2."),
            (354, None)]
    for r, (code, enh) in zip(got, want):
        assert r.code == code and (enh is None or (r.enh or "").startswith(enh)), \
            "pipelined replies: " + " / ".join(str(x) for x in got)
    qid = s.send_body(mxtest.message(subject="pipelined")).qid()
    s.quit()
    assert d.message(qid)["rcpts"] == ["p1@example.net", "p2@example.net", "p3@example.net"]


def test_pipelined_whole_transactions():
    """Body, final dot and the next transaction in one write, then QUIT after the last dot."""
    d = daemon()
    s = d.connect()
    s.ehlo()
    before = d.count(received_only=True)
    s.send("MAIL FROM:<w1@example.com>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n")
    for code in (250, 250, 354):
        s.reply().expect(code)
    body1 = mxtest.message(subject="whole one", body="one\r\n")
    body2 = mxtest.message(subject="whole two", body="two\r\n")
    s.send(body1.encode() + b".\r\n"
           b"MAIL FROM:<w2@example.com>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n")
    q1 = s.reply(timeout=30).qid()
    for code in (250, 250, 250, 354):
        s.reply().expect(code)
    s.send(body2.encode() + b".\r\nNOOP\r\nRSET\r\nQUIT\r\n")
    q2 = s.reply(timeout=30).qid()
    s.reply().expect(250, "2.0.0")
    s.reply().expect(250, "2.0.0")
    s.reply().expect(221, "2.0.0")
    assert d.count(received_only=True) == before + 2
    m1, m2 = d.message(q1), d.message(q2)
    assert m1["sender"] == "w1@example.com" and m1["body"].endswith(b"\r\n\r\none\r\n")
    assert m2["rcpts"] == ["b@example.net", "c@example.net"] and m2["body"].endswith(b"\r\n\r\ntwo\r\n")


def test_max_connections_per_ip():
    """At the per-address cap the newcomer takes the slot of that address's oldest
    idle session, which gets 421 4.7.0 (issue 12; sessions at work are never
    evicted: test_slow_clients.test_busy_sessions_are_never_evicted)."""
    d = mxtest.Daemon(conf={"max_connections_per_ip": "2"}).start()
    a = d.connect()
    b = d.connect()
    b.ehlo()  # b worked last: a is the oldest idle one
    c = d.connect()
    c.banner.expect(220)
    a.reply().expect(421, "4.7.0")
    assert a.closed(5), "evicted session not closed after 421"
    # another address is not affected
    o = d.connect(src=OUTSIDER)
    assert o.banner.code == 220, o.banner
    o.quit()
    b.quit()
    c.quit()


def _banner_code(d):
    s = d.connect(banner=False)
    try:
        return s.reply().code
    except AssertionError:
        return None
    finally:
        s.close()


def test_max_connections_total():
    """At the global cap the oldest idle session of the address holding the most
    makes room (issue 12); here each holds one, so the oldest goes."""
    d = mxtest.Daemon(conf={"max_connections": "2"}).start()
    a = d.connect(src="127.0.0.11")
    b = d.connect(src="127.0.0.12")
    b.ehlo()
    c = d.connect(src="127.0.0.13")
    c.banner.expect(220)
    a.reply().expect(421, "4.7.0")
    assert a.closed(5)
    b.quit()
    c.quit()


def test_session_timeout():
    d = mxtest.Daemon(conf={"session_timeout": "2s"}).start()
    s = d.connect()
    s.ehlo()
    t0 = time.monotonic()
    assert s.closed(8), "idle session not closed within session_timeout + 6s"
    took = time.monotonic() - t0
    assert 1.0 <= took <= 6.0, f"idle session closed after {took:.1f}s with session_timeout = 2s"
    # the daemon still serves new sessions
    s = d.connect()
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()


def test_half_open_client_does_not_block_others():
    d = daemon()
    raw = socket.create_connection(("127.0.0.1", d.port()), 5)
    try:
        raw.sendall(b"EHLO slow.example\r\nMAIL FROM:<slow@exa")  # never finishes the line
        s = d.connect()
        qid = s.mail("fast@example.com", ["r@example.net"], mxtest.message())
        s.quit()
        assert d.message(qid)
    finally:
        raw.close()


def test_pipelined_burst_of_commands():
    """5000 NOOPs in one write (~30 KB) while not reading: every reply arrives, in order."""
    d = daemon()
    s = d.connect()
    s.ehlo()
    n = 5000
    s.send("".join(f"NOOP {i}\r\n" for i in range(n)) + "QUIT\r\n")
    for i in range(n):
        r = s.reply(timeout=20)
        if not (r.code == 250 and r.enh == "2.0.0"):
            raise AssertionError(f"reply {i} of {n} pipelined NOOPs: {r}")
    s.reply(timeout=20).expect(221, "2.0.0")
    assert s.closed(3)


def test_session_timeout_mid_data():
    d = mxtest.Daemon(conf={"session_timeout": "2s"}).start()
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<slow@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.cmd("DATA", 354)
    s.send(b"Subject: stalled\r\n\r\nhalf\r\n")
    assert s.closed(8), "a stalled DATA was not timed out"
    assert d.count(received_only=True) == 0, "a timed-out partial message was stored"


def test_connection_slots_not_leaked():
    """Aborted sessions of every kind give their per-IP slot back."""
    import ssl
    import struct
    d = mxtest.Daemon(conf={"max_connections_per_ip": "2"},
                      listeners={"main": {"tls": "starttls"}, "smtps": {"tls": "implicit"}}).start()

    def rst(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    made = [0]

    def settled():
        # the daemon saw every connection made so far open and close (it notices both
        # asynchronously), so each slot should be free again
        made[0] += 1
        mxtest.wait_for(lambda: len(d.grep(r"event=connect\b")) == made[0] and
                        len(d.grep(r"event=disconnect\b")) == made[0],
                        5, what=f"the daemon to see connection {made[0]} open and close")
        assert not d.grep(r"event=refused"), "a connection was refused while slots should be free"

    for i in range(4):
        s = d.connect()                       # reset right after the banner
        rst(s.sock)
        settled()
        s = d.connect()
        s.ehlo()
        s.cmd("MAIL FROM:<a@example.com>", 250)
        s.cmd("RCPT TO:<b@example.net>", 250)
        s.cmd("DATA", 354)
        s.send(b"Subject: cut\r\n\r\npartial")
        rst(s.sock)                           # reset mid-DATA
        settled()
        s = d.connect()
        s.ehlo()
        s.cmd("STARTTLS", 220, "2.0.0")
        s.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")   # half a ClientHello
        rst(s.sock)                           # reset mid-handshake
        settled()
        raw = socket.create_connection(("127.0.0.1", d.port("smtps")), 5)
        rst(raw)                              # reset before the implicit TLS handshake
        settled()
        raw = socket.create_connection(("127.0.0.1", d.port("smtps")), 5)
        raw.sendall(b"EHLO not-tls\r\n")      # plaintext on the TLS port
        raw.close()
        settled()
    s = d.connect()
    try:
        tls_ok = mxtest.Smtp(d.port("smtps"), implicit_tls=True)
    except (ssl.SSLError, OSError) as e:
        raise AssertionError(f"implicit TLS after aborted sessions: {e}")
    s.banner.expect(220)
    tls_ok.banner.expect(220)
    s.quit()
    tls_ok.quit()
    assert d.count(received_only=True) == 0


def test_relay_from_ipv4_and_ipv6_are_distinct():
    d = mxtest.Daemon(conf={"relay_from": "::1/128"},
                      listeners={"v4": {}, "v6": {"address": f"[::1]:{mxtest.free_port('::1')}"}}).start()
    s = d.connect("v6", host="::1")
    s.ehlo()
    s.cmd("MAIL FROM:<six@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.quit()
    s = d.connect("v4")
    s.ehlo()
    s.cmd("MAIL FROM:<four@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 554, "5.7.1")
    s.quit()


if __name__ == "__main__":
    mxtest.main()
