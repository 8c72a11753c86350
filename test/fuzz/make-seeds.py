#!/usr/bin/python3
"""Write the seed corpora of the fuzz targets listed below into
test/fuzz/corpus/NAME/ (one file per seed, named after what it shows).

The seeds are in the repository; this script says what each one is and
rewrites them after a change of input layout. It only touches the folders of
the targets it knows (other targets keep hand-made seeds).
    /usr/bin/python3 test/fuzz/make-seeds.py [NAME...]
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- addr: flags byte (ADDR_F_NULL_OK 1, UTF8 2, STRICT 4), then the text --------

def addr_seeds():
    s = {}
    for name, flags, text in [
        ("mail-plain", 1, "<user@example.com>"),
        ("mail-null", 1, "<>"),
        ("mail-params", 1, "<user@example.com> SIZE=1000 BODY=8BITMIME"),
        ("rcpt-strict", 4, "<postmaster@example.com>"),
        ("rcpt-route", 4, "<@a.example,@b.example:user@c.example>"),
        ("rcpt-quoted", 4, '<"john doe"@example.com>'),
        ("rcpt-literal4", 4, "<u@[192.0.2.1]>"),
        ("rcpt-literal6", 4, "<u@[IPv6:2001:db8::1]>"),
        ("rcpt-percent", 4, "<user%other@example.com>"),
        ("utf8", 3, "<j\u00f6rg@b\u00fccher.example>"),
        ("bare", 0, "user@example.com"),
        ("from-display", 0, 'Joe Q. Public <john.q.public@example.com>'),
        ("from-list", 0, 'Mary <mary@x.test>, jdoe@one.test, "Giant; \\"Big\\" Box" <b@y.test>'),
        ("from-group", 0, "A Group:Ed <ed@x.test>,joe@y.test;, undisclosed:;"),
        ("from-comment", 0, "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
        ("from-encoded", 0, "=?utf-8?q?J=C3=B6rg?= <jorg@example.com>"),
        ("from-obs-route", 0, "<@node.test:mary@example.net>"),
        ("from-backslash", 0, '"\\'),
    ]:
        s[name] = bytes([flags]) + text.encode()
    return s


# ---- proxy: versions byte (PROXY_V1 1, PROXY_V2 2), then the stream ----------------

V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(cmd, fam, payload):
    return V2SIG + bytes([0x20 | cmd, fam]) + struct.pack(">H", len(payload)) + payload


def proxy_seeds():
    ip4 = bytes([192, 0, 2, 1, 198, 51, 100, 7]) + struct.pack(">HH", 40000, 25)
    ip6 = bytes(15) + b"\x01" + bytes([0x20, 0x01, 0x0d, 0xb8]) + bytes(11) + b"\x07" + \
        struct.pack(">HH", 40000, 25)
    tlv = bytes([0x02]) + struct.pack(">H", 11) + b"example.com" + \
        bytes([0x04]) + struct.pack(">H", 0)
    return {
        "v1-tcp4": b"\x01PROXY TCP4 192.0.2.1 198.51.100.7 40000 25\r\nEHLO x\r\n",
        "v1-tcp6": b"\x03PROXY TCP6 2001:db8::1 2001:db8::7 40000 25\r\n",
        "v1-unknown": b"\x01PROXY UNKNOWN\r\n",
        "v1-unknown-addrs": b"\x01PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
        "v1-partial": b"\x01PROXY TCP4 192.0.2.1 198.",
        "v2-tcp4": b"\x02" + v2(1, 0x11, ip4) + b"EHLO x\r\n",
        "v2-tcp6": b"\x03" + v2(1, 0x21, ip6),
        "v2-tcp4-tlv": b"\x02" + v2(1, 0x11, ip4 + tlv),
        "v2-local": b"\x02" + v2(0, 0x00, b""),
        "v2-unix": b"\x02" + v2(1, 0x31, bytes(216)),
        "v2-udp4": b"\x02" + v2(1, 0x12, ip4),
        "smtp-not-proxy": b"\x03EHLO client.example\r\n",
    }


# ---- dns: type byte (0 A, 1 AAAA, 2 MX, 3 TXT, 4 TLSA), then a response for "a.t" ---

def dname(name):
    out = b""
    for label in name.split(".") if name else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def rr(owner, rtype, rdata, ttl=300):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def packet(qtype, answers=(), authority=(), rcode=0, qname="a.t", ad=False):
    flags = 0x8180 | rcode | (0x20 if ad else 0)  # 0x20: AD, the resolver validated it
    hdr = struct.pack(">HHHHHH", 0x1234, flags, 1, len(answers), len(authority), 0)
    q = dname(qname) + struct.pack(">HH", qtype, 1)
    return hdr + q + b"".join(answers) + b"".join(authority)


PTR_QNAME = b"\xc0\x0c"  # compression pointer to the question's name


def soa(minimum):
    return dname("ns.t") + dname("host.t") + struct.pack(">IIIII", 1, 3600, 600, 86400, minimum)


def answer_seeds():
    """The answers fuzz_dns and fuzz_dnsq both read (their type byte: 0 A, 1 AAAA, 2 MX)."""
    a, aaaa, mx, cname = 1, 28, 15, 5
    v6 = bytes([0x20, 0x01, 0x0d, 0xb8]) + bytes(11) + b"\x01"
    return {
        "a": b"\x00" + packet(a, [rr(PTR_QNAME, a, bytes([192, 0, 2, 1])),
                                  rr(PTR_QNAME, a, bytes([192, 0, 2, 2]))]),
        "aaaa": b"\x01" + packet(aaaa, [rr(PTR_QNAME, aaaa, v6)]),
        "mx": b"\x02" + packet(mx, [rr(PTR_QNAME, mx, struct.pack(">H", 10) + dname("mx1.a.t")),
                                    rr(PTR_QNAME, mx, struct.pack(">H", 20) + b"\x03mx2\xc0\x0c")]),
        "mx-null": b"\x02" + packet(mx, [rr(PTR_QNAME, mx, struct.pack(">H", 0) + b"\x00")]),
        "cname-chain": b"\x00" + packet(a, [rr(PTR_QNAME, cname, dname("b.t")),
                                            rr(dname("b.t"), cname, dname("c.t")),
                                            rr(dname("c.t"), a, bytes([192, 0, 2, 9]))]),
        "cname-open": b"\x02" + packet(mx, [rr(PTR_QNAME, cname, dname("elsewhere.t"))]),
        "cname-loop": b"\x00" + packet(a, [rr(PTR_QNAME, cname, dname("b.t")),
                                           rr(dname("b.t"), cname, dname("a.t"))]),
        "servfail": b"\x00" + packet(a, rcode=2),
        "other-name": b"\x00" + packet(a, [rr(dname("z.t"), a, bytes([192, 0, 2, 3]))]),
        "pointer-loop": b"\x02" + packet(mx, [rr(PTR_QNAME, mx, b"\x00\x0a\xc0\x2b")]),
    }


def dns_seeds():
    a, aaaa, mx, soat = 1, 28, 15, 6
    return {
        "a-private": b"\x00" + packet(a, [rr(PTR_QNAME, a, bytes([10, 0, 0, 1]))]),
        "nxdomain-soa": b"\x02" + packet(mx, authority=[rr(dname("t"), soat, soa(60))], rcode=3),
        "nodata-soa": b"\x01" + packet(aaaa, authority=[rr(dname("t"), soat, soa(900))]),
        "nodata-nosoa": b"\x00" + packet(a),
        **answer_seeds(),
        **dns_sec_seeds(),
    }


# ---- dnsq: type byte (0 A, 1 AAAA, 2 MX, 3 TXT, 4 PTR, 5 SOA), then a response for "a.t" ---

def dnsq_seeds():
    aaaa, mx, txtt, ptr, soat = 28, 15, 16, 12, 6
    return {
        **answer_seeds(),
        "txt-split": b"\x03" + packet(txtt, [rr(PTR_QNAME, txtt, txt(b"v=spf1 ", b"-all"))]),
        "txt-latin1": b"\x03" + packet(txtt, [rr(PTR_QNAME, txtt, txt(b"v=spf1 caf\xe9 -all"))]),
        "txt-nul": b"\x03" + packet(txtt, [rr(PTR_QNAME, txtt, txt(b"a\x00b"))]),
        "txt-cut": b"\x03" + packet(txtt, [rr(PTR_QNAME, txtt, b"\x09short")]),
        "ptr": b"\x04" + packet(ptr, [rr(PTR_QNAME, ptr, dname("Mail.Example.T"))]),
        "ptr-escaped": b"\x04" + packet(ptr, [rr(PTR_QNAME, ptr, b"\x03a.b\x01\x00\x00")]),
        "soa": b"\x05" + packet(soat, [rr(PTR_QNAME, soat, soa(60))]),
        "nxdomain": b"\x02" + packet(mx, authority=[rr(dname("t"), soat, soa(60))], rcode=3),
        "nodata": b"\x01" + packet(aaaa, authority=[rr(dname("t"), soat, soa(900))]),
        "refused": b"\x03" + packet(txtt, rcode=5),
        "truncated": b"\x03" + packet(txtt, [rr(PTR_QNAME, txtt, txt(b"v=spf1 -all"))])[:30],
    }


def txt(*strings):
    return b"".join(bytes([len(x)]) + x for x in strings)


def dns_sec_seeds():
    """TXT and TLSA answers, with and without the AD bit."""
    a, cname, txtt, tlsa, soat = 1, 5, 16, 52, 6
    return {
        "a-secure": b"\x00" + packet(a, [rr(PTR_QNAME, a, bytes([192, 0, 2, 1]))], ad=True),
        "txt-sts": b"\x03" + packet(txtt, [rr(PTR_QNAME, txtt, txt(b"v=STSv1; ", b"id=2026"))],
                                    ad=True),
        "txt-two-records": b"\x03" + packet(txtt, [
            rr(PTR_QNAME, txtt, txt(b"v=TLSRPTv1; rua=mailto:r@a.t")),
            rr(PTR_QNAME, txtt, txt(b""))]),
        "txt-string-overrun": b"\x03" + packet(txtt, [rr(PTR_QNAME, txtt, b"\x05abc")]),
        "txt-empty-rdata": b"\x03" + packet(txtt, [rr(PTR_QNAME, txtt, b"")]),
        "tlsa-dane-ee": b"\x04" + packet(tlsa, [rr(PTR_QNAME, tlsa, bytes([3, 1, 1]) + bytes(range(32)))],
                                         ad=True),
        "tlsa-cname": b"\x04" + packet(tlsa, [rr(PTR_QNAME, cname, dname("_25._tcp.b.t")),
                                              rr(dname("_25._tcp.b.t"), tlsa,
                                                 bytes([2, 0, 2]) + bytes(64))], ad=True),
        "tlsa-no-data": b"\x04" + packet(tlsa, [rr(PTR_QNAME, tlsa, bytes([3, 1, 1]))], ad=True),
        "tlsa-nxdomain": b"\x04" + packet(tlsa, authority=[rr(dname("t"), soat, soa(60))],
                                          rcode=3, ad=True),
    }


# ---- config: the file as it is ----------------------------------------------------

CONFIG_FULL = """# every key once
hostname = relay.example.com
data_dir = /var/lib/mxrelay
user = mxrelay
relay_from = 127.0.0.1/32 ::1/128 192.0.2.0/28 2001:db8:10::/64
credentials = /etc/mxrelay/passwd
max_message_size = 35M
max_recipients = 100
max_header_size = 256K
max_connections = 500
max_connections_per_ip = 20
auth_max_failures = 5
auth_block_time = 15m
session_timeout = 5m
shutdown_timeout = 30s
spool_max_size = 2G
log = stderr
control_socket = /run/mxrelay/control.sock
submit_socket = /run/mxrelay/submit.sock
helo_name = relay.example.com
source_ipv4 = 192.0.2.10
source_ipv6 = 2001:db8::10
address_family = any
dns_servers = 127.0.0.1:5355,[::1]:53
dns_timeout = 500ms
dns_tries = 2
allow_private_mx = no
smtp_port = 25
route = example.net smtp.example.net:587
route = example.org [2001:db8::25]:25
route = example.info [2001:db8::26]
dkim_key = example.com s2026 /etc/mxrelay/dkim/example.com.s2026.pem
dkim_key = example.com e2026 /etc/mxrelay/dkim/example.com.e2026.pem
dkim_unsigned = refuse
dkim_require_published = yes
retry_min = 5m
retry_max = 1h
max_queue_lifetime = 5d
delivery_concurrency = 100
domain_concurrency = 20
domain_concurrency_start = 5
rcpts_per_transaction = 50
max_inflight = 200
dest_idle_time = 2m
smtp_connect_timeout = 30s
smtp_command_timeout = 5m
smtp_data_timeout = 10m
metrics_listen = 127.0.0.1:9425
metrics_allow_remote = no

[listener smtp]
address = 0.0.0.0:25
tls = starttls
cert = /etc/mxrelay/cert.pem
key = /etc/mxrelay/key.pem
tls_min_version = 1.2
auth_without_tls = no

[listener legacy]
address = [::]:2587
tls = required
legacy_tls = yes
legacy_tls_from = 192.0.2.0/28
legacy_tls_until = 2027-06-30

[ listener  balanced ]
address = 127.0.0.1:2526
tls = implicit
proxy_protocol = any
proxy_from = 10.0.0.0/8
"""


def config_seeds():
    with open(os.path.join(HERE, "..", "..", "etc", "mxrelay.conf.sample"), "rb") as f:
        sample = f.read()
    return {
        "sample": sample,
        "full": CONFIG_FULL.encode(),
        "empty": b"",
        "crlf": b"hostname = a.example\r\nmax_message_size = 10MB\r\n[listener x]\r\n"
                b"address = 127.0.0.1:25\r\n",
        "unknown-key": b"hostname = a\nno_such_key = 1\n",
        "bad-section": b"[server x]\naddress = 127.0.0.1:25\n",
        "listener-twice": b"[listener a]\naddress = 127.0.0.1:25\n[listener a]\n",
        "global-in-listener": b"[listener a]\naddress = 127.0.0.1:25\nhostname = x\n",
        "no-address": b"[listener a]\ntls = none\n",
        "same-address": b"[listener a]\naddress = 127.0.0.1:25\n[listener b]\n"
                        b"address = 127.0.0.1:25\n",
        "proxy-without-from": b"[listener a]\naddress = 127.0.0.1:25\nproxy_protocol = v2\n",
        "metrics-remote": b"metrics_listen = 192.0.2.1:9425\n",
        "retry-order": b"retry_min = 2h\nretry_max = 1h\n",
        "bad-values": b"max_message_size = 1T\nsession_timeout = 2w\n",
        "bad-date": b"[listener a]\naddress = 127.0.0.1:25\nlegacy_tls_until = 2026-02-30\n",
        "no-equals": b"hostname relay.example\n",
        "nul-byte": b"hostname = a\x00b\nuser = x\n",
        "long-line": b"hostname = " + b"a" * 4100 + b"\nuser = x\n",
    }


# ---- creds: mode byte (bit 0 update, bit 1 an existing user), then the file --------

YESCRYPT = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd"
SHA512 = ("$6$fuzzsalt$TMAdpzXePxLUFyzhbszyG7PEYcOkSrx8gK/JwqZ/qtZjsDmpAWbYDF41z.P3owQTu0fV."
          "h8j3SLR5H1R0lr9n/")
CREDS_FILE = f"""# user:hash:enabled|disabled:allowed senders
scanner:{YESCRYPT}:enabled:scans@example.com
crm:{SHA512}:enabled:@example.com, @example.org
  # an indented comment
admin:{YESCRYPT}:disabled:*
nobody:{SHA512}:enabled:

"""


def creds_seeds():
    f = CREDS_FILE.encode()
    return {
        "file": b"\x00" + f,
        "file-update-new": b"\x01" + f,
        "file-update-existing": b"\x03" + f,
        "empty-update": b"\x01",
        "crlf": b"\x00" + f.replace(b"\n", b"\r\n"),
        "probe-sender": b"\x00" + f + b"scans@EXAMPLE.com",
        "duplicate": b"\x01" + f + f"crm:{SHA512}:enabled:*\n".encode(),
        "bad-hash": b"\x00u:plain:enabled:*\n",
        "unknown-method": b"\x00u:$9$abc$def:enabled:*\n",
        "bad-state": f"\x00u:{SHA512}:yes:*\n".encode(),
        "too-many-fields": f"\x00u:{SHA512}:enabled:*:extra\n".encode(),
        "missing-fields": b"\x00u:$6$x\n",
        "bad-sender": f"\x00u:{SHA512}:enabled:a@,*@x.example, b c@d\n".encode(),
        "nul-byte": f"\x01u:{SHA512}:enabled:a\x00b@c\n".encode(),
        "long-line": f"\x00u:{SHA512}:enabled:".encode() + b"a@b," * 1100 + b"\n",
    }


# ---- bounce: flags byte, NUL-separated fields, then the original message -----------

def bounce_seeds():
    orig = (b"Received: from client (client [192.0.2.1])\r\n\tby relay\r\n"
            b"From: Scanner <scans@example.com>\r\nTo: someone@example.net\r\n"
            b"Subject: scan\r\nMessage-ID: <1@example.com>\r\n\r\nbody\r\n")

    def make(flags, sender, qid, rcpts, orig_msg=orig):
        out = bytes([flags]) + sender + b"\0" + qid + b"\0"
        for r in rcpts:
            out += b"\0".join(r) + b"\0"
        return out + orig_msg

    rcpt = (b"someone@example.net", b"5.1.1", b"mx.example.net",
            b"550-5.1.1 The email account that you tried to reach does not exist.\r\n"
            b"550 5.1.1 Please try again.")
    return {
        "failed": make(0, b"scans@example.com", b"0123456789abcdef", [rcpt]),
        "delayed": make(1, b"scans@example.com", b"0123456789abcdef",
                        [(b"a@example.net", b"4.4.1", b"mx.example.net", b"connection timed out")]),
        "two-rcpts": make(2, b"scans@example.com", b"0123456789abcdef",
                          [rcpt, (b"b@example.org", b"", b"", b"no MX for example.org")]),
        "utf8": make(0, "j\u00f6rg@b\u00fccher.example".encode(), b"q",
                     [("\u00e9l\u00e8ve@\u00e9cole.example".encode(), b"5.1.1", b"mx.example",
                       "550 Utilisateur inconnu \u00e9".encode())],
                     "Subject: \u00e9t\u00e9\r\nFrom: j\u00f6rg@b\u00fccher.example\r\n\r\nx".encode()),
        "hostile": make(0, b"a<b>\r\nBcc: x@y", b"\r\nX: y",
                        [(b"c\r\n.\r\n@d", b"5.9.999", b"mx\r\nInjected: 1", b"\x00\xff\xfe" * 40)],
                        b"Long: " + b"x" * 2000 + b"\nBare\rCR\n\n"),
        "null-sender": make(0, b"", b"", [rcpt]),
        "mailer-daemon": make(0, b"MAILER-DAEMON@example.com", b"", [rcpt]),
        "no-orig": make(16 | 8 | 32 | 64, b"scans@example.com", b"", [rcpt], b""),
        "long-diagnostic": make(0, b"s@example.com", b"1",
                                [(b"r@example.net", b"5.0.0", b"mx", b"550 " + b"word " * 400)]),
    }


# ---- submit: chunk byte (0 all at once), then what the client sends ----------------

def submit_request(sender, rcpts, body, size=None):
    env = b"SUBMIT\n" + b"FROM " + sender + b"\n"
    for r in rcpts:
        env += b"TO " + r + b"\n"
    return env + b"DATA " + str(len(body) if size is None else size).encode() + b"\n" + body


def submit_seeds():
    body = (b"From: Cron <cron@example.com>\r\nTo: admin@example.net\r\nSubject: report\r\n"
            b"\r\nline one\r\n..dot-stuffed line\r\n")
    return {
        "info": b"\x00INFO\n",
        "info-crlf": b"\x00INFO\r\n",
        "control-verb": b"\x00LIST 10\n",
        "unknown": b"\x00HELLO world\n",
        "submit": b"\x00" + submit_request(b"<cron@example.com>", [b"<admin@example.net>"], body),
        "submit-pieces": b"\x05" + submit_request(b"<cron@example.com>",
                                                  [b"<a@example.net>", b"<b@example.net>"], body),
        "submit-null-sender": b"\x00" + submit_request(b"", [b"<admin@example.net>"], body),
        "submit-no-rcpt": b"\x00SUBMIT\nFROM <a@example.com>\nDATA 5\nhello",
        "submit-bad-rcpt": b"\x00SUBMIT\nFROM <a@example.com>\nTO <@x,@y:a@[1.2.3.4]>\n",
        "submit-short-body": b"\x00" + submit_request(b"<a@example.com>", [b"<b@example.net>"],
                                                     body, size=len(body) + 100),
        "submit-bare-lf": b"\x00" + submit_request(b"<a@example.com>", [b"<b@example.net>"],
                                                  b"Subject: x\n\nbare\n"),
        "submit-long-line": b"\x00" + submit_request(b"<a@example.com>", [b"<b@example.net>"],
                                                    b"Subject: x\r\n\r\n" + b"y" * 1100 + b"\r\n"),
        "submit-utf8": b"\x00" + submit_request("<j\u00f6rg@b\u00fccher.example>".encode(),
                                                ["<\u00e9l\u00e8ve@example.net>".encode()],
                                                "Subject: \u00e9\r\n\r\nx\r\n".encode()),
        "submit-arg": b"\x00SUBMIT now\n",
    }


TARGETS = {
    "addr": addr_seeds,
    "proxy": proxy_seeds,
    "dns": dns_seeds,
    "dnsq": dnsq_seeds,
    "config": config_seeds,
    "creds": creds_seeds,
    "bounce": bounce_seeds,
    "submit": submit_seeds,
}


def main(names):
    for name in names or sorted(TARGETS):
        d = os.path.join(HERE, "corpus", name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        seeds = TARGETS[name]()
        for seed, data in seeds.items():
            with open(os.path.join(d, seed), "wb") as f:
                f.write(data)
        print(f"{name}: {len(seeds)} seeds in {os.path.relpath(d)}")


if __name__ == "__main__":
    main(sys.argv[1:])
