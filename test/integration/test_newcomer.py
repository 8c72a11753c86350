#!/usr/bin/python3
"""README command 1 from a fresh clone, as a new user runs it:

    ./tools/install-deps.sh && cmake -B build && cmake --build build -j2 && ./build/mta/mxrelayd

then the README's "Try it" (`swaks --server 127.0.0.1:2525 --to someone@example.com --tls`)
must be accepted with 250 and the message kept in the spool:

- as root, in a clone inside a fresh mode 0700 folder with nothing beside it
  (like a clone in /root or in `mktemp -d`; nothing else next to it);
- as a normal user (a throwaway account), in a clone in their home.

The clone is of this checkout's HEAD (uncommitted changes are not in it; in CI
the checkout is itself a fresh clone). Each case builds the tree the README
way (normal build, about 15 s of two cores). mxrelayd runs in a private
network namespace: its default port is free there and nothing leaves.
"""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import privns  # noqa: E402

mxtest.TEST_TIMEOUT = 900  # two builds of the whole tree on a shared machine
README_BUILD = "./tools/install-deps.sh && cmake -B build && cmake --build build -j2"
README_START = "./build/mta/mxrelayd"


def readme_commands():
    """README command 1 and the try-it line, as the README has them (the test runs those)."""
    text = open(os.path.join(mxtest.SRC, "README.md")).read()
    assert f"{README_BUILD} && {README_START}" in text, "README command 1 changed: update this test"
    m = re.search(r"Try it: `(swaks [^`]+)`", text)
    assert m, "README lost its 'Try it' swaks line"
    return m.group(1).split()


def clone_head(dest):
    """git clone of this checkout's HEAD into dest."""
    head = mxtest.run(["git", "-C", mxtest.SRC, "rev-parse", "HEAD"], check=0).stdout.strip()
    mxtest.run(["git", "clone", "-q", mxtest.SRC, dest], timeout=120, check=0)
    got = mxtest.run(["git", "-C", dest, "rev-parse", "HEAD"], check=0).stdout.strip()
    assert got == head, f"clone is at {got}, checkout at {head}"
    assert not os.path.exists(os.path.join(dest, "build"))


def build(cwd, wrap=lambda argv: argv):
    p = mxtest.run(wrap(["sh", "-c", f"cd {cwd} && {README_BUILD}"]), timeout=800,
                   check=None, quiet=True)
    if p.returncode != 0:
        raise AssertionError(f"README build failed ({p.returncode}):\n"
                             + "\n".join((p.stdout + p.stderr).splitlines()[-30:]))


def start_and_send(ns, cwd, log, wrap=lambda argv: argv):
    """Start ./build/mta/mxrelayd there, send with swaks (250), stop; the daemon's log."""
    proc = ns.popen(wrap([README_START]), cwd=cwd, log=log)
    privns.wait_ready(proc, log)
    p = ns.run(readme_commands() + ["--timeout", "20"], timeout=60, check=0)
    qid = mxtest.swaks_qid(p)
    assert privns.stop(proc) == 0, open(log).read()[-3000:]
    data = os.path.join(cwd, "var", "mxrelay")
    con = sqlite3.connect(f"file:{data}/spool.db?mode=ro", uri=True)
    try:
        assert con.execute("SELECT count(*) FROM messages WHERE qid = ?", (qid,)).fetchone()[0] == 1
    finally:
        con.close()
    return open(log, errors="replace").read()


def test_root_in_private_folder():
    ns = privns.Netns()
    top = tempfile.mkdtemp(prefix="mxnewcomer-")  # mode 0700
    mxtest.on_cleanup(lambda: shutil.rmtree(top, ignore_errors=True))
    assert os.stat(top).st_mode & 0o777 == 0o700
    checkout = os.path.join(top, "mxrelay")
    clone_head(checkout)
    assert os.listdir(top) == ["mxrelay"]
    build(checkout)
    log = os.path.join(mxtest.tmpdir(), "mxrelayd.log")
    text = start_and_send(ns, checkout, log)
    warn = [ln for ln in text.splitlines() if "level=warn" in ln or "level=err" in ln]
    assert len(warn) == 1 and "event=privileges user=root" in warn[0] and \
        f"data_dir ./var/mxrelay: not reachable by user" in warn[0], "\n".join(warn)


def test_normal_user_in_home():
    user = privns.User()           # before the namespace: its processes are gone first
    ns = privns.Netns()
    checkout = os.path.join(user.home, "mxrelay")
    clone_head(checkout)
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", checkout], check=True)
    build(checkout, user.wrap)
    log = os.path.join(mxtest.tmpdir(), "mxrelayd.log")
    text = start_and_send(ns, checkout, log, user.wrap)
    warn = [ln for ln in text.splitlines() if "level=warn" in ln or "level=err" in ln]
    assert not warn, "\n".join(warn)
    assert "event=privileges" not in text
    assert os.stat(os.path.join(checkout, "var", "mxrelay", "spool.db")).st_uid == user.uid


if __name__ == "__main__":
    mxtest.main()
