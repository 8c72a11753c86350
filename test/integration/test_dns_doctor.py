#!/usr/bin/python3
"""`mxrelayctl dns check`'s host checks and `--all` against real peers.

Everything runs in one network namespace (dnsns.py): nsd on 127.0.0.1:53
answers every lookup, and a veth pair holds the test addresses:
192.0.2.25 (an SMTP sink greeting 220), 192.0.2.26 (accepts, never greets),
192.0.2.27 (nothing listens: refused), the relay's source 203.0.113.10 and
2001:db8::10. 192.0.2.99 is on that subnet but nobody's (a static neighbour
entry with a MAC no one has): packets to it vanish, so a connection times
out. Nothing leaves the namespace: it has no route but its loopback and the
veth pair, whose both ends are inside.

- dnsbl: a blocklist zone bl.test served by nsd (RFC 5782: one address
  listed with a TXT reason, one answering Spamhaus' 127.255.255.254
  "public resolver" code, the IPv6 egress listed by its 32 reversed nibbles),
  configured with `dnsbl = bl.test https://bl.test/delist`; the query names
  are cross-checked with Python's ipaddress and dig.
- --port25: the sink records the source address it saw and the QUIT.
- fcrdns: IPv4 and IPv6 PTR/A/AAAA and helo_name combinations.
- exchange-online: a domain whose MX is example-test.mail.protection.outlook.com
  (an outlook.com stand-in zone inside the namespace).
- --all: two dkim_key domains plus a third from the credentials file; the
  summary table and the exit status (0 pass, 3 warning, 1 failure); --json
  parsed strictly (bytes decoded as UTF-8 with errors raised).
"""

import atexit
import ipaddress
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsns  # noqa: E402
import dnstest  # noqa: E402
import mxtest  # noqa: E402

CTL = mxtest.MXRELAYCTL
IP4 = "203.0.113.10"
IP6 = "2001:db8::10"
HELO = "mail.host.test"
SINK = "192.0.2.25"
SILENT = "192.0.2.26"
REFUSED = "192.0.2.27"
BLACKHOLE = "192.0.2.99"

SINK_PY = r'''
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
def serve(addr, greet):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 25))
    s.listen(16)
    while True:
        c, peer = s.accept()
        log.write(f"connect {addr} from {peer[0]}\n")
        if not greet:
            threading.Thread(target=lambda c=c: (c.recv(100), c.close()), daemon=True).start()
            continue
        c.sendall(b"220-sink.test first line\r\n220 sink.test ESMTP ready\r\n")
        data = c.recv(100)
        log.write(f"got {data!r}\n")
        c.sendall(b"221 2.0.0 bye\r\n")
        c.close()
threading.Thread(target=serve, args=(sys.argv[3], False), daemon=True).start()
log.write("ready\n")
serve(sys.argv[2], True)
'''


class World:
    pass



def rev4(ip, zone):
    return ".".join(reversed(ip.split("."))) + "." + zone


def rev6(ip, zone):
    """RFC 5782 2.4's name for ip, from Python's own reverse pointer."""
    return ipaddress.ip_address(ip).reverse_pointer[:-len("ip6.arpa")] + zone


def keygen(w, domain):
    path = os.path.join(w.dir, f"{domain}.pem")
    p = mxtest.run([CTL, "dkim", "keygen", domain, "sel1", "--out", path], check=0)
    value = re.findall(r"^  Value: (.*)$", p.stdout, re.M)
    assert len(value) == 1, p.stdout
    return path, value[0]


def mail_domain(origin, dkim, spf="v=spf1 ip4:203.0.113.8/29 ip6:2001:db8::/64 -all",
                mx="10 mx.host.test."):
    recs = [f"@ IN TXT {dnsns.txt_strings(spf)}",
            f"_dmarc IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{origin}\"",
            f"@ IN MX {mx}"]
    if dkim:
        recs.append(f"sel1._domainkey IN TXT {dnsns.txt_strings(dkim)}")
    return dnsns.zone_text(origin, recs)


def build_zones(w):
    host = [
        "mx IN A 192.0.2.30",
        f"mail IN A {IP4}", f"mail IN AAAA {IP6}",
        f"mail4 IN A {IP4}",                       # no AAAA
        "other IN A 203.0.113.13",
        "v6 IN AAAA 2001:db8::21",
    ]
    ptr4 = [f"10 IN PTR {HELO}.", "11 IN PTR mail.host.test.", "12 IN PTR mail.host.test.",
            "13 IN PTR other.host.test."]
    ptr6 = [f"{ipaddress.ip_address(IP6).reverse_pointer}. IN PTR {HELO}.",
            f"{ipaddress.ip_address('2001:db8::21').reverse_pointer}. IN PTR v6.host.test."]
    bl = [
        f"{rev4(IP4, 'bl.test')}. IN A 127.0.0.2",
        f"{rev4(IP4, 'bl.test')}. IN TXT \"Listed: spam trap hits, see https://bl.test/q\"",
        f"{rev4('203.0.113.11', 'bl.test')}. IN A 127.255.255.254",
        f"{rev6(IP6, 'bl.test')}. IN A 127.0.0.4",
        f"{rev4('203.0.113.14', 'bl.test')}. IN A 127.0.0.10",  # Spamhaus PBL-style code
    ]
    zones = {
        "host.test": dnsns.zone_text("host.test", host),
        "113.0.203.in-addr.arpa": dnsns.zone_text("113.0.203.in-addr.arpa", ptr4),
        "8.b.d.0.1.0.0.2.ip6.arpa": dnsns.zone_text("8.b.d.0.1.0.0.2.ip6.arpa", ptr6),
        "bl.test": dnsns.zone_text("bl.test", bl),
        "clean.test": dnsns.zone_text("clean.test", []),
        "a.test": mail_domain("a.test", w.a_value),
        "b.test": mail_domain("b.test", w.b_value),
        "c.test": mail_domain("c.test", None),
        "bad.test": mail_domain("bad.test", None, spf="v=spf1 ip4:198.51.100.1 -all"),
        "exo.test": mail_domain("exo.test", w.exo_value,
                                mx="0 example-test.mail.protection.outlook.com."),
        "mail.protection.outlook.com": dnsns.zone_text(
            "mail.protection.outlook.com", ["example-test IN A 192.0.2.40"]),
    }
    p25 = {"p25ok.test": [f"mx IN A {SINK}"], "p25silent.test": [f"mx IN A {SILENT}"],
           "p25refused.test": [f"mx IN A {REFUSED}"], "p25timeout.test": [f"mx IN A {BLACKHOLE}"]}
    for origin, recs in p25.items():
        zones[origin] = dnsns.zone_text(origin, ["@ IN MX 10 mx"] + recs)
    # the first MX never answers, the second does: --port25 tries two addresses
    zones["p25two.test"] = dnsns.zone_text("p25two.test", [
        "@ IN MX 10 dead", "@ IN MX 20 live", f"dead IN A {BLACKHOLE}", f"live IN A {SINK}"])
    return zones


@dnstest.once
def world():
    w = World()
    w.dir = dnstest.world_dir("mxdoctor-")
    w.a_key, w.a_value = keygen(w, "a.test")
    w.b_key, w.b_value = keygen(w, "b.test")
    w.exo_key, w.exo_value = keygen(w, "exo.test")
    w.ns = dnsns.NetnsDns(build_zones(w)).start()
    # a veth pair inside the namespace (no dummy driver here): the addresses on d0; frames
    # for BLACKHOLE go to a MAC nobody has, so its connections time out
    for cmd in (["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                ["ip", "link", "set", "d0", "up"], ["ip", "link", "set", "d1", "up"],
                ["ip", "addr", "add", f"{SINK}/24", "dev", "d0"],
                ["ip", "neigh", "add", BLACKHOLE, "lladdr", "02:00:00:00:00:99", "dev", "d0",
                 "nud", "permanent"],
                ["ip", "addr", "add", f"{SILENT}/32", "dev", "d0"],
                ["ip", "addr", "add", f"{REFUSED}/32", "dev", "d0"],
                ["ip", "addr", "add", f"{IP4}/32", "dev", "d0"],
                ["ip", "-6", "addr", "add", f"{IP6}/128", "dev", "d0", "nodad"]):
        w.ns.run(cmd, check=0, quiet=True)
    w.sink_log = os.path.join(w.dir, "sink.log")
    script = mxtest.write_file(os.path.join(w.dir, "sink.py"), SINK_PY)
    w.sink = subprocess.Popen(["ip", "netns", "exec", w.ns.name, "/usr/bin/python3", script,
                               w.sink_log, SINK, SILENT], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=open(w.sink_log + ".err", "w"),
                              start_new_session=True)
    atexit.register(w.sink.kill)
    mxtest.wait_for(lambda: os.path.exists(w.sink_log) and "ready" in open(w.sink_log).read(),
                    what="the SMTP sink")
    return w


def conf(name, ip4=IP4, ip6=IP6, helo=HELO, dnsbl=("none",), keys=("a.test",), creds=None):
    w = world()
    lines = [f"dnsbl = {b}" for b in dnsbl]
    lines += [f"dkim_key = {d} sel1 {getattr(w, d.split('.')[0] + '_key')}" for d in keys]
    if creds is not None:
        path = os.path.join(w.dir, name + ".creds")
        if os.path.exists(path):
            os.unlink(path)
        mxtest.make_creds(path, [(u, "pw-" + u, s, False) for u, s in creds])
        lines.append(f"credentials = {path}")
    return dnstest.relay_conf(os.path.join(w.dir, name + ".conf"), helo, ip4, ip6, lines=lines)


def run_check(args, code):
    """dns check ARGS --json in the namespace: (document, {name: check})."""
    p, _ = dnstest.run_raw(world().ns, [CTL, "dns", "check", *args, "--json"])
    assert p.returncode == code, f"exit {p.returncode}, expected {code}: {p.stderr!r}"
    assert p.stderr == b"", p.stderr
    doc = dnstest.strict_json(p.stdout)
    return doc, dnstest.check_lines(doc.get("checks", []))


# --------------------------------------------------------------------------
# dnsbl

def test_dnsbl_listed_ipv4_and_ipv6():
    w = world()
    # the zone answers for the names RFC 5782 2.1/2.4 give (computed by Python's ipaddress)
    assert w.ns.dig("A", rev4(IP4, "bl.test")).strip() == "127.0.0.2"
    assert w.ns.dig("A", rev6(IP6, "bl.test")).strip() == "127.0.0.4"
    cfg = conf("bl-listed", dnsbl=["bl.test https://bl.test/delist", "clean.test"])
    doc, got = run_check(["a.test", "-c", cfg], 1)
    c4, c6 = got[f"dnsbl bl.test {IP4}"], got[f"dnsbl bl.test {IP6}"]
    assert c4["status"] == "fail" and c6["status"] == "fail", (c4, c6)
    assert "127.0.0.2" in c4["detail"] and "spam trap hits" in c4["detail"], c4
    assert "RFC 5782" in c4["detail"], c4
    assert "https://bl.test/delist" in c4["fix"], c4
    assert "127.0.0.4" in c6["detail"] and "no reason published" in c6["detail"], c6
    assert got["dnsbl"]["status"] == "pass" and "clean.test" in got["dnsbl"]["detail"], got["dnsbl"]
    assert "1 of 2" in got["dnsbl"]["detail"]


def test_dnsbl_refused_is_a_warning():
    cfg = conf("bl-refused", ip4="203.0.113.11", ip6=None, dnsbl=["bl.test https://bl.test/d"])
    _, got = run_check(["a.test", "-c", cfg], 1)  # fcrdns of .11 fails (PTR is not its HELO)
    c = got["dnsbl bl.test 203.0.113.11"]
    assert c["status"] == "warn", c
    assert "127.255.255.254" in c["detail"] and "public or open resolver" in c["detail"], c
    assert "own recursive resolver" in c["fix"], c
    assert "dnsbl" not in got  # no clean list to summarise


def test_dnsbl_not_listed():
    cfg = conf("bl-clean", ip4="203.0.113.12", ip6=None, dnsbl=["bl.test https://bl.test/d"])
    _, got = run_check(["a.test", "-c", cfg], 1)
    assert got["dnsbl"]["status"] == "pass", got["dnsbl"]
    assert not [n for n in got if n.startswith("dnsbl ")], got


def test_dnsbl_policy_listing_advice():
    """Review 6: 127.0.0.10/11 (Spamhaus PBL) is a policy listing: no "compromised" advice."""
    cfg = conf("bl-pbl", ip4="203.0.113.14", ip6=None, dnsbl=["bl.test https://bl.test/d"])
    _, got = run_check(["a.test", "-c", cfg], 1)
    c = got["dnsbl bl.test 203.0.113.14"]
    assert c["status"] == "fail" and "policy block list" in c["detail"], c
    assert "compromised" not in c["fix"] and "exception at https://bl.test/d" in c["fix"], c


def test_egress_special_ranges_are_not_public():
    """Review 6: 198.18.0.0/15, 192.0.0.0/24, 240.0.0.0/4 and ::ffff:10.0.0.1 are flagged."""
    cfg = conf("eg-special", dnsbl=["none"])
    for args, word in ((["--ip4", "198.18.0.5"], "benchmarking"),
                       (["--ip4", "192.0.0.9"], "IETF protocol assignments"),
                       (["--ip4", "240.0.0.1"], "reserved"),
                       (["--ip6", "::ffff:10.0.0.1"], "private (RFC 1918)")):
        _, got = run_check(["a.test", "-c", cfg, *args], 1)
        c = got["egress IP"]
        assert c["status"] == "warn" and word in c["detail"], (args, c)


def test_dnsbl_default_lists_and_none():
    # no dnsbl line: the built-in lists; nsd here refuses those zones, so each is a warning
    cfg = conf("bl-default", ip6=None, dnsbl=())
    _, got = run_check(["a.test", "-c", cfg], 3)
    zones = sorted(n.split()[1] for n in got if n.startswith("dnsbl "))
    assert zones == sorted(["zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org",
                            "psbl.surriel.com", "bl.mailspike.net"]), zones
    assert all(got[n]["status"] == "warn" for n in got if n.startswith("dnsbl ")), got
    cfg = conf("bl-none", ip6=None, dnsbl=["none"])
    _, got = run_check(["a.test", "-c", cfg], 0)
    assert not [n for n in got if n.startswith("dnsbl")], got


def test_dnsbl_config_errors():
    w = world()
    cases = [
        ("dnsbl = bl..test\n", 1, r"bad\.conf:1: dnsbl: \"bl\.\.test\" is not a DNS zone name"),
        ("dnsbl = bl.test ftp://x\n", 1, r"bad\.conf:1: dnsbl: \"ftp://x\" is not an http"),
        ("dnsbl = bl.test https://a b\n", 1, r"bad\.conf:1: dnsbl: expected"),
        ("dnsbl = bl.test\ndnsbl = BL.test\n", 1, r"bad\.conf:2: dnsbl: BL\.test is already listed on line 1"),
        ("dnsbl = none\ndnsbl = bl.test\n", 1, r"bad\.conf:2: dnsbl: line 1 says"),
        ("dnsbl = bl.test\ndnsbl = none\n", 1, r"bad\.conf:2: dnsbl: \"none\" but line 1"),
        ("dnsbl = nodot\n", 1, r"bad\.conf:1: dnsbl: \"nodot\" is not a DNS zone name"),
    ]
    for text, code, pattern in cases:
        bad = mxtest.write_file(os.path.join(w.dir, "bad.conf"), text)
        p = w.ns.run([CTL, "dns", "check", "a.test", "-c", bad], check=code)
        assert re.search(pattern, p.stderr), (text, p.stderr)


# --------------------------------------------------------------------------
# --port25

def sink_lines():
    return open(world().sink_log).read().splitlines()


def test_port25_pass_from_source_address():
    before = len(sink_lines())
    cfg = conf("p25", ip6=None)
    _, got = run_check(["a.test", "-c", cfg, "--port25", "p25ok.test"], 0)
    c = got["port25 p25ok.test"]
    assert c["status"] == "pass", c
    assert f"mx.p25ok.test [{SINK}]" in c["detail"] and "220 sink.test ESMTP ready" in c["detail"]
    new = mxtest.wait_for(lambda: sink_lines()[before:] if len(sink_lines()) > before + 1
                          else None, what="the sink's log")
    assert f"connect {SINK} from {IP4}" in new, new  # bound to source_ipv4
    assert "got b'QUIT\\r\\n'" in new, new


def test_port25_timeout_refused_no_greeting():
    cfg = conf("p25f", ip6=None)
    t0 = time.monotonic()
    _, got = run_check(["a.test", "-c", cfg, "--port25", "p25timeout.test"], 1)
    took = time.monotonic() - t0
    c = got["port25 p25timeout.test"]
    assert c["status"] == "fail" and "no answer within 5 s" in c["detail"], c
    assert "blocked" in c["fix"] and "provider" in c["fix"], c
    assert 4.5 < took < 15, took
    _, got = run_check(["a.test", "-c", cfg, "--port25", "p25refused.test"], 1)
    c = got["port25 p25refused.test"]
    assert c["status"] == "fail" and "connection refused" in c["detail"], c
    _, got = run_check(["a.test", "-c", cfg, "--port25", "p25silent.test"], 1)
    c = got["port25 p25silent.test"]
    assert c["status"] == "fail" and "no 220 greeting" in c["detail"], c


def test_port25_second_mx():
    cfg = conf("p25two", ip6=None)
    _, got = run_check(["a.test", "-c", cfg, "--port25", "p25two.test"], 0)
    c = got["port25 p25two.test"]
    assert c["status"] == "pass", c
    assert "live.p25two.test" in c["detail"] and "dead.p25two.test" in c["detail"], c


def test_port25_only_when_asked_and_bad_source():
    _, got = run_check(["a.test", "-c", conf("p25no", ip6=None)], 0)
    assert not [n for n in got if n.startswith("port25")], got
    cfg = conf("p25src", ip4="203.0.113.12", ip6=None)  # not an address of this host
    _, got = run_check(["a.test", "-c", cfg, "--port25", "p25ok.test"], 1)
    c = got["port25 p25ok.test"]
    assert "cannot use source address 203.0.113.12" in c["detail"], c


# --------------------------------------------------------------------------
# FCrDNS, IPv4 and IPv6

def test_fcrdns_pass_both_families():
    _, got = run_check(["a.test", "-c", conf("fc-ok")], 0)
    for ip in (IP4, IP6):
        c = got[f"fcrdns {ip}"]
        assert c["status"] == "pass", c
        assert f"HELO {HELO} -> {ip}" in c["detail"], c


def test_fcrdns_ipv6_without_ptr():
    _, got = run_check(["a.test", "-c", conf("fc-noptr6", ip6="2001:db8::20")], 1)
    c = got["fcrdns 2001:db8::20"]
    assert c["status"] == "fail" and "no PTR record" in c["detail"], c
    assert "IPv6" in c["detail"] and "AAAA" in c["fix"], c


def test_fcrdns_helo_without_aaaa():
    # PTR 2001:db8::21 -> v6.host.test -> 2001:db8::21, but the HELO name has no AAAA
    _, got = run_check(["a.test", "-c", conf("fc-noaaaa", helo="mail4.host.test",
                                             ip6="2001:db8::21")], 1)
    c = got["fcrdns 2001:db8::21"]
    assert c["status"] == "fail", c
    assert "HELO mail4.host.test has no AAAA record" in c["detail"], c
    assert "helo_name = v6.host.test" in c["fix"], c
    assert got[f"fcrdns {IP4}"]["status"] == "warn"  # PTR names mail.host.test


def test_fcrdns_helo_unknown_ipv4():
    _, got = run_check(["a.test", "-c", conf("fc-nohelo", helo="nohelo.host.test", ip6=None)], 1)
    c = got[f"fcrdns {IP4}"]
    assert c["status"] == "fail" and "has no A record" in c["detail"], c


def test_fcrdns_helo_differs_warns():
    _, got = run_check(["a.test", "-c", conf("fc-differs", ip4="203.0.113.13", ip6=None)], 3)
    c = got["fcrdns 203.0.113.13"]
    assert c["status"] == "warn" and "helo_name = other.host.test" in c["fix"], c
    assert f"HELO {HELO} has A records, none is 203.0.113.13" in c["detail"], c


# --------------------------------------------------------------------------
# Exchange Online

def test_exchange_online_reminder():
    _, got = run_check(["exo.test", "-c", conf("exo", keys=["exo.test"])], 3)
    c = got["exchange-online"]
    assert c["status"] == "warn", c
    assert "example-test.mail.protection.outlook.com" in c["detail"] and "5.7.68" in c["detail"]
    assert "docs/deployment.md section 7" in c["fix"] and "connector" in c["fix"], c
    assert got["mx"]["status"] == "pass"
    _, got = run_check(["a.test", "-c", conf("noexo")], 0)
    assert "exchange-online" not in got


# --------------------------------------------------------------------------
# --all

def run_all(cfg, code, text=False):
    w = world()
    if text:
        return w.ns.run([CTL, "dns", "check", "--all", "-c", cfg], check=code, timeout=120)
    return run_check(["--all", "-c", cfg], code)[0]


def test_all_pass():
    cfg = conf("all-pass", keys=["a.test", "b.test"], creds=[("u1", "x@a.test,*")],
               dnsbl=["clean.test"])
    doc = run_all(cfg, 0)
    assert [d["domain"] for d in doc["domains"]] == ["a.test", "b.test"], doc["domains"]
    assert doc["status"] == "pass"
    assert [s["domain"] for s in doc["summary"]] == ["a.test", "b.test"]
    for s in doc["summary"]:
        assert (s["spf"], s["dkim"], s["dmarc"], s["mx"]) == ("pass",) * 4, s
    host = dnstest.check_lines(doc["host"]["checks"])
    assert set(host) == {"egress IP", f"fcrdns {IP4}", f"fcrdns {IP6}", "dnsbl"}, host
    for d in doc["domains"]:
        assert not [n for n in dnstest.check_lines(d["checks"]) if n.startswith(("fcrdns", "dnsbl", "egress"))]


def test_all_warn_from_credentials_domain():
    cfg = conf("all-warn", keys=["a.test", "b.test"],
               creds=[("u1", "x@a.test"), ("u2", "@c.test,y@C.TEST"), ("u3", "*")],
               dnsbl=["clean.test"])
    doc = run_all(cfg, 3)
    assert [d["domain"] for d in doc["domains"]] == ["a.test", "b.test", "c.test"]
    row = doc["summary"][2]
    assert row == {"domain": "c.test", "spf": "pass", "dkim": "warn", "dmarc": "warn",
                   "mx": "pass"}, row
    p = run_all(cfg, 3, text=True)
    lines = p.stdout.splitlines()
    assert lines[0].startswith(f"3 domains checked with {cfg}, HELO {HELO}, egress {IP4} {IP6}")
    assert re.search(r"^DOMAIN +SPF +DKIM +DMARC +MX$", p.stdout, re.M), p.stdout
    assert re.search(r"^a\.test +PASS +PASS +PASS +PASS$", p.stdout, re.M), p.stdout
    assert re.search(r"^c\.test +PASS +WARN +WARN +PASS$", p.stdout, re.M), p.stdout
    assert re.search(r"^\(host\) +egress PASS fcrdns PASS dnsbl PASS$", p.stdout, re.M), p.stdout
    assert re.search(r"^c\.test:\nWARN  dkim ", p.stdout, re.M), p.stdout


def test_all_fail():
    cfg = conf("all-fail", keys=["a.test"], creds=[("u1", "@bad.test,@nosuch.test")],
               dnsbl=["bl.test https://bl.test/delist"])
    doc = run_all(cfg, 1)
    rows = {s["domain"]: s for s in doc["summary"]}
    assert rows["bad.test"]["spf"] == "fail", rows
    assert rows["nosuch.test"] == {"domain": "nosuch.test", "spf": "fail", "dkim": "fail",
                                   "dmarc": "fail", "mx": "fail"}, rows
    host = dnstest.check_lines(doc["host"]["checks"])
    assert host[f"dnsbl bl.test {IP4}"]["status"] == "fail"
    p = run_all(cfg, 1, text=True)
    assert re.search(r"^\(host\) +egress PASS fcrdns PASS dnsbl FAIL$", p.stdout, re.M), p.stdout
    assert re.search(r"^the relay host:\nFAIL  dnsbl bl\.test 203\.0\.113\.10 ", p.stdout,
                     re.M), p.stdout


def test_all_skips_an_address_literal_sender():
    """Review 6, 5: a credentials sender a@[192.0.2.1] is named and skipped, the rest checked."""
    cfg = conf("all-literal", keys=["a.test"], creds=[("u1", "x@[192.0.2.1],y@b.test")],
               dnsbl=["clean.test"])
    doc = run_all(cfg, 3)
    assert [d["domain"] for d in doc["domains"]] == ["a.test", "b.test"], doc["domains"]
    host = dnstest.check_lines(doc["host"]["checks"])
    c = host["credentials sender x@[192.0.2.1]"]
    assert c["status"] == "pass" and "skipped" in c["detail"] and "u1" in c["detail"], c


def test_all_usage():
    w = world()
    cfg = conf("all-usage", keys=["a.test"])
    p = w.ns.run([CTL, "dns", "check", "--all", "a.test", "-c", cfg], check=2)
    assert "--all takes no DOMAIN" in p.stderr, p.stderr
    p = w.ns.run([CTL, "dns", "check", "--all", "-c", conf("all-empty", keys=())], check=1)
    assert "nothing to check" in p.stderr, p.stderr


if __name__ == "__main__":
    try:
        mxtest.main()
    finally:
        dnsns.cleanup_all()
