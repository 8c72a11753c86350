#!/usr/bin/python3
"""Another process reading spool.db while mxrelayd runs (sqlite3, a monitoring
script) must not take the WAL away from the daemon. Every spool handle opened
after the writer's used to open() and close() spool.db itself, and close()
drops all of the process's POSIX locks on the file: the other process's last
close then thought it was alone, checkpointed and deleted spool.db-wal, the
daemon went on committing into the deleted file, and a message acknowledged
with 250 after that was gone after kill -9."""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402


def test_outside_reader_keeps_the_wal_and_the_mail():
    d = mxtest.Daemon(conf={"retry_min": "1h", "retry_max": "2h"}).start()
    s = d.connect()
    q1 = s.mail("a@example.com", ["r@example.net"], mxtest.message(subject="first"))
    # its delivery attempt (no MX: deferred) opens the delivery side's spool handles
    mxpeers.wait_event(d, "delivery", qid=q1, status="deferred")
    wal = os.path.join(d.data_dir, "spool.db-wal")
    assert os.path.exists(wal), "no WAL while the daemon runs"
    con = sqlite3.connect(os.path.join(d.data_dir, "spool.db"))
    assert con.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    con.close()
    assert os.path.exists(wal), "a reader's close deleted the WAL of the running daemon"
    q2 = s.mail("a@example.com", ["r@example.net"], mxtest.message(subject="second"))
    d.kill()
    s.close()
    qids = {m["qid"] for m in d.messages()}
    assert {q1, q2} <= qids, f"acknowledged with 250, gone after kill -9: {({q1, q2} - qids)}"


if __name__ == "__main__":
    mxtest.main()
