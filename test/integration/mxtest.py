"""mxtest: the harness the mxrelay integration tests share (stdlib only).

It owns: temporary directories, free ports on 127.0.0.1 chosen at run time,
config files, starting and stopping mxrelayd with its stderr in a log file,
reading the SQLite spool, a raw SMTP client with byte-exact control (plain,
STARTTLS, implicit TLS, chosen source address), wrappers around the real
command-line clients, and a tiny runner.

Runner contract: a test file defines test_* functions and ends with
`mxtest.main()`. Every test prints `ok NAME`, `skip NAME: why` or
`FAIL NAME: reason` (then an indented transcript and the daemon log tail),
and the run ends with the plain line `N passed, M failed`; the exit status
is 1 when M > 0.

Paths come from MXRELAYD, MXRELAYCTL and MXRELAY_SRC (set by ctest); without
them the build tree next to this checkout is used.
"""

import atexit
import base64
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MXRELAY_SRC") or os.path.normpath(os.path.join(HERE, "..", ".."))
MXRELAYD = os.environ.get("MXRELAYD") or os.path.join(SRC, "build", "mta", "mxrelayd")
MXRELAYCTL = os.environ.get("MXRELAYCTL") or os.path.join(SRC, "build", "tools", "mxrelayctl")
HOSTNAME = "mx.test.example"
TEST_TIMEOUT = int(os.environ.get("MXTEST_TEST_TIMEOUT", "90"))
QUEUED_RE = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-Fa-f]{16})$")


class Skip(Exception):
    """Raised by a test that cannot run here (printed as `skip`)."""


class TestTimeout(Exception):
    pass


# --------------------------------------------------------------------------
# per-test context: what to clean up and what to print when a test fails

class _Context:
    def __init__(self):
        self.all_daemons = []   # every daemon ever started, killed at exit
        self.notes = []         # transcript lines (clients, commands)
        self.daemons = []       # daemons started by the current test
        self.shared = {}        # key -> Daemon kept for the whole file
        self.tmpdirs = []
        self.clients = []
        self.cleanups = []      # callables run after the test, newest first

    def note(self, line):
        self.notes.append(line)
        if len(self.notes) > 4000:
            del self.notes[:1000]


_ctx = _Context()


def note(line):
    """Add one line to the current test's transcript (printed on failure)."""
    _ctx.note(line)


def transcript_mark():
    """A position in the current test's transcript, for transcript_since()."""
    return len(_ctx.notes)


def transcript_since(mark):
    return "\n".join(_ctx.notes[mark:])


def on_cleanup(fn):
    """Run fn() after the current test, whatever its result."""
    _ctx.cleanups.append(fn)


def tmpdir(prefix="mxtest-"):
    """A fresh directory, mode 0755 so the daemon running as nobody can traverse it."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    _ctx.tmpdirs.append(d)
    return d


def free_port(host="127.0.0.1"):
    """A TCP port that was free on host a moment ago (bind to port 0)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_udp_port(host="127.0.0.1"):
    """A UDP port with nothing behind it a moment ago: queries sent there are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listening_ports():
    ports = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if len(parts) > 3 and parts[3] == "0A":
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def write_file(path, text, mode=0o644):
    with open(path, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    os.chmod(path, mode)
    return path


def run(cmd, input=None, timeout=30, env=None, check=None, quiet=False, cwd=None):
    """Run cmd (a list) with a timeout; returns CompletedProcess with text output.

    check: expected exit status (int) or None. Output goes to the transcript.
    cwd: where to run it (a configuration without data_dir means ./var/mxrelay there).
    """
    if isinstance(input, str):
        input = input.encode()
    note("$ " + " ".join(str(c) for c in cmd))
    try:
        p = subprocess.run([str(c) for c in cmd], input=input, capture_output=True,
                           timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace") + (e.stderr or b"").decode("utf-8", "replace")
        for ln in out.splitlines()[-40:]:
            note("  " + ln)
        raise AssertionError(f"command timed out after {timeout}s: {cmd[0]}")
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    if not quiet:
        lines = (p.stdout + p.stderr).splitlines()
        for ln in lines[-80:]:
            note("  " + ln)
    note(f"  (exit {p.returncode})")
    if check is not None and p.returncode != check:
        raise AssertionError(f"{os.path.basename(str(cmd[0]))} exited {p.returncode}, expected {check}")
    return p


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; return it or fail."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# credentials and certificates

def make_creds(path, users):
    """Write a credentials file with mxrelayctl passwd.

    users: list of (user, password, senders, disabled). Password on stdin.
    """
    for user, pw, senders, disabled in users:
        cmd = [MXRELAYCTL, "passwd", user, "-f", path, "--senders", senders]
        if disabled:
            cmd.append("--disable")
        run(cmd, input=pw + "\n", timeout=30, check=0)
    os.chmod(path, 0o644)
    text = open(path).read()
    for user, *_ in users:
        assert re.search(r"^" + re.escape(user) + r":\$", text, re.M), \
            f"mxrelayctl did not write a crypt hash for {user}:\n{text}"
    return path


def make_cert(directory, cn="mx.test.example", name="cert"):
    """Self-signed RSA certificate and key (0644) via openssl; returns (cert, key)."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=" + cn, "-keyout", key, "-out", cert], timeout=60, check=0, quiet=True)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)
    return cert, key


def client_ctx(minv=None, maxv=None, ciphers=None):
    """A client TLS context that does not verify (the daemon's cert is self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minv is not None:
        ctx.minimum_version = minv
    if maxv is not None:
        ctx.maximum_version = maxv
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def legacy_ctx(version=ssl.TLSVersion.TLSv1):
    """A client that speaks only TLS 1.0 (or 1.1), like an old copier."""
    return client_ctx(version, version, "DEFAULT@SECLEVEL=0")


# --------------------------------------------------------------------------
# the daemon

DEFAULT_GLOBALS = {
    "hostname": HOSTNAME,
    "user": "nobody",
    "log": "stderr",
    "session_timeout": "60s",
    "shutdown_timeout": "5s",
}


class Daemon:
    """One mxrelayd with its own temp dir, config, data_dir and log.

    The daemon also delivers what it spools. Tests must never send traffic
    beyond loopback, so every config points the resolver at a dead UDP port on
    127.0.0.1 (lookups fail at once, deliveries are deferred) and remote MX
    hosts at a dead TCP port; after each test the log is checked for any
    outgoing connection to a non-loopback address.

    conf: global keys (None drops a default). listeners: {name: {key: value}};
    a listener without "address" gets 127.0.0.1:<free port>. wrap: an argv prefix that
    must exec mxrelayd (the pid stays the daemon's), e.g. ["ip", "netns", "exec", NS].
    """

    def __init__(self, conf=None, listeners=None, tmp=None, data_dir=None, shared=False,
                 wrap=None):
        self.wrap = [str(a) for a in wrap or ()]   # argv prefix, e.g. ip netns exec NS
        self.tmp = tmp or tmpdir()
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.conf_path = os.path.join(self.tmp, "mxrelay.conf")
        self.log_path = os.path.join(self.tmp, "mxrelayd.log")
        self.proc = None
        self.stopping = False
        self.mark = 0
        self.ports = {}
        self.hosts = {}
        self.name = "mxrelayd"
        self.conf = dict(DEFAULT_GLOBALS)
        self.conf["data_dir"] = self.data_dir
        self.conf["dns_servers"] = f"127.0.0.1:{free_udp_port()}"
        self.conf["smtp_port"] = str(free_port())
        self.listeners = {}
        self.configure(conf, listeners if listeners is not None else {"main": {}})
        if not shared:
            _ctx.daemons.append(self)

    # config ------------------------------------------------------------
    def configure(self, conf=None, listeners=None):
        """Change globals/listeners and rewrite the config file (ports are kept)."""
        for k, v in (conf or {}).items():
            if v is None:
                self.conf.pop(k, None)
            else:
                self.conf[k] = v
        if listeners is not None:
            self.listeners = {}
            for name, keys in listeners.items():
                keys = dict(keys)
                if "address" not in keys:
                    if name in self.ports:
                        keys["address"] = f"127.0.0.1:{self.ports[name]}"
                    else:
                        keys["address"] = f"127.0.0.1:{free_port()}"
                m = re.match(r"^\[?([^\]]+?)\]?:(\d+)$", keys["address"])
                if m:
                    self.hosts[name] = m.group(1)
                    self.ports[name] = int(m.group(2))
                self.listeners[name] = keys
        self.write_config()

    def config_text(self):
        out = ["# written by mxtest"]
        for k, v in self.conf.items():
            out.append(f"{k} = {v}")
        for name, keys in self.listeners.items():
            out.append("")
            out.append(f"[listener {name}]")
            for k, v in keys.items():
                out.append(f"{k} = {v}")
        return "\n".join(out) + "\n"

    def write_config(self):
        write_file(self.conf_path, self.config_text())

    def port(self, name="main"):
        return self.ports[name]

    # process -----------------------------------------------------------
    def start(self, wait=True, timeout=20):
        if not os.path.exists(MXRELAYD):
            raise AssertionError(f"mxrelayd not found at {MXRELAYD}")
        self.mark = self._log_size()
        self.start_mark = self.mark
        logf = open(self.log_path, "ab")
        note(f"# start {MXRELAYD} -c {self.conf_path}")
        self.proc = subprocess.Popen(self.wrap + [MXRELAYD, "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf, cwd=self.tmp)
        logf.close()
        _ctx.all_daemons.append(self)
        self.stopping = False
        self.started_at = time.monotonic()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20):
        """Ready = a log line with event=ready, or (logging elsewhere than stderr)
        every listener port in LISTEN for a second with the process still alive.
        The ports listen before the spool and the sockets are open (slow under
        ASan on a busy machine): with a log, only event=ready counts."""
        deadline = time.monotonic() + timeout
        listen_since = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"mxrelayd exited during startup with status {self.proc.returncode}")
            if re.search(r"\bevent=ready\b", self.log(since=self.start_mark)):
                return
            if self.conf.get("log") != "stderr" and set(self.ports.values()) <= _listening_ports():
                listen_since = listen_since or time.monotonic()
                if time.monotonic() - listen_since > 1.0:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"mxrelayd not ready after {timeout}s")
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        note(f"# kill -{signal.Signals(sig).name} mxrelayd")
        if sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGINT):
            self.stopping = True
        self.proc.send_signal(sig)

    def hup(self):
        self.signal(signal.SIGHUP)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit status (fails if it does not exit)."""
        if not self.alive():
            self.stopping = True
            return self.proc.returncode if self.proc else None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"mxrelayd did not exit within {timeout}s of SIGTERM")

    def kill(self):
        if self.proc is None:
            return None
        self.stopping = True
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
        return self.proc.wait(10)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    # log ---------------------------------------------------------------
    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def grep(self, pattern, since=None):
        """Log lines (since the current test began) matching regex pattern."""
        text = self.log(self.mark if since is None else since)
        return [ln for ln in text.splitlines() if re.search(pattern, ln)]

    def wait_log(self, pattern, timeout=5.0, since=None):
        return wait_for(lambda: self.grep(pattern, since), timeout, what=f"log line /{pattern}/")

    def tail(self, n=40, since=0):
        return self.log(since).splitlines()[-n:]

    # spool -------------------------------------------------------------
    def db(self):
        path = os.path.join(self.data_dir, "spool.db")
        if not os.path.exists(path):
            raise AssertionError(f"no spool database at {path}")
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        con.row_factory = sqlite3.Row
        return con

    def query(self, sql, args=()):
        con = self.db()
        try:
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()

    def messages(self, received_only=False):
        """Every spooled message as a dict with 'rcpts' (list) and 'body' (bytes).

        received_only: skip messages the daemon made itself (bounces have no client_ip),
        which the delivery engine may add or remove at any moment.
        """
        con = self.db()
        where = " WHERE client_ip IS NOT NULL" if received_only else ""
        try:
            out = []
            old_chunks = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'body_chunks'"
                                     ).fetchone() is not None
            for r in con.execute("SELECT * FROM messages" + where + " ORDER BY id"):
                m = dict(r)
                m["rcpts"] = [x[0] for x in con.execute(
                    "SELECT address FROM recipients WHERE msg_id = ? ORDER BY id", (m["id"],))]
                chunks = [x[0] for x in con.execute(
                    "SELECT data FROM bodies WHERE msg_id = ? ORDER BY seq", (m["id"],))]
                if not chunks and old_chunks:   # stored before schema version 4
                    chunks = [x[0] for x in con.execute(
                        "SELECT data FROM body_chunks WHERE msg_id = ? ORDER BY seq", (m["id"],))]
                m["body"] = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
                out.append(m)
            return out
        finally:
            con.close()

    def message(self, qid):
        for m in self.messages():
            if m["qid"] == qid:
                return m
        raise AssertionError(f"queue id {qid} not in the spool")

    def count(self, received_only=False):
        where = " WHERE client_ip IS NOT NULL" if received_only else ""
        return self.query("SELECT count(*) AS n FROM messages" + where)[0]["n"]

    # clients -----------------------------------------------------------
    def connect(self, listener="main", **kw):
        host = kw.pop("host", self.hosts.get(listener, "127.0.0.1"))
        if self.listeners.get(listener, {}).get("tls") == "implicit":
            kw.setdefault("implicit_tls", True)
        return Smtp(self.port(listener), host=host, **kw)

    def starttls_with(self, listener, ctx, src=None):
        """EHLO, STARTTLS and a handshake with ctx (e.g. an old copier's legacy_ctx()):
        (session, "") or, when the handshake fails, (None, the error text)."""
        s = self.connect(listener, src=src)
        s.ehlo()
        s.cmd("STARTTLS", 220, "2.0.0")
        try:
            s.wrap(ctx)
        except (ssl.SSLError, OSError) as e:
            s.close()
            return None, str(e)
        return s, ""


def shared_daemon(key, factory):
    """A daemon kept running for every test of the file (started on first use)."""
    d = _ctx.shared.get(key)
    if d is None or not d.alive():
        d = factory()
        if d in _ctx.daemons:
            _ctx.daemons.remove(d)
        _ctx.shared[key] = d
        d.mark = d._log_size()
    return d


# --------------------------------------------------------------------------
# the raw SMTP client

class ConnectionClosed(AssertionError):
    pass


class Reply:
    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[-1][:3])
        first = lines[0][4:]
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3})(?:\s|$)", first)
        self.enh = m.group(1) if m else None
        self.text = "\n".join(ln[4:] for ln in lines)

    def __str__(self):
        return " | ".join(self.lines)

    def expect(self, code, enh=None):
        if self.code != code or (enh is not None and self.enh != enh):
            want = f"{code} {enh}" if enh else str(code)
            raise AssertionError(f"expected {want}, got: {self}")
        return self

    def qid(self):
        m = QUEUED_RE.match(self.lines[-1])
        if not m:
            raise AssertionError(f"expected '250 2.0.0 Ok: queued as <16 hex>', got: {self}")
        return m.group(1)


def _show(data):
    s = data.decode("latin-1")
    s = s.replace("\r", "\\r").replace("\n", "\\n\n")
    return [x for x in s.split("\n") if x != ""]


class Smtp:
    """A byte-exact SMTP client. Every byte in and out goes to the transcript."""

    def __init__(self, port, host="127.0.0.1", src=None, implicit_tls=False, ctx=None,
                 timeout=10, banner=True, tag=None):
        self.tag = tag or f"{host}:{port}"
        self.timeout = timeout
        self.buf = b""
        self.tls = None
        self.ext = {}
        src_addr = (src, 0) if src else None
        note(f"# {self.tag}: connect" + (f" from {src}" if src else ""))
        self.sock = socket.create_connection((host, port), timeout, source_address=src_addr)
        _ctx.clients.append(self)
        self.banner = None
        if implicit_tls:
            self.wrap(ctx)
        if banner:
            self.banner = self.reply()

    # bytes ---------------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        for ln in _show(data)[:60]:
            note(f"C: {ln}")
        self.sock.sendall(data)

    def _recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as e:
            note(f"# {self.tag}: {e.__class__.__name__}")
            return b""
        except ssl.SSLError as e:
            note(f"# {self.tag}: TLS error {e}")
            return b""
        finally:
            self.sock.settimeout(self.timeout)
        return data

    def readline(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply within {timeout}s (partial: {self.buf!r})")
            try:
                data = self._recv(left)
            except socket.timeout:
                continue
            if not data:
                raise ConnectionClosed(f"connection closed by server (partial: {self.buf!r})")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode("utf-8", "replace")
        note(f"S: {text.rstrip(chr(13))}" + ("" if text.endswith("\r") else "   [no CR]"))
        return text.rstrip("\r")

    def reply(self, timeout=None):
        lines = []
        while True:
            ln = self.readline(timeout)
            if not re.match(r"^\d{3}[ -]", ln) and not re.match(r"^\d{3}$", ln):
                raise AssertionError(f"malformed reply line: {ln!r}")
            lines.append(ln)
            if len(ln) == 3 or ln[3] == " ":
                return Reply(lines)

    def cmd(self, line, code=None, enh=None, timeout=None):
        self.send(line + "\r\n")
        r = self.reply(timeout)
        if code is not None:
            r.expect(code, enh)
        return r

    def silent(self, wait=1.0):
        """Fail if the server sends anything within wait seconds (EOF is fine)."""
        if self.buf:
            raise AssertionError(f"unexpected data from server: {self.buf!r}")
        try:
            data = self._recv(wait)
        except socket.timeout:
            return
        if data:
            self.buf += data
            raise AssertionError(f"unexpected data from server: {data!r}")

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout (data is discarded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self._recv(max(0.01, deadline - time.monotonic()))
            except socket.timeout:
                continue
            except OSError:
                return True
            if not data:
                return True
            for ln in _show(data):
                note(f"S: {ln}")
        return False

    # SMTP ------------------------------------------------------------------
    def ehlo(self, name="client.test.example", code=250):
        r = self.cmd(f"EHLO {name}", code)
        self.ext = {}
        for ln in r.lines[1:]:
            parts = ln[4:].split(None, 1)
            if parts:
                self.ext[parts[0].upper()] = parts[1] if len(parts) > 1 else ""
        return r

    def wrap(self, ctx=None):
        """Start TLS on the socket (implicit TLS, or after a 220 to STARTTLS)."""
        if self.buf:
            raise AssertionError(f"plaintext data before the TLS handshake: {self.buf!r}")
        ctx = ctx or client_ctx()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=None)
        self.tls = (self.sock.version(), self.sock.cipher()[0])
        note(f"# {self.tag}: TLS {self.tls[0]} {self.tls[1]}")

    def starttls(self, ctx=None):
        self.cmd("STARTTLS", 220, "2.0.0")
        self.wrap(ctx)

    def auth_plain(self, user, password, initial=True, authzid=""):
        tok = base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
        if initial:
            return self.cmd("AUTH PLAIN " + tok)
        r = self.cmd("AUTH PLAIN")
        if r.code != 334:
            return r
        return self.cmd(tok)

    def auth_login(self, user, password, initial=False):
        u = base64.b64encode(user.encode()).decode()
        p = base64.b64encode(password.encode()).decode()
        if initial:
            r = self.cmd("AUTH LOGIN " + u)
        else:
            r = self.cmd("AUTH LOGIN")
            if r.code != 334:
                return r
            r = self.cmd(u)
        if r.code != 334:
            return r
        return self.cmd(p)

    def data(self, body, stuff=True):
        """DATA, the body (dot-stuffed unless stuff=False) and the final dot; returns the reply."""
        self.cmd("DATA", 354)
        return self.send_body(body, stuff)

    def send_body(self, body, stuff=True):
        if isinstance(body, str):
            body = body.encode()
        if stuff:
            body = dot_stuff(body)
        if not body.endswith(b"\r\n") and body:
            body += b"\r\n"
        self.send(body + b".\r\n")
        return self.reply(timeout=max(self.timeout, 30))

    def mail(self, sender, rcpts, body, ehlo=True):
        """A whole transaction that must succeed; returns the queue id."""
        if ehlo and not self.ext:
            self.ehlo()
        self.cmd(f"MAIL FROM:<{sender}>", 250)
        for r in rcpts:
            self.cmd(f"RCPT TO:<{r}>", 250)
        return self.data(body).qid()

    def quit(self):
        try:
            self.cmd("QUIT", 221, "2.0.0")
        finally:
            self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def dot_stuff(body):
    out = []
    for ln in body.split(b"\r\n"):
        out.append(b"." + ln if ln.startswith(b".") else ln)
    return b"\r\n".join(out)


def message(frm="sender@example.com", to="rcpt@example.net", subject="test", body="hello\r\n",
            headers=None, date=True, msgid=True):
    """An RFC 5322 message with CRLF line ends (str)."""
    h = [f"From: <{frm}>", f"To: <{to}>", f"Subject: {subject}"]
    if date:
        h.append("Date: Mon, 01 Jan 2024 10:00:00 +0000")
    if msgid:
        h.append(f"Message-ID: <{time.time_ns()}.{threading.get_ident()}@client.test.example>")
    h += list(headers or [])
    return "\r\n".join(h) + "\r\n\r\n" + body


def headers_of(body):
    """The header block of a stored body as a list of unfolded header lines (str)."""
    text = body.decode("utf-8", "replace")
    head = text.split("\r\n\r\n", 1)[0]
    out = []
    for ln in head.split("\r\n"):
        if ln[:1] in (" ", "\t") and out:
            out[-1] += " " + ln.strip()
        else:
            out.append(ln)
    return out


def header_values(body, name):
    pre = name.lower() + ":"
    return [h.split(":", 1)[1].strip() for h in headers_of(body) if h.lower().startswith(pre)]


# --------------------------------------------------------------------------
# real clients

def swaks(port, *args, server="127.0.0.1", frm="sender@example.com", to="rcpt@example.net",
          timeout=40, check=None):
    cmd = ["swaks", "--server", server, "--port", str(port), "--from", frm, "--to", to,
           "--helo", "swaks.test.example"] + list(args)
    return run(cmd, timeout=timeout, check=check)


def swaks_qid(p):
    m = re.findall(r"<[-~]*\s+250 2\.0\.0 Ok: queued as ([0-9A-Fa-f]{16})\s*$", p.stdout, re.M)
    if not m:
        raise AssertionError("swaks did not see '250 2.0.0 Ok: queued as <16 hex>'")
    return m[-1]


def curl(url, *args, frm="sender@example.com", to="rcpt@example.net", body=None, timeout=40,
         check=None, directory=None):
    """curl sending body (str) from a file; -v so the transcript shows the SMTP replies."""
    directory = directory or tmpdir()
    path = os.path.join(directory, "curl-msg.eml")
    write_file(path, body or message(frm, to, "via curl", "sent with curl\r\n"))
    cmd = ["curl", "-sS", "-v", "--max-time", str(timeout - 5), "--url", url,
           "--mail-from", frm, "--mail-rcpt", to, "-T", path] + list(args)
    return run(cmd, timeout=timeout, check=check)


def curl_qid(p):
    m = re.findall(r"^< 250 2\.0\.0 Ok: queued as ([0-9A-Fa-f]{16})\s*$", p.stderr, re.M)
    if not m:
        raise AssertionError("curl did not see '250 2.0.0 Ok: queued as <16 hex>'")
    return m[-1]


# --------------------------------------------------------------------------
# runner

def _alarm(signum, frame):
    raise TestTimeout(f"test took longer than {TEST_TIMEOUT}s")


def _crash_check(daemons):
    """Fail when a daemon exited on its own, or a sanitizer reported."""
    problems = []
    for d in daemons:
        if d.proc is not None and d.proc.poll() is not None and not d.stopping:
            problems.append(f"mxrelayd exited unexpectedly with status {d.proc.returncode}")
        bad = d.grep(r"(AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault)")
        if bad:
            problems.append("sanitizer report in daemon log: " + bad[0])
        for ln in d.grep(r"event=(delivery|connected|connect_failed|bounce)\b"):
            v4 = re.findall(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w.])", ln)
            v6 = re.findall(r"\[([0-9a-fA-F]*:[0-9a-fA-F:]*:[0-9a-fA-F]*)\]", ln)
            if [a for a in v4 if not a.startswith("127.")] or [a for a in v6 if a != "::1"]:
                problems.append("outgoing traffic beyond loopback: " + ln)
    return problems


def _stop_test_daemons():
    """SIGTERM the current test's daemons (so exit-time reports such as leaks reach the log)."""
    for d in _ctx.daemons:
        if d.alive():
            d.stopping = True
            d.proc.send_signal(signal.SIGTERM)
            try:
                d.proc.wait(10)
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait(5)


def _cleanup(passed):
    for fn in reversed(_ctx.cleanups):
        try:
            fn()
        except Exception as e:  # cleanup must not mask the result
            print(f"  cleanup error: {e}")
    for c in _ctx.clients:
        c.close()
    for d in _ctx.daemons:
        if d.alive():
            d.stopping = True
            d.proc.send_signal(signal.SIGTERM)
            try:
                d.proc.wait(3)
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait(5)
    shared_dirs = {d.tmp for d in _ctx.shared.values()}
    if passed or not os.environ.get("MXTEST_KEEP"):
        for t in _ctx.tmpdirs:
            if t not in shared_dirs:
                shutil.rmtree(t, ignore_errors=True)
        _ctx.tmpdirs = [t for t in _ctx.tmpdirs if t in shared_dirs]
    _ctx.cleanups, _ctx.clients, _ctx.daemons, _ctx.notes = [], [], [], []


def _report_failure(name, exc):
    reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    print(f"FAIL {name}: {reason}")
    tb = traceback.extract_tb(exc.__traceback__)
    for fr in tb[1:]:
        if fr.filename.endswith(".py"):
            print(f"    at {os.path.basename(fr.filename)}:{fr.lineno}: {fr.line}")
    if "\n" in str(exc):
        for ln in str(exc).splitlines()[1:30]:
            print("    " + ln)
    if _ctx.notes:
        print("    --- transcript (last lines) ---")
        for ln in _ctx.notes[-70:]:
            print("    " + ln)
    seen = []
    for d in list(_ctx.daemons) + list(_ctx.shared.values()):
        if d in seen:
            continue
        seen.append(d)
        since = d.mark if d in _ctx.shared.values() else 0
        lines = d.tail(30, since)
        print(f"    --- daemon log tail ({d.log_path}) ---")
        for ln in lines:
            print("    " + ln)


def _kill_all():
    """Last resort when the runner itself is going away: no daemon outlives it."""
    for d in _ctx.all_daemons:
        if d.proc is not None and d.proc.poll() is None:
            try:
                d.proc.kill()
                d.proc.wait(5)
            except Exception:
                pass
    if not os.environ.get("MXTEST_KEEP"):
        for t in _ctx.tmpdirs:
            shutil.rmtree(t, ignore_errors=True)


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main():
    ns = sys.modules["__main__"].__dict__
    atexit.register(_kill_all)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    tests = [(n, f) for n, f in list(ns.items()) if n.startswith("test_") and callable(f)]
    only = sys.argv[1:]
    if only:
        tests = [(n, f) for n, f in tests if n in only]
    signal.signal(signal.SIGALRM, _alarm)
    passed = failed = 0
    t_all = time.monotonic()
    for name, fn in tests:
        for d in _ctx.shared.values():
            d.mark = d._log_size()
        t0 = time.monotonic()
        ok = False
        signal.alarm(TEST_TIMEOUT)
        try:
            fn()
            signal.alarm(0)
            _stop_test_daemons()
            problems = _crash_check(list(_ctx.daemons) + list(_ctx.shared.values()))
            if problems:
                raise AssertionError("; ".join(problems))
            ok = True
            passed += 1
            print(f"ok {name}")
            if os.environ.get("MXTEST_TIMES"):
                print(f"#   {time.monotonic() - t0:.1f}s")
        except Skip as e:
            signal.alarm(0)
            ok = True
            print(f"skip {name}: {e}")
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            signal.alarm(0)
            failed += 1
            _report_failure(name, e)
        finally:
            signal.alarm(0)
            _cleanup(ok)
        sys.stdout.flush()
    for d in _ctx.shared.values():
        if d.alive():
            d.stopping = True
            d.proc.send_signal(signal.SIGTERM)
            try:
                d.proc.wait(5)
            except subprocess.TimeoutExpired:
                d.proc.kill()
    if not failed or not os.environ.get("MXTEST_KEEP"):
        for t in _ctx.tmpdirs:
            shutil.rmtree(t, ignore_errors=True)
    print(f"# {os.path.basename(sys.argv[0])}: {time.monotonic() - t_all:.1f}s")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
