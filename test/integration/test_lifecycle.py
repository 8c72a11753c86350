#!/usr/bin/python3
"""Connection lifetimes (mta/event.h's evref): a client that leaves while the
daemon still works for it (the spool commit of its message, a password check
or its failure delay, a control request, a local submission, a PROXY header
half sent). The work still completes (messages are stored, failures count),
the connection is freed exactly once after it (one disconnect line, per-address
slots given back) and the drain at SIGTERM finds nothing left: the daemon
exits at once instead of waiting for shutdown_timeout. Under ASan a free too
early or twice aborts the daemon, which the harness reports."""

import json
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

ROUNDS = 20
SHUTDOWN = 20   # shutdown_timeout: an exit this late means something was never freed
FAST = 3.0      # seconds: a drain with nothing left in flight exits well within this


def _read_all(sock, timeout=10):
    """Everything the server sends until it closes."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        out += chunk
    return out


def _exits_fast(d):
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(SHUTDOWN + 5)
    took = time.monotonic() - t0
    mxtest.note(f"# exited {took:.2f}s after SIGTERM")
    assert rc == 0, f"exit status after SIGTERM: {rc}"
    assert took < FAST, f"drain took {took:.1f}s: a connection was never freed"


def test_client_leaves_during_spool_commit():
    """The whole message, then EOF at once: the session is closed while its
    message is in the spool writer's hands. Stored anyway, freed after."""
    d = mxtest.Daemon(conf={"shutdown_timeout": f"{SHUTDOWN}s", "max_connections_per_ip": "2",
                            "relay_from": "127.0.0.7/32"}).start()
    unanswered = 0
    for i in range(ROUNDS):
        s = d.connect(src="127.0.0.7")
        s.ehlo()
        s.cmd("MAIL FROM:<leaver@example.com>", 250)
        s.cmd("RCPT TO:<r@example.net>", 250)
        s.cmd("DATA", 354)
        msg = mxtest.message(subject=f"left {i}")
        s.send(mxtest.dot_stuff(msg.encode() if isinstance(msg, str) else msg) + b".\r\n")
        s.sock.shutdown(socket.SHUT_WR)
        got = _read_all(s.sock)
        mxtest.note(f"# round {i}: {got!r}")
        if not got.startswith(b"250 "):
            unanswered += 1
        s.close()
    print(f"#   {unanswered} of {ROUNDS} sessions were closed before their 250")
    assert unanswered > 0, "no round closed the session during the commit: the test proves nothing"
    mxtest.wait_for(lambda: d.count(received_only=True) == ROUNDS, 10,
                    what=f"{ROUNDS} messages stored")
    accepted = {m.group(1) for ln in d.grep(r"event=accepted ip=127\.0\.0\.7 ")
                for m in [re.match(r".*\bs=(\w+) ", ln)] if m}
    assert len(accepted) == ROUNDS, f"accepted lines for {len(accepted)} sessions"
    for sid in accepted:
        lines = d.grep(rf"s={sid} ")
        gone = [k for k, ln in enumerate(lines) if "event=disconnect" in ln]
        assert len(gone) == 1, f"session {sid}: {len(gone)} disconnect lines"
        assert "event=accepted" in "".join(lines[:gone[0]]), \
            f"session {sid} was freed before its commit was answered"
    # every per-address slot came back (the cap is 2)
    for _ in range(2):
        s = d.connect(src="127.0.0.7")
        s.quit()
    _exits_fast(d)


def test_client_leaves_during_password_check_and_delay():
    """AUTH with a wrong password, then EOF: during the check on the worker,
    or during the failure delay after it. The failures still count (the
    address is blocked at once), and each check ends (once auth_block_time
    has passed the address may log in again: a check left "in flight"
    would keep it blocked for ever)."""
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"), [("alice", "alice-pw", "*", False)])
    d = mxtest.Daemon(tmp=tmp, conf={"credentials": creds, "auth_max_failures": "4",
                                     "auth_block_time": "3s", "shutdown_timeout": f"{SHUTDOWN}s"},
                      listeners={"main": {"tls": "none", "auth_without_tls": "yes"}}).start()
    for wait in (0, 0, 0.3, 0.3):   # at once: the check runs; 0.3 s: the delay runs
        s = d.connect(src="127.0.0.8")
        s.ehlo()
        tok = "AGFsaWNlAHdyb25n"   # \0alice\0wrong
        s.send(f"AUTH PLAIN {tok}\r\n")
        time.sleep(wait)
        s.sock.shutdown(socket.SHUT_WR)
        got = _read_all(s.sock)
        mxtest.note(f"# left after {wait}s: {got!r}")
        s.close()
    mxtest.wait_for(lambda: len(d.grep(r"event=disconnect ip=127\.0\.0\.8 ")) == 4, 10,
                    what="4 disconnect lines")
    s = d.connect(src="127.0.0.8")
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(454, "4.7.0")
    s.quit()
    time.sleep(3.5)
    # the failures aged out; had a check stayed in flight, these 3 more would block
    s = d.connect(src="127.0.0.8")
    s.ehlo()
    for _ in range(3):
        s.auth_plain("alice", "wrong").expect(535, "5.7.8")
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.quit()
    _exits_fast(d)


def _ctl(path, request, leave):
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(path)
        c.sendall(request)
        if leave:
            c.shutdown(socket.SHUT_WR)
        out = _read_all(c)
    mxtest.note(f"# {request[:40]!r} -> {out!r}")
    return out


def test_control_and_submit_clients_leave_while_waiting():
    """Requests answered by a worker or the writer, the client done sending
    (EOF) before the answer: input is paused while the work runs, so the
    answer is still written; each connection is freed once after it, and
    submitted messages are stored."""
    d = mxtest.Daemon(conf={"shutdown_timeout": f"{SHUTDOWN}s"}).start()
    ctl = os.path.join(d.data_dir, "control.sock")
    sub = os.path.join(d.data_dir, "submit.sock")
    body = b"From: <local@example.com>\r\nSubject: left\r\n\r\nbody\r\n"
    for i in range(ROUNDS):
        assert "error" not in json.loads(_ctl(ctl, b"SUMMARY\n", leave=True))
        out = _ctl(sub, b"SUBMIT\nFROM <local@example.com>\nTO <r@example.net>\nDATA %d\n"
                   % len(body) + body, leave=True)
        assert "queued" in json.loads(out), out
    mxtest.wait_for(lambda: d.count(received_only=True) == ROUNDS, 10,
                    what=f"{ROUNDS} submitted messages stored")
    r = json.loads(_ctl(ctl, b"SUMMARY\n", leave=False))
    assert "error" not in r, r
    _exits_fast(d)


def test_proxy_balancer_leaves_mid_header():
    """Half a PROXY header, then EOF: the balancer's slot comes back each time
    (cap 1), and a whole header still starts a session."""
    lb = "127.0.0.5"
    d = mxtest.Daemon(conf={"max_connections_per_ip": "1", "shutdown_timeout": f"{SHUTDOWN}s"},
                      listeners={"main": {"tls": "none", "proxy_protocol": "v1",
                                          "proxy_from": lb + "/32"}}).start()
    for _ in range(5):
        s = d.connect(src=lb, banner=False)
        s.send(b"PROXY TCP4 198.51.100.")
        s.sock.shutdown(socket.SHUT_WR)
        assert s.closed(5)
        s.close()
    mxtest.wait_for(lambda: len(d.grep(r"event=proxy_failed lb=127\.0\.0\.5 ")) == 5, 5,
                    what="5 proxy_failed lines")
    s = d.connect(src=lb, banner=False)
    s.send(b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 25\r\n")
    s.reply().expect(220)
    s.quit()
    _exits_fast(d)


if __name__ == "__main__":
    mxtest.main()
