#!/usr/bin/python3
"""Durability: a 250 survives SIGKILL and a restart; a full disk gives
452 4.3.1 without killing the daemon, and mail flows again once space is
back; 20 parallel clients x 5 messages all land in the spool (group commit)."""

import errno
import os
import smtplib
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402


def test_sigkill_after_250_then_restart():
    d = mxtest.Daemon().start()
    s = d.connect()
    qids = [s.mail("durable@example.com", [f"r{i}@example.net"],
                   mxtest.message(subject=f"durable {i}", body=f"body {i}\r\n")) for i in range(3)]
    # no QUIT: kill while the session is still open
    rc = d.kill()
    assert rc == -9, f"exit status after SIGKILL: {rc}"
    s.close()
    stored = {m["qid"]: m for m in d.messages(received_only=True)}
    for i, q in enumerate(qids):
        assert q in stored, f"message {q} acknowledged with 250 but not in the spool after SIGKILL"
        assert stored[q]["rcpts"] == [f"r{i}@example.net"]
        assert stored[q]["body"].endswith(f"\r\n\r\nbody {i}\r\n".encode())
    d.start()
    assert {m["qid"] for m in d.messages(received_only=True)} >= set(qids), "messages lost across restart"
    s = d.connect()
    q4 = s.mail("durable@example.com", ["after@example.net"], mxtest.message(subject="after restart"))
    s.quit()
    assert d.count(received_only=True) == 4, f"expected 4 messages after restart, got {d.count(received_only=True)}"
    assert d.message(q4)["rcpts"] == ["after@example.net"]
    d.stop()
    assert d.count(received_only=True) == 4


def test_sigkill_mid_data_stores_nothing():
    d = mxtest.Daemon().start()
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<half@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.cmd("DATA", 354)
    s.send(b"Subject: half\r\n\r\nhalf a message\r\n")
    d.kill()
    s.close()
    if os.path.exists(os.path.join(d.data_dir, "spool.db")):
        assert d.count(received_only=True) == 0, "a half-received message was stored"
    d.start()
    s = d.connect()
    s.mail("whole@example.com", ["r@example.net"], mxtest.message())
    s.quit()
    assert [m["sender"] for m in d.messages(received_only=True)] == ["whole@example.com"]


def _fill(path):
    """Write zeros to path until the file system is full (unbuffered writes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 64 * 1024, 4096, 512, 1):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)


def test_disk_full():
    tmp = mxtest.tmpdir()
    data = os.path.join(tmp, "data")
    os.mkdir(data)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=1777", "tmpfs", data],
                       capture_output=True, text=True)
    if p.returncode != 0:
        if "permission denied" in p.stderr.lower() or "not permitted" in p.stderr.lower():
            raise mxtest.Skip(f"cannot mount tmpfs: {p.stderr.strip()}")
        raise AssertionError(f"mount tmpfs failed: {p.stderr.strip()}")
    mxtest.on_cleanup(lambda: subprocess.run(["umount", "-l", data], capture_output=True))
    # the file system's own ENOSPC is what this test is about: no floor, no reserve
    d = mxtest.Daemon(tmp=tmp, data_dir=data, conf={"queue_minfree": "0", "spool_reserve": "0"})
    mxtest.on_cleanup(d.kill)   # runs before the umount (cleanups run newest first)
    d.start()
    s = d.connect()
    q1 = s.mail("first@example.com", ["r@example.net"], mxtest.message(subject="before full"))
    filler = os.path.join(data, "filler")
    _fill(filler)
    mxtest.note(f"# filled {data}: {os.statvfs(data).f_bavail} blocks left")
    # a body bigger than anything the WAL has held so far needs new blocks
    big = mxtest.message(subject="disk full", body=("f" * 76 + "\r\n") * 4000)
    s.cmd("MAIL FROM:<full@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.data(big).expect(452, "4.3.1")
    s.cmd("NOOP", 250, "2.0.0")
    assert d.alive(), "daemon died on a full disk"
    s2 = d.connect()
    s2.cmd("NOOP", 250, "2.0.0")
    s2.close()
    os.unlink(filler)
    q2 = s.mail("full@example.com", ["r@example.net"], big)
    s.quit()
    senders = {m["qid"]: m["sender"] for m in d.messages(received_only=True)}
    assert senders.get(q1) == "first@example.com" and senders.get(q2) == "full@example.com", senders
    assert len(senders) == 2, f"the refused message was stored: {senders}"


def test_parallel_clients_group_commit():
    d = mxtest.Daemon(conf={"max_connections_per_ip": "50"}).start()
    clients, per = 20, 5
    errors, qids = [], []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def worker(n):
        try:
            with smtplib.SMTP("127.0.0.1", d.port(), timeout=60) as c:
                c.ehlo(f"client{n}.test.example")
                start.wait(20)
                for i in range(per):
                    frm = f"c{n}m{i}@example.com"
                    c.mail(frm)
                    code, resp = c.rcpt("r@example.net")
                    assert code == 250, (code, resp)
                    code, resp = c.data(mxtest.message(frm, "r@example.net", f"load {n}/{i}"))
                    assert code == 250, (code, resp)
                    with lock:
                        qids.append(resp.decode().rsplit(" ", 1)[-1])
        except Exception as e:  # collected and reported below
            with lock:
                errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, f"{len(errors)} clients failed: {errors[:3]}"
    assert len(qids) == clients * per and len(set(qids)) == clients * per, \
        f"{len(qids)} replies, {len(set(qids))} distinct queue ids"
    msgs = d.messages(received_only=True)
    assert len(msgs) == clients * per, f"spool holds {len(msgs)} messages, expected {clients * per}"
    assert {m["qid"] for m in msgs} == set(qids)
    assert len({m["sender"] for m in msgs}) == clients * per


def test_smtp_source_load():
    d = mxtest.Daemon(conf={"max_connections_per_ip": "50"}).start()
    mxtest.run(["smtp-source", "-4", "-s", "10", "-m", "100", "-l", "2000", "-M", "source.test.example",
                "-f", "src@example.com", "-t", "dst@example.net", f"127.0.0.1:{d.port()}"],
               timeout=60, check=0)
    msgs = d.messages(received_only=True)
    assert len(msgs) == 100, f"smtp-source sent 100 messages, spool holds {len(msgs)}"
    assert all(m["sender"] == "src@example.com" and m["rcpts"] == ["dst@example.net"] for m in msgs)


def test_sigkill_under_load_keeps_every_250():
    d = mxtest.Daemon(conf={"max_connections_per_ip": "50"}).start()
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def worker(n):
        try:
            s = mxtest.Smtp(d.port(), timeout=20, tag=f"load{n}")
            s.ehlo()
            i = 0
            while not stop.is_set():
                s.send(f"MAIL FROM:<k{n}.{i}@example.com>\r\nRCPT TO:<r@example.net>\r\nDATA\r\n")
                for code in (250, 250, 354):
                    s.reply().expect(code)
                r = s.send_body(mxtest.message(subject=f"kill {n}/{i}"))
                if r.code == 250:
                    with lock:
                        acked.append(r.qid())
                i += 1
        except (AssertionError, OSError):
            pass    # the daemon was killed under us

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    mxtest.wait_for(lambda: len(acked) >= 60, 30, what="60 acknowledged messages")
    d.kill()
    stop.set()
    for t in threads:
        t.join(20)
    with lock:
        got = list(acked)
    stored = {m["qid"] for m in d.messages(received_only=True)}
    lost = [q for q in got if q not in stored]
    assert not lost, f"{len(lost)} of {len(got)} acknowledged messages missing after SIGKILL: {lost[:5]}"
    d.start()
    assert {m["qid"] for m in d.messages(received_only=True)} >= set(got)


if __name__ == "__main__":
    mxtest.main()
