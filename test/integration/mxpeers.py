"""mxpeers: the real peers the delivery tests talk to (stdlib in the test
process; aiosmtpd only inside the sink child process).

- Nsd: nsd in the foreground on 127.0.0.1:<free port> serving the test zone
  `dlv.test` (built by delivery_zone()) and a zone `servfail.test` whose zone
  file is missing (nsd answers SERVFAIL for it).
- Sinks: one child process (Debian /usr/bin/python3 running this file) with
  aiosmtpd listeners on 127.A.B.X:P for every host of a test. Each accepted
  message is saved with its envelope, the listener that took it, the
  connection number and the connection's TLS state; every connection, EHLO,
  STARTTLS, MAIL, RCPT and DATA is appended to events.jsonl.
  Recipient local parts choose the answer: `perm-*` -> 550 5.1.1,
  `tempN-*` -> 451 4.2.0 the first N times (per address) then 250,
  `tempforever-*` -> always 451, `stall-*` -> the DATA reply is held (see the
  listener's `stall` option).
- Relay: an mxtest.Daemon configured for delivery into those peers.

Addresses: every run picks its own 127.A.B.0/24 (A, B random), so parallel
test files never meet. Nothing here sends traffic outside 127.0.0.0/8 and
::1; the zone's one non-loopback address (10.1.2.3, for the private-MX
refusal) must only be used with allow_private_mx = no.
"""

import atexit
import ctypes
import email
import email.policy
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time

import dnsns

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PYTHON = "/usr/bin/python3"
ZONE = "dlv.test"
SERVFAIL_ZONE = "servfail.test"
PRIVATE_IP = "10.1.2.3"   # MX of private.dlv.test: never connect there

_children = []


def _kill_children():
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:
                pass


atexit.register(_kill_children)


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when the test process dies (even by SIGKILL)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, preexec_fn=_die_with_parent, **kw)
    _children.append(p)
    return p


def stop_child(p, timeout=5):
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


# --------------------------------------------------------------------------
# addresses and the zone

def _pick_net():
    rnd = random.SystemRandom()
    return f"127.{rnd.randint(100, 250)}.{rnd.randint(1, 254)}"


NET = _pick_net()


def ip(last):
    """An address of this run's 127.A.B.0/24."""
    return f"{NET}.{last}"


# host name (relative to dlv.test) -> last octet, or a full address
HOSTS = {
    "mx.sender": 10,         # the sender's MX: where DSNs go
    "mx1.best": 11, "mx2.best": 12,
    "down.backup": 20,       # nothing ever listens there
    "up.backup": 21,
    "greet.walk": 22,        # 421 greeting
    "silent.walk": 23,       # accepts TCP, never greets
    "a.equal": 30, "b.equal": 31,
    "implicit": 40,          # A only, no MX
    "mx.tls": 50, "mx.plain": 51, "mx.oldtls": 52,
    "mx.sink": 60, "mx.no8bit": 61, "mx.noutf8": 62, "mx.small": 63, "mx.stall": 64,
    "mx.routed": 70,         # the MX that a route must bypass
    "relay": 71,             # route target (by name)
    "mx.loop": 80,           # loopback MX, refused with allow_private_mx = no
}
EQUAL_DOMAINS = 16


def host_ip(name):
    v = HOSTS[name]
    return ip(v) if isinstance(v, int) else v


def delivery_zone():
    z = [f"$ORIGIN {ZONE}.", "$TTL 60",
         f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60",
         f"@ IN NS ns.{ZONE}.", "ns IN A 127.0.0.1"]
    for name in HOSTS:
        z.append(f"{name} IN A {host_ip(name)}")
    z += [
        "sender IN MX 10 mx.sender",
        "best IN MX 20 mx2.best", "best IN MX 10 mx1.best",
        "backup IN MX 5 down.backup", "backup IN MX 10 up.backup",
        "walk IN MX 5 down.backup", "walk IN MX 10 silent.walk",
        "walk IN MX 15 greet.walk", "walk IN MX 20 up.backup",
        "nullmx IN MX 0 .",
        "private IN MX 10 mx.private", f"mx.private IN A {PRIVATE_IP}",
        "loop IN MX 10 mx.loop",
        "v6 IN MX 10 mx.v6", "mx.v6 IN AAAA ::1",
        "tls IN MX 10 mx.tls", "plain IN MX 10 mx.plain", "oldtls IN MX 10 mx.oldtls",
        "sink IN MX 10 mx.sink", "sink2 IN MX 10 mx.sink",
        "no8bit IN MX 10 mx.no8bit", "noutf8 IN MX 10 mx.noutf8",
        "small IN MX 10 mx.small", "stall IN MX 10 mx.stall",
        "routed IN MX 10 mx.routed", "lit IN MX 10 mx.routed",
    ]
    for i in range(1, EQUAL_DOMAINS + 1):
        z += [f"equal{i} IN MX 10 a.equal", f"equal{i} IN MX 10 b.equal"]
    return "\n".join(z) + "\n"


# --------------------------------------------------------------------------
# a minimal DNS client (readiness checks only)

def dns_query(port, name, qtype=6, timeout=0.5):
    """(rcode, ancount) of one UDP query to 127.0.0.1:port, or None on timeout."""
    qid = random.randint(0, 0xffff)
    q = struct.pack(">HHHHHH", qid, 0x0000, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        try:
            data = s.recv(4096)
        except socket.timeout:
            return None
    rid, flags, _, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    if rid != qid:
        return None
    return flags & 0xf, an


def _udp_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Nsd:
    """nsd -d on 127.0.0.1:<free port> with the given zones (text, or None = SERVFAIL)."""

    def __init__(self, directory, zones):
        self.dir = directory
        self.zones = zones
        self.port = None
        self.proc = None

    def _write(self):
        d = self.dir
        conf = dnsns.nsd_conf(d, listen=(f"127.0.0.1@{self.port}",), port=self.port)
        for name, text in self.zones.items():
            conf += ["zone:", f"    name: {name}", f'    zonefile: "{d}/{name}.zone"']
            path = os.path.join(d, name + ".zone")
            if text is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                with open(path, "w") as f:
                    f.write(text)
        with open(os.path.join(d, "nsd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")

    def start(self):
        for _ in range(5):
            port = _free_tcp_udp_port()
            self.port = port
            self._write()
            log = open(os.path.join(self.dir, "nsd.out"), "ab")
            self.proc = spawn(["nsd", "-d", "-c", os.path.join(self.dir, "nsd.conf")],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            first = next(iter(n for n, t in self.zones.items() if t is not None))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                r = dns_query(port, first, 6, 0.2)
                if r and r[0] == 0 and r[1] >= 1:
                    return self
                time.sleep(0.05)
            stop_child(self.proc)
        raise AssertionError("nsd did not start; its output:\n" + self.output())

    def output(self):
        out = ""
        for f in ("nsd.out", "nsd.log"):
            try:
                out += open(os.path.join(self.dir, f), errors="replace").read()
            except OSError:
                pass
        return out

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        stop_child(self.proc)


def _free_tcp_udp_port():
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if _udp_free(port):
            return port
    raise AssertionError("no free port for nsd")


_nsd = None


def nsd():
    """The nsd of this test file (started on first use, killed at exit)."""
    global _nsd
    import mxtest
    if _nsd is None or not _nsd.alive():
        d = mxtest.tempfile.mkdtemp(prefix="mxnsd-")
        atexit.register(lambda: mxtest.shutil.rmtree(d, ignore_errors=True))
        _nsd = Nsd(d, {ZONE: delivery_zone(), SERVFAIL_ZONE: None}).start()
        atexit.register(_nsd.stop)
        mxtest.note(f"# nsd on 127.0.0.1:{_nsd.port}, test net {NET}.0/24")
    return _nsd


# --------------------------------------------------------------------------
# sinks: the parent side

_cert = None


def _sink_cert():
    """One self-signed certificate for every TLS sink of this test file."""
    global _cert
    import mxtest
    if _cert is None or not os.path.exists(_cert[0]):
        d = mxtest.tempfile.mkdtemp(prefix="mxsinkcert-")
        os.chmod(d, 0o755)
        atexit.register(lambda: mxtest.shutil.rmtree(d, ignore_errors=True))
        _cert = mxtest.make_cert(d, cn="mx.sink." + ZONE, name="sink")
    return _cert


class Msg:
    def __init__(self, meta, data):
        self.meta = meta
        self.data = data
        self.__dict__.update(meta)

    def parsed(self):
        return email.message_from_bytes(self.data, policy=email.policy.compat32)

    def __repr__(self):
        return (f"<msg #{self.seq} at {self.listener} conn {self.conn} from <{self.mail_from}> "
                f"to {self.rcpts} tls={self.tls}>")


class Sinks:
    """aiosmtpd listeners in one child process.

    listeners: {name: options}; options: host (default: the address of HOSTS[name]),
    port (default: the shared port P; "alt": a second port, .port2), tls (True or {"max": "TLSv1_1"}), drop (EHLO
    keywords to leave out: 8BITMIME, SMTPUTF8, SIZE, STARTTLS), add (keywords to add,
    e.g. PIPELINING), size (SIZE limit), kind ("smtp", "silent": never greets,
    "greet": answers every line with `greeting`), greeting, stall ({"seconds", "times"}
    for stall-* recipients). A listener named "mx.sender" (the DSN sink) is always added.
    tls dict keys: max (highest version), cert/key (PEM paths; default one self-signed
    certificate), client_ca (PEM path: a client certificate signed by it is required;
    its subject lands in the starttls event and the message as peer_cert). A failed
    handshake is a tls_failed event (with error). starttls_reply (listener option): the
    answer to STARTTLS instead of 220, e.g. "454 4.7.0 TLS not available".
    Events mail, rcpt and data carry tls (the TLS version, or None in plaintext).

    wrap: an argv prefix for the child (ip netns exec NS); port: a fixed port (e.g. 25
    inside a namespace) instead of a free one.
    """

    def __init__(self, listeners, tmp=None, wrap=None, port=None):
        import mxtest
        self.mx = mxtest
        self.dir = tmp or mxtest.tmpdir("mxsink-")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.out, exist_ok=True)
        self.listeners = {"mx.sender": {}}
        self.listeners.update(listeners)
        self.port = self.port2 = None
        self.proc = None
        self.cert = None
        self.wrap = [str(a) for a in wrap or ()]
        self.fixed_port = port
        mxtest.on_cleanup(self.stop)

    def _config(self):
        cfg = {"outdir": self.out, "listeners": []}
        for name, o in self.listeners.items():
            o = dict(o)
            o.setdefault("host", host_ip(name) if name in HOSTS else None)
            if o.get("port") == "alt":
                o["port"] = self.port2
            o.setdefault("port", self.port)
            o["name"] = name
            if o.get("tls"):
                t = o["tls"] if isinstance(o["tls"], dict) else {}
                if not t.get("cert"):
                    if self.cert is None:
                        self.cert = _sink_cert()
                    t = dict(t, cert=self.cert[0], key=self.cert[1])
                o["tls"] = t
            cfg["listeners"].append(o)
        return cfg

    def start(self):
        for _ in range(6):
            self.port = self.fixed_port or self.mx.free_port()
            self.port2 = self.mx.free_port()
            cfg = self._config()
            path = os.path.join(self.dir, "sink.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            err = open(os.path.join(self.dir, "sink.err"), "ab")
            self.proc = spawn(self.wrap + [DEBIAN_PYTHON, os.path.join(HERE, "mxpeers.py"), "sink",
                                           path],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
            err.close()
            line = self._readline(15)
            if line == "ready":
                self.mx.note(f"# sinks on port {self.port}: " + ", ".join(
                    f"{o['name']}={o['host']}" for o in cfg["listeners"]))
                return self
            stop_child(self.proc)
            if line != "bindfail":
                raise AssertionError(f"sink did not start ({line!r}):\n" + self.stderr())
        raise AssertionError("sink: no free port after 6 tries")

    def _readline(self, timeout):
        import select
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return None
        return self.proc.stdout.readline().decode(errors="replace").strip()

    def stderr(self):
        try:
            return open(os.path.join(self.dir, "sink.err"), errors="replace").read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        stop_child(self.proc)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # results -----------------------------------------------------------
    def messages(self, listener=None):
        out = []
        for f in sorted(os.listdir(self.out)):
            if not f.endswith(".json"):
                continue
            try:
                meta = json.load(open(os.path.join(self.out, f)))
            except ValueError:
                continue    # being written
            data = open(os.path.join(self.out, f[:-5] + ".eml"), "rb").read()
            if listener is None or meta["listener"] == listener:
                out.append(Msg(meta, data))
        out.sort(key=lambda m: m.seq)
        return out

    def events(self, kind=None, listener=None):
        out = []
        try:
            with open(os.path.join(self.out, "events.jsonl")) as f:
                for ln in f:
                    if not ln.endswith("\n"):
                        break
                    e = json.loads(ln)
                    if (kind is None or e["ev"] == kind) and \
                            (listener is None or e["listener"] == listener):
                        out.append(e)
        except OSError:
            pass
        return out

    def connections(self, listener=None):
        return len(self.events("connect", listener))

    def wait_messages(self, n, listener=None, timeout=15, pred=None):
        """Wait until at least n saved messages (matching pred) exist; return them all."""
        def have():
            if not self.alive():
                raise AssertionError("sink process died:\n" + self.stderr())
            ms = [m for m in self.messages(listener) if pred is None or pred(m)]
            return ms if len(ms) >= n else None
        try:
            return self.mx.wait_for(have, timeout, 0.05, f"{n} message(s) at sink {listener or ''}")
        except AssertionError:
            self.dump()
            raise

    def dump(self):
        self.mx.note("# sink events:")
        for e in self.events()[-60:]:
            self.mx.note("#   " + json.dumps(e))


# --------------------------------------------------------------------------
# the relay

def _make_relay_class():
    import mxtest

    class _Relay(mxtest.Daemon):
        """mxtest.Daemon plus repeated `route = ...` lines."""

        def __init__(self, *a, routes=(), **kw):
            self.routes = list(routes)
            super().__init__(*a, **kw)

        def config_text(self):
            text = super().config_text()
            if not self.routes:
                return text
            head, sep, rest = text.partition("\n[listener")
            lines = "".join(f"route = {r}\n" for r in self.routes)
            return head.rstrip("\n") + "\n" + lines + sep + rest

    return _Relay


def relay(sinks, conf=None, routes=(), start=True):
    """A daemon delivering through this file's nsd to sinks' port."""
    cls = _make_relay_class()
    c = {
        "dns_servers": f"127.0.0.1:{nsd().port}",
        "allow_private_mx": "yes",
        "smtp_port": str(sinks.port) if sinks else "25",
        "retry_min": "1s",
        "retry_max": "2s",
        "helo_name": "relay-helo.test.example",
        "source_ipv4": ip(250),
        "smtp_connect_timeout": "3s",
        "smtp_command_timeout": "5s",
        "smtp_data_timeout": "20s",
    }
    c.update(conf or {})
    d = cls(conf=c, routes=routes)
    if start:
        d.start()
    return d


# --------------------------------------------------------------------------
# submitting and reading the log

SENDER = f"alice@sender.{ZONE}"


def submit(d, rcpts, body=None, sender=SENDER, subject="delivery test", mail_options=(),
           rcpt_options=()):
    """One message through smtplib; returns the queue id."""
    import smtplib
    import mxtest
    if body is None:
        body = mxtest.message(sender, rcpts[0], subject, "delivery test body\r\n")
    if isinstance(body, str):
        body = body.encode()
    mxtest.note(f"# smtplib: <{sender}> -> {rcpts} ({len(body)} bytes) {list(mail_options)}")
    with smtplib.SMTP("127.0.0.1", d.port(), timeout=20) as s:
        s.ehlo("submitter.test.example")
        code, resp = s.mail(sender, list(mail_options))
        assert code == 250, f"MAIL FROM: {code} {resp}"
        for r in rcpts:
            code, resp = s.rcpt(r, list(rcpt_options))
            assert code == 250, f"RCPT TO:<{r}>: {code} {resp}"
        code, resp = s.data(body)
        resp = resp.decode(errors="replace")
        m = re.search(r"queued as ([0-9A-Fa-f]{16})", resp)
        assert code == 250 and m, f"DATA: {code} {resp}"
    mxtest.note(f"#   queued as {m.group(1)}")
    return m.group(1)


_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_line(line):
    out = {}
    for k, v in _KV.findall(line):
        if v.startswith('"'):
            v = v[1:-1]
        out.setdefault(k, v)
    return out


def events(d, event, since=0, **match):
    """Parsed log lines with event=EVENT (and the given key=value) since a log offset."""
    out = []
    for ln in d.log(since).splitlines():
        if f"event={event}" not in ln:
            continue
        kv = parse_line(ln)
        if kv.get("event") == event and all(kv.get(k) == v for k, v in match.items()):
            kv["_line"] = ln
            out.append(kv)
    return out


def wait_event(d, event, timeout=15, n=1, since=0, **match):
    def have():
        if not d.alive():
            raise AssertionError(f"mxrelayd died (status {d.proc.returncode})")
        ev = events(d, event, since, **match)
        return ev if len(ev) >= n else None
    return d_wait(have, timeout, f"{n} log line(s) event={event} {match}")


def d_wait(pred, timeout, what):
    import mxtest
    return mxtest.wait_for(pred, timeout, 0.05, what)


def spool_rows(d, qid):
    rows = d.query("SELECT m.qid, m.attempts AS m_attempts, m.next_try, r.address, r.state, "
                   "r.attempts, r.last_reply FROM messages m JOIN recipients r ON r.msg_id = m.id "
                   "WHERE m.qid = ? ORDER BY r.id", (qid,))
    return rows


def in_spool(d, qid):
    return bool(d.query("SELECT 1 FROM messages WHERE qid = ?", (qid,)))


def wait_gone(d, qid, timeout=15):
    """Wait until qid has left the spool (delivered or bounced, nothing pending)."""
    d_wait(lambda: not in_spool(d, qid), timeout, f"{qid} to leave the spool")


def wait_spool_empty(d, timeout=15):
    d_wait(lambda: d.count() == 0, timeout, "an empty spool")


def header_block(data):
    return data.split(b"\r\n\r\n", 1)[0]


# --------------------------------------------------------------------------
# sinks: the child side (runs under /usr/bin/python3 with aiosmtpd)

def sink_main(cfg_path):
    import asyncio
    import ssl
    import logging
    from aiosmtpd.smtp import SMTP, syntax

    logging.disable(logging.CRITICAL)
    cfg = json.load(open(cfg_path))
    outdir = cfg["outdir"]
    evf = open(os.path.join(outdir, "events.jsonl"), "a")
    state = {"seq": 0, "conn": 0, "temp": {}, "stall": {}}

    def event(ev, lst, **kw):
        kw.update(ev=ev, listener=lst["name"], t=time.time())
        evf.write(json.dumps(kw) + "\n")
        evf.flush()

    def _buffered(server):
        """Octets the client already sent beyond the current command (pipelining)."""
        try:
            return len(server._reader._buffer)
        except AttributeError:
            return -1

    def tls_of(server):
        """The TLS version of the connection now, or None in plaintext."""
        so = server.transport.get_extra_info("ssl_object") if server.transport else None
        return so.version() if so else None

    def peer_subject(so):
        """The client certificate's subject as one string (RFC 4514 order), or None."""
        cert = so.getpeercert() if so else None
        if not cert:
            return None
        short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
                 "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}
        return ",".join("+".join(f"{short.get(k, k)}={v}" for k, v in rdn)
                        for rdn in reversed(cert.get("subject", ())))

    def reply_lines(first, exts):
        lines = [first] + exts
        return [("250 " if i == len(lines) - 1 else "250-") + x for i, x in enumerate(lines)]

    class Handler:
        def __init__(self, lst):
            self.lst = lst

        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            drop = {x.upper() for x in self.lst.get("drop", [])} | {"AUTH", "HELP"}
            exts = []
            for r in responses[1:]:
                kw = r[4:].split(" ")[0].upper()
                if kw not in drop:
                    exts.append(r[4:])
            exts += self.lst.get("add", [])
            event("ehlo", self.lst, conn=server.conn_id, helo=hostname, exts=exts)
            return reply_lines(responses[0][4:], exts)

        async def handle_STARTTLS(self, server, session, envelope):
            return True

        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            event("mail", self.lst, conn=server.conn_id, addr=address, opts=mail_options,
                  buffered=_buffered(server), tls=tls_of(server))
            return "250 2.1.0 OK"

        async def handle_QUIT(self, server, session, envelope):
            event("quit", self.lst, conn=server.conn_id)
            return "221 2.0.0 bye"

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            local = address.rsplit("@", 1)[0].lower()
            m = re.match(r"temp(\d+)-", local)
            reply = "250 2.1.5 OK"
            if local.startswith("perm-"):
                reply = f"550 5.1.1 <{address}>: no such user here (sink)"
            elif local.startswith("tempforever-"):
                reply = f"451 4.2.0 <{address}>: mailbox busy, try later (sink)"
            elif m:
                key = address.lower()
                n = state["temp"].get(key, 0)
                if n < int(m.group(1)):
                    state["temp"][key] = n + 1
                    reply = f"451 4.2.0 <{address}>: greylisted {n + 1}/{m.group(1)} (sink)"
            event("rcpt", self.lst, conn=server.conn_id, addr=address, opts=rcpt_options,
                  reply=reply, buffered=_buffered(server), tls=tls_of(server))
            if reply.startswith("250"):
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(rcpt_options)
            return reply

        async def handle_DATA(self, server, session, envelope):
            lst = self.lst
            event("data", lst, conn=server.conn_id, rcpts=list(envelope.rcpt_tos),
                  size=len(envelope.original_content or b""), tls=tls_of(server))
            stall = lst.get("stall")
            if stall and any(r.lower().startswith("stall-") for r in envelope.rcpt_tos):
                k = lst["name"]
                if state["stall"].get(k, 0) < stall.get("times", 1):
                    state["stall"][k] = state["stall"].get(k, 0) + 1
                    event("stall", lst, conn=server.conn_id)
                    deadline = time.monotonic() + stall["seconds"]
                    while time.monotonic() < deadline:
                        if server.transport is None or server.transport.is_closing() or \
                                server._reader.at_eof():
                            event("aborted", lst, conn=server.conn_id)
                            return "451 4.3.0 aborted"
                        await asyncio.sleep(0.05)
            state["seq"] += 1
            seq = state["seq"]
            sslobj = server.transport.get_extra_info("ssl_object") if server.transport else None
            meta = {
                "seq": seq, "listener": lst["name"], "host": lst["host"], "port": lst["port"],
                "conn": server.conn_id, "peer": list(session.peer or ()),
                "helo": session.host_name, "mail_from": envelope.mail_from,
                "mail_options": envelope.mail_options, "rcpts": list(envelope.rcpt_tos),
                "rcpt_options": envelope.rcpt_options,
                "tls": sslobj.version() if sslobj else None,
                "cipher": sslobj.cipher()[0] if sslobj else None,
                "sni": server.sni, "peer_cert": peer_subject(sslobj), "t": time.time(),
            }
            base = os.path.join(outdir, f"msg-{seq:05d}")
            with open(base + ".eml", "wb") as f:
                f.write(envelope.original_content)
            with open(base + ".tmp", "w") as f:
                json.dump(meta, f)
            os.rename(base + ".tmp", base + ".json")
            event("saved", lst, conn=server.conn_id, seq=seq)
            return f"250 2.0.0 OK saved as sink-{seq}"

    class SinkSMTP(SMTP):
        def __init__(self, lst, **kw):
            self.lst = lst
            self.conn_id = None
            self.sni = None
            super().__init__(Handler(lst), **kw)

        def connection_made(self, transport):
            if self._tls_protocol is None:
                state["conn"] += 1
                self.conn_id = state["conn"]
                event("connect", self.lst, conn=self.conn_id,
                      peer=list(transport.get_extra_info("peername") or ())[:2])
            else:
                so = transport.get_extra_info("ssl_object")
                event("starttls", self.lst, conn=self.conn_id, sni=self.sni,
                      version=so.version() if so else None, peer_cert=peer_subject(so))
            super().connection_made(transport)

        @syntax("STARTTLS", when="tls_context")
        async def smtp_STARTTLS(self, arg):
            event("starttls_cmd", self.lst, conn=self.conn_id)
            if self.lst.get("starttls_reply"):      # offered, then refused
                await self.push(self.lst["starttls_reply"])
                return
            try:
                await super().smtp_STARTTLS(arg)
            except Exception as e:
                # the handshake failed (the client refused our certificate, or we its)
                event("tls_failed", self.lst, conn=self.conn_id, error=str(e.__cause__ or e))
                raise

        def connection_lost(self, exc):
            event("disconnect", self.lst, conn=self.conn_id)
            super().connection_lost(exc)

    class Silent(asyncio.Protocol):
        """Accepts the connection and never says a word."""

        def __init__(self, lst):
            self.lst = lst

        def connection_made(self, transport):
            state["conn"] += 1
            self.t = transport
            event("connect", self.lst, conn=state["conn"],
                  peer=list(transport.get_extra_info("peername") or ())[:2])

    class Greet(asyncio.Protocol):
        """Greets with a refusal, answers every command with it, 221 to QUIT."""

        def __init__(self, lst):
            self.lst = lst
            self.buf = b""

        def connection_made(self, transport):
            state["conn"] += 1
            self.t = transport
            event("connect", self.lst, conn=state["conn"],
                  peer=list(transport.get_extra_info("peername") or ())[:2])
            transport.write((self.lst["greeting"] + "\r\n").encode())

        def data_received(self, data):
            self.buf += data
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.strip().upper() == b"QUIT":
                    self.t.write(b"221 2.0.0 bye\r\n")
                    self.t.close()
                    return
                self.t.write((self.lst["greeting"] + "\r\n").encode())

    def tls_context(t):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(t["cert"], t["key"])
        if t.get("max"):
            ctx.set_ciphers("DEFAULT@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = getattr(ssl.TLSVersion, t["max"])
        if t.get("client_ca"):
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(t["client_ca"])
        return ctx

    async def run():
        loop = asyncio.get_running_loop()
        servers = []
        for lst in cfg["listeners"]:
            kind = lst.get("kind", "smtp")
            if kind == "silent":
                factory = (lambda l: lambda: Silent(l))(lst)
            elif kind == "greet":
                factory = (lambda l: lambda: Greet(l))(lst)
            else:
                kw = {"hostname": lst.get("hostname") or lst["name"] + "." + ZONE,
                      "enable_SMTPUTF8": True,
                      "decode_data": False, "ident": "sink"}
                if "SMTPUTF8" in [x.upper() for x in lst.get("drop", [])]:
                    kw["enable_SMTPUTF8"] = False
                if "8BITMIME" in [x.upper() for x in lst.get("drop", [])]:
                    kw["decode_data"] = True   # aiosmtpd leaves out 8BITMIME then
                kw["data_size_limit"] = lst.get("size", 10 * 1024 * 1024)
                if lst.get("tls"):
                    ctx = tls_context(lst["tls"])

                    def sni_cb(sslobj, name, c, _l=lst):
                        # remember the SNI on the protocol through the SSL object
                        sni_seen[id(sslobj)] = name
                    ctx.sni_callback = sni_cb
                    kw["tls_context"] = ctx
                    kw["require_starttls"] = False

                def factory(l=lst, kw=kw):
                    return SinkSMTP(l, **kw)
            try:
                srv = await loop.create_server(factory, lst["host"], lst["port"],
                                               reuse_address=True)
            except OSError as e:
                print("bindfail", flush=True)
                print(f"bind {lst['host']}:{lst['port']}: {e}", file=sys.stderr, flush=True)
                os._exit(3)
            servers.append(srv)
        print("ready", flush=True)
        await asyncio.Event().wait()

    sni_seen = {}
    # expose the SNI to handle_DATA: patch SinkSMTP to look it up lazily
    orig_data = Handler.handle_DATA

    async def handle_DATA(self, server, session, envelope):
        so = server.transport.get_extra_info("ssl_object") if server.transport else None
        if so is not None:
            server.sni = sni_seen.get(id(so))
        return await orig_data(self, server, session, envelope)
    Handler.handle_DATA = handle_DATA

    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    asyncio.run(run())


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "sink":
    sink_main(sys.argv[2])
