"""tlspeers: the outbound-TLS test network (issue 13): DNSSEC, DANE, MTA-STS,
client certificates. Import-only helper for test files (run by /usr/bin/python3),
used with mxtest, mxpeers and privns; the HTTPS server child is this file run
as `/usr/bin/python3 tlspeers.py https CONFIG`.

The network
-----------
One TlsNet per test module (`net = tlspeers.net()`: created on first use,
torn down at exit; about 0.3 s): a private network namespace (only `lo`, up; no
route anywhere) in which everything runs on the real ports, so `_25._tcp`
and `https://mta-sts.DOMAIN/` are exactly as in production and parallel
test modules never collide:

    127.0.0.1:5300   nsd, authoritative for sig.test (DNSSEC-signed, NSEC)
                     and plain.test (unsigned)
    127.0.0.1:53     unbound, validating: sig.test's KSK is its only trust
                     anchor, so answers in sig.test carry AD, answers in
                     plain.test never do (`local-zone: "test." nodefault`:
                     without it unbound answers NXDOMAIN for all of .test)
    127.0.0.N:25     aiosmtpd sinks (mxpeers.Sinks run inside the namespace)
    127.0.0.N:443    HTTPS servers (MTA-STS policies, TLS-RPT https rua)
    127.0.0.1:PORT   the relay's submission listener (mxrelayd inside it)

Addresses 127.0.0.2..127.0.0.254 are all on `lo` inside the namespace; pick
a distinct one per host. The test process itself stays in the root
namespace: `with net.inside():` switches the calling thread into the
namespace (setns), so sockets opened there (smtplib, mxtest.Smtp, dns
queries) live in it; `net.run(argv)` runs a command in it (dig, openssl,
curl, swaks). mxrelayctl works from outside (the control socket is a file).

Certificates (python3-cryptography, ECDSA P-256, all in net.dir, mode 0644)
--------------------------------------------------------------------------
    net.ca                       the test root CA (a Cert); net.ca_file = its PEM
    net.leaf("mx1.dane.sig.test", "alt.name", expired=False, self_signed=False,
             client=False, ca=None)   -> Cert (.cert, .key, .chain paths; .pem, .der,
                                 .spki, .subject); .chain = leaf + CA (DANE-TA needs
                                 the TA in the served chain, RFC 7671 5.2.2)
    net.new_ca("other CA")       a second CA (wrong-issuer cases), usable as ca=
    tlsa_311(cert) tlsa_301(cert) tlsa_201(ca) tlsa_211(ca)  -> "3 1 1 <hex>"...
    tlsa(cert, usage, selector, mtype)   any combination (mtype 1 sha256, 2 sha512)

Zones
-----
    net.set_zone("sig.test", ["mx1.dane A 127.0.0.11", "dane MX 10 mx1.dane",
                              "_25._tcp.mx1.dane TLSA " + tlsa_311(leaf)])
    net.set_zones({"sig.test": [...], "plain.test": [...]})   (one reload)
Records are zone-file lines relative to the zone (or absolute with a dot);
SOA, NS and `ns A 127.0.0.1` are added; $TTL is net.ttl (default 2 s, so
a running relay sees changes quickly). sig.test is re-signed; nsd
reloads (SIGHUP) and unbound's cache is flushed, and the call returns when
unbound answers the new SOA serial. About 0.1 s. Both zones start empty.
    net.set_zone("sig.test", [...], bogus=[("_25._tcp.mx1.dane", "TLSA")])
        breaks that RRset's signature: unbound answers SERVFAIL (a failed,
        never-downgraded TLSA lookup, RFC 7672 2.2)
    net.lookup("TLSA", "_25._tcp.mx1.dane.sig.test") -> {"status", "ad", "flags",
        "answer": [(owner, type, rdata)], "text"}   (dig +dnssec via unbound;
        port=tlspeers.NSD_PORT asks nsd)
    net.dig(*args)   raw dig output

Sinks
-----
    sinks = net.sinks({"mx1": {"host": "127.0.0.11", "tls": {"cert": leaf.cert,
                       "key": leaf.key, "client_ca": net.ca_file}}, "mx2": {...}})
mxpeers.Sinks options (drop, add, kind, ...) plus the tls keys cert, key,
client_ca. sinks.events("mail") / ("rcpt") / ("data") carry tls="TLSv1.3" or
None; net.plaintext_mail(sinks) lists MAIL/RCPT/DATA events sent without
TLS (the "no plaintext copy reached the MX" check); saved messages carry tls,
sni and peer_cert (the client certificate's subject, "CN=..."). Sinks are
stopped after the test. `hostname` sets the name in the greeting;
`starttls_reply` ("454 4.7.0 ...") offers STARTTLS and then refuses it; a
failed handshake (either side refused) is a tls_failed event with error.
    net.s_client("127.0.0.11", "-dane_tlsa_domain", host, "-dane_tlsa_rrdata", rr)
        openssl s_client -starttls smtp -brief in the namespace (stdout+stderr)

HTTPS
-----
    h = net.https("mta-sts.good.plain.test", "127.0.0.30", body=POLICY (str or bytes),
                  cert=leaf (default: a leaf for the name), status=200,
                  content_type="text/plain", redirect=None (or a Location for a 301))
    h.requests()  -> [{"method", "path", "host", "headers", "body" (bytes), "t"}]
    h.set(body=..., status=...)  (takes effect on the next request)
    h.tls_errors()  -> handshakes that failed (e.g. the client refused the cert)
    h.stop(); h.start()
GET of any path answers the configured response; POST answers 200 and is
logged with its body (a TLS-RPT https rua receiver). Stopped after the test
unless keep=True (then at the end of the module). Add the name's A record to
plain.test or sig.test yourself (the relay resolves mta-sts.DOMAIN).

Logs and files
--------------
net.dir (0755) holds the certificates, zones, nsd.log, unbound.out (failed
validations are logged, val-log-level 2) and https*/ (requests, tls_errors);
net.output("unbound.out") reads a log. MXTEST_KEEP=1 keeps the directory.

Relay
-----
    d = net.relay(conf={...}, routes=(), start=True)   mxrelayd in the namespace
        (conf values None drop a default):
        dns_servers = 127.0.0.1:53, allow_private_mx = yes, tls_ca_file = CA,
        smtp_port = 25, short retries; a listener on 127.0.0.1:<port> there.
    qid = net.submit(d, ["a@dane.sig.test"])   smtplib from inside the namespace
Stopped after the test like every mxtest.Daemon.
"""

import atexit
import base64
import contextlib
import ctypes
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import mxpeers

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PYTHON = "/usr/bin/python3"
NSD_PORT = 5300
ZONES = ("sig.test", "plain.test")
SIGNED = "sig.test"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _note(line):
    import mxtest
    mxtest.note(line)


# --------------------------------------------------------------------------
# certificates

class Cert:
    """A PEM certificate and key on disk (paths .cert, .key; .chain: the
    certificate followed by its issuer's, what a server sends for DANE-TA)."""

    def __init__(self, cert, key, obj, keyobj, chain=None):
        self.cert, self.key = cert, key
        self.chain = chain or cert
        self.obj, self.keyobj = obj, keyobj

    @property
    def pem(self):
        return open(self.cert, "rb").read()

    @property
    def der(self):
        from cryptography.hazmat.primitives import serialization
        return self.obj.public_bytes(serialization.Encoding.DER)

    @property
    def spki(self):
        from cryptography.hazmat.primitives import serialization
        return self.obj.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def subject(self):
        return self.obj.subject.rfc4514_string()

    def __repr__(self):
        return f"<Cert {self.subject} {self.cert}>"


def dkim_key(domain, selector="rpt"):
    """A new Ed25519 DKIM key made by mxrelayctl for domain: (its file, its TXT value)."""
    import mxtest
    tmp = mxtest.tmpdir("mxdkimkey-")
    key = os.path.join(tmp, domain + ".pem")
    p = mxtest.run([mxtest.MXRELAYCTL, "dkim", "keygen", domain, selector, "--type", "ed25519",
                    "--out", key], timeout=60, check=0)
    value = re.findall(r"^  Value: (.*)$", p.stdout, re.M)[0].strip()
    os.chmod(tmp, 0o755)
    os.chmod(key, 0o644)
    return key, value


def delivery(d, qid, status, n=1, since=0, timeout=20):
    """The first n delivery events of qid with status, from d's log."""
    return mxpeers.wait_event(d, "delivery", qid=qid, status=status, n=n, since=since,
                              timeout=timeout)


def tlsa(cert, usage, selector, mtype):
    """TLSA rdata text (RFC 6698 2.1): selector 0 full certificate, 1 SPKI; mtype
    0 exact, 1 SHA-256, 2 SHA-512."""
    data = cert.der if selector == 0 else cert.spki
    if mtype == 1:
        data = hashlib.sha256(data).digest()
    elif mtype == 2:
        data = hashlib.sha512(data).digest()
    return f"{usage} {selector} {mtype} {data.hex()}"


def tlsa_311(cert):
    return tlsa(cert, 3, 1, 1)


def tlsa_301(cert):
    return tlsa(cert, 3, 0, 1)


def tlsa_201(ca):
    return tlsa(ca, 2, 0, 1)


def tlsa_211(ca):
    return tlsa(ca, 2, 1, 1)


def _write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def _make_cert(directory, fname, cn, sans=(), ca=None, is_ca=False, expired=False,
               client=False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        start, end = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
    else:
        start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)
    issuer = ca.obj.subject if ca else name
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False))
    if is_ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                          False, False), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]),
                            critical=False)
    if ca:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.keyobj.public_key()), critical=False)
    obj = b.sign(ca.keyobj if ca else key, hashes.SHA256())
    cpath = _write(os.path.join(directory, fname + ".pem"),
                   obj.public_bytes(serialization.Encoding.PEM))
    kpath = _write(os.path.join(directory, fname + ".key"), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    chain = None
    if ca:
        chain = _write(os.path.join(directory, fname + ".chain.pem"),
                       obj.public_bytes(serialization.Encoding.PEM) + ca.pem)
    return Cert(cpath, kpath, obj, key, chain)


def _abs(name, zone):
    """An owner name made absolute (with the final dot) relative to zone."""
    if name.endswith("."):
        return name
    return (f"{name}.{zone}." if name not in ("", "@") else zone + ".")


def _skip_name(data, i):
    """The offset after the (possibly compressed) domain name at data[i]."""
    while True:
        n = data[i]
        if n == 0:
            return i + 1
        if n >= 0xc0:
            return i + 2
        i += 1 + n


# --------------------------------------------------------------------------
# the network

class TlsNet:
    """One per test module (see the module docstring). Torn down at exit."""

    def __init__(self, ttl=2):
        t0 = time.monotonic()
        self.ttl = ttl
        self.dir = tempfile.mkdtemp(prefix="mxtls-")
        os.chmod(self.dir, 0o755)
        self.ns = "mxtls-" + secrets.token_hex(4)
        self.procs = {}
        self.servers = []
        self.serial = int(time.time()) % 1000000000
        self.records = {z: [] for z in ZONES}
        self._closed = False
        p = subprocess.run(["ip", "netns", "add", self.ns], capture_output=True, text=True)
        assert p.returncode == 0, f"ip netns add {self.ns}: {p.stderr.strip()}"
        atexit.register(self.close)
        self.run(["ip", "link", "set", "lo", "up"])
        self._nleaf = 0
        self.ca = _make_cert(self.dir, "ca", "mxrelay test root CA", is_ca=True)
        self.ca_file = self.ca.cert
        self._keys()
        self._write_zones()
        self._start_nsd()
        self._start_unbound()
        self._wait_serial()
        _note(f"# tlspeers: netns {self.ns}, dir {self.dir}, up in "
              f"{time.monotonic() - t0:.2f}s")

    # commands in the namespace -------------------------------------------
    def cmd(self, argv):
        return ["ip", "netns", "exec", self.ns] + [str(a) for a in argv]

    @property
    def wrap(self):
        return ["ip", "netns", "exec", self.ns]

    def run(self, argv, check=None, timeout=30, input=None, quiet=False, env=None):
        """mxtest.run inside the namespace: a CompletedProcess (text)."""
        import mxtest
        return mxtest.run(self.cmd(argv), check=check, timeout=timeout, input=input,
                          quiet=quiet, env=env)

    @contextlib.contextmanager
    def inside(self):
        """Run the with-block's socket calls in the namespace (this thread only)."""
        with open("/proc/thread-self/ns/net") as orig, open(f"/run/netns/{self.ns}") as ns:
            if _libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into " + self.ns)
            try:
                yield self
            finally:
                if _libc.setns(orig.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to the root namespace")

    def _spawn(self, key, argv, log):
        with open(os.path.join(self.dir, log), "ab") as f:
            p = mxpeers.spawn(self.cmd(argv), stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                              cwd=self.dir)
        self.procs[key] = p
        return p

    def _stop(self, key):
        p = self.procs.pop(key, None)
        mxpeers.stop_child(p)

    def output(self, log):
        try:
            return open(os.path.join(self.dir, log), errors="replace").read()[-3000:]
        except OSError:
            return ""

    # certificates --------------------------------------------------------
    def leaf(self, *names, expired=False, self_signed=False, client=False, ca=None, cn=None):
        """A leaf certificate for names (SANs; CN = the first, or cn) signed by the
        test CA (or ca=, or itself with self_signed=True)."""
        self._nleaf += 1
        fname = f"leaf{self._nleaf}-" + (names[0] if names else cn or "x").replace("*", "star")
        return _make_cert(self.dir, fname, cn or names[0], sans=names,
                          ca=None if self_signed else (ca or self.ca), expired=expired,
                          client=client)

    def new_ca(self, cn):
        self._nleaf += 1
        return _make_cert(self.dir, f"ca{self._nleaf}", cn, is_ca=True)

    # DNS -----------------------------------------------------------------
    def _keys(self):
        def keygen(*flags):
            p = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", *flags, SIGNED],
                               cwd=self.dir, capture_output=True, text=True, timeout=30)
            assert p.returncode == 0, f"ldns-keygen: {p.stderr}"
            return os.path.join(self.dir, p.stdout.strip())
        self.ksk = keygen("-k")
        self.zsk = keygen()
        # the KSK's DNSKEY is unbound's trust anchor for sig.test
        shutil.copy(self.ksk + ".key", os.path.join(self.dir, "anchor.key"))

    def _zone_text(self, zone):
        head = [f"$ORIGIN {zone}.", f"$TTL {self.ttl}",
                f"@ IN SOA ns.{zone}. hostmaster.{zone}. {self.serial} 3600 600 86400 "
                f"{self.ttl}",
                f"@ IN NS ns.{zone}.", "ns IN A 127.0.0.1"]
        return "\n".join(head + list(self.records[zone])) + "\n"

    def _write_zones(self, bogus=()):
        for zone in ZONES:
            path = os.path.join(self.dir, zone + ".zone")
            with open(path, "w") as f:
                f.write(self._zone_text(zone))
            if zone == SIGNED:
                # inception an hour back: no clock-skew surprises in the validator
                incep = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - 3600))
                p = subprocess.run(["ldns-signzone", "-i", incep, "-o", zone, path,
                                    self.ksk, self.zsk], cwd=self.dir, capture_output=True,
                                   text=True, timeout=30)
                assert p.returncode == 0, f"ldns-signzone {zone}: {p.stderr}\n" + \
                    self._zone_text(zone)
                if bogus:
                    self._break_signatures(path + ".signed", bogus)

    def _break_signatures(self, path, bogus):
        """Flip one bit of the RRSIG over (owner, type) for each pair: unbound then
        finds the RRset bogus and answers SERVFAIL (RFC 4035 5.5)."""
        want = {(_abs(o, SIGNED).lower(), t.upper()) for o, t in bogus}
        out, hit = [], set()
        for ln in open(path).read().splitlines():
            f = ln.split()
            if len(f) > 5 and f[3] == "RRSIG" and (f[0].lower(), f[4].upper()) in want:
                sig = f[-1]
                f[-1] = ("B" if sig[0] != "B" else "C") + sig[1:]
                hit.add((f[0].lower(), f[4].upper()))
                ln = "\t".join(f)
            out.append(ln)
        assert hit == want, f"bogus: no RRSIG for {sorted(want - hit)} in {SIGNED}"
        with open(path, "w") as fh:
            fh.write("\n".join(out) + "\n")

    def _start_nsd(self):
        d = self.dir
        conf = ["server:", f"    ip-address: 127.0.0.1@{NSD_PORT}", f"    port: {NSD_PORT}",
                '    username: ""', '    chroot: ""', '    database: ""',
                f'    zonesdir: "{d}"', f'    zonelistfile: "{d}/zone.list"',
                f'    xfrdfile: "{d}/xfrd.state"', f'    xfrdir: "{d}"',
                f'    pidfile: "{d}/nsd.pid"', f'    logfile: "{d}/nsd.log"',
                "    server-count: 1", "    verbosity: 1", "    hide-version: yes",
                "remote-control:", "    control-enable: no"]
        for zone in ZONES:
            f = zone + ".zone" + (".signed" if zone == SIGNED else "")
            conf += ["zone:", f"    name: {zone}", f'    zonefile: "{d}/{f}"']
        _write(os.path.join(d, "nsd.conf"), ("\n".join(conf) + "\n").encode())
        self._spawn("nsd", ["nsd", "-d", "-c", os.path.join(d, "nsd.conf")], "nsd.out")

    def _start_unbound(self):
        d = self.dir
        conf = ["server:", "    interface: 127.0.0.1", "    port: 53",
                '    username: ""', '    chroot: ""', f'    directory: "{d}"',
                '    pidfile: ""', "    use-syslog: no", '    logfile: ""',
                "    verbosity: 1", "    do-not-query-localhost: no",
                "    do-ip6: no", "    access-control: 127.0.0.0/8 allow",
                f'    trust-anchor-file: "{d}/anchor.key"',
                '    module-config: "validator iterator"',
                # unbound answers NXDOMAIN for all of .test (RFC 6761) unless told not to
                '    local-zone: "test." nodefault',
                "    val-log-level: 2", "    serve-expired: no",
                "remote-control:", "    control-enable: yes",
                f'    control-interface: "{d}/unbound.ctl"', "    control-use-cert: no"]
        for zone in ZONES:
            conf += ["stub-zone:", f'    name: "{zone}"', f"    stub-addr: 127.0.0.1@{NSD_PORT}"]
        _write(os.path.join(d, "unbound.conf"), ("\n".join(conf) + "\n").encode())
        self._spawn("unbound", ["unbound", "-d", "-p", "-c", os.path.join(d, "unbound.conf")],
                    "unbound.out")

    def _serial_of(self, port, zone):
        """The SOA serial of zone from 127.0.0.1:port in the namespace, or None."""
        import random
        import socket
        import struct
        qid = random.randint(0, 0xffff)
        q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        for label in zone.split("."):
            q += bytes([len(label)]) + label.encode()
        q += b"\0" + struct.pack(">HH", 6, 1)
        with self.inside(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", port))
                data = s.recv(4096)
            except OSError:
                return None
        if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid or data[3] & 0xf:
            return None
        if struct.unpack(">H", data[6:8])[0] == 0:
            return None
        try:
            i = _skip_name(data, 12) + 4             # the question
            i = _skip_name(data, i)                  # the first answer: SOA
            if struct.unpack(">H", data[i:i + 2])[0] != 6:
                return None
            i = _skip_name(data, _skip_name(data, i + 10))   # MNAME, RNAME
            return struct.unpack(">I", data[i:i + 4])[0]
        except (IndexError, struct.error):
            return None

    def _wait_serial(self, timeout=10):
        deadline = time.monotonic() + timeout
        for port in (NSD_PORT, 53):
            for zone in ZONES:
                while self._serial_of(port, zone) != self.serial:
                    for key in ("nsd", "unbound"):
                        if self.procs[key].poll() is not None:
                            raise AssertionError(f"{key} exited:\n" +
                                                 self.output(key + ".out") +
                                                 self.output("nsd.log"))
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"{zone} serial {self.serial} not served on :{port}\n" +
                            self.output("nsd.out") + self.output("nsd.log") +
                            self.output("unbound.out"))
                    time.sleep(0.02)

    def _nsd_serial(self, timeout):
        """Whether nsd serves the current serial for both zones within timeout."""
        deadline = time.monotonic() + timeout
        while any(self._serial_of(NSD_PORT, z) != self.serial for z in ZONES):
            if self.procs["nsd"].poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def set_zone(self, zone, records, bogus=()):
        self.set_zones({zone: records}, bogus)

    def set_zones(self, zones, bogus=()):
        """Replace the records of the given zones (lines relative to the zone).
        bogus: (owner, type) pairs in sig.test whose signature is broken on purpose
        (owner relative to sig.test or absolute), e.g. [("_25._tcp.mx1.dane", "TLSA")]."""
        for zone, records in zones.items():
            assert zone in ZONES, f"{zone}: the zones are {ZONES}"
            self.records[zone] = [r for r in records]
        self.serial += 1
        self._write_zones(bogus)
        # SIGHUP: nsd re-reads the zone files that changed (20 ms); a restart if not
        self.procs["nsd"].send_signal(signal.SIGHUP)
        if not self._nsd_serial(2):
            self._stop("nsd")
            self._start_nsd()
            if not self._nsd_serial(10):
                raise AssertionError("nsd did not come back:\n" + self.output("nsd.out") +
                                     self.output("nsd.log"))
        # the control socket is a file: no need to enter the namespace
        for sub in (["flush_zone", "test."], ["flush_negative"], ["flush_bogus"]):
            p = subprocess.run(["unbound-control", "-c", os.path.join(self.dir, "unbound.conf"),
                                *sub], capture_output=True, text=True, timeout=10)
            assert p.returncode == 0, f"unbound-control {sub}: {p.stdout}{p.stderr}"
        self._wait_serial()
        _note(f"# tlspeers: zones {', '.join(zones)} serial {self.serial}")

    def dig(self, *args, port=53):
        """dig @127.0.0.1 (unbound; port=NSD_PORT: nsd) in the namespace; returns stdout."""
        p = self.run(["dig", "@127.0.0.1", "-p", port, "+tries=1", "+time=2", *args],
                     quiet=True)
        return p.stdout

    def lookup(self, rtype, name, port=53):
        """One +dnssec query: {"status": "NOERROR", "flags": [...], "ad": bool,
        "answer": [(owner, type, rdata), ...] (RRSIGs left out), "text": dig's output}."""
        out = self.dig("+dnssec", "+noall", "+comments", "+answer", rtype, name, port=port)
        r = {"status": None, "flags": [], "answer": [], "text": out}
        for ln in out.splitlines():
            if ln.startswith(";; ->>HEADER<<-"):
                r["status"] = ln.split("status:")[1].split(",")[0].strip()
            elif ln.startswith(";; flags:"):
                r["flags"] = ln.split(":")[1].split(";")[0].split()
            elif ln and not ln.startswith(";"):
                f = ln.split(None, 4)
                if len(f) == 5 and f[3] != "RRSIG":
                    r["answer"].append((f[0], f[3], f[4]))
        r["ad"] = "ad" in r["flags"]
        return r

    def s_client(self, ip, *args, port=25, input="QUIT\n"):
        """openssl s_client -starttls smtp -brief against ip:port in the namespace;
        stdout and stderr together (look for "Verification: OK")."""
        p = self.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"{ip}:{port}",
                      "-brief", *args], input=input, timeout=20, quiet=True)
        return p.stdout + p.stderr

    # sinks, https, relay -------------------------------------------------
    def sinks(self, listeners, start=True):
        """mxpeers.Sinks on port 25 inside the namespace (stopped after the test)."""
        for name, o in listeners.items():
            assert o.get("host"), f"sink {name}: give it a host (127.0.0.N)"
        s = mxpeers.Sinks(listeners, wrap=self.wrap, port=25)
        return s.start() if start else s

    @staticmethod
    def plaintext_mail(sinks, listener=None):
        """MAIL/RCPT/DATA events sent while TLS was off (should be [] when TLS is required)."""
        return [e for e in sinks.events(None, listener)
                if e["ev"] in ("mail", "rcpt", "data") and not e.get("tls")]

    def https(self, name, ip, body="", cert=None, status=200, content_type="text/plain",
              redirect=None, start=True, keep=False):
        """An HTTPS server for name on ip:443 (cert: default a leaf for name). Stopped
        after the test, or with keep=True at the end of the module."""
        import mxtest
        self._nhttps = getattr(self, "_nhttps", 0) + 1
        h = Https(self, self._nhttps, name, ip, cert or self.leaf(name), body, status,
                  content_type, redirect)
        self.servers.append(h)
        if not keep:
            mxtest.on_cleanup(h.stop)
        return h.start() if start else h

    def relay(self, conf=None, routes=(), listeners=None, start=True, conf_extra=None):
        """mxrelayd inside the namespace delivering through unbound to port 25.
        conf (or conf_extra): keys added to or replacing the defaults; a None value
        drops a default (tls_ca_file: None = the system bundle)."""
        cls = mxpeers._make_relay_class()
        c = {
            "dns_servers": "127.0.0.1:53",
            "allow_private_mx": "yes",
            "tls_ca_file": self.ca_file,
            "smtp_port": "25",
            "retry_min": "1s",
            "retry_max": "2s",
            "helo_name": "relay-helo.test.example",
            "smtp_connect_timeout": "3s",
            "smtp_command_timeout": "5s",
            "smtp_data_timeout": "20s",
        }
        c.update(conf or {})
        c.update(conf_extra or {})
        d = cls(conf=c, routes=routes, listeners=listeners, wrap=self.wrap)
        if start:
            d.start()
        return d

    def submit(self, d, rcpts, **kw):
        """mxpeers.submit from inside the namespace; returns the queue id."""
        kw.setdefault("sender", "alice@sender.plain.test")
        with self.inside():
            return mxpeers.submit(d, rcpts, **kw)

    def deliver(self, d, rcpts, status, **kw):
        """submit, then the delivery events of that queue id with status (see delivery)."""
        return delivery(d, self.submit(d, rcpts), status, **kw)

    def close(self):
        if self._closed:
            return
        self._closed = True
        for h in self.servers:
            h.stop()
        for key in list(self.procs):
            self._stop(key)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        if not os.environ.get("MXTEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


_shared = None


def net():
    """The TlsNet of this test module (created on first use, torn down at exit)."""
    global _shared
    if _shared is None or _shared._closed:
        _shared = TlsNet()
    return _shared


class Https:
    """/usr/bin/python3 http.server + ssl on ip:443 in the namespace (see the docstring)."""

    def __init__(self, net, n, name, ip, cert, body, status, content_type, redirect):
        self.net, self.name, self.ip, self.certobj = net, name, ip, cert
        self.key = f"https{n}-{name}-{ip}"
        self.dir = os.path.join(net.dir, self.key)
        os.makedirs(self.dir)
        self.site = {}
        self.set(body=body, status=status, content_type=content_type, redirect=redirect)

    def set(self, **kw):
        """Change the response (body, status, content_type, redirect) for the next request."""
        for k, v in kw.items():
            if k == "body":     # bytes kept as they are (a policy that is not UTF-8)
                v = v if isinstance(v, bytes) else v.encode()
                k, v = "body_b64", base64.b64encode(v).decode()
            self.site[k] = v
        tmp = os.path.join(self.dir, "site.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.site, f)
        os.rename(tmp, os.path.join(self.dir, "site.json"))

    def start(self, timeout=10):
        cfg = {"host": self.ip, "port": 443, "cert": self.certobj.cert,
               "key": self.certobj.key, "dir": self.dir}
        path = os.path.join(self.dir, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        ready = os.path.join(self.dir, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        p = self.net._spawn(self.key, [DEBIAN_PYTHON, os.path.join(HERE, "tlspeers.py"),
                                       "https", path], self.key + ".out")
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if p.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"https {self.name} on {self.ip}:443 did not start:\n" +
                                     self.net.output(self.key + ".out"))
            time.sleep(0.02)
        _note(f"# tlspeers: https {self.name} on {self.ip}:443")
        return self

    def stop(self):
        self.net._stop(self.key)

    def alive(self):
        p = self.net.procs.get(self.key)
        return p is not None and p.poll() is None

    def tls_errors(self):
        """Handshakes that failed (the client aborted on the certificate's issuer, or spoke
        no TLS). A client that checks the name after the handshake (curl) just closes:
        no request, no entry here."""
        try:
            with open(os.path.join(self.dir, "tls_errors.jsonl")) as f:
                return [json.loads(ln) for ln in f if ln.endswith("\n")]
        except OSError:
            return []

    def requests(self):
        out = []
        try:
            with open(os.path.join(self.dir, "requests.jsonl")) as f:
                for ln in f:
                    if ln.endswith("\n"):
                        r = json.loads(ln)
                        r["body"] = base64.b64decode(r["body"])
                        out.append(r)
        except OSError:
            pass
        return out


# --------------------------------------------------------------------------
# the HTTPS child (runs under /usr/bin/python3 inside the namespace)

def _https_handler(d):
    """The request handler class: answers from d/site.json, logs to d/requests.jsonl."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _record(self, body):
            r = {"method": self.command, "path": self.path, "host": self.headers.get("Host"),
                 "headers": dict(self.headers.items()), "t": time.time(),
                 "body": base64.b64encode(body).decode()}
            with open(os.path.join(d, "requests.jsonl"), "a") as f:
                f.write(json.dumps(r) + "\n")

        def _answer(self, status, ctype, body, extra=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            site = json.load(open(os.path.join(d, "site.json")))
            self._record(b"")
            if site.get("redirect"):
                return self._answer(301, "text/plain", b"moved\n",
                                    [("Location", site["redirect"])])
            self._answer(site.get("status", 200), site.get("content_type", "text/plain"),
                         base64.b64decode(site.get("body_b64", "")))

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            self._record(body)
            self._answer(200, "text/plain", b"ok\n")

    return Handler


def https_main(cfg_path):
    import http.server
    import ssl
    cfg = json.load(open(cfg_path))
    d = cfg["dir"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def finish_request(self, request, client_address):
            # the handshake in the connection's thread: a stuck client blocks no one
            request.settimeout(10)
            try:
                request = ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                with open(os.path.join(d, "tls_errors.jsonl"), "a") as f:
                    f.write(json.dumps({"peer": list(client_address), "error": str(e),
                                        "t": time.time()}) + "\n")
                return
            super().finish_request(request, client_address)

    srv = Server((cfg["host"], cfg["port"]), _https_handler(d))
    open(os.path.join(d, "ready"), "w").close()
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    srv.serve_forever()


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "https":
    https_main(sys.argv[2])
