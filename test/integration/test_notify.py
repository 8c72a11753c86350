#!/usr/bin/python3
"""systemd's side of the daemon (issue 16), against a real NOTIFY_SOCKET (a
datagram socket here, receiving what libsystemd's sd_notify sends, with the
sender's pid from SCM_CREDENTIALS as NotifyAccess=main checks it):

- READY=1 only once every listener accepts, the spool and the control socket
  exist; from the main pid; STATUS= says how many listeners and messages;
- SIGHUP and `mxrelayctl reload`: RELOADING=1 with MONOTONIC_USEC (now, on
  CLOCK_MONOTONIC), then READY=1; SIGTERM: STOPPING=1;
- a port in use: no READY=1, exit 78 (the unit's RestartPreventExitStatus),
  the cause at priority err;
- with JOURNAL_STREAM naming stderr every line starts with its priority
  (<3> err, <4> warning, <6> info) and carries no time stamp;
- `mxrelayctl reload` (the unit's ExecReload) reports: exit 1 with the error
  for a broken configuration, a broken or mismatched key (the running
  certificate stays), an unreadable DKIM key; exit 0 with the changes that
  need a restart; a renewed certificate is served to the next client
  without a restart, while a session already on TLS goes on.
"""

import os
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

CTL = mxtest.MXRELAYCTL


class Notify:
    """A service manager's notification socket: every datagram with its sender's pid."""

    def __init__(self):
        self.path = os.path.join(mxtest.tmpdir(), "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)  # like /run/systemd/notify: the daemon drops to nobody
        self.got = []  # (pid, {key: value}, monotonic time received)
        mxtest.on_cleanup(self.sock.close)

    def _recv(self, timeout):
        if not select.select([self.sock], [], [], timeout)[0]:
            return None
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, blob in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", blob[:12])[0]
        fields = dict(ln.split("=", 1) for ln in data.decode().split("\n") if "=" in ln)
        mxtest.note(f"# notify from pid {pid}: {fields}")
        self.got.append((pid, fields, time.monotonic()))
        return self.got[-1]

    def wait(self, key, timeout=20.0):
        """The next message that sets key (earlier ones stay in self.got)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key}= from mxrelayd within {timeout}s; got "
                                     f"{[f for _, f, _ in self.got]}")
            m = self._recv(left)
            if m and key in m[1]:
                return m

    def drain(self, wait=0.3):
        while self._recv(wait):
            pass


def start_notified(d, notify, env=None):
    """Start d with NOTIFY_SOCKET (and env) set; does not wait for the log."""
    saved = dict(os.environ)
    os.environ["NOTIFY_SOCKET"] = notify.path
    os.environ.update(env or {})
    try:
        d.start(wait=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def ctl_reload(d, expect, *extra):
    return mxtest.run([CTL, "reload", "-c", d.conf_path, *extra], timeout=40, check=expect)


class StderrPipe:
    """A pipe for a child's stderr, and the JOURNAL_STREAM value that names it."""

    def __init__(self):
        self.r, self.w = os.pipe()
        st = os.fstat(self.w)
        self.journal = f"{st.st_dev}:{st.st_ino}"
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        with os.fdopen(self.r, "rb") as f:
            for ln in f:
                self.lines.append(ln.decode("utf-8", "replace").rstrip("\n"))

    def close_writer(self):
        os.close(self.w)

    def wait(self, pattern, timeout=15.0):
        return mxtest.wait_for(lambda: [ln for ln in self.lines if re.search(pattern, ln)],
                               timeout, what=f"stderr line /{pattern}/")


def journal_daemon(d, pipe, notify=None):
    """mxrelayd on d's config with stderr on pipe and JOURNAL_STREAM naming it."""
    env = dict(os.environ, JOURNAL_STREAM=pipe.journal)
    if notify:
        env["NOTIFY_SOCKET"] = notify.path
    mxtest.note(f"# start {mxtest.MXRELAYD} -c {d.conf_path} (JOURNAL_STREAM={pipe.journal})")
    p = subprocess.Popen([mxtest.MXRELAYD, "-c", d.conf_path], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=pipe.w, env=env, cwd=d.tmp)
    pipe.close_writer()
    mxtest.on_cleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
    return p


def test_ready_only_when_listening():
    n = Notify()
    d = mxtest.Daemon(listeners={"main": {}, "second": {}})
    start_notified(d, n)
    pid, f, _ = n.wait("READY")
    assert f["READY"] == "1" and pid == d.proc.pid, (pid, d.proc.pid, f)
    # at READY=1 everything is up: both ports answer, the spool and the sockets exist
    for name in ("main", "second"):
        s = d.connect(name)
        s.banner.expect(220)
        s.close()
    for f_ in ("spool.db", "control.sock", "submit.sock"):
        assert os.path.exists(os.path.join(d.data_dir, f_)), f_
    assert re.match(r"accepting on 2 listeners, 0 queued, 0 held, 0 sessions$", f["STATUS"]), f
    assert d.grep(r"event=ready\b")
    # nothing before it claimed readiness
    assert [g for _, g, _ in n.got].index(f) == len(n.got) - 1


def test_reload_and_stop_notify():
    n = Notify()
    d = mxtest.Daemon()
    start_notified(d, n)
    n.wait("READY")
    for how in ("SIGHUP", "mxrelayctl reload"):
        before = time.monotonic_ns() // 1000
        if how == "SIGHUP":
            d.hup()
        else:
            p = ctl_reload(d, 0)
            assert f"mxrelayd reloaded {d.conf_path}" in p.stdout, p.stdout
        pid, f, _ = n.wait("RELOADING")
        after = time.monotonic_ns() // 1000
        assert pid == d.proc.pid and f["RELOADING"] == "1", f
        # systemd 253+ wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload); 252 ignores it
        assert before <= int(f["MONOTONIC_USEC"]) <= after, (before, f, after)
        pid, f, _ = n.wait("READY")
        assert f["STATUS"].startswith("accepting on 1 listener,"), f
    # a failed reload: READY=1 again (the old configuration runs), the failure in STATUS=
    good = open(d.conf_path).read()
    mxtest.write_file(d.conf_path, good + "no_such_key = 1\n")
    d.hup()
    n.wait("RELOADING")
    pid, f, _ = n.wait("READY")
    assert re.match(r"reload failed at \S+Z: \S+:\d+: no_such_key: unknown key; accepting on 1 "
                    r"listener,", f["STATUS"]), f
    mxtest.write_file(d.conf_path, good)
    d.signal(signal.SIGTERM)
    pid, f, _ = n.wait("STOPPING")
    assert pid == d.proc.pid and f["STATUS"].startswith("draining"), f
    assert d.proc.wait(15) == 0


def test_port_in_use_fails_start_at_priority_err():
    n = Notify()
    d = mxtest.Daemon()
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", d.port()))
    held.listen(1)
    mxtest.on_cleanup(held.close)
    pipe = StderrPipe()
    p = journal_daemon(d, pipe, n)
    assert p.wait(20) == 78, f"exit {p.returncode}, expected 78 (EX_CONFIG, not restarted)"
    n.drain()
    assert not [f for _, f, _ in n.got if "READY" in f], n.got
    pipe.t.join(5)
    want = f"[listener main] 127.0.0.1:{d.port()}: Address already in use"
    assert f'<3>level=err event=startup_failed error="{want}"' in pipe.lines, pipe.lines
    # once: the log line is in the journal already
    assert not [ln for ln in pipe.lines if ln.startswith("<3>mxrelayd: ")], pipe.lines
    bare = [ln for ln in pipe.lines if not re.match(r"<[3-7]>", ln)]
    assert not bare, f"lines without a priority: {bare}"


def test_broken_config_fails_start_at_priority_err():
    d = mxtest.Daemon()
    mxtest.write_file(d.conf_path, open(d.conf_path).read() + "no_such_key = 1\n")
    pipe = StderrPipe()
    p = journal_daemon(d, pipe)
    assert p.wait(20) == 78, f"exit {p.returncode}, expected 78"
    pipe.t.join(5)
    assert len(pipe.lines) == 1 and re.match(rf"<3>{re.escape(d.conf_path)}:\d+: no_such_key: ",
                                             pipe.lines[0]), pipe.lines


def test_journal_priorities():
    d = mxtest.Daemon(conf={"tlsrpt": "yes", "tlsrpt_from": "reports@mx.test.example"})
    pipe = StderrPipe()
    p = journal_daemon(d, pipe)
    pipe.wait(r"event=ready\b")
    d.configure(listeners={"main": {}, "added": {}})  # a restart-only change: a warning
    p.send_signal(signal.SIGHUP)
    pipe.wait(r"event=reloaded\b")
    mxtest.write_file(d.conf_path, open(d.conf_path).read() + "no_such_key = 1\n")
    p.send_signal(signal.SIGHUP)
    pipe.wait(r"event=reload_failed\b")
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0
    pipe.t.join(5)
    lines = pipe.lines
    assert [ln for ln in lines if ln.startswith("<6>level=info event=ready ")], lines
    assert [ln for ln in lines if ln.startswith("<4>level=warn event=tlsrpt_unsigned ")], lines
    assert '<4>level=warn event=reload note="listener added added: needs a restart"' in lines, \
        lines
    assert [ln for ln in lines if re.match(r"<3>level=err event=reload_failed error=\".*"
                                           r"no_such_key", ln)], lines
    # journald stamps lines itself: none here, and every line has its priority
    assert not [ln for ln in lines if not re.match(r"<[3-7]>level=", ln)], lines
    assert not [ln for ln in lines if re.search(r"\d{4}-\d\d-\d\dT\d\d:", ln)], lines


def test_journal_stream_of_another_file_changes_nothing():
    """JOURNAL_STREAM inherited by a child whose stderr went elsewhere is ignored."""
    saved = dict(os.environ)
    os.environ["JOURNAL_STREAM"] = "1:2"
    try:
        d = mxtest.Daemon().start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert re.search(r"^\d{4}-\d\d-\d\dT[\d:.]+Z mxrelayd\[\d+\]: level=info event=ready ",
                     d.log(), re.M), d.tail(5)


def test_reload_command_reports():
    d = mxtest.Daemon().start()
    good = open(d.conf_path).read()
    # a restart-only change: applied where it can be, the rest listed
    d.configure({"max_inflight": "7"}, listeners={"main": {"tls": "none"}})
    p = ctl_reload(d, 0)
    assert f"mxrelayd reloaded {d.conf_path}" in p.stdout, p.stdout
    assert "mxrelayctl: note: max_inflight changes need a restart" in p.stderr, p.stderr
    assert ("mxrelayctl: note: listener main: address and other listener keys but cert and "
            "key need a restart") in p.stderr, p.stderr
    assert d.grep(r'event=reload note="max_inflight changes need a restart"')
    # a broken configuration: exit 1, FILE:LINE: KEY: reason, at priority err under journald
    mxtest.write_file(d.conf_path, good + "no_such_key = 1\n")
    line = good.count("\n") + 1
    pipe = StderrPipe()
    env = dict(os.environ, JOURNAL_STREAM=pipe.journal)
    c = subprocess.run([CTL, "reload", "-c", d.conf_path], stderr=pipe.w, timeout=30, env=env)
    pipe.close_writer()
    pipe.t.join(5)
    assert c.returncode == 1, c.returncode
    assert pipe.lines and pipe.lines[0].startswith(f"<3>mxrelayctl: {d.conf_path}:{line}: "
                                                   "no_such_key"), pipe.lines
    assert d.alive()
    s = d.connect()
    s.mail("still@example.com", ["r@example.net"], mxtest.message())
    s.quit()
    d.stop()
    mxtest.write_file(d.conf_path, good)
    p = ctl_reload(d, 1)
    assert "mxrelayd is not running" in p.stderr, p.stderr


def der_of(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())


def served_cert(d):
    s = d.connect()
    s.ehlo()
    s.starttls()
    der = s.sock.getpeercert(binary_form=True)
    s.close()
    return der


def test_renewed_certificate_served_after_reload():
    tmp = mxtest.tmpdir()
    cert, key = mxtest.make_cert(tmp, name="live")
    d = mxtest.Daemon(listeners={"main": {"tls": "starttls", "cert": cert, "key": key}}).start()
    assert served_cert(d) == der_of(cert)
    old = d.connect()  # a session already on TLS with the first certificate
    old.ehlo()
    old.starttls()
    # renewal: a new certificate and key, moved into place as certbot's deploy hook would
    ncert, nkey = mxtest.make_cert(tmp, name="renewed")
    os.replace(ncert, cert)
    os.replace(nkey, key)
    assert der_of(cert) != old.sock.getpeercert(binary_form=True)
    ctl_reload(d, 0)
    assert served_cert(d) == der_of(cert), "the renewed certificate is not served"
    old.ehlo()
    old.mail("renewal@example.com", ["r@example.net"], mxtest.message(), ehlo=False)
    old.quit()
    # a mismatched key: the reload fails naming the file and the running one stays
    other_cert, other_key = mxtest.make_cert(tmp, name="other")
    good_key = open(key).read()
    os.replace(other_key, key)
    p = ctl_reload(d, 1)
    assert "[listener main] TLS: " + key in p.stderr, p.stderr
    assert served_cert(d) == der_of(cert)
    # a broken key by SIGHUP: the same, logged at err
    mxtest.write_file(key, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    mark = d._log_size()
    d.hup()
    (ln,) = d.wait_log(r"event=reload_failed", since=mark)
    assert "level=err" in ln and key in ln, ln
    assert served_cert(d) == der_of(cert)
    mxtest.write_file(key, good_key)
    ctl_reload(d, 0)


def test_dkim_key_read_again_on_reload():
    tmp = mxtest.tmpdir()
    key = os.path.join(tmp, "sel.pem")
    mxtest.run([CTL, "dkim", "keygen", "example.com", "sel", "--type", "ed25519", "--out", key],
               timeout=30, check=0)
    os.chmod(key, 0o644)
    d = mxtest.Daemon(conf={"dkim_key": f"example.com sel {key}"}).start()
    good = open(key).read()
    mxtest.write_file(key, "garbage\n")  # the same dkim_key line, a broken file behind it
    p = ctl_reload(d, 1)
    assert "dkim_key" in p.stderr and key in p.stderr, p.stderr
    mxtest.write_file(key, good)
    ctl_reload(d, 0)


if __name__ == "__main__":
    mxtest.main()
