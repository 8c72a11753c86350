#!/usr/bin/python3
"""`log = /path/file` (issue 16): mxrelayd appends to the file (created 0640,
handed to the account it drops to; an existing file readable by others loses
that), and reopens it by name on SIGUSR1, on reload and on `mxrelayctl
log-reopen`. The shipped etc/logrotate.d/mxrelay passes `logrotate -d`, and
a real `logrotate -f` run of it (paths pointed at the test's folder) rotates
the file while the daemon runs: the old lines stay in the dated file, the
daemon writes the next ones to a new file it creates itself."""

import glob
import os
import pwd
import re
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

EXAMPLE = os.path.join(mxtest.SRC, "etc", "logrotate.d", "mxrelay")
NOBODY = pwd.getpwnam("nobody")


def logrotate():
    exe = shutil.which("logrotate") or "/usr/sbin/logrotate"
    assert os.path.exists(exe), "logrotate is not installed (tools/install-deps.sh --test)"
    return exe


def log_dir():
    """Like the unit's LogsDirectory=: owned by the daemon's account, 0750."""
    d = os.path.join(mxtest.tmpdir(), "log")
    os.mkdir(d, 0o750)
    os.chown(d, NOBODY.pw_uid, NOBODY.pw_gid)
    return d


def file_daemon(path):
    d = mxtest.Daemon(conf={"log": path})
    d.start()
    mxtest.wait_for(lambda: os.path.exists(path) and "event=ready" in open(path).read(), 10,
                    what="event=ready in the log file")
    return d


def text(path):
    return open(path).read()


def check_mode(path):
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o640, oct(st.st_mode)
    assert st.st_uid == NOBODY.pw_uid, st.st_uid


def test_file_created_and_reopened():
    logs = log_dir()
    path = os.path.join(logs, "mxrelay.log")
    d = file_daemon(path)
    check_mode(path)
    assert re.search(r"^\S+Z mxrelayd\[\d+\]: level=info event=ready ", text(path), re.M)
    assert d.log() == "", f"log lines on stderr: {d.log()[:300]}"
    os.rename(path, path + ".1")
    d.signal(signal.SIGUSR1)
    mxtest.wait_for(lambda: os.path.exists(path) and "event=log_reopened" in text(path), 10,
                    what="a new log file after SIGUSR1")
    check_mode(path)
    qid = mxtest.swaks_qid(mxtest.swaks(d.port()))
    mxtest.wait_for(lambda: qid in text(path), 10, what="the accept line in the new file")
    assert qid not in text(path + ".1")
    os.rename(path, path + ".2")
    p = mxtest.run([mxtest.MXRELAYCTL, "log-reopen", "-c", d.conf_path], timeout=30, check=0)
    assert os.path.exists(path) and "event=log_reopened" in text(path), p.stderr
    os.rename(path, path + ".3")
    d.hup()  # a reload reopens too
    mxtest.wait_for(lambda: os.path.exists(path) and "event=reloaded" in text(path), 10,
                    what="a new log file after SIGHUP")


def test_existing_file_loses_access_for_others():
    logs = log_dir()
    path = mxtest.write_file(os.path.join(logs, "mxrelay.log"), "earlier line\n", 0o644)
    file_daemon(path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert text(path).startswith("earlier line\n")


def test_unusable_log_file_fails_start():
    d = mxtest.Daemon(conf={"log": "/nonexistent-dir/mxrelay.log"})
    p = mxtest.run([mxtest.MXRELAYD, "-c", d.conf_path], timeout=20, check=78)
    assert f"{d.conf_path}: log /nonexistent-dir/mxrelay.log: No such file or directory" \
        in p.stderr, p.stderr
    d2 = mxtest.Daemon(conf={"log": "relative.log"})
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", d2.conf_path], timeout=20, check=1)
    assert re.search(r":\d+: log: \"relative.log\" is not one of stderr, syslog or an absolute "
                     r"file path", p.stderr), p.stderr


def test_logrotate_example():
    exe = logrotate()
    tmp = mxtest.tmpdir()
    # logrotate reads only root's files that others cannot write: a copy, whoever owns the checkout
    shipped = mxtest.write_file(os.path.join(tmp, "mxrelay"), text(EXAMPLE))
    p = mxtest.run([exe, "-d", shipped], timeout=30)
    assert p.returncode == 0, p.stderr
    assert "/var/log/mxrelay/*.log" in p.stdout + p.stderr
    # the same file pointed at this test's folder and daemon, run for real
    logs = log_dir()
    path = os.path.join(logs, "mxrelay.log")
    d = file_daemon(path)
    conf = text(EXAMPLE).replace("/var/log/mxrelay/*.log {", logs + "/*.log {")
    conf = conf.replace("mxrelayctl log-reopen --if-running",
                        f"{mxtest.MXRELAYCTL} log-reopen --if-running -c {d.conf_path}")
    assert logs in conf and mxtest.MXRELAYCTL in conf
    rconf = mxtest.write_file(os.path.join(tmp, "logrotate.conf"), conf)
    state = os.path.join(tmp, "state")
    p = mxtest.run([exe, "-f", "-s", state, rconf], timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    rotated = glob.glob(path + "-*")
    assert len(rotated) == 1 and re.search(r"-\d{8}$", rotated[0]), os.listdir(logs)
    assert "event=ready" in text(rotated[0])
    mxtest.wait_for(lambda: os.path.exists(path) and "event=log_reopened" in text(path), 10,
                    what="the daemon's new log file")
    check_mode(path)
    qid = mxtest.swaks_qid(mxtest.swaks(d.port()))
    mxtest.wait_for(lambda: qid in text(path), 10, what="the accept line in the new file")
    assert qid not in text(rotated[0])
    # the daemon stopped: the postrotate step says nothing and succeeds
    d.stop()
    os.unlink(rotated[0])  # same day, same dated name
    os.rename(path, path + ".x")
    mxtest.write_file(path, "a line\n", 0o640)
    p = mxtest.run([exe, "-f", "-s", state, rconf], timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


if __name__ == "__main__":
    mxtest.main()
