#!/usr/bin/python3
"""bench-slow-clients.py: slow and flooding clients against one mxrelayd with the
default limits (issue 12, plan 1e). A long run on demand, never ctest.

  A  500 drippers (connect, then 1 byte every 3 s, never a CRLF) from 25 addresses
     127.0.1.10-34 for 45 s; a newcomer from 127.0.2.99 at 2 s and at 40 s sends a
     message. Reports the timeouts by reason and when they came, evictions, and
     what the newcomer got.
  B  1,000 connections from 127.0.1.200, then that address's real client.
  C  20 sessions past the 354 dripping 1 byte every 3 s (min_data_rate 1K after
     its 30 s grace): when they are closed.

Usage (root, from the checkout, after a build): test/bench/bench-slow-clients.py [A B C]
MXRELAYD=path overrides build/mta/mxrelayd. Traffic stays on 127/8.
"""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import mxtest  # noqa: E402
from test_slow_clients import Drippers, _into_data  # noqa: E402

RELAY = {"relay_from": "127.0.0.0/8"}


def newcomer(d, src):
    t0 = time.monotonic()
    try:
        s = mxtest.Smtp(d.port(), src=src, banner=False)
        r = s.reply()
        if r.code != 220:
            return f"{r.code} {r.enh} after {time.monotonic() - t0:.2f}s"
        qid = s.mail("new@example.com", ["r@example.net"], mxtest.message())
        s.quit()
        return f"220, queued as {qid} in {time.monotonic() - t0:.2f}s"
    except (AssertionError, OSError) as e:
        return f"failed: {e}"


def reasons(d):
    out = {}
    for ln in d.grep(r"event=timeout "):
        m = re.search(r"reason=(\w+)", ln)
        out[m.group(1)] = out.get(m.group(1), 0) + 1
    return out


def bench_a():
    d = mxtest.Daemon(conf=RELAY).start()
    t0 = time.monotonic()
    dr = Drippers(d.port(), [f"127.0.1.{10 + i}" for i in range(25)], per_source=20)
    print(f"A: 500 drippers connected in {time.monotonic() - t0:.2f}s")
    dr.tick()
    time.sleep(2)
    print("A: newcomer at 2 s:", newcomer(d, "127.0.2.99"))
    while time.monotonic() - t0 < 40:
        dr.tick()
        time.sleep(3)
    print("A: newcomer at 40 s:", newcomer(d, "127.0.2.98"))
    times = sorted(c[2] for c in dr.closed)
    print(f"A: closed {len(dr.closed)} of 500 (first {times[0]:.1f}s, last {times[-1]:.1f}s)"
          if times else "A: none closed")
    print(f"A: timeouts by reason {reasons(d)}, evicted {len(d.grep(r'event=evicted '))}, "
          f"refused {len(d.grep(r'event=refused '))}")
    for ln in (d.grep(r"event=timeout ")[:2] + d.grep(r"event=evicted ")[:2]):
        print("A:   " + ln)
    dr.close()
    d.stop()


def bench_b():
    d = mxtest.Daemon(conf=RELAY).start()
    t0 = time.monotonic()
    socks = []
    for _ in range(1000):
        socks.append(socket.create_connection(("127.0.0.1", d.port()), 10,
                                              source_address=("127.0.1.200", 0)))
    print(f"B: 1000 connections from 127.0.1.200 in {time.monotonic() - t0:.2f}s")
    print("B: its real client:", newcomer(d, "127.0.1.200"))
    print(f"B: evicted {len(d.grep(r'event=evicted '))}, refused {len(d.grep(r'event=refused '))}")
    for s in socks:
        s.close()
    d.stop()


def bench_c():
    d = mxtest.Daemon(conf=RELAY).start()
    sessions = [_into_data(d, f"127.0.1.{50 + i}") for i in range(20)]
    dr = Drippers.__new__(Drippers)
    dr.socks = [[s.sock, "x", b""] for s in sessions]
    dr.closed = []
    dr.t0 = time.monotonic()
    dr.run(45, every=3, until_all_closed=True)
    times = sorted(c[2] for c in dr.closed)
    print(f"C: {len(dr.closed)} of 20 DATA drippers closed, first {times[0]:.1f}s, "
          f"last {times[-1]:.1f}s; timeouts {reasons(d)}" if times else "C: none closed")
    dr.close()
    d.stop()


if __name__ == "__main__":
    which = sys.argv[1:] or ["A", "B", "C"]
    try:
        for w in which:
            {"A": bench_a, "B": bench_b, "C": bench_c}[w]()
    finally:
        mxtest._kill_all()
