#!/usr/bin/python3
"""Delivery-side review findings, each a regression test against real peers
(nsd + aiosmtpd sinks from mxpeers, or a raw asyncio-free socket peer here).

Covered: a pipelined transaction whose every RCPT was refused leaves the
server with an open MAIL transaction: the relay must RSET before reusing the
connection, or the next message reads 503 "nested MAIL" and is bounced.
A malformed line from an idle (parked) connection closes just that
connection: it must not be taken for a failed connection attempt (which
frees it while it is still on the idle list). A server that replies before
the whole body was sent: the reply is a protocol error (deferred, issue 8),
and the relay must not keep the connection (its output still references the
message body, which is freed once the outcome is recorded).
No connection can be opened (source address cannot be bound) while another
connection of the same destination is busy: the queued groups are deferred,
not retried in an endless synchronous loop (stack overflow)."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, submit, events, wait_event, wait_gone  # noqa: E402


class RawMx:
    """A scripted SMTP server on NET.200:<free port>, one thread per connection.

    script(conn, n): conn is a socket, n the connection number (0, 1, ...)."""

    def __init__(self, script):
        self.host = mxpeers.ip(200)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.script = script
        self.n = 0
        self.log = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()
        mxtest.on_cleanup(self.close)

    def route(self, domain):
        return f"{domain} {self.host}:{self.port}"

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            n, self.n = self.n, self.n + 1
            threading.Thread(target=self._run, args=(c, n), daemon=True).start()

    def _run(self, c, n):
        try:
            c.settimeout(30)
            self.script(c, n)
        except OSError:
            pass
        finally:
            c.close()


def read_line(c, buf):
    """One CRLF line from c (buf: bytearray of octets already read)."""
    while b"\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            raise OSError("closed")
        buf += d
    i = buf.index(b"\r\n")
    line = bytes(buf[:i])
    del buf[:i + 2]
    return line


def serve_envelope(c, buf, log, greet=True):
    """EHLO (no extensions but 8BITMIME), MAIL, RCPT..., DATA -> 354."""
    if greet:
        c.sendall(b"220 raw.test ESMTP\r\n")
    while True:
        line = read_line(c, buf)
        log.append(line)
        verb = line[:4].upper()
        if verb == b"EHLO":
            c.sendall(b"250-raw.test\r\n250 8BITMIME\r\n")
        elif verb == b"DATA":
            c.sendall(b"354 go ahead\r\n")
            return
        elif verb == b"QUIT":
            c.sendall(b"221 bye\r\n")
            raise OSError("quit")
        else:
            c.sendall(b"250 ok\r\n")


def read_data(c, buf):
    while b"\r\n.\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            raise OSError("closed")
        buf += d
    del buf[:buf.index(b"\r\n.\r\n") + 5]


def test_garbage_on_idle_connection():
    garbage_sent = threading.Event()

    def script(c, n):
        buf = bytearray()
        serve_envelope(c, buf, peer.log)
        read_data(c, buf)
        c.sendall(b"250 2.0.0 ok\r\n")
        if n == 0:
            time.sleep(0.3)     # the relay has parked the connection
            c.sendall(b"this is not an SMTP reply\r\n")
            garbage_sent.set()
            while c.recv(65536):
                pass
            return
        while True:             # later transactions on this connection
            serve_envelope(c, buf, peer.log, greet=False)
            read_data(c, buf)
            c.sendall(b"250 2.0.0 ok\r\n")

    peer = RawMx(script)
    sinks = mxpeers.Sinks({}).start()
    d = mxpeers.relay(sinks, routes=[peer.route("raw.example")])
    q1 = submit(d, ["one@raw.example"], subject="first")
    wait_event(d, "delivery", qid=q1, status="sent")
    assert garbage_sent.wait(10)
    time.sleep(0.5)
    q2 = submit(d, ["two@raw.example"], subject="second")
    ev = wait_event(d, "delivery", qid=q2)[0]
    assert ev["status"] == "sent", ev["_line"]
    q3 = submit(d, ["three@raw.example"], subject="third")
    ev = wait_event(d, "delivery", qid=q3)[0]
    assert ev["status"] == "sent", ev["_line"]
    wait_gone(d, q3)


def test_reply_before_end_of_data():
    def script(c, n):
        buf = bytearray()
        serve_envelope(c, buf, peer.log)
        if n == 0:
            # a broken server: answers at once, reads the body only later
            c.sendall(b"250 2.0.0 ok (early)\r\n")
            time.sleep(3)
        read_data(c, buf)
        if n == 0:
            return
        c.sendall(b"250 2.0.0 ok\r\n")
        while True:             # later transactions on this connection
            serve_envelope(c, buf, peer.log, greet=False)
            read_data(c, buf)
            c.sendall(b"250 2.0.0 ok\r\n")

    peer = RawMx(script)
    sinks = mxpeers.Sinks({}).start()
    d = mxpeers.relay(sinks, routes=[peer.route("raw.example")])
    big = mxtest.message(mxpeers.SENDER, "big@raw.example", "big",
                         ("B" * 998 + "\r\n") * 8000)   # 8 MB: more than the socket buffers
    q1 = submit(d, ["big@raw.example"], big)
    # a reply before the body was sent is not the message's outcome (issue 8): deferred
    ev = wait_event(d, "delivery", qid=q1)[0]
    assert ev["status"] == "deferred" and "protocol error" in ev["reply"], ev["_line"]
    # the retry (connection 1) is answered properly after the dot
    ev = wait_event(d, "delivery", qid=q1, status="sent", timeout=30)[0]
    wait_gone(d, q1)    # the outcome is recorded and the job (with its body) freed
    time.sleep(4)       # the first peer reads what is left in the relay's output
    q2 = submit(d, ["next@raw.example"], subject="after the early reply")
    ev = wait_event(d, "delivery", qid=q2)[0]
    assert ev["status"] == "sent", ev["_line"]


def test_cannot_open_connection_while_another_is_busy():
    release = threading.Event()

    def script(c, n):
        buf = bytearray()
        greet = True
        while True:
            serve_envelope(c, buf, peer.log, greet=greet)
            greet = False
            read_data(c, buf)
            release.wait(20)    # the first transaction stays busy meanwhile
            c.sendall(b"250 2.0.0 ok\r\n")

    peer = RawMx(script)
    sinks = mxpeers.Sinks({}).start()
    d = mxpeers.relay(sinks, routes=[peer.route("raw.example")])
    q1 = submit(d, ["busy@raw.example"], subject="held at the end of data")
    mxpeers.d_wait(lambda: peer.n >= 1 and any(l.startswith(b"DATA") for l in peer.log), 10,
                   "the first transaction in DATA")
    # 192.0.2.1 (TEST-NET-1) is not an address of this host: bind() fails at once
    d.configure({"source_ipv4": "192.0.2.1"})
    mark = d._log_size()
    d.hup()
    d.wait_log("event=reloaded", since=mark)
    q2 = submit(d, ["second@raw.example"], subject="no connection possible")
    ev = wait_event(d, "delivery", qid=q2)[0]
    assert ev["status"] == "deferred" and "4.4.0" in ev["dsn"], ev["_line"]
    assert d.alive()
    release.set()
    wait_event(d, "delivery", qid=q1, status="sent")


def test_rset_after_pipelined_transaction_with_no_valid_rcpt():
    sinks = mxpeers.Sinks({"mx.sink": {"add": ["PIPELINING"]}}).start()
    d = mxpeers.relay(sinks)
    q1 = submit(d, [f"perm-nobody@sink.{ZONE}"], subject="all refused")
    wait_event(d, "delivery", qid=q1, status="bounced")
    # the idle connection (kept 5 s) takes the next message
    q2 = submit(d, [f"good@sink.{ZONE}"], subject="next on the same connection")
    ev = wait_event(d, "delivery", qid=q2)[0]
    assert ev["status"] == "sent", f"the next message on the reused connection: {ev['_line']}"
    assert sinks.connections("mx.sink") == 1, "the connection was not reused: test proves nothing"
    wait_gone(d, q2)


def test_idle_destination_is_released_and_recreated():
    """Per-destination state must not grow with every domain ever mailed: an unused one is
    freed after dest_idle_time, and mail to it afterwards still goes out."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, {"dest_idle_time": "1s"})
    q1 = submit(d, [f"good@sink.{ZONE}"], subject="first")
    assert wait_event(d, "delivery", qid=q1)[0]["status"] == "sent"
    # the idle connection closes after 5 s, then the sweep (every second here) frees it
    d.wait_log(rf"event=dest_released domain=sink\.{ZONE}", timeout=15)
    q2 = submit(d, [f"again@sink.{ZONE}"], subject="after release")
    assert wait_event(d, "delivery", qid=q2)[0]["status"] == "sent"
    wait_gone(d, q2)


if __name__ == "__main__":
    mxtest.main()
