"""nspawn: boot a Debian root under its own systemd (systemd-nspawn -b) and
run commands inside it, for tests that need a real systemd as PID 1.

The root is never changed: --volatile=overlay puts a tmpfs over it, so
everything the test installs or writes is gone at poweroff. The container
has only its own loopback (--private-network) and registers nowhere
(--register=no --keep-unit: this machine's PID 1 need not be systemd).
Commands run inside through nsenter into the container's PID 1, with the
container's own binaries (systemctl, dpkg, journalctl...).

    box = nspawn.Container(root, binds={"/host/dir": "/mnt/dir"})
    box.boot()                      # waits for is-system-running
    p = box.sh("systemctl is-active mxrelayd", check=None)
    box.poweroff()                  # also an mxtest cleanup
"""

import os
import shutil
import subprocess
import time

import mxtest


def _status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.split()
    except OSError:
        pass
    return out


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and _status(d).get("PPid") == [str(pid)]:
            kids.append(int(d))
    return kids


class Container:
    def __init__(self, root, binds=None):
        self.root = root
        self.binds = binds or {}
        self.proc = None
        self.pid1 = None
        self.log_path = os.path.join(mxtest.tmpdir("mxnspawn-"), "console.log")

    def boot(self, timeout=90):
        exe = shutil.which("systemd-nspawn")
        assert exe, "systemd-nspawn not installed (package systemd-container, tools/install-deps.sh --test)"
        argv = [exe, "-q", "-b", "-D", self.root, "--volatile=overlay", "--private-network",
                "--register=no", "--keep-unit", "--console=read-only"]
        argv += [f"--bind-ro={h}:{c}" for h, c in self.binds.items()]
        mxtest.note("$ " + " ".join(argv))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        mxtest.on_cleanup(self.poweroff)
        self.pid1 = mxtest.wait_for(self._find_pid1, timeout=30, what="the container's PID 1")
        deadline = time.monotonic() + timeout
        while True:
            p = self.sh("systemctl is-system-running --wait", check=None, timeout=timeout)
            state = p.stdout.strip()
            if state in ("running", "degraded"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"container did not boot: {state!r}\n" + self.console())
            time.sleep(0.5)
        if state == "degraded":  # worth a line in a failure transcript, not a failure
            self.sh("systemctl --failed --no-legend", check=None)

    def _find_pid1(self):
        """The container's init: a descendant of systemd-nspawn that is PID 1 in its namespace."""
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self.proc.returncode}\n" + self.console())
        todo = [self.proc.pid]
        for _ in range(3):
            nxt = []
            for pid in todo:
                for kid in _children(pid):
                    ns = _status(kid).get("NSpid", [])
                    if len(ns) > 1 and ns[-1] == "1":
                        return kid
                    nxt.append(kid)
            todo = nxt
        return None

    def argv(self, cmd):
        """argv running cmd (a list) inside the container's namespaces, root and cwd."""
        return ["nsenter", "-t", str(self.pid1), "-a", "-r", "-w", "--"] + list(cmd)

    def run(self, cmd, check=0, timeout=60, input=None):
        return mxtest.run(self.argv(cmd), check=check, timeout=timeout, input=input)

    def sh(self, script, check=0, timeout=60, input=None):
        """A /bin/sh script inside the container; check: the exit status wanted (None: any)."""
        return self.run(["/bin/sh", "-c", script], check=check, timeout=timeout, input=input)

    def popen_netns(self, cmd):
        """Run a host command (a list) inside the container's network namespace only."""
        return subprocess.Popen(["nsenter", "-t", str(self.pid1), "-n", "--"] + list(cmd),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    def console(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def poweroff(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.pid1:
            subprocess.run(self.argv(["systemctl", "poweroff", "--no-block"]),
                           capture_output=True, timeout=30)
        try:
            self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
