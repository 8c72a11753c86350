#!/usr/bin/python3
"""Delivery results on a full disk (issue 12): an outcome read from an MX is
never thrown away. A claim that cannot be written calls the attempt off
(nothing is sent); an apply that cannot be written is retried with backoff
while the message stays in flight (no new attempt, no duplicate). Real
faults: data_dir on a small tmpfs filled with a filler file, an aiosmtpd sink
as the MX, brought up only once the disk is full."""

import collections
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from test_durability import _fill  # noqa: E402

N = 6


def _tmpfs(size="8m"):
    tmp = mxtest.tmpdir()
    data = os.path.join(tmp, "data")
    os.mkdir(data)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", data],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"mount tmpfs failed (these tests run as root): {p.stderr.strip()}")
    mxtest.on_cleanup(lambda: subprocess.run(["umount", "-l", data], capture_output=True))
    return tmp, data


def _relay(tmp, data, mx_port):
    cls = mxpeers._make_relay_class()
    d = cls(tmp=tmp, data_dir=data, routes=[f"d.test 127.0.0.1:{mx_port}"], conf={
        "metrics_listen": f"127.0.0.1:{mxtest.free_port()}",
        "allow_private_mx": "yes", "retry_min": "2s", "retry_max": "2s",
        "domain_concurrency_start": "10", "smtp_connect_timeout": "3s",
        "smtp_data_timeout": "30s", "shutdown_timeout": "3s",
        # the failure paths under test: no intake floor and no reserve to absorb them
        "queue_minfree": "0", "spool_reserve": "0"})
    mxtest.on_cleanup(d.kill)   # runs before the umount (cleanups run newest first)
    return d.start()


def _unrecorded(d):
    with urllib.request.urlopen(f"http://{d.conf['metrics_listen']}/metrics", timeout=5) as r:
        text = r.read().decode()
    return int(re.search(r"^mxrelay_results_unrecorded (\d+)$", text, re.M).group(1))


def _submit(d, rcpts):
    s = d.connect()
    qids = [s.mail("sender@example.com", [r], mxtest.message(to=r, subject=f"results {r}"))
            for r in rcpts]
    s.quit()
    return qids


def _deliveries(sinks):
    return collections.Counter(r for m in sinks.messages("mx") for r in m.rcpts)


def _deferred_all(d, n):
    mxtest.wait_for(lambda: len({e["qid"] for e in mxpeers.events(d, "delivery", status="deferred")})
                    >= n, 20, what=f"{n} messages deferred with the MX down")


def _fill_disk(d, data):
    # a fresh WAL (the daemon's restart checkpointed and removed it): the next
    # commits must append to it, and there is no room left for that
    d.stop()
    d.start()
    _fill(os.path.join(data, "filler"))
    mxtest.note(f"# filled {data}: {os.statvfs(data).f_bavail} blocks free")


def _drain(d, sinks, data, rcpts):
    os.unlink(os.path.join(data, "filler"))
    mxtest.wait_for(lambda: d.count() == 0, 30, interval=0.3, what="the queue to drain")
    got = _deliveries(sinks)
    assert got == {r: 1 for r in rcpts}, f"deliveries per recipient after the drain: {dict(got)}"


def test_claim_fails_attempt_cancelled():
    """MX down, N queued, disk filled, MX up for 20 s: no claim can be written,
    so no attempt may send (on main: each message about 10 times); space back:
    each delivered once, the queue empties."""
    tmp, data = _tmpfs()
    port = mxtest.free_port()
    d = _relay(tmp, data, port)
    rcpts = [f"c{i}@d.test" for i in range(N)]
    _submit(d, rcpts)
    _deferred_all(d, N)
    _fill_disk(d, data)
    mark = d._log_size()
    sinks = mxpeers.Sinks({"mx": {"host": "127.0.0.1", "port": port}}).start()
    time.sleep(20)
    got = _deliveries(sinks)
    assert all(v <= 1 for v in got.values()), f"delivered more than once on a full disk: {dict(got)}"
    assert mxpeers.events(d, "claim_failed", since=mark), "no event=claim_failed while the disk was full"
    _drain(d, sinks, data, rcpts)


def test_apply_fails_retried_no_duplicate():
    """The disk fills while N deliveries wait for their 250 (the sink holds the
    DATA reply 4 s): every apply fails. The results are kept and retried
    (event=apply_retry); no attempt runs again (on main: a new attempt every
    retry_min, a duplicate each); space back: recorded, one delivery each."""
    tmp, data = _tmpfs()
    port = mxtest.free_port()
    d = _relay(tmp, data, port)
    rcpts = [f"stall-{i}@d.test" for i in range(N)]
    _submit(d, rcpts)
    _deferred_all(d, N)
    d.stop()
    d.start()
    sinks = mxpeers.Sinks({"mx": {"host": "127.0.0.1", "port": port,
                                  "stall": {"seconds": 4, "times": 1000}}}).start()
    mxtest.wait_for(lambda: len(sinks.events("stall", "mx")) >= N, 20, what=f"{N} DATA phases held")
    mark = d._log_size()
    _fill(os.path.join(data, "filler"))
    mxtest.note(f"# filled {data}: {os.statvfs(data).f_bavail} blocks free")
    mxtest.wait_for(lambda: len(sinks.messages("mx")) >= N, 15, what=f"{N} messages at the sink")
    time.sleep(16)  # on main: 2 s retry + 4 s stall, so about 2 more copies each
    got = _deliveries(sinks)
    assert got == {r: 1 for r in rcpts}, f"deliveries per recipient on a full disk: {dict(got)}"
    retries = mxpeers.events(d, "apply_retry", since=mark)
    assert len({e["qid"] for e in retries}) >= N, \
        f"expected an apply_retry for each of the {N} messages, got {len(retries)} lines"
    waits = {e["retry_ms"] for e in retries}
    assert {"1000", "2000"} <= waits, f"no backoff (1 s, then 2 s) in apply_retry: {waits}"
    assert _unrecorded(d) == N, f"mxrelay_results_unrecorded {_unrecorded(d)}, want {N}"
    _drain(d, sinks, data, rcpts)
    assert _unrecorded(d) == 0
    assert len(sinks.events("stall", "mx")) == N, "an attempt ran again after its 250"
    d.stop()
    assert not d.grep(r"event=result_unrecorded"), "results left unrecorded at a clean stop"


def test_unrecorded_results_logged_at_stop():
    """A stop while results cannot be recorded: the daemon waits up to
    shutdown_timeout for them, then names each one (event=result_unrecorded,
    the only way to a duplicate); at the next start they are tried again."""
    tmp, data = _tmpfs()
    port = mxtest.free_port()
    d = _relay(tmp, data, port)
    rcpts = [f"stall-u{i}@d.test" for i in range(2)]
    qids = _submit(d, rcpts)
    _deferred_all(d, 2)
    d.stop()
    d.start()
    sinks = mxpeers.Sinks({"mx": {"host": "127.0.0.1", "port": port,
                                  "stall": {"seconds": 3, "times": 2}}}).start()
    mxtest.wait_for(lambda: len(sinks.events("stall", "mx")) >= 2, 20, what="2 DATA phases held")
    _fill(os.path.join(data, "filler"))
    mxpeers.wait_event(d, "apply_retry", n=2, timeout=15)
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 3 + 6, "stop did not end at shutdown_timeout"
    lines = mxpeers.events(d, "result_unrecorded")
    assert sorted((e["qid"], e["to"], e["status"]) for e in lines) == \
        sorted((q, f"<{r}>", "sent") for q, r in zip(qids, rcpts)), [e["_line"] for e in lines]
    os.unlink(os.path.join(data, "filler"))
    d.start()
    mxtest.wait_for(lambda: d.count() == 0, 30, interval=0.3, what="the queue to drain")
    assert _deliveries(sinks) == {r: 2 for r in rcpts}, "tried again after the restart"


if __name__ == "__main__":
    mxtest.main()
