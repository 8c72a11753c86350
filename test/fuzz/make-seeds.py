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


# ---- dns: type byte (0 A, 1 AAAA, 2 MX), then a response for "a.t" ---------------

def dname(name):
    out = b""
    for label in name.split(".") if name else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def rr(owner, rtype, rdata, ttl=300):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def packet(qtype, answers=(), authority=(), rcode=0, qname="a.t"):
    hdr = struct.pack(">HHHHHH", 0x1234, 0x8180 | rcode, 1, len(answers), len(authority), 0)
    q = dname(qname) + struct.pack(">HH", qtype, 1)
    return hdr + q + b"".join(answers) + b"".join(authority)


PTR_QNAME = b"\xc0\x0c"  # compression pointer to the question's name


def soa(minimum):
    return dname("ns.t") + dname("host.t") + struct.pack(">IIIII", 1, 3600, 600, 86400, minimum)


def dns_seeds():
    a, aaaa, mx, cname, soat = 1, 28, 15, 5, 6
    v6 = bytes([0x20, 0x01, 0x0d, 0xb8]) + bytes(11) + b"\x01"
    return {
        "a": b"\x00" + packet(a, [rr(PTR_QNAME, a, bytes([192, 0, 2, 1])),
                                  rr(PTR_QNAME, a, bytes([192, 0, 2, 2]))]),
        "a-private": b"\x00" + packet(a, [rr(PTR_QNAME, a, bytes([10, 0, 0, 1]))]),
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
        "nxdomain-soa": b"\x02" + packet(mx, authority=[rr(dname("t"), soat, soa(60))], rcode=3),
        "nodata-soa": b"\x01" + packet(aaaa, authority=[rr(dname("t"), soat, soa(900))]),
        "nodata-nosoa": b"\x00" + packet(a),
        "servfail": b"\x00" + packet(a, rcode=2),
        "other-name": b"\x00" + packet(a, [rr(dname("z.t"), a, bytes([192, 0, 2, 3]))]),
        "pointer-loop": b"\x02" + packet(mx, [rr(PTR_QNAME, mx, b"\x00\x0a\xc0\x2b")]),
    }


TARGETS = {
    "addr": addr_seeds,
    "proxy": proxy_seeds,
    "dns": dns_seeds,
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
