#!/usr/bin/python3
"""mxrelayctl's resolver (tools/dnsq on c-ares), strict UTF-8 --json and the
relay's egress address, against real DNS servers in a network namespace.

Two nsd run in one namespace (dnsns.py): the system resolver's, on
127.0.0.1:53 (what /etc/resolv.conf names there), serves DECOY answers;
the relay's, on 127.0.0.1:5300 and [::1]:5300, serves the REAL ones and is
named only by dns_servers in the config. Every command given that config
must show the real answers; the same command with a config that names no
servers shows the decoy ones, so the test tells them apart. A silent UDP
socket stands for a dead resolver: the lookup must fail, clearly, within
dns_timeout/dns_tries (c-ares doubles the timeout on each try).

The egress tests give the namespace an interface (one end of a veth pair
whose other end is in the namespace too) and a default route through it:
UDP connect() only routes, nothing is sent, and no packet could leave the
namespace anyway.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsns  # noqa: E402
import dnstest  # noqa: E402
import mxtest  # noqa: E402

CTL = mxtest.MXRELAYCTL
SAMPLE = os.path.join(mxtest.SRC, "etc", "mxrelay.conf.sample")
IP4 = "203.0.113.10"
REAL_SPF = f"v=spf1 ip4:{IP4} -all"
DECOY_SPF = "v=spf1 ip4:198.51.100.99 -all"
# ~1.8 KB: over UDP's 512 bytes, the answer comes truncated and c-ares asks again over TCP
BIG_SPF = "v=spf1 " + " ".join(f"ip4:198.51.100.{i}" for i in range(1, 100)) + " -all"
OLD_NO_IPS = "sets no source_ipv4 or source_ipv6: give the relay's addresses with --ip4/--ip6"

# TXT bytes that are not UTF-8 (zone-file \DDD escapes): Latin-1 e-acute, an
# overlong '/', a UTF-16 surrogate, a C0 escape character and a cut sequence
BAD_TXT = r'"v=spf1 ip4:203.0.113.10 caf\233 \192\175 \237\160\128 \027[31m -all \195"'


class World:
    pass


_world = None


def latin_zone():
    return dnsns.zone_text("latin.test", [
        f"@ IN TXT {BAD_TXT}",
        r'_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:d\233@latin.test"',
        "@ IN MX 10 mx.latin.test.",
        "mx IN A 203.0.113.21",
    ])


def real_zones(dkim_value):
    good = dnsns.zone_text("good.test", [
        f"@ IN TXT {dnsns.txt_strings(REAL_SPF)}",
        '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"',
        f"sel1._domainkey IN TXT {dnsns.txt_strings(dkim_value)}",
        "@ IN MX 10 mx.good.test.",
        "mx IN A 203.0.113.20",
        "alias IN CNAME good.test.",
        f"big IN TXT {dnsns.txt_strings(BIG_SPF)}",
    ])
    return {"good.test": good, "latin.test": latin_zone()}


def decoy_zones():
    return {"good.test": dnsns.zone_text("good.test", [
        f"@ IN TXT {dnsns.txt_strings(DECOY_SPF)}",
        '_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:decoy@good.test"',
        "@ IN MX 10 decoy.good.test.",
        "decoy IN A 203.0.113.99",
    ]), "latin.test": latin_zone()}  # the same: the UTF-8 test holds whichever server answers


def start_real_nsd(w, zones):
    """The relay's nsd on 127.0.0.1:5300 and [::1]:5300 in the namespace."""
    d = w.dir
    conf = dnsns.nsd_conf(d, ("127.0.0.1@5300", "::1@5300"), 5300, hide_version=False)
    for origin, text in zones.items():
        fn = mxtest.write_file(os.path.join(d, origin + ".zone"), text)
        conf += ["zone:", f"    name: {origin}", f'    zonefile: "{fn}"']
    path = mxtest.write_file(os.path.join(d, "nsd.conf"), "\n".join(conf) + "\n")
    log = open(os.path.join(d, "nsd.out"), "ab")
    w.nsd = subprocess.Popen(["ip", "netns", "exec", w.ns.name, "nsd", "-d", "-c", path],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True)
    log.close()
    for _ in range(150):
        for server in ("127.0.0.1", "::1"):
            p = w.ns._exec(["dig", "+short", "+time=1", "+tries=1", "-p", "5300", f"@{server}",
                            "TXT", "good.test"])
            if REAL_SPF not in p.stdout:
                break
        else:
            return
        time.sleep(0.1)
    raise AssertionError("the relay's nsd did not start:\n" +
                         open(os.path.join(d, "nsd.out"), errors="replace").read())


def start_silent(w):
    """A UDP socket on 127.0.0.1:5301 of the namespace that reads queries and never answers."""
    code = ("import socket, time\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('127.0.0.1', 5301))\n"
            "print('ready', flush=True)\n"
            "while True:\n"
            "    s.recv(4096)\n")
    w.silent = subprocess.Popen(["ip", "netns", "exec", w.ns.name, "/usr/bin/python3", "-c", code],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    assert w.silent.stdout.readline().strip() == b"ready"


def stop_world():
    w = _world
    if not isinstance(w, World):
        return
    for p in (getattr(w, "nsd", None), getattr(w, "silent", None)):
        if p is not None and p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(10)
    w.ns.stop()
    shutil.rmtree(w.dir, ignore_errors=True)


def world():
    global _world
    if _world is not None:
        return _world
    w = World()
    w.dir = tempfile.mkdtemp(prefix="mxdnsservers-")
    os.chmod(w.dir, 0o755)
    w.key = os.path.join(w.dir, "good.test.sel1.pem")
    p = mxtest.run([CTL, "dkim", "keygen", "good.test", "sel1", "--out", w.key], check=0)
    dkim_value = re.search(r"^  Value: (.*)$", p.stdout, re.M).group(1)
    w.ns = dnsns.NetnsDns(decoy_zones()).start()
    _world = w
    start_real_nsd(w, real_zones(dkim_value))
    start_silent(w)
    return w


def conf(name, *lines):
    w = world()
    return dnstest.relay_conf(os.path.join(w.dir, name), "mail.good.test",
                              lines=[f"dkim_key = good.test sel1 {w.key}", *lines, "dnsbl = none"])


def run_raw(cmd, timeout=60):
    """cmd in the namespace; (exit status, stdout bytes, stderr text, seconds)."""
    p, took = dnstest.run_raw(world().ns, cmd, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"), took


def check_json(domain, cfg, *args):
    """dns check --json: the document, decoded as strict UTF-8 and strict JSON."""
    rc, out, err, _ = run_raw([CTL, "dns", "check", domain, "-c", cfg, "--json", *args])
    assert rc in (0, 1, 3), f"exit {rc}: {err}"  # 3: the worst finding is a warning
    doc = dnstest.strict_json(out)  # strict: a stray byte raises
    return dnstest.check_lines(doc["checks"]), doc


# --------------------------------------------------------------------------
# dns_servers

def test_check_uses_config_servers():
    real = conf("real4.conf", f"source_ipv4 = {IP4}", "dns_servers = 127.0.0.1:5300")
    checks, _ = check_json("good.test", real)
    assert checks["spf"]["detail"] == REAL_SPF, checks["spf"]
    assert "p=reject" in checks["dmarc"]["detail"], checks["dmarc"]
    assert checks["dkim sel1"]["status"] == "pass", checks["dkim sel1"]
    assert checks["mx"]["detail"] == "MX 10 mx.good.test", checks["mx"]
    # the same without dns_servers reads /etc/resolv.conf's server: the decoy
    plain = conf("plain.conf", f"source_ipv4 = {IP4}")
    checks, _ = check_json("good.test", plain)
    assert checks["spf"]["detail"] == DECOY_SPF, checks["spf"]
    assert checks["dkim sel1"]["status"] == "fail", checks["dkim sel1"]


def test_check_ipv6_server_in_brackets():
    real = conf("real6.conf", f"source_ipv4 = {IP4}", "dns_servers = [::1]:5300")
    checks, _ = check_json("good.test", real)
    assert checks["spf"]["detail"] == REAL_SPF, checks["spf"]
    # a dead first server: c-ares moves on to the next one
    both = conf("both.conf", f"source_ipv4 = {IP4}",
                "dns_servers = 127.0.0.1:5301,[::1]:5300", "dns_timeout = 200ms")
    checks, _ = check_json("good.test", both)
    assert checks["spf"]["detail"] == REAL_SPF, checks["spf"]


def test_spf_and_dmarc_use_config_servers():
    real = conf("real4.conf", f"source_ipv4 = {IP4}", "dns_servers = 127.0.0.1:5300")
    rc, out, err, _ = run_raw([CTL, "dns", "spf", "good.test", "-c", real])
    assert rc == 0, err
    assert f"published now: {REAL_SPF}" in out.decode(), out
    rc, out, err, _ = run_raw([CTL, "dns", "spf", "good.test", "-c", real, "--ip4", "203.0.113.11"])
    assert rc == 0 and f"published now: {REAL_SPF}" in out.decode(), out
    rc, out, err, _ = run_raw([CTL, "dns", "dmarc", "good.test", "-c", real])
    assert rc == 0, err
    # the real server's p=reject record is seen (and kept: never weaker), not the decoy's p=none
    assert "_dmarc.good.test publishes a valid DMARC record (p=reject): keep it." in out.decode(), out
    rc, out, err, _ = run_raw([CTL, "dns", "dmarc", "good.test"])
    assert "p=none; rua=mailto:decoy@good.test" in out.decode(), out


def test_cname_followed():
    real = conf("real4.conf", f"source_ipv4 = {IP4}", "dns_servers = 127.0.0.1:5300")
    rc, out, err, _ = run_raw([CTL, "dns", "spf", "alias.good.test", "-c", real])
    assert rc == 0, err
    assert f"published now: {REAL_SPF}" in out.decode(), out


def test_large_answer_over_tcp():
    real = conf("real4.conf", f"source_ipv4 = {IP4}", "dns_servers = 127.0.0.1:5300")
    assert len(BIG_SPF) > 1500
    # what c-ares gets first (no EDNS over UDP): a truncated answer, TC set
    p = world().ns._exec(["dig", "+ignore", "+noedns", "+time=1", "+tries=1", "-p", "5300",
                          "@127.0.0.1", "TXT", "big.good.test"])
    assert re.search(r"flags: [a-z ]*\btc\b", p.stdout), p.stdout
    rc, out, err, _ = run_raw([CTL, "dns", "spf", "big.good.test", "-c", real])
    assert rc == 0, err
    assert f"published now: {BIG_SPF}\n" in out.decode(), out


def test_dead_servers_fail_within_bounds():
    dead = conf("dead.conf", f"source_ipv4 = {IP4}", "dns_servers = 127.0.0.1:5301",
                "dns_timeout = 300ms", "dns_tries = 2")
    rc, out, err, took = run_raw([CTL, "dns", "check", "good.test", "-c", dead])
    assert rc == 1, (rc, err)
    assert err.strip() == ("mxrelayctl dns check: good.test: DNS lookup failed (no answer: "
                           "timeout 300 ms, doubled over 2 tries; servers: 127.0.0.1:5301)"), err
    assert 0.8 < took < 4, f"{took:.1f}s: 300 ms + 600 ms expected"
    rc, out, err, took = run_raw([CTL, "dns", "spf", "good.test", "-c", dead])
    assert rc == 1 and "cannot look up the SPF record of good.test" in err, err
    assert "give it with --current" in err, err
    # the defaults: 2 s, then 4 s, then give up
    dflt = conf("dead-default.conf", f"source_ipv4 = {IP4}", "dns_servers = 127.0.0.1:5301")
    rc, out, err, took = run_raw([CTL, "dns", "check", "good.test", "-c", dflt])
    assert rc == 1 and "DNS lookup failed (no answer: timeout 2000 ms" in err, err
    assert 5.5 < took < 9, f"{took:.1f}s: 2 s + 4 s expected"
    # nothing listening: refused at once
    closed = conf("closed.conf", f"source_ipv4 = {IP4}", "dns_servers = 127.0.0.1:5302")
    rc, out, err, took = run_raw([CTL, "dns", "check", "good.test", "-c", closed])
    assert rc == 1 and "DNS lookup failed (SERVFAIL, REFUSED or nothing listening; servers: " \
        "127.0.0.1:5302)" in err, err
    assert took < 2, f"{took:.1f}s"
    # a server that answers REFUSED (nsd, for a name outside its zones)
    real = conf("real4.conf", f"source_ipv4 = {IP4}", "dns_servers = 127.0.0.1:5300")
    rc, out, err, took = run_raw([CTL, "dns", "check", "outside.test", "-c", real])
    assert rc == 1 and "outside.test: DNS lookup failed (SERVFAIL, REFUSED or nothing " \
        "listening; servers: 127.0.0.1:5300)" in err, err


def test_bad_dns_servers_is_a_config_error():
    bad = conf("bad.conf", "dns_servers = 127.0.0.1:notaport")
    rc, out, err, _ = run_raw([CTL, "dns", "check", "good.test", "-c", bad])
    assert rc == 1, err
    assert re.match(r"mxrelayctl dns check: .*bad\.conf:3: dns_servers: \"127\.0\.0\.1:notaport\" "
                    r"is not IPv4\[:PORT\], IPv6 or \[IPv6\]:PORT", err), err


# --------------------------------------------------------------------------
# strict UTF-8

def test_json_is_strict_utf8_with_non_utf8_txt():
    real = conf("real4.conf", f"source_ipv4 = {IP4}", "dns_servers = 127.0.0.1:5300")
    checks, doc = check_json("latin.test", real)
    spf = checks["spf"]["detail"] + str(checks["spf"]["fix"])
    assert "caf\ufffd" in spf, spf
    assert "\x1b" in spf, "the escape character comes back (as \\u001b in the document)"
    text = json.dumps(doc, ensure_ascii=False)
    assert "\udc00" not in text and "\ud800" not in text
    # text output: the stray bytes and the escape character as \xNN, nothing raw
    rc, out, err, _ = run_raw([CTL, "dns", "check", "latin.test", "-c", real])
    assert rc in (0, 1), err
    out.decode("utf-8")
    assert b"\x1b" not in out and b"\xe9" not in out, out
    assert rb"caf\xe9 \xc0\xaf \xed\xa0\x80 \x1b[31m" in out, out


# --------------------------------------------------------------------------
# egress address

def with_route(addr, gateway, family=4, dev="egress0"):
    """An interface dev with addr and a default route through gateway; removed after."""
    w = world()
    # a veth pair with both ends in the namespace (this kernel has no dummy driver)
    w.ns._exec(["ip", "link", "add", dev, "type", "veth", "peer", "name", dev + "p"], check=True)
    mxtest.on_cleanup(lambda: w.ns._exec(["ip", "link", "del", dev]))
    for d in (dev, dev + "p"):
        w.ns._exec(["ip", "link", "set", d, "up"], check=True)
    extra = ["nodad"] if family == 6 else []
    w.ns._exec(["ip", f"-{family}", "addr", "add", addr, "dev", dev, *extra], check=True)
    w.ns._exec(["ip", f"-{family}", "route", "add", "default", "via", gateway, "dev", dev],
               check=True)


def egress_of(cfg):
    checks, doc = check_json("good.test", cfg)
    return checks["egress IP"], doc


def test_egress_no_route():
    rc, out, err, _ = run_raw([CTL, "dns", "spf", "good.test", "-c", SAMPLE,
                               "--current", "v=spf1 -all"])
    assert rc == 2, err
    assert err.strip() == f"mxrelayctl dns spf: {SAMPLE} {OLD_NO_IPS}", err
    line, doc = egress_of(conf("noips.conf", "dns_servers = 127.0.0.1:5300"))
    assert line["status"] == "warn" and "no route" in line["detail"], line
    assert doc["ips"] == []


def test_egress_detected_public():
    with_route("203.0.113.7/24", "203.0.113.1")
    rc, out, err, _ = run_raw([CTL, "dns", "spf", "good.test", "-c", SAMPLE,
                               "--current", "v=spf1 -all"])
    assert rc == 0, err
    out = out.decode()
    assert re.search(r"^note: .* sets no source_ipv4: 203\.0\.113\.7 is the address the kernel "
                     r"picks for outgoing IPv4 \(detected\); pin it with \"source_ipv4 "
                     r"203\.0\.113\.7\"", out, re.M), out
    assert '"v=spf1 ip4:203.0.113.7 -all"' in out, out
    line, doc = egress_of(conf("noips.conf", "dns_servers = 127.0.0.1:5300"))
    assert line["status"] == "pass", line
    assert "203.0.113.7 (the kernel's choice for outgoing IPv4" in line["detail"], line
    assert doc["ips"] == ["203.0.113.7"]
    assert "fcrdns 203.0.113.7" in {c["name"] for c in doc["checks"]}
    # a pinned address wins over the kernel's choice
    line, doc = egress_of(conf("pinned.conf", f"source_ipv4 = {IP4}",
                               "dns_servers = 127.0.0.1:5300"))
    assert line["status"] == "pass" and line["detail"].startswith(f"{IP4} (source_ipv4 in "), line
    assert doc["ips"] == [IP4]


def test_egress_behind_nat():
    for addr, gw, why in [("10.1.2.3/24", "10.1.2.1", "private (RFC 1918)"),
                          ("100.64.0.5/10", "100.64.0.1", "(RFC 6598)")]:
        with_route(addr, gw)
        ip = addr.split("/")[0]
        rc, out, err, _ = run_raw([CTL, "dns", "spf", "good.test", "-c", SAMPLE,
                                   "--current", "v=spf1 -all"])
        assert rc == 2, err
        assert f"{ip}, the kernel's choice for outgoing IPv4, is " in err and why in err, err
        assert "behind NAT" in err and "--ip4/--ip6" in err, err
        line, doc = egress_of(conf("noips.conf", "dns_servers = 127.0.0.1:5300"))
        assert line["status"] == "warn", line
        assert ip in line["detail"] and why in line["detail"], line
        assert "behind NAT receivers see another address" in line["detail"], line
        assert "source_ipv4 PUBLIC-IP" in line["fix"] and "--ip4" in line["fix"], line
        assert doc["ips"] == [], "a private address is never checked as the relay's"
        world().ns._exec(["ip", "link", "del", "egress0"], check=True)


def test_egress_ipv6_unique_local():
    with_route("fd00:1::5/64", "fd00:1::1", family=6)
    line, doc = egress_of(conf("noips.conf", "dns_servers = 127.0.0.1:5300"))
    assert line["status"] == "warn", line
    assert "fd00:1::5" in line["detail"] and "unique local (RFC 4193)" in line["detail"], line
    assert "source_ipv6 PUBLIC-IP" in line["fix"], line
    # with a public IPv4 beside it: dns spf authorises that one only, and says why
    with_route("203.0.113.7/24", "203.0.113.1", dev="egress4")
    rc, out, err, _ = run_raw([CTL, "dns", "spf", "good.test", "-c", SAMPLE,
                               "--current", "v=spf1 -all"])
    assert rc == 0, err
    out = out.decode()
    assert '"v=spf1 ip4:203.0.113.7 -all"' in out, out
    assert ("note: not authorised: fd00:1::5, the kernel's choice for outgoing IPv6, is unique "
            "local (RFC 4193): behind NAT receivers see another address") in out, out
    line, doc = egress_of(conf("noips.conf", "dns_servers = 127.0.0.1:5300"))
    assert line["status"] == "warn" and "203.0.113.7 (the kernel's choice" in line["detail"], line
    assert doc["ips"] == ["203.0.113.7"]


if __name__ == "__main__":
    try:
        mxtest.main()
    finally:
        stop_world()
        dnsns.cleanup_all()
