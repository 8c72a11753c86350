#!/usr/bin/python3
"""Spool size on disk (issue 12). Mail queued in a version-3 spool (bodies in
body_chunks) is delivered after the upgrade to schema 4, and the file is
converted to incremental vacuum. 20,000 messages of ~1.3 KB from Postfix's
smtp-source, queued while their MX is down, take at most 1.5x their bytes
in spool.db + WAL (4.9 KB per 1.56 KB message before schema 4); drained to
smtp-sink, the files shrink below 10 % of their peak within 60 s, and mail
submitted meanwhile is answered promptly (the vacuum runs in small steps
between the writer's batches)."""

import os
import smtplib
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

N = 20000
RATIO_MAX = 1.5
PROMPT_S = 1.0   # one submission's DATA reply, while the spool gives space back


def spool_bytes(d):
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.path.getsize(os.path.join(d.data_dir, "spool.db" + suffix))
        except FileNotFoundError:
            pass
    return total


def files(d):
    """spool.db and WAL sizes, pages and free pages, for failure messages."""
    out = []
    for suffix in ("", "-wal"):
        try:
            out.append(os.path.getsize(os.path.join(d.data_dir, "spool.db" + suffix)))
        except FileNotFoundError:
            out.append(None)
    r = d.query("SELECT * FROM pragma_page_count, pragma_freelist_count")[0]
    return f"spool.db {out[0]} B, WAL {out[1]} B, page_count+freelist {list(r.values())}"


def ctl(d, *args):
    return mxtest.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path] + list(args), timeout=30,
                      check=0)


class Prober(threading.Thread):
    """Submits one small message every 50 ms and keeps the slowest DATA reply."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.worst, self.sent, self.errors = port, False, 0.0, 0, []

    def run(self):
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as c:
                c.ehlo("prober.test.example")
                while not self.stop:
                    c.mail("probe@example.com")
                    c.rcpt("probe@d.test")
                    t0 = time.monotonic()
                    code, resp = c.data(mxtest.message("probe@example.com", "probe@d.test",
                                                       f"probe {self.sent}"))
                    self.worst = max(self.worst, time.monotonic() - t0)
                    if code != 250:
                        self.errors.append(f"{code} {resp!r}")
                    self.sent += 1
                    time.sleep(0.05)
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))


def test_spool_size_and_shrink_after_drain():
    sink_port = mxtest.free_port()
    d = mxtest.Daemon(conf={
        "route": f"d.test 127.0.0.1:{sink_port}",   # nothing listens yet: the MX is down
        "allow_private_mx": "yes",
        "retry_min": "1h",
        "retry_max": "2h",
        "max_connections_per_ip": "50",
    }).start()
    t0 = time.monotonic()
    p = mxtest.run(["smtp-source", "-s", "20", "-m", str(N), "-l", "1300", "-f", "s@example.com",
                    "-t", "r@d.test", f"127.0.0.1:{d.port()}"], timeout=120, check=0)
    t_fill = time.monotonic() - t0
    mxtest.wait_for(lambda: d.query("SELECT count(*) AS n FROM messages")[0]["n"] >= N,
                    timeout=20, what=f"{N} messages spooled")
    body_bytes = d.query("SELECT sum(size) AS b FROM messages")[0]["b"]
    peak = spool_bytes(d)
    per_msg = peak / N
    mxtest.note(f"# {N} messages in {t_fill:.1f} s ({N / t_fill:.0f}/s): spool.db + WAL {peak} B,"
                f" {per_msg:.0f} B per message of {body_bytes / N:.0f} B"
                f" ({peak / body_bytes:.2f}x)")
    print(f"# filled: {per_msg:.0f} B on disk per {body_bytes / N:.0f} B message"
          f" ({peak / body_bytes:.2f}x), {N / t_fill:.0f} msg/s")
    assert peak <= RATIO_MAX * body_bytes, \
        f"spool {peak} B for {body_bytes} B of messages: {peak / body_bytes:.2f}x > {RATIO_MAX}x"

    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "2000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mxtest.on_cleanup(lambda: (sink.kill(), sink.wait()))
    mxtest.wait_for(lambda: sink_port in mxtest._listening_ports(), timeout=10,
                    what="smtp-sink listening")
    prober = Prober(d.port())
    prober.start()
    mxtest.on_cleanup(lambda: setattr(prober, "stop", True))
    t0 = time.monotonic()
    ctl(d, "flush")
    mxtest.wait_for(lambda: d.query("SELECT count(*) AS n FROM messages")[0]["n"] == 0,
                    timeout=60, interval=0.5, what="queue drained")
    t_drain = time.monotonic() - t0
    deadline = time.monotonic() + 60
    db = os.path.join(d.data_dir, "spool.db")
    while os.path.getsize(db) * 10 >= peak:     # the vacuum, with submissions going on
        if time.monotonic() > deadline:
            raise AssertionError(f"spool {files(d)} 60 s after the drain: spool.db not below"
                                 f" 10 % of the peak {peak} B")
        time.sleep(0.2)
    time.sleep(0.5)   # a few more probes after the shrink
    prober.stop = True
    prober.join(20)
    while spool_bytes(d) * 10 >= peak:          # the WAL too, once writes stop
        if time.monotonic() > deadline:
            raise AssertionError(f"spool {files(d)} 60 s after the drain: not below 10 % of"
                                 f" its peak {peak} B")
        time.sleep(0.2)
    t_shrink = time.monotonic() - t0 - t_drain
    after = spool_bytes(d)
    print(f"# drained in {t_drain:.1f} s, then {after} B ({100 * after / peak:.1f} % of peak: {files(d)})"
          f" {t_shrink:.1f} s later; {prober.sent} probes, slowest DATA reply"
          f" {prober.worst * 1000:.0f} ms")
    assert not prober.errors, f"submissions during drain and vacuum: {prober.errors[:3]}"
    assert prober.sent >= 5, f"only {prober.sent} probes were sent"
    assert prober.worst < PROMPT_S, f"a submission waited {prober.worst:.2f} s for its 250"
    assert not d.grep(r"event=spool_error op=vacuum"), d.tail(5)


V3_SCHEMA = """
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, qid TEXT UNIQUE NOT NULL,
 sender TEXT NOT NULL, received INTEGER, size INTEGER, client_ip TEXT, helo TEXT, auth_user TEXT,
 flags INTEGER, next_try INTEGER, attempts INTEGER DEFAULT 0, lease_until INTEGER DEFAULT 0,
 state INTEGER DEFAULT 0);
CREATE TABLE recipients (id INTEGER PRIMARY KEY, msg_id INTEGER NOT NULL REFERENCES messages(id)
 ON DELETE CASCADE, address TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0, next_try INTEGER,
 attempts INTEGER DEFAULT 0, last_reply TEXT);
CREATE TABLE body_chunks (msg_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
 seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (msg_id, seq)) WITHOUT ROWID;
CREATE INDEX recipients_msg ON recipients(msg_id, state);
CREATE INDEX recipients_due ON recipients(state, next_try);
CREATE INDEX messages_due ON messages(next_try);
CREATE TABLE audit (client_ip TEXT NOT NULL, auth_user TEXT NOT NULL DEFAULT '',
 tls_version TEXT NOT NULL DEFAULT '', tls_cipher TEXT NOT NULL DEFAULT '',
 worst_tls TEXT NOT NULL DEFAULT '', auth_mech TEXT NOT NULL DEFAULT '',
 plaintext_auth INTEGER NOT NULL DEFAULT 0, allowlisted INTEGER NOT NULL DEFAULT 0,
 senders TEXT NOT NULL DEFAULT '', header_from TEXT NOT NULL DEFAULT '',
 messages INTEGER NOT NULL DEFAULT 0, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
 PRIMARY KEY (client_ip, auth_user)) WITHOUT ROWID;
CREATE INDEX audit_last_seen ON audit(last_seen);
ALTER TABLE messages ADD COLUMN unfinished INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 3;
"""


def make_v3_spool(data_dir, bodies):
    """A version-3 spool (as mxrelay made it before schema 4) with BODIES queued, 256 KB chunks."""
    import sqlite3
    os.makedirs(data_dir, mode=0o700)
    con = sqlite3.connect(os.path.join(data_dir, "spool.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.executescript(V3_SCHEMA)
    now = int(time.time())
    con.execute("BEGIN")
    for i, body in enumerate(bodies, 1):
        con.execute("INSERT INTO messages (id, qid, sender, received, size, flags, next_try)"
                    " VALUES (?, ?, 'old@example.com', ?, ?, 0, ?)",
                    (i, "%016x" % (0xa0 + i), now, len(body), now))
        con.execute("INSERT INTO recipients (msg_id, address, next_try) VALUES (?, ?, ?)",
                    (i, f"old{i}@d.test", now))
        for seq, off in enumerate(range(0, len(body), 256 * 1024)):
            con.execute("INSERT INTO body_chunks VALUES (?, ?, ?)",
                        (i, seq, body[off:off + 256 * 1024]))
    con.execute("COMMIT")
    con.close()


def old_body(n, lines):
    head = f"From: old@example.com\r\nTo: old{n}@d.test\r\nSubject: stored by version 3\r\n\r\n"
    return (head + "".join(f"{n}.{i:06d} stored before the upgrade\r\n"
                           for i in range(lines))).encode()


def test_upgrade_from_version_3_delivers_old_mail():
    """Mail queued by a version-3 spool (bodies in body_chunks) is delivered byte for byte
    after the upgrade; the small old file is converted to incremental vacuum at start, and
    body_chunks, once empty, is dropped at the next start."""
    tmp = mxtest.tmpdir()
    sink_dir = os.path.join(tmp, "sink")
    os.mkdir(sink_dir)
    os.chmod(sink_dir, 0o777)
    bodies = [old_body(1, 30), old_body(2, 8000)]   # 1.5 KB and 300 KB: one and two chunks
    d = mxtest.Daemon(tmp=tmp, conf={"allow_private_mx": "yes", "retry_min": "1s",
                                     "retry_max": "2s"})
    make_v3_spool(d.data_dir, bodies)
    sink_port = mxtest.free_port()
    d.configure({"route": f"d.test 127.0.0.1:{sink_port}"})
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-d", os.path.join(sink_dir, "%M%S."),
                             f"127.0.0.1:{sink_port}", "100"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mxtest.on_cleanup(lambda: (sink.kill(), sink.wait()))
    mxtest.wait_for(lambda: sink_port in mxtest._listening_ports(), timeout=10,
                    what="smtp-sink listening")
    d.start()
    d.wait_log(r"event=vacuum_converted", timeout=10)
    mxtest.wait_for(lambda: d.query("SELECT count(*) AS n FROM messages")[0]["n"] == 0,
                    timeout=30, interval=0.2, what="old messages delivered")
    assert d.query("PRAGMA auto_vacuum")[0]["auto_vacuum"] == 2
    dumps = [open(os.path.join(sink_dir, f), "rb").read() for f in os.listdir(sink_dir)]
    for i, body in enumerate(bodies, 1):
        lf = body.replace(b"\r\n", b"\n")   # smtp-sink -d writes LF line ends
        got = [x for x in dumps if lf in x]
        assert len(got) == 1, f"old message {i} ({len(body)} B): {len(got)} intact copies at the sink"
    assert d.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'body_chunks'")[0]["n"] == 1
    d.stop()
    d.start()
    mxtest.wait_for(lambda: d.query("SELECT count(*) AS n FROM sqlite_master"
                                    " WHERE name = 'body_chunks'")[0]["n"] == 0,
                    timeout=10, what="the emptied body_chunks dropped at start")
    s = d.connect()
    s.mail("new@example.com", ["new@d.test"],
           mxtest.message("new@example.com", "new@d.test", "after the upgrade"))
    s.quit()
    mxtest.wait_for(lambda: d.query("SELECT count(*) AS n FROM messages")[0]["n"] == 0,
                    timeout=30, interval=0.2, what="new message delivered")

if __name__ == "__main__":
    mxtest.main()
