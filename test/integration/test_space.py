#!/usr/bin/python3
"""Disk space as a managed resource, on real small file systems (root).

- an 8 MB tmpfs data_dir filled by SMTP with the MX down until 452 4.3.1:
  every acknowledged message is delivered once the MX (aiosmtpd) is up, the
  queue drains, and intake is back by itself (no admin action);
- a full 1 KB-block ext4 (loop device), SIGTERM, restart: never SIGBUS; with
  a reserve it starts, without one it exits 1 with a clear line;
- queue_minfree: 452 4.3.1 to SMTP and mxrelay-sendmail while free space is
  under it, 250 again once space returns; mxrelayd -n refuses a floor below
  2 x max_message_size.
"""

import collections
import errno
import os
import pwd
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

SENDMAIL = os.environ.get("MXRELAY_SENDMAIL") or os.path.join(mxtest.SRC, "build", "tools",
                                                               "mxrelay-sendmail")


def _mount(args, what):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"{what} failed: {p.stderr.strip()}")
    mnt = args[-1]
    mxtest.on_cleanup(lambda: subprocess.run(["umount", "-l", mnt], capture_output=True))


def _tmpfs(tmp, size):
    data = os.path.join(tmp, "data")
    os.mkdir(data)
    _mount(["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", data], "mount tmpfs")
    return data


def _ext4_1k(tmp, size_mb):
    """A loop-mounted ext4 with 1 KB blocks and no root reserve (the SIGBUS case)."""
    img = os.path.join(tmp, "fs.img")
    data = os.path.join(tmp, "data")
    os.mkdir(data)
    with open(img, "wb") as f:
        f.truncate(size_mb << 20)
    p = subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "1024", "-m", "0", img],
                       capture_output=True, text=True)
    assert p.returncode == 0, f"mkfs.ext4: {p.stderr}"
    _mount(["mount", "-o", "loop", img, data], "mount -o loop")
    os.chmod(data, 0o1777)
    return data


def _fill(path, keep=0):
    """Write zeros to path until the file system is full (or keep bytes are left)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 64 * 1024, 4096, 1024, 1):
            chunk = b"\0" * size
            try:
                while _free(os.path.dirname(path)) - size >= keep:
                    os.write(fd, chunk)
                    os.fsync(fd)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)


def _free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Sink:
    """aiosmtpd on 127.0.0.1:port counting deliveries by the relay's queue id
    (the `id QID` of the Received field the relay added at intake)."""

    def __init__(self, port, refuse=None):
        from aiosmtpd.controller import Controller
        self.count = collections.Counter()
        self.refused = collections.Counter()
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, options):
                if refuse and address.startswith(refuse):
                    with sink.lock:
                        sink.refused[address] += 1
                    return "550 5.1.1 no such user here"
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 Ok"

            async def handle_DATA(self, server, session, envelope):
                m = re.search(rb"\(mxrelay\) with \S+ id ([0-9A-Fa-f]{16})", envelope.content)
                with sink.lock:
                    sink.count[m.group(1).decode() if m else "?"] += 1
                return "250 2.0.0 Ok"

        self.ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.ctl.start()
        mxtest.on_cleanup(self.stop)

    def stop(self):
        if self.ctl:
            self.ctl.stop()
            self.ctl = None

    def snapshot(self):
        with self.lock:
            return dict(self.count)


def _submit(s, n, body):
    """One message on an open session: ('250', qid) or (code, enh)."""
    r = s.cmd("MAIL FROM:<fill@example.com>")
    if r.code != 250:  # intake paused: refused before the data is sent
        return str(r.code), r.enh
    s.cmd(f"RCPT TO:<r{n}@d.test>", 250)
    r = s.data(body)
    if r.code == 250:
        return "250", r.qid()
    return str(r.code), r.enh


def _drained_and_back(d, sink, acked, body, since):
    """Every acknowledged message reached the sink, none more than twice, and intake
    is back by itself after the drain: nobody touched the daemon or the file system
    (the writer sees the space within a quarter second of its last write)."""
    got = sink.snapshot()
    missing = [q for q in acked if q not in got]
    assert not missing, f"{len(missing)} acknowledged messages never delivered: {missing[:5]}"
    dups = collections.Counter(got[q] for q in acked)
    mxtest.note(f"# deliveries per message: {dict(dups)}")
    assert max(dups) <= 2, f"a message was delivered more than twice: {dups}"
    d.wait_log(r"event=intake_resumed", 5, since=since)
    s = d.connect()
    s.ehlo()
    code, v = _submit(s, 99999, body)
    s.quit()
    assert code == "250", f"intake did not come back after the drain: {code} {v}"
    for ln in d.grep(r"event=(intake_|spool_reserve)"):
        mxtest.note("# " + ln)


def _conf(sink_port, **extra):
    c = {
        "route": f"d.test 127.0.0.1:{sink_port}",
        "allow_private_mx": "yes",
        "retry_min": "1s",
        "retry_max": "2s",
        "smtp_connect_timeout": "2s",
        "max_message_size": "256K",
    }
    c.update(extra)
    return c


def test_full_tmpfs_mx_down_then_up():
    tmp = mxtest.tmpdir()
    data = _tmpfs(tmp, "8m")
    sink_port = mxtest.free_port()
    d = mxtest.Daemon(tmp=tmp, data_dir=data,
                      conf=_conf(sink_port, queue_minfree="1M", spool_reserve="1M"))
    mxtest.on_cleanup(d.kill)  # before the umount (cleanups run newest first)
    d.start()
    reserve = os.path.join(data, "spool.reserve")
    st = os.stat(reserve)
    assert st.st_blocks * 512 >= 1 << 20 and st.st_mode & 0o777 == 0o600, \
        f"spool.reserve not preallocated 0600: {st}"
    assert st.st_uid == pwd.getpwnam(d.conf["user"]).pw_uid, "spool.reserve not the daemon's"
    body = mxtest.message("fill@example.com", "r@d.test", "fill", ("x" * 76 + "\r\n") * 400)
    acked, refused, in_a_row = [], None, 0
    s = d.connect()
    s.ehlo()
    # fill until the refusal stands: the writer's figure may be up to 250 ms old, so a 452
    # can come early and lift at the next statvfs; three in a row, 0.4 s apart, is full
    for n in range(3000):
        code, v = _submit(s, n, body)
        if code == "250":
            acked.append(v)
            in_a_row = 0
            continue
        refused, in_a_row = (code, v), in_a_row + 1
        if in_a_row == 3 or refused != ("452", "4.3.1"):
            break
        time.sleep(0.4)
    s.quit()
    full_mark = d._log_size()
    mxtest.note(f"# {len(acked)} acknowledged, then {refused}; {_free(data)} bytes free")
    assert refused == ("452", "4.3.1"), f"expected 452 4.3.1 when full, got {refused}"
    assert len(acked) >= 50, f"only {len(acked)} messages fit"
    d.wait_log(r"event=intake_paused reason=queue_minfree", 5)
    assert not d.grep(r"insert: commit: database or disk is full"), \
        "the floor did not stop intake before the file system was full"
    for ln in d.grep(r"event=(intake_|spool_reserve)"):
        mxtest.note("# " + ln)
    # the MX comes up: every 250 must reach it, the queue must drain
    sink = Sink(sink_port)
    mxtest.wait_for(lambda: d.count() == 0, 50, 0.2, "the queue to drain")
    assert not d.grep(r"apply: commit: database or disk is full"), "a result failed to commit"
    _drained_and_back(d, sink, acked, body, full_mark)
    d.stop()


def test_reserve_results_commit():
    """No floor: the disk really fills with queued mail (MX down) until SQLite
    says full; the deferral results that follow need the WAL to grow: they
    get the reserve and commit, and nothing is sent more than twice."""
    tmp = mxtest.tmpdir()
    data = _tmpfs(tmp, "8m")
    sink_port = mxtest.free_port()
    d = mxtest.Daemon(tmp=tmp, data_dir=data,
                      conf=_conf(sink_port, queue_minfree="0", spool_reserve="1M"))
    mxtest.on_cleanup(d.kill)
    d.start()
    body = mxtest.message("fill@example.com", "r@d.test", "fill", ("z" * 76 + "\r\n") * 400)
    acked, refused = [], None
    s = d.connect()
    s.ehlo()
    for n in range(3000):
        code, v = _submit(s, n, body)
        if code != "250":
            refused = (code, v)
            break
        acked.append(v)
    s.quit()
    full_mark = d._log_size()
    mxtest.note(f"# {len(acked)} acknowledged, then {refused}; {_free(data)} bytes free")
    assert refused == ("452", "4.3.1"), refused
    # retries every 1-2 s with the MX down: their results need room the disk no longer has
    d.wait_log(r"event=spool_reserve state=used bytes=1048576", 15)
    # the first result that found the disk full was absorbed by the reserve: no result or
    # claim failed before it was used. With no floor (queue_minfree = 0) the reserve is one
    # cushion, not a guarantee: later deferrals may fill it again, and those are kept and
    # retried (event=apply_retry), never thrown away and sent again (checked below)
    lines = d.grep(r"apply: commit|claim: commit|event=spool_reserve state=used")
    assert lines and "event=spool_reserve state=used" in lines[0], \
        "a result or claim failed before the reserve was used: " + "; ".join(lines[:3])
    mxtest.note(f"# result or claim failures after the reserve: {len(lines) - 1}")
    sink = Sink(sink_port)
    mxtest.wait_for(lambda: d.count() == 0, 50, 0.2, "the queue to drain")
    _drained_and_back(d, sink, acked, body, full_mark)
    d.stop()


def test_spool_max_size_holds_intake_only():
    """spool_max_size refuses new mail (452 4.3.1) but never a result: it used
    to be SQLite's max_page_count, which also refused the DSN a 550 makes, so
    the result of every attempt was lost and the attempt made again."""
    tmp = mxtest.tmpdir()
    sink_port = mxtest.free_port()
    d = mxtest.Daemon(tmp=tmp, conf=_conf(sink_port, spool_max_size="600K"))
    d.start()
    body = mxtest.message("cap@example.com", "r@d.test", "cap", ("c" * 76 + "\r\n") * 200)
    acked, refused = [], None
    s = d.connect()
    s.ehlo()
    for n in range(500):
        s.cmd("MAIL FROM:<cap@example.com>", 250)
        s.cmd(f"RCPT TO:<bad{n}@d.test>", 250)
        r = s.data(body)
        if r.code != 250:
            refused = (str(r.code), r.enh)
            break
        acked.append(r.qid())
    s.quit()
    mxtest.note(f"# {len(acked)} acknowledged under spool_max_size, then {refused}")
    assert refused == ("452", "4.3.1"), refused
    assert len(acked) >= 10
    d.wait_log(r"event=intake_paused reason=spool_max_size", 5)
    # the MX refuses every recipient with 550: each refusal adds a DSN past the cap
    sink = Sink(sink_port, refuse="bad")
    mxtest.wait_for(lambda: d.count(received_only=True) == 0, 40, 0.2, "the queue to drain")
    bad = d.grep(r"apply: commit|claim: commit|event=spool_error(?!.*spool: insert)")
    assert not bad, "a result failed at spool_max_size: " + bad[0]
    got, tries = sink.snapshot(), dict(sink.refused)
    mxtest.note(f"# 550 RCPTs per address: {dict(collections.Counter(tries.values()))}")
    assert len(tries) == len(acked) and max(tries.values()) <= 2, tries
    assert not got, "a refused recipient's message reached the sink"
    # under the cap again: intake comes back by itself, although new mail is refused at
    # MAIL FROM while paused (no insert batch reaches the writer to lift the pause)
    d.wait_log(r"event=intake_resumed reason=spool_max_size", 5)
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<cap@example.com>", 250)
    s.quit()
    d.stop()


def test_full_ext4_1k_restart():
    """SIGBUS at start on a full 1 KB-block ext4 (SQLite's -shm mmap with holes)."""
    tmp = mxtest.tmpdir()
    data = _ext4_1k(tmp, 8)
    sink_port = mxtest.free_port()
    conf = _conf(sink_port, queue_minfree="1M", spool_reserve="512K")
    d = mxtest.Daemon(tmp=tmp, data_dir=data, conf=conf)
    mxtest.on_cleanup(d.kill)
    d.start()
    body = mxtest.message("fill@example.com", "r@d.test", "fill", ("y" * 76 + "\r\n") * 300)
    s = d.connect()
    s.ehlo()
    acked = 0
    for n in range(2000):
        code, _ = _submit(s, n, body)
        if code != "250":
            break
        acked += 1
    s.quit()
    # then something else takes the rest of the disk, down to the last block: the
    # checkpoint at close cannot grow spool.db, so the WAL stays and needs recovery
    _fill(os.path.join(data, "filler"))
    mxtest.note(f"# {acked} acknowledged; {_free(data)} bytes free after the filler")
    rc = d.stop()
    assert rc == 0, f"SIGTERM on a full disk: exit status {rc}"
    wal = os.path.join(data, "spool.db-wal")
    mxtest.note(f"# WAL {os.path.getsize(wal) if os.path.exists(wal) else 0} bytes at restart")
    # with a reserve: it gives the reserve to SQLite's WAL index if needed, and starts
    d.start()
    for ln in d.grep(r"event=spool_reserve"):
        mxtest.note("# " + ln)
    s = d.connect()
    s.ehlo()
    code, v = _submit(s, 5000, body)
    s.quit()
    # 250 when the close's checkpoint could empty the WAL (its blocks came back), else 452
    assert code == "250" or (code, v) == ("452", "4.3.1"), f"intake on a full disk: {code} {v}"
    assert d.stop() == 0
    # without one (released above, and now refilled by nobody): exit 1 with a clear line, never SIGBUS
    if os.path.exists(os.path.join(data, "spool.reserve")):
        os.truncate(os.path.join(data, "spool.reserve"), 0)
    _fill(os.path.join(data, "filler2"))
    d.configure({"spool_reserve": "0"})
    mark = d._log_size()
    d.start(wait=False)
    rc = d.wait_exit(20)
    d.stopping = True
    assert rc is not None, "mxrelayd neither started nor exited on a full disk"
    assert rc != -signal.SIGBUS and rc != 135, "SIGBUS at start on a full file system"
    if rc == 1:
        text = d.log(mark)
        assert re.search(r"spool: open \S+: file system full \(\d+ bytes free, \d+ needed", text), \
            f"exit 1 without the file-system-full line:\n{text[-800:]}"
    else:
        raise AssertionError(f"unexpected exit status {rc}:\n{d.log(mark)[-800:]}")


def test_queue_minfree_refusal_and_return():
    tmp = mxtest.tmpdir()
    data = _tmpfs(tmp, "16m")
    sink_port = mxtest.free_port()
    d = mxtest.Daemon(tmp=tmp, data_dir=data,
                      conf=_conf(sink_port, queue_minfree="4M", spool_reserve="0",
                                 metrics_listen=f"127.0.0.1:{mxtest.free_port()}"))
    mxtest.on_cleanup(d.kill)
    d.start()
    metrics_url = "http://" + d.conf["metrics_listen"] + "/metrics"
    s = d.connect()
    s.ehlo()
    body = mxtest.message("a@example.com", "r@d.test", "before", "before\r\n")
    assert _submit(s, 1, body)[0] == "250"
    # another tenant of the file system leaves 2 MB: under the 4 MB floor
    filler = os.path.join(data, "filler")
    _fill(filler, keep=2 << 20)
    time.sleep(0.3)  # the writer's statvfs is at most 250 ms old
    assert _submit(s, 2, body) == ("452", "4.3.1")
    d.wait_log(r"event=intake_paused reason=queue_minfree free=\d+ queue_minfree=4194304", 5)
    # known to be out of space now: the next transaction is refused at MAIL FROM
    s.cmd("MAIL FROM:<fill@example.com>", 452, "4.3.1")
    d.wait_log(r"event=mail_refused ip=\S+ reason=intake_paused", 5)
    p = mxtest.run([SENDMAIL, "-C", d.conf_path,
                    "-f", "a@example.com", "r@d.test"], input=body.encode())
    assert p.returncode != 0 and "4.3.1" in (p.stdout + p.stderr), \
        f"mxrelay-sendmail under queue_minfree: rc={p.returncode} {p.stdout}{p.stderr}"
    m = mxtest.run(["curl", "-s", metrics_url]).stdout
    assert re.search(r"^mxrelay_intake_paused 1$", m, re.M), m
    free_m = int(re.search(r"^mxrelay_spool_free_bytes (\d+)$", m, re.M).group(1))
    assert 0 < free_m < 4 << 20, f"mxrelay_spool_free_bytes {free_m}"
    # space comes back: intake too, with no signal and no command
    os.unlink(filler)
    d.wait_log(r"event=intake_resumed", 5)
    mxtest.wait_for(lambda: re.search(r"^mxrelay_intake_paused 0$",
                                      mxtest.run(["curl", "-s", metrics_url]).stdout, re.M),
                    5, 0.2, "mxrelay_intake_paused 0")
    assert _submit(s, 3, body)[0] == "250"
    s.quit()
    d.stop()
    # the refusals (one at the end of DATA, one at MAIL FROM) count in the stop line
    stop = d.grep(r"event=stopping")[-1]
    assert int(re.search(r"rejected=(\d+)", stop).group(1)) >= 2, stop


def test_queue_minfree_config_check():
    tmp = mxtest.tmpdir()
    d = mxtest.Daemon(tmp=tmp, conf={"max_message_size": "10M", "queue_minfree": "15M"})
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", d.conf_path])
    line = [n for n, t in enumerate(d.config_text().splitlines(), 1) if t.startswith("queue_minfree")][0]
    assert p.returncode != 0, p.stdout + p.stderr
    assert f"{d.conf_path}:{line}: queue_minfree: " in p.stderr and "2 x max_message_size" in p.stderr, \
        p.stderr
    d.configure({"queue_minfree": "0", "spool_reserve": "x"})
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", d.conf_path])
    assert p.returncode != 0 and ": spool_reserve: " in p.stderr, p.stderr
    d.configure({"queue_minfree": "20M", "spool_reserve": "0"})
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", d.conf_path])
    assert p.returncode == 0, p.stderr


if __name__ == "__main__":
    mxtest.main()
