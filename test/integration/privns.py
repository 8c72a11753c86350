"""privns: a private network namespace (only its own loopback, up) to run
mxrelayd on its embedded default address, 127.0.0.1:2525, without colliding
with anything else on the machine and without any route off it; and
throwaway login accounts for running commands as a normal user.

Usage:
    ns = privns.Netns()                 # removed after the test (mxtest.on_cleanup)
    proc = ns.popen(["./build/mta/mxrelayd"], cwd=..., log=path)
    ns.run(["swaks", "--server", "127.0.0.1:2525", ...], check=0)
    u = privns.User()                   # useradd --create-home; userdel -r after the test
    mxtest.run(u.wrap(["sh", "-c", "..."]))
"""

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time

import mxtest


class Netns:
    def __init__(self):
        self.name = "mxns-" + secrets.token_hex(4)
        self.procs = []
        p = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        assert p.returncode == 0, f"ip netns add {self.name}: {p.stderr.strip()}"
        mxtest.on_cleanup(self.delete)
        mxtest.run(self.cmd(["ip", "link", "set", "lo", "up"]), check=0, quiet=True)

    def cmd(self, argv):
        return ["ip", "netns", "exec", self.name] + [str(a) for a in argv]

    def run(self, argv, **kw):
        return mxtest.run(self.cmd(argv), **kw)

    def popen(self, argv, cwd, log):
        """Start argv inside the namespace (ip and setpriv exec it: the pid is argv's)."""
        mxtest.note(f"# (in {self.name}, cwd {cwd}) " + " ".join(str(a) for a in argv))
        with open(log, "ab") as f:
            p = subprocess.Popen(self.cmd(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=f,
                                 stderr=f)
        self.procs.append(p)
        return p

    def delete(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def wait_ready(proc, log, timeout=30):
    """Until mxrelayd logged event=ready; fails with the log when it exited first."""
    deadline = time.monotonic() + timeout
    while True:
        text = open(log, errors="replace").read() if os.path.exists(log) else ""
        if re.search(r"\bevent=ready\b", text):
            return text
        if proc.poll() is not None:
            raise AssertionError(f"mxrelayd exited with status {proc.returncode}:\n{text[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"mxrelayd not ready after {timeout}s:\n{text[-3000:]}")
        time.sleep(0.05)


def stop(proc, timeout=20):
    """SIGTERM and the exit status (it must exit)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"mxrelayd did not exit within {timeout}s of SIGTERM")


class User:
    """A throwaway account with a home folder, removed (with the home) after the test."""

    def __init__(self):
        self.name = "mxnew" + secrets.token_hex(3)
        mxtest.run(["useradd", "--create-home", "--shell", "/bin/sh", self.name], check=0)
        mxtest.on_cleanup(self.delete)
        pw = pwd.getpwnam(self.name)
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir

    def wrap(self, argv):
        """argv run as this user with its groups (setpriv execs: the pid stays argv's)."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                "--reset-env"] + [str(a) for a in argv]

    def delete(self):
        # the test stops what it started as this user (create the User before a Netns:
        # cleanups run in reverse, so the namespace's processes are killed first)
        p = subprocess.run(["userdel", "--remove", self.name], capture_output=True, text=True)
        if p.returncode not in (0, 12):  # 12: home not removed (already gone)
            print(f"  cleanup: userdel {self.name}: {p.stderr.strip()}")


def other_user_env(directory, env=None):
    """os.environ (or env) for a sanitized binary run as another account: LeakSanitizer
    reads its suppressions file at start, so it must not sit in a private checkout."""
    env = dict(os.environ if env is None else env)
    opts = env.get("LSAN_OPTIONS", "")
    m = re.search(r"suppressions=([^:]+)", opts)
    if m and os.path.exists(m.group(1)):
        copy = os.path.join(directory, "lsan.supp")
        shutil.copy(m.group(1), copy)
        os.chmod(copy, 0o644)
        env["LSAN_OPTIONS"] = opts.replace(m.group(0), "suppressions=" + copy)
    return env


def copy_for_other_user(exe, var, sock):
    """A copy of exe in a fresh folder another account can run (the checkout may sit in a
    private one, /root or mktemp -d), and that account's environment with var=sock, once
    the daemon has made sock. Returns (path of the copy, env)."""
    tmp = mxtest.tmpdir()
    copy = os.path.join(tmp, os.path.basename(exe))
    shutil.copy(exe, copy)
    env = other_user_env(tmp)
    env[var] = sock
    mxtest.wait_for(lambda: os.path.exists(sock), 20, what="the socket")
    return copy, env
