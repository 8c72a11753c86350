#!/usr/bin/python3
"""Slow and flooding clients (issue 12): limits that count work, not silence
(command_deadline, data_deadline, min_data_rate, stress_timeout), and slots
shared fairly (a shrinking per-address cap, the oldest idle session evicted
instead of the newcomer refused). Drippers bind loopback source addresses
127.0.1.x / 127.0.2.x and send one byte a second, so they are never silent."""

import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

RELAY_ALL = "127.0.0.0/8"


def metric(d, sample):
    """The value of one sample of mxrelayd's /metrics (metrics_listen in d's config)."""
    with urllib.request.urlopen(f"http://{d.conf['metrics_listen']}/metrics", timeout=5) as r:
        for ln in r.read().decode().splitlines():
            if ln.startswith(sample + " "):
                return int(ln.split()[-1])
    raise AssertionError(f"{sample} not in /metrics")


class Drippers:
    """Raw connections that each send one byte per tick and never end a line."""

    def __init__(self, port, sources, per_source=1, prefix=b""):
        self.socks = []   # [sock, source, bytes received]
        self.closed = []  # (source, bytes received, seconds after start)
        self.t0 = time.monotonic()
        for src in sources:
            for _ in range(per_source):
                s = socket.create_connection(("127.0.0.1", port), 10, source_address=(src, 0))
                s.setblocking(False)
                if prefix:
                    s.sendall(prefix)
                self.socks.append([s, src, b""])
        mxtest.note(f"# {len(self.socks)} drippers from {len(sources)} addresses")

    def _drain(self, entry):
        """Read what the server sent; True once it closed the connection."""
        s = entry[0]
        while True:
            try:
                data = s.recv(4096)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not data:
                return True
            entry[2] += data

    def tick(self, byte=b"x"):
        """Send one byte on every open connection; move closed ones to self.closed."""
        keep = []
        for e in self.socks:
            gone = self._drain(e)
            if not gone:
                try:
                    e[0].send(byte)
                except OSError:
                    gone = True
            if gone:
                gone = self._drain(e) or True
                self.closed.append((e[1], e[2], time.monotonic() - self.t0))
                e[0].close()
            else:
                keep.append(e)
        self.socks = keep

    def run(self, seconds, every=1.0, until_all_closed=False):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.tick()
            if until_all_closed and not self.socks:
                return
            time.sleep(every)

    def close(self):
        for e in self.socks:
            e[0].close()
        self.socks = []


def _replies(data):
    return [ln for ln in data.decode("utf-8", "replace").split("\r\n") if ln]


def _assert_timed_out(dr, n, within):
    assert len(dr.closed) == n and not dr.socks, (
        f"{len(dr.socks)} of {n} dripping sessions still open after {within}s")
    for src, data, took in dr.closed:
        lines = _replies(data)
        assert lines and lines[-1].startswith("421 4.4.2 "), (
            f"dripper from {src} closed without 421 4.4.2: {lines!r}")
        assert took <= within, f"dripper from {src} closed only after {took:.1f}s"


def test_drip_line_closed_at_command_deadline():
    """One byte a second, never a CRLF: closed at command_deadline (3s), not at
    session_timeout (60s, silence only)."""
    d = mxtest.Daemon(conf={"command_deadline": "3s", "relay_from": RELAY_ALL,
                            "metrics_listen": f"127.0.0.1:{mxtest.free_port()}"}).start()
    srcs = [f"127.0.1.{i}" for i in range(1, 6)]
    dr = Drippers(d.port(), srcs, prefix=b"EHLO drip")
    dr.run(12, until_all_closed=True)
    _assert_timed_out(dr, len(srcs), 8)
    for src, _, took in dr.closed:
        assert took >= 2.5, f"dripper from {src} closed after {took:.1f}s, before the deadline"
    assert len(d.grep(r"event=timeout .*reason=line state=cmd")) == len(srcs)
    assert metric(d, 'mxrelay_sessions_closed_total{reason="line"}') == len(srcs)
    # a client that finishes its lines is not touched by the deadline
    s = d.connect(src="127.0.1.9")
    qid = s.mail("ok@example.com", ["r@example.net"], mxtest.message())
    s.quit()
    assert d.message(qid)


def _into_data(d, src):
    s = d.connect(src=src)
    s.ehlo()
    s.cmd("MAIL FROM:<drip@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.cmd("DATA", 354)
    s.send(b"Subject: drip\r\n\r\n")
    s.sock.setblocking(False)
    return s


def _data_drippers(d, n):
    sessions = [_into_data(d, f"127.0.1.{20 + i}") for i in range(n)]
    dr = Drippers.__new__(Drippers)
    dr.socks = [[s.sock, f"127.0.1.{20 + i}", b""] for i, s in enumerate(sessions)]
    dr.closed = []
    dr.t0 = time.monotonic()
    return dr


def test_drip_data_closed_at_data_deadline():
    """Inside DATA, a byte a second (lines ending now and then), rate check off:
    closed at data_deadline with 421 4.4.2; nothing stored."""
    d = mxtest.Daemon(conf={"data_deadline": "4s", "min_data_rate": "0",
                            "relay_from": RELAY_ALL}).start()
    dr = _data_drippers(d, 3)
    end = time.monotonic() + 14
    i = 0
    while dr.socks and time.monotonic() < end:
        dr.tick(b"\r\n" if i % 5 == 4 else b"y")
        i += 1
        time.sleep(1)
    _assert_timed_out(dr, 3, 8)
    assert len(d.grep(r"event=timeout .*reason=data state=data")) == 3
    assert d.count(received_only=True) == 0, "a timed-out partial message was stored"


def test_drip_data_closed_below_min_data_rate():
    """min_data_rate = 200 bytes/s, judged after min(30s, command_deadline = 3s):
    a byte a second is closed with 421 4.4.2; a client sending 1 KB every half
    second for 6 s (well above the rate, longer than the grace) delivers."""
    d = mxtest.Daemon(conf={"min_data_rate": "200", "command_deadline": "3s",
                            "relay_from": RELAY_ALL}).start()
    dr = _data_drippers(d, 3)
    good = _into_data(d, "127.0.1.40")
    good.sock.setblocking(True)
    line = (b"X" * 510 + b"\r\n") * 2
    end = time.monotonic() + 6
    while time.monotonic() < end:
        good.send(line)
        dr.tick()
        time.sleep(0.5)
    dr.run(8, until_all_closed=True)
    _assert_timed_out(dr, 3, 10)
    assert len(d.grep(r"event=timeout .*reason=rate state=data")) == 3
    good.send(b".\r\n")
    qid = good.reply(timeout=10).qid()
    good.quit()
    assert d.message(qid)


def test_stress_timeout_closes_idle_sessions():
    """Above 80 % of max_connections (10), idle sessions are closed after
    stress_timeout (2s) instead of session_timeout (60s), until the load is back
    at 80 % or below (then the rest keep session_timeout)."""
    d = mxtest.Daemon(conf={"max_connections": "10", "stress_timeout": "2s",
                            "relay_from": RELAY_ALL}).start()
    idle = [d.connect(src=f"127.0.1.{60 + i}") for i in range(10)]
    t0 = time.monotonic()
    mxtest.wait_for(lambda: len(d.grep(r"event=timeout .*reason=idle .*stress=yes")) >= 2, 8,
                    what="idle sessions closed under stress")
    assert time.monotonic() - t0 >= 1.0, "closed before stress_timeout"
    time.sleep(1.5)
    gone = []
    for s in idle:
        try:
            r = s.reply(timeout=0.2)
        except AssertionError:
            continue  # still open, nothing said
        r.expect(421, "4.4.2")
        assert s.closed(2)
        gone.append(s)
    assert len(gone) >= 2, f"{len(gone)} of 10 idle sessions got 421 4.4.2 under stress"
    n = len(d.grep(r"event=timeout .*reason=idle .*stress=yes"))
    assert n == len(gone), f"{n} stress timeouts logged, {len(gone)} sessions closed"
    # back at 80 %: the rest are not closed for silence before session_timeout
    time.sleep(3)
    assert len(d.grep(r"event=timeout ")) == n, "idle sessions closed without stress"
    s = d.connect(src="127.0.1.80")
    qid = s.mail("ok@example.com", ["r@example.net"], mxtest.message())
    s.quit()
    assert d.message(qid)


def test_flood_from_many_addresses_leaves_room_for_a_newcomer():
    """500 drippers from 25 addresses (the default caps: 500, 20 per address), then
    a client from a 26th address: 220, and its message is accepted."""
    d = mxtest.Daemon(conf={"relay_from": RELAY_ALL, "stress_timeout": "60s"}).start()
    srcs = [f"127.0.1.{100 + i}" for i in range(25)]
    dr = Drippers(d.port(), srcs, per_source=20, prefix=b"EHLO drip")
    dr.tick()
    mxtest.wait_for(lambda: len(d.grep(r"event=connect ")) + len(d.grep(r"event=refused ")) >= 500,
                    15, what="500 connections accepted or refused")
    s = d.connect(src="127.0.2.99", banner=False)
    s.reply().expect(220)
    qid = s.mail("new@example.com", ["r@example.net"], mxtest.message())
    s.quit()
    assert d.message(qid)
    dr.tick()
    evicted = [ln for ln in d.grep(r"event=evicted ")]
    # the flood paid for the room, never with more than it holds
    assert evicted and all("ip=127.0.1." in ln for ln in evicted), evicted[:3]
    assert len(dr.socks) >= 400, f"only {len(dr.socks)} of 500 drippers left: evictions overshot"
    dr.close()


def test_flood_from_one_address_leaves_room_for_its_real_client():
    """100 drippers from one address (cap 20 per address), then that address's real
    client: 220 and its message is accepted; the oldest drippers got 421 4.7.0."""
    d = mxtest.Daemon(conf={"relay_from": RELAY_ALL,
                            "metrics_listen": f"127.0.0.1:{mxtest.free_port()}"}).start()
    dr = Drippers(d.port(), ["127.0.1.200"], per_source=100, prefix=b"EHLO drip")
    dr.tick()
    s = d.connect(src="127.0.1.200", banner=False)
    s.reply().expect(220)
    qid = s.mail("real@example.com", ["r@example.net"], mxtest.message())
    s.quit()
    assert d.message(qid)
    dr.tick()
    time.sleep(0.5)
    dr.tick()
    evicted = [c for c in dr.closed if any(ln.startswith("421 4.7.0 ") for ln in _replies(c[1]))]
    assert len(evicted) >= 80, f"only {len(evicted)} drippers evicted with 421 4.7.0"
    ev = d.grep(r"event=evicted .*ip=127\.0\.1\.200 cap=max_connections_per_ip")
    assert len(ev) >= 80 and metric(d, 'mxrelay_sessions_closed_total{reason="evicted"}') == len(ev)
    dr.close()


def test_per_address_cap_shrinks_near_the_global_cap():
    """max_connections 10, max_connections_per_ip 10: an address holding 8 may not
    grow once another address has come and the load is past 80 %: its 9th
    connection replaces its own oldest idle session (the cap is now
    10 - (10 - 10/3) * (9 - 8) / (10 - 8) = 6); the other address is untouched."""
    d = mxtest.Daemon(conf={"max_connections": "10", "max_connections_per_ip": "10",
                            "stress_timeout": "60s", "relay_from": RELAY_ALL}).start()
    a = [d.connect(src="127.0.2.40") for _ in range(8)]
    b = d.connect(src="127.0.2.41")
    b.ehlo()
    assert not d.grep(r"event=evicted ")
    a9 = d.connect(src="127.0.2.40")
    a9.ehlo()
    a[0].reply().expect(421, "4.7.0")
    assert a[0].closed(5)
    ev = d.grep(r"event=evicted ")
    assert len(ev) == 1 and "ip=127.0.2.40 cap=max_connections_per_ip" in ev[0], ev
    b.cmd("NOOP", 250)
    qid = b.mail("b@example.com", ["r@example.net"], mxtest.message())
    assert d.message(qid)
    b.quit()


def test_noop_drip_does_not_count_as_work():
    """Eviction order is the last command that moved a transaction on: a session
    sending NOOP/RSET all the time is older than one that just said EHLO."""
    d = mxtest.Daemon(conf={"max_connections_per_ip": "2", "relay_from": RELAY_ALL}).start()
    a = d.connect(src="127.0.2.30")
    a.ehlo()
    time.sleep(0.2)
    b = d.connect(src="127.0.2.30")
    b.ehlo()
    for verb in ("NOOP", "RSET", "NOOP"):
        time.sleep(0.2)
        a.cmd(verb, 250)
    c = d.connect(src="127.0.2.30")
    c.banner.expect(220)
    a.reply().expect(421, "4.7.0")
    assert a.closed(5)
    b.cmd("NOOP", 250)
    qid = c.mail("c@example.com", ["r@example.net"], mxtest.message())
    assert d.message(qid)
    b.quit()
    c.quit()


def test_busy_sessions_are_never_evicted():
    """At the per-address cap with both sessions in DATA (making progress, within
    the rate grace), a newcomer is refused with 421 4.7.0 instead."""
    d = mxtest.Daemon(conf={"max_connections_per_ip": "2", "relay_from": RELAY_ALL}).start()
    a = _into_data(d, "127.0.1.230")
    b = _into_data(d, "127.0.1.230")
    c = d.connect(src="127.0.1.230", banner=False)
    c.reply().expect(421, "4.7.0")
    assert c.closed(5)
    assert not d.grep(r"event=evicted ")
    for s in (a, b):
        s.sock.setblocking(True)
        s.send(b"body\r\n.\r\n")
        s.reply(timeout=10).expect(250)
        s.quit()


def test_drip_auth_line_closed_at_command_deadline():
    """An AUTH LOGIN answer dripped a byte a second after the 334: closed at
    command_deadline (3s) with 421 4.4.2, as any command line."""
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"),
                              [("alice", "alice-pw", "alice@example.com", False)])
    d = mxtest.Daemon(conf={"command_deadline": "3s", "credentials": creds},
                      listeners={"main": {"tls": "none", "auth_without_tls": "yes"}}).start()
    s = d.connect(src="127.0.2.20")
    s.ehlo()
    s.cmd("AUTH LOGIN", 334)
    s.sock.setblocking(False)
    dr = Drippers.__new__(Drippers)
    dr.socks = [[s.sock, "127.0.2.20", b""]]
    dr.closed = []
    dr.t0 = time.monotonic()
    dr.run(10, until_all_closed=True)
    _assert_timed_out(dr, 1, 6)
    assert d.grep(r"event=timeout .*reason=line state=auth")


def test_tls_handshake_bounded_by_command_deadline():
    """A ClientHello dripped a byte a second on an implicit-TLS port is dropped at
    command_deadline (2s), not at session_timeout (60s)."""
    d = mxtest.Daemon(conf={"command_deadline": "2s"},
                      listeners={"smtps": {"tls": "implicit"}}).start()
    raw = socket.create_connection(("127.0.0.1", d.port("smtps")), 5,
                                   source_address=("127.0.2.10", 0))
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32))
    t0 = time.monotonic()
    gone = False
    try:
        for b in hello:
            raw.sendall(bytes([b]))
            raw.settimeout(1)
            try:
                if raw.recv(100) == b"":
                    gone = True
                    break
            except socket.timeout:
                pass
    except OSError:
        gone = True
    took = time.monotonic() - t0
    raw.close()
    assert gone and took < 6, f"dripped handshake still open after {took:.1f}s"
    assert d.grep(r"event=tls_failed .*handshake timeout")


def test_config_ceilings_and_bad_values():
    """command_deadline has RFC 5321 4.5.3.2.7's 5 minutes as its ceiling, data_deadline
    may be raised up to 24h (large mail over slow links): `mxrelayd -n` refuses more, with
    FILE:LINE: KEY: reason; the defaults, the ceiling and a raised data_deadline pass."""
    cases = [
        ("command_deadline = 301s\n", "command_deadline", "at most 5m (RFC 5321 4.5.3.2.7)"),
        ("\ndata_deadline = 25h\n", "data_deadline", "at most 24h"),
        ("min_data_rate = fast\n", "min_data_rate", "\"fast\" is not a size"),
        ("stress_timeout = 0\n", "stress_timeout", "must be at least 1s"),
        ("command_deadline = 0\n", "command_deadline", "must be at least 1s"),
    ]
    tmp = mxtest.tmpdir()
    for text, key, reason in cases:
        path = mxtest.write_file(os.path.join(tmp, "bad.conf"), text)
        p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15, cwd=tmp)
        line = text.count("\n", 0, text.index(key)) + 1
        want = f"{path}:{line}: {key}: {reason}"
        assert p.returncode != 0 and want in p.stderr, f"{text.strip()!r}: {p.stderr.strip()!r}"
    ok = "command_deadline = 5m\ndata_deadline = 2h\nmin_data_rate = 0\nstress_timeout = 10s\n"
    path = mxtest.write_file(os.path.join(tmp, "ok.conf"), ok)
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15, cwd=tmp)
    assert p.returncode == 0, p.stderr


def test_proxy_listener_global_cap_evicts():
    """Behind a PROXY balancer the global cap makes room as on a plain listener: five idle
    sessions of one client hold every slot, a client from another address arrives through
    the balancer and gets 220 (one idle session is evicted), not 421 at accept."""
    from test_ha import relay, v2_header, LB
    d = relay("any", conf={"max_connections": "5", "max_connections_per_ip": "5"})
    held = []
    for _ in range(5):
        s = d.connect(src=LB, banner=False)
        s.send(v2_header("198.51.100.9"))
        s.reply().expect(220)
        held.append(s)
    s = d.connect(src=LB, banner=False)
    s.send(v2_header("198.51.100.50"))
    s.reply().expect(220)
    s.cmd("EHLO newcomer.example", 250)
    d.wait_log(r"event=evicted .*198\.51\.100\.9", 5)
    assert not d.grep(r"event=refused .*reason=max_connections"), d.grep(r"event=refused")


if __name__ == "__main__":
    mxtest.main()
