#!/usr/bin/python3
"""High availability: HAProxy (mode tcp) on loopback in front of two mxrelayd
with PROXY protocol v2 and v1 listeners. Mail flows through the balancer; the
allowlist, logs and spool see the client's address from the PROXY header, not
the balancer's; after kill -9 of one relay mail keeps flowing through the
other. Without the balancer: a plain connection to a PROXY listener is refused,
a bad or missing header is refused or times out, and the per-address cap
follows the client. Loopback only; haproxy runs as a child in the foreground
and is killed after each test."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

LB = "127.0.0.5"        # the balancer's source address towards the relays (proxy_from)
INSIDER = "127.0.0.1"   # a client in relay_from
OUTSIDER = "127.0.0.9"  # a client outside relay_from
V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n" + b"\x20\x00\x00\x00"


def v2_header(src, sport=40000, dst="127.0.0.1", dport=25):
    return (b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11\x00\x0c" + socket.inet_aton(src) +
            socket.inet_aton(dst) + sport.to_bytes(2, "big") + dport.to_bytes(2, "big"))


def relay(version="v2", tls="starttls", conf=None):
    c = {"relay_from": INSIDER + "/32"}
    c.update(conf or {})
    return mxtest.Daemon(conf=c, listeners={"main": {"tls": tls, "proxy_protocol": version,
                                                     "proxy_from": LB + "/32"}}).start()


class Haproxy:
    """haproxy -db (foreground) with one tcp frontend and a backend of relays."""

    def __init__(self, relays, send_proxy="send-proxy-v2", tls=False):
        assert shutil.which("haproxy"), \
            "haproxy is not installed (tools/install-deps.sh --test installs it)"
        self.tmp = mxtest.tmpdir("haproxy-")
        self.port = mxtest.free_port()
        self.sock = os.path.join(self.tmp, "admin.sock")
        self.cfg = os.path.join(self.tmp, "haproxy.cfg")
        self.log_path = os.path.join(self.tmp, "haproxy.log")
        self.names = []
        # smtpchk: a server is up when it answers 220 and HELO (after the PROXY header,
        # which haproxy also sends on checks: LOCAL for v2); over TLS on an implicit port
        check = "check check-ssl verify none" if tls else "check"
        servers = []
        for i, d in enumerate(relays):
            name = f"r{i}"
            self.names.append(name)
            servers.append(f"    server {name} 127.0.0.1:{d.port()} source {LB} {send_proxy} "
                           f"{check} inter 300ms fall 1 rise 2")
        mxtest.write_file(self.cfg, "\n".join([
            "global",
            "    log stdout format raw local0 info",
            f"    stats socket {self.sock} level admin",
            "defaults",
            "    mode tcp",
            "    log global",
            "    option tcplog",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    retries 2",
            "    option redispatch",
            "frontend smtp",
            f"    bind 127.0.0.1:{self.port}",
            "    default_backend relays",
            "backend relays",
            "    balance roundrobin",
            "    option smtpchk HELO lb.test.example",
        ] + servers) + "\n")
        self.proc = None

    def start(self):
        mxtest.run(["haproxy", "-c", "-f", self.cfg], timeout=15, check=0)
        log = open(self.log_path, "ab")
        mxtest.note(f"# start haproxy -f {self.cfg} -db")
        self.proc = subprocess.Popen(["haproxy", "-f", self.cfg, "-db"], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        log.close()
        mxtest.on_cleanup(self.stop)
        for n in self.names:
            self.wait_state(n, "UP", 15)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for ln in self.log().splitlines()[-15:]:
            mxtest.note("  haproxy: " + ln)

    def log(self):
        try:
            return open(self.log_path, errors="replace").read()
        except OSError:
            return ""

    def states(self):
        """{server name: status} from the admin socket's `show stat`."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.sock)
                s.sendall(b"show stat\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return {}
        out = {}
        for ln in data.decode(errors="replace").splitlines():
            f = ln.split(",")
            if len(f) > 17 and f[0] == "relays" and f[1] in self.names:
                out[f[1]] = f[17]
        return out

    def wait_state(self, name, state, timeout):
        if self.proc.poll() is not None:
            raise AssertionError(f"haproxy exited with status {self.proc.returncode}")
        mxtest.wait_for(lambda: self.states().get(name, "").startswith(state), timeout, 0.1,
                        what=f"haproxy to mark {name} {state}")

    def connect(self, src, **kw):
        return mxtest.Smtp(self.port, src=src, tag=f"haproxy:{self.port}", **kw)


def send_one(hp, src, subject, **kw):
    """One message through the balancer from src; returns the queue id."""
    s = hp.connect(src, **kw)
    qid = s.mail("in@example.com", ["out@example.net"], mxtest.message(subject=subject))
    s.quit()
    return qid


def owner(relays, qid):
    for d in relays:
        if d.alive() and [m for m in d.messages(received_only=True) if m["qid"] == qid]:
            return d
    raise AssertionError(f"queue id {qid} is in no relay's spool")


def check_allowlist_follows_client(hp, relays):
    # inside relay_from: several messages, spread over both relays, stored with the client's IP
    seen = set()
    for i in range(4):
        qid = send_one(hp, INSIDER, f"ha {i}")
        d = owner(relays, qid)
        seen.add(id(d))
        m = d.message(qid)
        assert m["client_ip"] == INSIDER, f"spool has client_ip {m['client_ip']!r}"
        received = mxtest.header_values(m["body"], "Received")[0]
        assert f"[{INSIDER}]" in received and LB not in received, received
    assert len(seen) == len(relays), "round robin did not reach every relay"
    # outside relay_from (and no AUTH offered): refused at RCPT, though the balancer
    # itself connects from yet another address
    for _ in range(len(relays)):
        s = hp.connect(OUTSIDER)
        s.ehlo()
        s.cmd("MAIL FROM:<in@example.com>", 250)
        s.cmd("RCPT TO:<out@example.net>", 554, "5.7.1")
        s.quit()
    for d in relays:
        d.wait_log(rf"event=proxy lb={re.escape(LB)} ip={re.escape(OUTSIDER)} ")
        d.wait_log(rf"event=connect ip={re.escape(OUTSIDER)} .*allowlisted=no")
        d.wait_log(rf"event=connect ip={re.escape(INSIDER)} .*allowlisted=yes")
        assert not d.grep(rf"event=connect ip={re.escape(LB)} .*allowlisted=yes")
        assert not [m for m in d.messages(received_only=True) if m["client_ip"] == OUTSIDER]


def test_v2_mail_flows_and_allowlist_uses_header():
    relays = [relay("v2"), relay("v2")]
    hp = Haproxy(relays, "send-proxy-v2").start()
    check_allowlist_follows_client(hp, relays)
    # haproxy's health checks arrive as v2 LOCAL and keep the balancer's own address
    for d in relays:
        d.wait_log(rf"event=proxy lb={re.escape(LB)} ip={re.escape(LB)} .*version=2 command=local")


def test_v1_mail_flows_and_allowlist_uses_header():
    relays = [relay("v1"), relay("any")]
    hp = Haproxy(relays, "send-proxy").start()
    check_allowlist_follows_client(hp, relays)
    for d in relays:
        d.wait_log(r"event=proxy .*version=1 command=proxy")


def test_kill9_one_relay_mail_keeps_flowing():
    a, b = relay("v2"), relay("v2")
    hp = Haproxy([a, b], "send-proxy-v2").start()
    send_one(hp, INSIDER, "before")
    a.kill()
    # until haproxy notices, a connection may still be sent to the dead relay: haproxy
    # redispatches on the refused connect, and a client may retry (bounded)
    for i in range(6):
        deadline = time.monotonic() + 20
        while True:
            try:
                qid = send_one(hp, INSIDER, f"after kill {i}")
                break
            except (AssertionError, OSError) as e:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no relay took message {i} within 20s: {e}")
                time.sleep(0.3)
        assert owner([b], qid) is b
    hp.wait_state("r0", "DOWN", 10)
    assert hp.states().get("r1", "").startswith("UP"), hp.states()
    # marked down: every message goes to the survivor at the first try
    for i in range(4):
        qid = send_one(hp, INSIDER, f"after down {i}")
        assert owner([b], qid) is b
    s = hp.connect(OUTSIDER)
    s.ehlo()
    s.cmd("MAIL FROM:<in@example.com>", 250)
    s.cmd("RCPT TO:<out@example.net>", 554, "5.7.1")
    s.quit()


def test_implicit_tls_behind_haproxy():
    """tls = implicit: the header comes first on the raw socket, then the TLS handshake."""
    relays = [relay("v2", tls="implicit"), relay("v2", tls="implicit")]
    hp = Haproxy(relays, "send-proxy-v2", tls=True).start()
    for i in range(2):
        s = hp.connect(INSIDER, implicit_tls=True)
        assert s.tls, "no TLS through the balancer"
        qid = s.mail("in@example.com", ["out@example.net"], mxtest.message(subject=f"tls {i}"))
        s.quit()
        assert owner(relays, qid).message(qid)["client_ip"] == INSIDER
    s = hp.connect(OUTSIDER, implicit_tls=True)
    s.ehlo()
    s.cmd("MAIL FROM:<in@example.com>", 250)
    s.cmd("RCPT TO:<out@example.net>", 554, "5.7.1")
    s.quit()


def test_direct_connection_not_from_balancer_refused():
    """Refused at accept: a header from outside proxy_from is never read, let alone trusted."""
    d = relay("any")
    for src in (INSIDER, OUTSIDER):
        s = d.connect(src=src, banner=False)
        s.reply().expect(421, "4.7.0")
        assert s.closed(5)
        d.wait_log(rf"event=refused ip={re.escape(src)} reason=not_proxy_from")
    assert not d.grep(r"event=connect ")


def test_implicit_tls_direct_connection_closed():
    d = relay("v2", tls="implicit")
    s = d.connect(src=INSIDER, implicit_tls=False, banner=False)
    assert s.closed(5), "implicit-TLS proxy listener kept a connection from outside proxy_from"
    d.wait_log(r"event=refused ip=127\.0\.0\.1 reason=not_proxy_from")


def test_no_banner_before_header_then_timeout():
    d = relay("any")
    s = d.connect(src=LB, banner=False)
    s.silent(1.0)     # the server says nothing until the header is in
    t0 = time.monotonic()
    s.reply(timeout=10).expect(421, "4.4.2")
    assert s.closed(5)
    assert time.monotonic() - t0 < 8, "header deadline much later than 5 s"
    d.wait_log(r"event=proxy_failed lb=127\.0\.0\.5 .*reason=\"no PROXY header within")
    # a header trickled a byte at a time must not push the deadline out
    mark = d._log_size()
    s = d.connect(src=LB, banner=False)
    t0 = time.monotonic()
    hdr = b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 25\r\n"
    for i in range(len(hdr) - 1):
        if d.grep(r"reason=\"no PROXY header within", since=mark):
            break
        try:
            s.send(hdr[i:i + 1])
        except OSError:
            break
        time.sleep(0.25)
    d.wait_log(r"reason=\"no PROXY header within", timeout=3, since=mark)
    assert time.monotonic() - t0 < 8, "a trickled header extended the deadline"
    assert not d.grep(r"event=(proxy|connect) ")


def test_bad_headers_refused():
    d = relay("v2")
    bad = [
        b"EHLO client.example\r\n",                                   # plain SMTP, no header
        b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 25\r\n",               # v1 on a v2 listener
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",                    # v2 of 64 KiB
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x0c" + b"\x00" * 12,     # UDP
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",              # a TLS hello
    ]
    for data in bad:
        s = d.connect(src=LB, banner=False)
        s.send(data)
        s.reply(timeout=5).expect(421, "4.7.0")
        assert s.closed(5)
    assert len(d.grep(r"event=proxy_failed lb=127\.0\.0\.5")) == len(bad)
    assert not d.grep(r"event=connect ")
    # over-long v1 line on a v1 listener
    d1 = relay("v1")
    s = d1.connect(src=LB, banner=False)
    s.send(b"PROXY UNKNOWN " + b"a" * 100)
    s.reply(timeout=5).expect(421, "4.7.0")
    d1.wait_log(r"reason=\"v1 header longer than 107 bytes\"")


def test_header_and_pipelined_smtp_in_one_write():
    """Bytes after the header are the client's: the session reads them, in order."""
    d = relay("any")
    s = d.connect(src=LB, banner=False)
    s.send(v2_header(INSIDER) + b"EHLO early.example\r\n")
    s.reply().expect(220)
    s.reply().expect(250)
    s.cmd("MAIL FROM:<in@example.com>", 250)
    s.cmd("RCPT TO:<out@example.net>", 250)
    qid = s.data(mxtest.message(subject="one write")).qid()
    s.quit()
    assert d.message(qid)["client_ip"] == INSIDER


def test_local_and_unknown_keep_balancer_address():
    d = relay("any")
    s = d.connect(src=LB, banner=False)
    s.send(V2_LOCAL)
    s.reply().expect(220)
    s.quit()
    s = d.connect(src=LB, banner=False)
    s.send(b"PROXY UNKNOWN\r\n")
    s.reply().expect(220)
    s.quit()
    d.wait_log(r"event=proxy lb=127\.0\.0\.5 ip=127\.0\.0\.5 .*version=2 command=local")
    d.wait_log(r"event=proxy lb=127\.0\.0\.5 ip=127\.0\.0\.5 .*version=1 command=unknown")
    assert len(d.grep(r"event=connect ip=127\.0\.0\.5 .*allowlisted=no")) == 2


def test_per_ip_cap_follows_client():
    d = relay("any", conf={"max_connections_per_ip": "2"})
    held = []
    # more sessions through one balancer than the cap: each client has its own count
    for i in range(4):
        s = d.connect(src=LB, banner=False)
        s.send(v2_header(f"198.51.100.{i + 1}"))
        s.reply().expect(220)
        held.append(s)
    a = []
    for i in range(2):
        s = d.connect(src=LB, banner=False)
        s.send(v2_header("198.51.100.77"))
        s.reply().expect(220)
        a.append(s)
    # over the cap, that client's own oldest idle session makes room (issue 12),
    # never another client's behind the same balancer
    a[1].ehlo()
    s = d.connect(src=LB, banner=False)
    s.send(v2_header("198.51.100.77"))
    s.reply().expect(220)
    a[0].reply().expect(421, "4.7.0")
    assert a[0].closed(5)
    d.wait_log(r"event=evicted ip=198\.51\.100\.77 cap=max_connections_per_ip")
    for h in held:
        h.cmd("NOOP", 250)
    a = [s, a[1]]
    a[0].quit()
    # the freed slot is the client's
    def fresh():
        c = d.connect(src=LB, banner=False)
        c.send(v2_header("198.51.100.77"))
        r = c.reply()
        c.close()
        return r.code == 220
    mxtest.wait_for(fresh, 5, 0.1, what="a free per-client slot after QUIT")
    for s in held + a[1:]:
        s.quit()


def test_shutdown_with_header_pending():
    """SIGTERM while a balancer's connection has sent half a header: prompt, clean exit."""
    d = relay("any")
    s = d.connect(src=LB, banner=False)
    s.send(b"PROXY TCP4 127.0.0.1")
    time.sleep(0.3)
    t0 = time.monotonic()
    assert d.stop(10) == 0
    assert time.monotonic() - t0 < 4, "exit waited for the header deadline"
    assert s.closed(5)
    assert not d.grep(r"event=connect ")


def test_config_keys():
    tmp = mxtest.tmpdir()
    cases = [
        ("proxy_protocol = v2\n", "proxy_from: required"),
        ("proxy_from = 127.0.0.5/32\n", "proxy_from: set in [listener a] without proxy_protocol"),
        ("proxy_protocol = v3\nproxy_from = 127.0.0.5\n", "proxy_protocol: \"v3\" is not one of"),
        ("proxy_protocol = any\nproxy_from = 127.0.0.5/8\n", "proxy_from:"),
        ("proxy_protocol = any\nproxy_from = 10.0.0.0/8 2001:db8::/32\n", None),
        ("proxy_protocol = no\n", None),
    ]
    for i, (keys, want) in enumerate(cases):
        path = mxtest.write_file(os.path.join(tmp, f"c{i}.conf"),
                                 "[listener a]\naddress = 127.0.0.1:2999\n" + keys)
        p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15, cwd=tmp)
        if want is None:
            assert p.returncode == 0, p.stderr
        else:
            assert p.returncode == 1 and want in p.stderr, f"{keys!r}: {p.stderr.strip()}"
            assert re.match(re.escape(path) + r":\d+: ", p.stderr), p.stderr
    # proxy_protocol outside a listener section
    path = mxtest.write_file(os.path.join(tmp, "g.conf"), "proxy_protocol = v2\n")
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15)
    assert p.returncode == 1 and "only allowed inside" in p.stderr, p.stderr


if __name__ == "__main__":
    mxtest.main()
