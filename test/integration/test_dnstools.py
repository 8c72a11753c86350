#!/usr/bin/python3
"""mxrelayctl's DNS record tools against real DNS: `dkim keygen`, `dns spf`,
`dns dmarc`, `dns dkim` and `dns check`.

`dns check` and `dns spf` look things up through the system resolver
(glibc res_query, and libspf2's own resolver), so they run inside a network
namespace whose resolv.conf points at an nsd on 127.0.0.1:53 there
(dnsns.py). The zones hold one domain per failure case. The relay's egress
addresses are from TEST-NET-3 (203.0.113.0/24) and 2001:db8::/32: they are
only evaluated (SPF, PTR), nothing ever connects to them, and the namespace
has no interface but its loopback.

Keys come from `mxrelayctl dkim keygen`; the records it prints are what the
zones publish, and python3-dkim signs and verifies a message with each key
and printed record.
"""

import base64
import ipaddress
import json
import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsns  # noqa: E402
import dnstest  # noqa: E402
import mxtest  # noqa: E402

CTL = mxtest.MXRELAYCTL
IP4 = "203.0.113.10"
IP6 = "2001:db8::10"
HELO = "mail.good.test"
MSG = (b"From: Sender <sender@good.test>\r\nTo: rcpt@example.net\r\nSubject: dns tools\r\n"
       b"Date: Mon, 23 Nov 2026 02:39:06 +0000\r\nMessage-ID: <dnstools@good.test>\r\n\r\n"
       b"hello\r\n")


_plain_run = mxtest.run


def _run_no_sanitizer_reports(cmd, *args, **kw):
    """mxtest.run, failing on any sanitizer report (for builds with MXRELAY_SANITIZE)."""
    p = _plain_run(cmd, *args, **kw)
    dnstest.no_sanitizer_report(p.stdout, p.stderr)
    return p


mxtest.run = _run_no_sanitizer_reports


# --------------------------------------------------------------------------
# keygen output

def keygen(directory, domain, selector, *args, check=0):
    """Run dkim keygen with --out in directory; returns (CompletedProcess, key path)."""
    path = os.path.join(directory, f"{domain}.{selector}.pem")
    p = mxtest.run([CTL, "dkim", "keygen", domain, selector, "--out", path, *args], check=check)
    return p, path


def unquote_strings(zone_line):
    """The character-strings of a zone-file TXT line, unescaped."""
    out = []
    for s in re.findall(r'"((?:[^"\\]|\\.)*)"', zone_line):
        out.append(re.sub(r"\\(.)", r"\1", s))
    return out


def parse_record_output(stdout, name):
    """(zone line, plain value) of the record printed for name."""
    zone = [ln for ln in stdout.splitlines() if ln.startswith(name + ". IN TXT ")]
    assert len(zone) == 1, f"no single zone line for {name} in:\n{stdout}"
    value = re.findall(r"^  Value: (.*)$", stdout, re.M)
    names = re.findall(r"^  Name:  (.*)$", stdout, re.M)
    assert name in names, f"web panel name {name} missing in:\n{stdout}"
    return zone[0], value[names.index(name)]


def der_of(key, public):
    args = ["openssl", "pkey", "-in", key, "-outform", "DER"] + (["-pubout"] if public else [])
    p = subprocess.run(args, capture_output=True, check=True)
    return p.stdout


def dkimpy_verify(key, alg, domain, selector, txt_value):
    """Sign MSG with key through python3-dkim and verify it against the printed record."""
    import dkim
    if alg == "rsa":
        priv = open(key, "rb").read()
        sig_alg = b"rsa-sha256"
    else:
        priv = base64.b64encode(der_of(key, False)[-32:])  # dkimpy takes the raw seed
        sig_alg = b"ed25519-sha256"
    sig = dkim.sign(MSG, selector.encode(), domain.encode(), priv, signature_algorithm=sig_alg,
                    include_headers=[b"from", b"to", b"subject", b"date"])
    asked = []

    def dnsfunc(name, timeout=5):
        asked.append(name)
        return txt_value.encode()

    ok = dkim.verify(sig + MSG, dnsfunc=dnsfunc)
    assert asked and asked[0].rstrip(b".") == f"{selector}._domainkey.{domain}".encode(), asked
    assert ok, f"python3-dkim did not verify a {alg} signature against {txt_value!r}"


def check_key_output(p, key, domain, selector, alg):
    """Everything keygen must print and write for one key; returns the TXT value."""
    out = p.stdout
    name = f"{selector}._domainkey.{domain}"
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o600, f"key mode {oct(st.st_mode)}"
    zone, value = parse_record_output(out, name)
    strings = unquote_strings(zone)
    assert all(len(s) <= 255 for s in strings), [len(s) for s in strings]
    assert "".join(strings) == value, "zone strings do not join to the plain value"
    tags = dict(t.strip().split("=", 1) for t in value.split(";"))
    assert tags["v"] == "DKIM1" and tags["k"] == alg, value
    pub = der_of(key, True)
    if alg == "rsa":
        assert base64.b64decode(tags["p"]) == pub, "p= is not the key's SubjectPublicKeyInfo"
    else:
        raw = base64.b64decode(tags["p"])
        assert len(raw) == 32 and raw == pub[-32:], "p= is not the raw 32-byte Ed25519 key"
    line = re.findall(r"^dkim_key = (.*)$", out, re.M)
    assert line == [f"{domain} {selector} {os.path.realpath(key)}"], line
    dkimpy_verify(key, alg, domain, selector, value)
    return value


# --------------------------------------------------------------------------
# dkim keygen (no DNS needed)

def test_keygen_rsa():
    d = mxtest.tmpdir()
    p, key = keygen(d, "Good.Test", "sel1")
    check_key_output(p, key, "good.test", "sel1", "rsa")
    assert "(rsa, 2048 bits, mode 0600)" in p.stdout, p.stdout
    strings = unquote_strings(parse_record_output(p.stdout, "sel1._domainkey.good.test")[0])
    assert len(strings) == 2 and len(strings[0]) == 255, [len(s) for s in strings]


def test_keygen_rsa_4096():
    d = mxtest.tmpdir()
    p, key = keygen(d, "good.test", "big", "--bits", "4096")
    check_key_output(p, key, "good.test", "big", "rsa")
    strings = unquote_strings(parse_record_output(p.stdout, "big._domainkey.good.test")[0])
    assert len(strings) == 3, [len(s) for s in strings]


def test_keygen_ed25519():
    d = mxtest.tmpdir()
    p, key = keygen(d, "good.test", "ed", "--type", "ed25519")
    value = check_key_output(p, key, "good.test", "ed", "ed25519")
    zone, _ = parse_record_output(p.stdout, "ed._domainkey.good.test")
    assert len(unquote_strings(zone)) == 1 and len(value) < 100, value


def test_keygen_refuses_overwrite():
    d = mxtest.tmpdir()
    p, key = keygen(d, "good.test", "sel1", "--type", "ed25519")
    before = open(key, "rb").read()
    for typ in ("ed25519", "rsa"):
        p = mxtest.run([CTL, "dkim", "keygen", "good.test", "sel1", "--type", typ, "--out", key],
                       check=1)
        assert p.stdout == "", p.stdout
        assert len(p.stderr.strip().splitlines()) == 1 and "exists" in p.stderr, p.stderr
    assert open(key, "rb").read() == before, "the existing key was changed"


def test_keygen_config_note():
    d = mxtest.tmpdir()
    conf = mxtest.write_file(os.path.join(d, "relay.conf"),
                             f"dkim_key = good.test sel1 {d}/old.pem\n")
    p, key = keygen(d, "good.test", "sel1", "-c", conf)
    assert f"Add this line to {conf}" in p.stdout, p.stdout
    assert re.search(r"note: .*relay\.conf:1 already has dkim_key = good.test sel1", p.stdout), \
        p.stdout


def test_keygen_bad_input():
    d = mxtest.tmpdir()
    cases = [
        (["good.test"], 2, "DOMAIN and SELECTOR"),
        (["good.test", "s", "--type", "dsa"], 2, "--type"),
        (["good.test", "s", "--bits", "1024"], 2, "--bits"),
        (["good.test", "s", "--bits", "many"], 2, "--bits"),
        (["good.test", "s", "--type", "ed25519", "--bits", "2048"], 2, "RSA"),
        (["good.test", "s", "--frobnicate"], 2, "unknown option"),
        (["bad..domain", "s"], 1, "bad domain name"),
        (["good.test", "bad selector"], 1, "bad selector"),
        (["good.test", "s", "--out", os.path.join(d, "missing", "k.pem")], 1, "No such file"),
        (["good.test", "s", "-c", os.path.join(d, "nonexistent.conf"), "--out",
          os.path.join(d, "k.pem")], 1, "nonexistent.conf"),
    ]
    for args, code, word in cases:
        p = mxtest.run([CTL, "dkim", "keygen", *args], check=code)
        first = p.stderr.splitlines()[0] if p.stderr else ""
        assert word in first, f"{args}: stderr {p.stderr!r} lacks {word!r}"
        if code == 1:
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not os.path.exists(os.path.join(d, "k.pem"))


# --------------------------------------------------------------------------
# the DNS world: keys, zones, configs, namespace (built once per file)

class World:
    pass



def default_records(origin, w, spf="default", dkim="default", dmarc="default", mx="default"):
    """The records of a scenario domain: everything fine unless overridden (None = absent)."""
    recs = []
    if spf == "default":
        spf = f"v=spf1 ip4:{IP4} ip6:{IP6} -all"
    for s in ([spf] if isinstance(spf, str) else spf or []):
        recs.append(f"@ IN TXT {dnsns.txt_strings(s)}")
    if dkim == "default":
        dkim = w.rsa_value
    if dkim is not None:
        recs.append(f"sel1._domainkey IN TXT {dnsns.txt_strings(dkim)}")
    if dmarc == "default":
        dmarc = "v=DMARC1; p=reject; rua=mailto:dmarc@" + origin
    if dmarc is not None:
        recs.append(f"_dmarc IN TXT {dnsns.txt_strings(dmarc)}")
    if mx == "default":
        mx = "10 mx.good.test."
    if mx is not None:
        recs.append(f"@ IN MX {mx}")
    return recs


def reverse_zones():
    v4 = {10: "mail.good.test.", 12: "nope.good.test.", 14: "other.good.test."}
    rev4 = [f"{last} IN PTR {name}" for last, name in v4.items()]
    ptr6 = ipaddress.ip_address(IP6).reverse_pointer + "."
    rev6 = [f"{ptr6} IN PTR {HELO}."]
    return {
        "113.0.203.in-addr.arpa": dnsns.zone_text("113.0.203.in-addr.arpa", rev4),
        "8.b.d.0.1.0.0.2.ip6.arpa": dnsns.zone_text("8.b.d.0.1.0.0.2.ip6.arpa", rev6),
    }


def build_zones(w):
    good = default_records("good.test", w, spf="v=spf1 ip4:203.0.113.8/29 ip6:2001:db8::10 -all",
                           dmarc="v=DMARC1; p=none; rua=mailto:dmarc@good.test")
    good += [
        f"sel2._domainkey IN TXT {dnsns.txt_strings(w.ed_value)}",
        "mx IN A 203.0.113.50",
        f"mail IN A {IP4}",
        f"mail IN AAAA {IP6}",
        "other IN A 203.0.113.14",
        "nope IN A 203.0.113.99",
        # a subdomain without its own DMARC record: the parent's applies
        f"sub IN TXT \"v=spf1 ip4:{IP4} ip6:{IP6} -all\"",
        "sub IN MX 10 mx.good.test.",
        f"sel1._domainkey.sub IN TXT {dnsns.txt_strings(w.rsa_value)}",
    ]
    zones = {"good.test": dnsns.zone_text("good.test", good)}
    lookups_spf = (f"v=spf1 ip4:{IP4} ip6:{IP6} include:a.lookups.test include:b.lookups.test "
                   "-all")
    scen = {
        "nospf.test": dict(spf=None),
        "spfnoip.test": dict(spf="v=spf1 ip4:198.51.100.1 -all"),
        "twospf.test": dict(spf=[f"v=spf1 ip4:{IP4} -all", f"v=spf1 ip6:{IP6} -all"]),
        "lookups.test": dict(spf=lookups_spf),
        "plusall.test": dict(spf="v=spf1 +all"),
        "ptrspf.test": dict(spf="v=spf1 mx ptr ~all"),
        "dkimbad.test": dict(dkim=w.other_value),
        "nodkim.test": dict(dkim=None),
        "nodmarc.test": dict(dmarc=None),
        "baddmarc.test": dict(dmarc="v=DMARC1; p=maybe; rua=mailto:dmarc@baddmarc.test"),
        "twodmarc.test": dict(dmarc=None),
        "nomx.test": dict(mx=None),
        "nullmx.test": dict(mx="0 ."),
    }
    for origin, kw in scen.items():
        recs = default_records(origin, w, **kw)
        if origin == "nospf.test":
            recs.append('@ IN TXT "google-site-verification=abc123"')
        if origin == "lookups.test":
            recs.append('a IN TXT "v=spf1 a mx a:x.lookups.test mx:y.lookups.test '
                        'exists:z.lookups.test -all"')
            recs.append('b IN TXT "v=spf1 a a:p.lookups.test a:q.lookups.test a:r.lookups.test -all"')
        if origin == "twodmarc.test":
            recs.append('_dmarc IN TXT "v=DMARC1; p=none"')
            recs.append('_dmarc IN TXT "v=DMARC1; p=reject"')
        zones[origin] = dnsns.zone_text(origin, recs)
    zones.update(reverse_zones())
    return zones


@dnstest.once
def world():
    """Keys, zones, configs and the namespace, made on first use (Skip is remembered)."""
    w = World()
    w.dir = dnstest.world_dir("mxdnstools-")
    p, w.rsa = keygen(w.dir, "good.test", "sel1")
    w.rsa_value = check_key_output(p, w.rsa, "good.test", "sel1", "rsa")
    p, w.ed = keygen(w.dir, "good.test", "sel2", "--type", "ed25519")
    w.ed_value = check_key_output(p, w.ed, "good.test", "sel2", "ed25519")
    p, w.other = keygen(w.dir, "other.test", "sel1")
    w.other_value = parse_record_output(p.stdout, "sel1._domainkey.other.test")[1]
    w.zones = build_zones(w)
    w.ns = dnsns.NetnsDns(w.zones).start()
    return w


def conf(w, domain, ip4=IP4, ip6=IP6, helo=HELO, keys=True, name=None):
    """A relay config for domain: egress addresses, HELO name, its DKIM keys."""
    # no blocklist lookups here (test_dns_doctor.py covers dnsbl)
    lines = ["dnsbl = none"]
    if keys:
        lines.append(f"dkim_key = {domain} sel1 {w.rsa}")
        if domain == "good.test":
            lines.append(f"dkim_key = {domain} sel2 {w.ed}")
    lines.append(f"dkim_key = elsewhere.test sel1 {w.other}")  # other domains are not checked
    path = os.path.join(w.dir, name or f"{domain}-{ip4}-{ip6}-{int(keys)}.conf")
    return dnstest.relay_conf(path, helo, ip4, ip6, lines=lines)


def check(domain, *args, code=None, **kw):
    """dns check --json inside the namespace; returns (exit code, {name: status}, document)."""
    w = world()
    cfg = conf(w, domain, **kw)
    p = w.ns.run([CTL, "dns", "check", domain, "-c", cfg, "--json", *args], timeout=120)
    assert p.stderr == "", f"stderr: {p.stderr!r}"
    doc = dnstest.strict_json(p.stdout)
    assert doc["domain"] == domain
    assert isinstance(doc["checks"], list) and doc["checks"]
    got = {}
    for n, c in dnstest.check_lines(doc["checks"]).items():
        assert c["detail"], c
        got[n] = c["status"]
    worst = "fail" if "fail" in got.values() else "warn" if "warn" in got.values() else "pass"
    assert doc["status"] == worst, doc["status"]
    if code is not None:
        assert p.returncode == code, f"exit {p.returncode}, expected {code}"
    assert p.returncode == {"fail": 1, "warn": 3, "pass": 0}[worst]
    return p.returncode, got, doc


ALL_PASS = {
    "spf": "pass", f"spf-ip {IP4}": "pass", f"spf-ip {IP6}": "pass", "spf-lookups": "pass",
    "dkim sel1": "pass", "dmarc": "pass", "dmarc-alignment": "pass",
    f"fcrdns {IP4}": "pass", f"fcrdns {IP6}": "pass", "mx": "pass",
    "egress IP": "pass",  # source_ipv4/6 of the config (test_dns_servers.py: detection)
}


def expect(domain, changes, code, drop=(), **kw):
    """dns check domain must report ALL_PASS with changes applied (drop: checks absent)."""
    want = dict(ALL_PASS)
    want.update(changes)
    for name in drop:
        del want[name]
    _, got, doc = check(domain, code=code, **kw)
    assert got == want, "statuses differ:\n" + "\n".join(
        f"  {n}: got {got.get(n)} want {want.get(n)}" for n in sorted(set(got) | set(want))
        if got.get(n) != want.get(n))
    return doc


def detail(doc, name):
    return next(c for c in doc["checks"] if c["name"] == name)


# --------------------------------------------------------------------------
# dns check

def test_check_all_good():
    doc = expect("good.test", {"dkim sel2": "pass"}, 0)
    assert "p=none" in detail(doc, "dmarc")["detail"]
    assert "mx.good.test" in detail(doc, "mx")["detail"]
    assert f"{IP4} -> {HELO} -> {IP4}" in detail(doc, f"fcrdns {IP4}")["detail"]


def test_check_text_output():
    w = world()
    cfg = conf(w, "spfnoip.test")
    p = w.ns.run([CTL, "dns", "check", "spfnoip.test", "-c", cfg], timeout=120, check=1)
    lines = p.stdout.splitlines()
    assert re.search(rf"^FAIL  spf-ip {re.escape(IP4)} +SPF result for {re.escape(IP4)} is fail",
                     p.stdout, re.M), p.stdout
    assert re.search(r"^ +fix: add ip4:203\.0\.113\.10 to the record: mxrelayctl dns spf "
                     r"spfnoip\.test$", p.stdout, re.M), p.stdout
    assert re.search(r"^PASS  dkim sel1 ", p.stdout, re.M), p.stdout
    assert lines[-1] == "9 passed, 0 warnings, 2 failed", lines[-1]


def test_check_no_spf():
    doc = expect("nospf.test", {"spf": "fail", f"spf-ip {IP4}": "fail", f"spf-ip {IP6}": "fail"},
                 1, drop=["spf-lookups"])
    assert "mxrelayctl dns spf nospf.test" in detail(doc, "spf")["fix"]
    assert "none" in detail(doc, f"spf-ip {IP4}")["detail"]


def test_check_spf_not_authorising():
    doc = expect("spfnoip.test", {f"spf-ip {IP4}": "fail", f"spf-ip {IP6}": "fail"}, 1)
    assert "is fail" in detail(doc, f"spf-ip {IP4}")["detail"]
    assert "ip6:2001:db8::10" in detail(doc, f"spf-ip {IP6}")["fix"]


def test_check_two_spf_records():
    doc = expect("twospf.test", {"spf": "fail", f"spf-ip {IP4}": "fail", f"spf-ip {IP6}": "fail"},
                 1, drop=["spf-lookups"])
    assert "2 SPF records" in detail(doc, "spf")["detail"]


def test_check_eleven_lookups():
    # the includes' names answer nothing 9 times: past the void limit too (RFC 7208 4.6.4)
    doc = expect("lookups.test", {"spf": "fail", "spf-lookups": "fail",
                                  "spf-void-lookups": "fail"}, 1)
    assert detail(doc, "spf-lookups")["detail"].startswith("11 DNS-querying terms")


def test_check_plus_all():
    doc = expect("plusall.test", {"spf": "fail", "spf-all": "fail"}, 1)
    assert "+all" in detail(doc, "spf")["detail"]


def test_check_spf_warnings():
    # mx authorises nobody useful here, ptr: the record itself only warns
    doc = expect("ptrspf.test", {"spf": "warn", f"spf-ip {IP4}": "fail", f"spf-ip {IP6}": "fail",
                                 "spf-ptr": "warn"}, 1)
    assert "ptr" in detail(doc, "spf")["fix"]


def test_check_dkim_mismatch():
    doc = expect("dkimbad.test", {"dkim sel1": "fail", "dmarc-alignment": "warn"}, 1)
    assert "does not match" in detail(doc, "dkim sel1")["detail"]


def test_check_dkim_missing():
    doc = expect("nodkim.test", {"dkim sel1": "fail", "dmarc-alignment": "warn"}, 1)
    assert "no DKIM record at sel1._domainkey.nodkim.test" in detail(doc, "dkim sel1")["detail"]


def test_check_no_dkim_key_configured():
    want = {n: s for n, s in ALL_PASS.items() if n != "dkim sel1"}
    want.update({"dkim": "warn", "dmarc-alignment": "warn"})
    _, got, _ = check("good.test", code=3, keys=False)
    assert got == want, got


def test_check_unreadable_key():
    w = world()
    cfg = mxtest.write_file(os.path.join(w.dir, "badkey.conf"),
                            f"helo_name = {HELO}\nsource_ipv4 = {IP4}\ndnsbl = none\n"
                            f"dkim_key = good.test sel1 {w.dir}/missing.pem\n")
    p = w.ns.run([CTL, "dns", "check", "good.test", "-c", cfg, "--json"], timeout=120, check=1)
    doc = json.loads(p.stdout)
    c = detail(doc, "dkim sel1")
    assert c["status"] == "fail" and "cannot load the key" in c["detail"], c


def test_check_key_readable_by_everyone():
    w = world()
    loose = os.path.join(w.dir, "loose.pem")
    if not os.path.exists(loose):
        shutil.copy(w.rsa, loose)
    os.chmod(loose, 0o644)
    cfg = mxtest.write_file(os.path.join(w.dir, "loose.conf"),
                            f"helo_name = {HELO}\nsource_ipv4 = {IP4}\ndnsbl = none\n"
                            f"dkim_key = good.test sel1 {loose}\n")
    p = w.ns.run([CTL, "dns", "check", "good.test", "-c", cfg, "--json"], timeout=120, check=3)
    c = detail(json.loads(p.stdout), "dkim sel1")
    assert c["status"] == "warn" and c["fix"] == f"chmod o-rwx {loose}", c
    # readable by the daemon's group only is how docs/deployment.md sets keys up
    os.chmod(loose, 0o640)
    p = w.ns.run([CTL, "dns", "check", "good.test", "-c", cfg, "--json"], timeout=120, check=0)
    assert detail(json.loads(p.stdout), "dkim sel1")["status"] == "pass"


def test_check_dmarc_missing():
    expect("nodmarc.test", {"dmarc": "fail"}, 1, drop=["dmarc-alignment"])


def test_check_dmarc_malformed():
    doc = expect("baddmarc.test", {"dmarc": "fail"}, 1, drop=["dmarc-alignment"])
    assert "p=maybe" in detail(doc, "dmarc")["detail"]


def test_check_two_dmarc_records():
    doc = expect("twodmarc.test", {"dmarc": "fail"}, 1, drop=["dmarc-alignment"])
    assert "2 DMARC records" in detail(doc, "dmarc")["detail"]


def test_check_dmarc_of_parent():
    doc = expect("sub.good.test", {}, 0)
    assert "_dmarc.good.test" in detail(doc, "dmarc")["detail"]


def test_check_ptr_missing():
    expect("good.test", {"dkim sel2": "pass", "fcrdns 203.0.113.11": "fail",
                         f"spf-ip 203.0.113.11": "pass"}, 1,
           drop=[f"fcrdns {IP4}", f"spf-ip {IP4}", f"spf-ip {IP6}", f"fcrdns {IP6}"],
           ip4="203.0.113.11", ip6=None)


def test_check_ptr_not_forward_confirmed():
    doc = expect("good.test", {"dkim sel2": "pass", "fcrdns 203.0.113.12": "fail",
                               "spf-ip 203.0.113.12": "pass"}, 1,
                 drop=[f"fcrdns {IP4}", f"spf-ip {IP4}", f"spf-ip {IP6}", f"fcrdns {IP6}"],
                 ip4="203.0.113.12", ip6=None)
    assert "does not resolve back" in detail(doc, "fcrdns 203.0.113.12")["detail"]


def test_check_ptr_not_helo():
    doc = expect("good.test", {"dkim sel2": "pass", "fcrdns 203.0.113.14": "warn",
                               "spf-ip 203.0.113.14": "pass"}, 3,
                 drop=[f"fcrdns {IP4}", f"spf-ip {IP4}", f"spf-ip {IP6}", f"fcrdns {IP6}"],
                 ip4="203.0.113.14", ip6=None)
    assert "helo_name = other.good.test" in detail(doc, "fcrdns 203.0.113.14")["fix"]


def test_check_no_egress_address():
    want = {n: s for n, s in ALL_PASS.items() if " " not in n or n.startswith("dkim")}
    want.update({"spf-ip": "warn", "dkim sel2": "pass", "dmarc-alignment": "pass",
                 "egress IP": "warn"})  # no route out of the namespace either
    _, got, _ = check("good.test", code=3, ip4=None, ip6=None)
    assert got == want, got


def test_check_ip_options_override_config():
    # 198.51.100.0/24 has no reverse zone here: its fcrdns check fails, SPF passes
    _, got, _ = check("spfnoip.test", "--ip4", "198.51.100.1", code=1)
    assert got.get("spf-ip 198.51.100.1") == "pass" and f"spf-ip {IP4}" not in got, got
    assert got.get("fcrdns 198.51.100.1") == "fail", got


def test_check_mx_missing():
    doc = expect("nomx.test", {"mx": "fail"}, 1)
    assert "no MX" in detail(doc, "mx")["detail"]


def test_check_null_mx():
    doc = expect("nullmx.test", {"mx": "fail"}, 1)
    assert "null MX" in detail(doc, "mx")["detail"]


def test_check_bad_input():
    w = world()
    cfg = conf(w, "good.test")
    cases = [
        (["nosuch.good.test", "-c", cfg], 1, "NXDOMAIN"),
        (["outside.invalid", "-c", cfg], 1, "DNS lookup failed"),
        (["bad..name", "-c", cfg], 1, "bad domain name"),
        (["good.test", "-c", cfg, "--ip4", "203.0.113.999"], 1, "bad IPv4 address"),
        (["good.test", "-c", cfg, "--ip6", IP4], 1, "bad IPv6 address"),
        (["good.test", "-c", os.path.join(w.dir, "nope.conf")], 1, "nope.conf"),
        ([], 2, "DOMAIN"),
        (["good.test", "--frobnicate"], 2, "unknown option"),
        (["good.test", "-c"], 2, "missing argument"),
    ]
    for args, code, word in cases:
        p = w.ns.run([CTL, "dns", "check", *args], check=code, timeout=60)
        assert p.stdout == "", p.stdout
        assert word in p.stderr.splitlines()[0], f"{args}: {p.stderr!r} lacks {word!r}"
        if code == 1:
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    bad = mxtest.write_file(os.path.join(w.dir, "bad.conf"), "source_ipv4 = not-an-ip\n")
    p = w.ns.run([CTL, "dns", "check", "good.test", "-c", bad], check=1)
    assert re.match(r"mxrelayctl dns check: .*bad\.conf:1: source_ipv4: ", p.stderr), p.stderr


# --------------------------------------------------------------------------
# dns spf / dmarc / dkim against the zones

def spf_value(p):
    v = re.findall(r"^  Value: (.*)$", p.stdout, re.M)
    assert len(v) == 1, p.stdout
    return v[0]


def warnings(p):
    return re.findall(r"^warning: (.*)$", p.stdout, re.M)


def test_spf_merges_published_record():
    w = world()
    p = w.ns.run([CTL, "dns", "spf", "spfnoip.test", "--ip4", IP4, "--ip6", IP6], check=0)
    assert spf_value(p) == f"v=spf1 ip4:198.51.100.1 ip4:{IP4} ip6:{IP6} -all", p.stdout
    assert "published now: v=spf1 ip4:198.51.100.1 -all" in p.stdout
    assert f"spfnoip.test. IN TXT \"v=spf1 ip4:198.51.100.1 ip4:{IP4} ip6:{IP6} -all\"" in p.stdout
    assert "DNS lookups: 0 of 10" in p.stdout and warnings(p) == [], p.stdout


def test_spf_addresses_from_config():
    w = world()
    cfg = conf(w, "good.test")
    p = w.ns.run([CTL, "dns", "spf", "spfnoip.test", "-c", cfg], check=0)
    assert spf_value(p) == f"v=spf1 ip4:198.51.100.1 ip4:{IP4} ip6:{IP6} -all", p.stdout
    p = w.ns.run([CTL, "dns", "spf", "good.test", "-c", cfg], check=0)
    assert spf_value(p) == "v=spf1 ip4:203.0.113.8/29 ip6:2001:db8::10 -all", p.stdout
    assert "added:         nothing" in p.stdout, p.stdout
    nocfg = conf(w, "good.test", ip4=None, ip6=None, name="noips.conf")
    p = w.ns.run([CTL, "dns", "spf", "good.test", "-c", nocfg], check=2)
    assert "source_ipv4" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr


def test_spf_new_record():
    w = world()
    p = w.ns.run([CTL, "dns", "spf", "nospf.test", "--ip4", IP4], check=0)
    assert spf_value(p) == f"v=spf1 ip4:{IP4} ~all", p.stdout
    assert "published now: (none)" in p.stdout and "note: a new record ends in ~all" in p.stdout


def test_spf_warns_two_records_plus_all_ptr():
    w = world()
    p = w.ns.run([CTL, "dns", "spf", "twospf.test", "--ip4", "198.51.100.7"], check=0)
    # both records are merged (issue 14), in the order DNS gave them, the relay first
    assert spf_value(p) in (f"v=spf1 ip4:198.51.100.7 ip4:{IP4} ip6:{IP6} -all",
                            f"v=spf1 ip4:198.51.100.7 ip6:{IP6} ip4:{IP4} -all"), p.stdout
    assert "2 records merged into one" in p.stdout, p.stdout
    assert any("more than one SPF record" in x for x in warnings(p)), p.stdout
    p = w.ns.run([CTL, "dns", "spf", "plusall.test", "--ip4", IP4], check=0)
    assert spf_value(p) == f"v=spf1 ip4:{IP4} +all"
    assert any("+all" in x for x in warnings(p)), p.stdout
    p = w.ns.run([CTL, "dns", "spf", "ptrspf.test", "--ip4", IP4], check=0)
    assert spf_value(p) == f"v=spf1 mx ptr ip4:{IP4} ~all"
    assert any("ptr mechanism" in x for x in warnings(p)), p.stdout


def test_spf_counts_lookups_through_includes():
    w = world()
    p = w.ns.run([CTL, "dns", "spf", "lookups.test", "--ip4", IP4], check=0)
    assert "DNS lookups: 11 of 10" in p.stdout, p.stdout
    assert any("more than 10 DNS-querying terms" in x for x in warnings(p)), p.stdout


def test_spf_current_option_and_long_record():
    w = world()
    current = "v=spf1 " + " ".join(f"ip4:198.51.100.{i}" for i in range(1, 40)) + " ~all"
    p = w.ns.run([CTL, "dns", "spf", "good.test", "--ip4", IP4, "--current", current], check=0)
    value = spf_value(p)
    assert value.endswith(f" ip4:{IP4} ~all") and len(value) > 450, value
    zone = [ln for ln in p.stdout.splitlines() if ln.startswith("good.test. IN TXT ")][0]
    strings = unquote_strings(zone)
    assert len(strings) == 3 and all(len(s) <= 255 for s in strings), [len(s) for s in strings]
    assert "".join(strings) == value
    ws = warnings(p)
    assert any("255" in x for x in ws) and any("450" in x for x in ws), ws


def test_spf_bad_input():
    w = world()
    cases = [
        (["nosuch.good.test", "--ip4", IP4], 1, "NXDOMAIN"),
        (["good.test", "--ip4", "1.2.3"], 1, "bad IPv4 address"),
        (["good.test", "--ip4", IP4, "--current", "v=spf1 ip4:1.2.3.400 -all"], 1, "malformed"),
        (["good.test", "--ip4", IP4, "--current", "v=spf1 foo:bar -all"], 1, "malformed"),
        (["good.test", "--ip4", IP4, "--current", "include:x -all"], 1, "not an SPF record"),
        (["Bad_Domain!", "--ip4", IP4], 1, "bad domain name"),
        (["--ip4", IP4], 2, "DOMAIN"),
        (["good.test", "--ip4"], 2, "missing argument"),
    ]
    for args, code, word in cases:
        p = w.ns.run([CTL, "dns", "spf", *args], check=code)
        assert word in p.stderr.splitlines()[0], f"{args}: {p.stderr!r} lacks {word!r}"
        if code == 1:
            assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == "", p.stderr


def test_dmarc_starter():
    w = world()
    p = w.ns.run([CTL, "dns", "dmarc", "nodmarc.test"], check=0)
    zone, value = parse_record_output(p.stdout, "_dmarc.nodmarc.test")
    assert value == ("v=DMARC1; p=none; rua=mailto:dmarc@nodmarc.test; adkim=r; aspf=r; fo=1")
    assert unquote_strings(zone) == [value]
    assert "_dmarc.nodmarc.test publishes nothing yet" in p.stdout
    for word in ("p=quarantine", "p=reject", "pct=", "adkim=s"):
        assert word in p.stdout, word
    p = w.ns.run([CTL, "dns", "dmarc", "good.test", "--rua", "mailto:reports@dmarc.example.net"],
                 check=0)
    _, value = parse_record_output(p.stdout, "_dmarc.good.test")
    # never weaker (issue 14): the published address is kept, --rua's is added
    assert "rua=mailto:dmarc@good.test,mailto:reports@dmarc.example.net;" in value
    assert "publishes now: v=DMARC1; p=none; rua=mailto:dmarc@good.test" in p.stdout, p.stdout
    assert "good.test._report._dmarc.dmarc.example.net. IN TXT \"v=DMARC1\"" in p.stdout


def test_dmarc_bad_input():
    w = world()
    for args, code, word in [
        (["nosuch.good.test"], 1, "NXDOMAIN"),
        (["good.test", "--rua", "dmarc@good.test"], 1, "mailto:"),
        (["good.test", "--rua", "mailto:x@good.test; p=reject"], 1, "--rua"),
        ([], 2, "DOMAIN"),
    ]:
        p = w.ns.run([CTL, "dns", "dmarc", *args], check=code)
        assert word in p.stderr.splitlines()[0], f"{args}: {p.stderr!r} lacks {word!r}"


def test_dns_dkim_prints_configured_records():
    w = world()
    cfg = conf(w, "good.test")
    p = w.ns.run([CTL, "dns", "dkim", "good.test", "-c", cfg], check=0)
    assert parse_record_output(p.stdout, "sel1._domainkey.good.test")[1] == w.rsa_value
    assert parse_record_output(p.stdout, "sel2._domainkey.good.test")[1] == w.ed_value
    assert "elsewhere.test" not in p.stdout
    p = w.ns.run([CTL, "dns", "dkim", "other.test", "-c", cfg], check=1)
    assert "no dkim_key for other.test" in p.stderr


def test_namespace_resolver_is_ours():
    """Sanity: inside the namespace the system resolver answers from our nsd only."""
    w = world()
    assert w.ns.dig("TXT", "spfnoip.test").strip() == '"v=spf1 ip4:198.51.100.1 -all"'
    assert w.ns.dig("PTR", ipaddress.ip_address(IP4).reverse_pointer).strip() == HELO + "."
    p = w.ns.run(["ip", "-o", "link"], check=0)
    assert [ln.split(":")[1].strip() for ln in p.stdout.splitlines()] == ["lo"], p.stdout


if __name__ == "__main__":
    try:
        mxtest.main()
    finally:
        dnsns.cleanup_all()
