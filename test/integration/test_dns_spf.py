#!/usr/bin/python3
"""SPF record findings of `mxrelayctl dns check` and the merges of `dns spf`
against real DNS (issue 14).

nsd serves, in a network namespace (dnsns.py), one domain per SPF
misconfiguration family under spfrec.test, a stand-in for Exchange
Online's spf.protection.outlook.com (its ip4/ip6 ranges), and a reverse
zone for the relay's PTR names. pyspf (python3-spf, run in the same
namespace through spfsuite.pyspf_eval) is the independent judge of what
receivers answer: before a merge (two records: permerror) and after
(the printed record published in a fresh nsd).

The relay's addresses are from TEST-NET-3 and 2001:db8::/32: evaluated
only, never connected to; the namespace has only its loopback.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsns  # noqa: E402
import dnstest  # noqa: E402
import mxtest  # noqa: E402
import spfsuite  # noqa: E402

CTL = mxtest.MXRELAYCTL
IP4 = "203.0.113.10"
IP6 = "2001:db8::10"
HELO = "mail.spfrec.test"
EXO_SPF = ("v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/15 ip4:104.47.0.0/17 "
           "ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 -all")
EXO_SAMPLE = "40.92.0.0"     # the first ip4 of the stand-in record: dns spf's sample
EXO_OTHER = "104.47.10.20"   # another Exchange Online sender
UNRELATED = "198.51.100.99"  # listed by nobody

# name under spfrec.test -> (records, {check name: status}, words each line's detail holds)
FAMILIES = {
    "syntax": ([f"v=spf1 ip4:192.0.2.300 a//129 include: exists:%{{q}}.x.test mx:foo ip4:{IP4} -all"],
               {"spf": "fail", "spf-syntax": "fail"}, {"spf-syntax": "5 term(s) do not parse"}),
    "unknown": ([f"v=spf1 ip4:{IP4} foo:bar.test -all"],
                {"spf": "fail", "spf-unknown": "fail"}, {"spf-unknown": "foo:bar.test"}),
    "twice": ([f"v=spf1 ip4:{IP4} redirect=a.spfrec.test redirect=b.spfrec.test exp=e.spfrec.test "
               "exp=f.spfrec.test"],
              {"spf": "fail", "spf-modifiers": "fail"}, {"spf-modifiers": "redirect= 2 times; exp= 2 times"}),
    "redirign": ([f"v=spf1 ip4:{IP4} ip6:{IP6} -all redirect=plain.spfrec.test"],
                 {"spf": "warn", "spf-redirect": "warn"}, {"spf-redirect": "6.1"}),
    "afterall": ([f"v=spf1 -all ip4:{IP4} ip6:{IP6}"],
                 {"spf": "warn", "spf-after-all": "warn", f"spf-ip {IP4}": "fail",
                  f"spf-ip {IP6}": "fail"}, {"spf-after-all": f"ip4:{IP4}"}),
    "bareall": ([f"v=spf1 ip4:{IP4} ip6:{IP6} all"], {"spf": "fail", "spf-all": "fail"},
                {"spf-all": "every host on the internet"}),
    "neutral": ([f"v=spf1 ip4:{IP4} ip6:{IP6} ?all"], {"spf": "warn", "spf-all": "warn"},
                {"spf-all": "protects nothing"}),
    "noall": ([f"v=spf1 ip4:{IP4} ip6:{IP6}"], {"spf": "warn", "spf-all": "warn"},
              {"spf-all": "4.7"}),
    "ptr": ([f"v=spf1 ip4:{IP4} ip6:{IP6} ptr -all"], {"spf": "warn", "spf-ptr": "warn"},
            {"spf-ptr": "5.5"}),
    "notarget": ([f"v=spf1 include:plaintxt.spfrec.test ip4:{IP4} ip6:{IP6} -all"],
                 {"spf": "fail", "spf-include": "fail", f"spf-ip {IP4}": "fail",
                  f"spf-ip {IP6}": "fail"},
                 {"spf-include": "include:plaintxt.spfrec.test: publishes no SPF record"}),
    "loop": ([f"v=spf1 include:loop2.spfrec.test ip4:{IP4} ip6:{IP6} -all"],
             {"spf": "fail", "spf-loop": "fail", f"spf-ip {IP4}": "fail", f"spf-ip {IP6}": "fail"},
             {"spf-loop": "include:loop.spfrec.test from loop2.spfrec.test"}),
    "hostbits": ([f"v=spf1 ip4:{IP4}/24 ip6:{IP6}/64 -all"], {"spf": "warn", "spf-host-bits": "warn"},
                 {"spf-host-bits": "matches 203.0.113.0/24; ip6:2001:db8::10/64 matches 2001:db8::/64"}),
    "wide": ([f"v=spf1 ip4:0.0.0.0/0 ip6:{IP6} -all"], {"spf": "fail", "spf-wide": "fail"},
             {"spf-wide": "ip4:0.0.0.0/0"}),
    "cidr": ([f"v=spf1 a:mail.spfrec.test/24 mx//64 ip4:{IP4} ip6:{IP6} -all"],
             {"spf": "warn", "spf-cidr": "warn"}, {"spf-cidr": "a:mail.spfrec.test/24; mx//64"}),
    "long": (["v=spf1 " + " ".join(f"ip4:198.51.100.{n}" for n in range(1, 30)) +
              f" ip4:{IP4} ip6:{IP6} -all"], {"spf": "warn", "spf-length": "warn"}, {"spf-length": "3.4"}),
    "lookups": (["v=spf1 " + " ".join(f"a:h{n}.spfrec.test" for n in range(1, 12)) +
                 f" ip4:{IP4} ip6:{IP6} -all"],
                {"spf": "fail", "spf-lookups": "fail", f"spf-ip {IP4}": "fail",
                 f"spf-ip {IP6}": "fail"},
                {"spf-lookups": "11 DNS-querying terms"}),
    "void": ([f"v=spf1 a:n1.spfrec.test mx:n2.spfrec.test exists:n3.spfrec.test ip4:{IP4} "
              f"ip6:{IP6} -all"],
             {"spf": "fail", "spf-void-lookups": "fail", f"spf-ip {IP4}": "fail",
              f"spf-ip {IP6}": "fail"},
             {"spf-void-lookups": "3 void lookups"}),
    "mxnames": ([f"v=spf1 mx:mx11.spfrec.test ip4:{IP4} ip6:{IP6} -all"],
                {"spf": "fail", "spf-mx-names": "fail", f"spf-ip {IP4}": "fail",
                 f"spf-ip {IP6}": "fail"},
                {"spf-mx-names": "mx:mx11.spfrec.test has 11 MX names"}),
    "ptrnames": ([f"v=spf1 ip4:{IP4} ip6:{IP6} ptr:spfrec.test -all"],
                 {"spf": "warn", "spf-ptr": "warn", "spf-ptr-names": "warn"},
                 {"spf-ptr-names": f"{IP4} has 11 PTR names"}),
    # macros only check_host() can expand: three void lookups before the relay's terms
    "macrovoid": ([f"v=spf1 exists:%{{l}}.m1.spfrec.test exists:%{{l}}.m2.spfrec.test "
                   f"exists:%{{l}}.m3.spfrec.test ip4:{IP4} ip6:{IP6} -all"],
                  {"spf": "fail", "spf-void-lookups": "fail", "spf-lookups": "fail",
                   f"spf-ip {IP4}": "fail", f"spf-ip {IP6}": "fail"},
                  {"spf": "check_host() answers permerror",
                   "spf-void-lookups": "3 void lookups through macros"}),
}
# the records published for the merges
MERGES = {
    "tenant": [f"v=spf1 ip4:198.51.100.20 ~all", "v=spf1 include:spf.protection.outlook.com -all"],
    "strict": ["v=spf1 ip4:198.51.100.30 -all", "v=spf1 ip4:198.51.100.31 ~all"],
    "redir": ["v=spf1 redirect=_spf.redir.spfrec.test", "v=spf1 include:spf.protection.outlook.com ~all"],
    "conflict": ["v=spf1 -ip4:198.51.100.50 include:spf.protection.outlook.com -all",
                 "v=spf1 ip4:198.51.100.50 -all"],
}


class World:
    pass



def spfrec_zone(merged=None):
    """The spfrec.test zone; merged {name: record} replaces those names' SPF records."""
    recs = [f"mail IN A {IP4}", f"mail IN AAAA {IP6}", "@ IN MX 10 mail.spfrec.test.",
            f"plain IN TXT \"v=spf1 ip4:{IP4} ip6:{IP6} -all\"",
            "plaintxt IN TXT \"google-site-verification=abc\"",
            "loop2 IN TXT \"v=spf1 include:loop.spfrec.test -all\"",
            "_spf.redir IN TXT \"v=spf1 ip4:198.51.100.40 -all\""]
    for n in range(1, 12):
        recs.append(f"h{n} IN A 192.0.2.{n}")
        recs.append(f"mx11 IN MX {n} h{n}.spfrec.test.")
    for name, (spf, _want, _words) in FAMILIES.items():
        recs += [f"{name} IN TXT {dnsns.txt_strings(s)}" for s in spf]
    for name, spf in MERGES.items():
        for s in ([merged[name]] if merged and name in merged else spf):
            recs.append(f"{name} IN TXT {dnsns.txt_strings(s)}")
    return dnsns.zone_text("spfrec.test", recs)


def zones(merged=None):
    rev = [f"10 IN PTR p{n}.spfrec.test." for n in range(1, 12)]
    return {
        "spfrec.test": spfrec_zone(merged),
        "protection.outlook.com": dnsns.zone_text(
            "protection.outlook.com", [f"spf IN TXT {dnsns.txt_strings(EXO_SPF)}"]),
        "113.0.203.in-addr.arpa": dnsns.zone_text("113.0.203.in-addr.arpa", rev),
    }


@dnstest.once
def world():
    w = World()
    w.dir = dnstest.world_dir("mxdnsspf-")
    w.conf = dnstest.relay_conf(os.path.join(w.dir, "relay.conf"), HELO, IP4, IP6)
    w.ns = dnsns.NetnsDns(zones()).start()
    return w


def no_sanitizer_report(p):
    dnstest.no_sanitizer_report(p.stdout, p.stderr)


def dns_check(w, domain):
    p = w.ns.run([CTL, "dns", "check", domain, "-c", w.conf, "--json"], timeout=120)
    no_sanitizer_report(p)
    assert p.stderr == "", p.stderr
    return p, dnstest.check_lines(dnstest.strict_json(p.stdout)["checks"])


def dns_spf(w, domain, *args, check=0):
    p = w.ns.run([CTL, "dns", "spf", domain, "-c", w.conf, *args], check=check, timeout=120)
    no_sanitizer_report(p)
    return p


def printed_record(p):
    v = re.findall(r"^  Value: (.*)$", p.stdout, re.M)
    assert len(v) == 1, p.stdout
    return v[0]


def table(p):
    """dns spf's evaluation rows: {address: (sample of, before, after)}."""
    rows = {}
    for ln in p.stdout.splitlines():
        m = re.match(r"^  (\S+) +(.+?) +(none|neutral|pass|fail|softfail|temperror|permerror) +"
                     r"(none|neutral|pass|fail|softfail|temperror|permerror)$", ln)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return rows


def pyspf(ns, ip, domain):
    return spfsuite.pyspf_eval(ip, f"postmaster@{domain}", HELO, netns=ns)[0]


# --------------------------------------------------------------------------
# dns check: one domain per family

def test_each_family_has_its_finding():
    w = world()
    for name, (_spf, want, words) in FAMILIES.items():
        domain = f"{name}.spfrec.test"
        _p, checks = dns_check(w, domain)
        for check, status in want.items():
            assert check in checks, f"{domain}: no {check} line in {sorted(checks)}"
            assert checks[check]["status"] == status, (domain, checks[check])
        for check, word in words.items():
            assert word in checks[check]["detail"], (domain, checks[check])
        for c in checks.values():
            if c["name"].startswith("spf") and c["status"] != "pass":
                assert c["fix"], c
        # a finding the spf-* lines call a permerror: pyspf agrees for an address nobody lists
        perm = [c for c in checks.values() if c["name"].startswith("spf-") and
                "permerror" in c["detail"] and not c["name"].startswith("spf-ip")]
        if perm:
            assert pyspf(w.ns, UNRELATED, domain) == "permerror", (domain, perm)


def test_no_pass_for_spf_where_pyspf_says_permerror():
    w = world()
    for name in FAMILIES:
        domain = f"{name}.spfrec.test"
        _p, checks = dns_check(w, domain)
        for ip in (IP4, IP6):
            if pyspf(w.ns, ip, domain) != "permerror":
                continue
            passing = [c["name"] for c in checks.values()
                       if c["name"].startswith("spf") and c["status"] == "pass"]
            assert passing == [], f"{domain}: pyspf permerror for {ip}, yet PASS: {passing}"


def test_fix_is_the_record_to_publish():
    w = world()
    cases = {
        "redirign": ("spf-redirect", f"v=spf1 ip4:{IP4} ip6:{IP6} -all"),
        "afterall": ("spf-after-all", f"v=spf1 ip4:{IP4} ip6:{IP6} -all"),
        "neutral": ("spf-all", f"v=spf1 ip4:{IP4} ip6:{IP6} ~all"),
        "noall": ("spf-all", f"v=spf1 ip4:{IP4} ip6:{IP6} ~all"),
        "hostbits": ("spf-host-bits", "v=spf1 ip4:203.0.113.0/24 ip6:2001:db8::/64 -all"),
        "unknown": ("spf-unknown", f"v=spf1 ip4:{IP4} -all"),
    }
    for name, (check, record) in cases.items():
        _p, checks = dns_check(w, f"{name}.spfrec.test")
        fix = checks[check]["fix"]
        assert fix.startswith(f"publish instead: {record} ("), (name, fix)
        # the fix is right: pyspf passes the relay with it (publish it: --record of spf-eval)
        p = w.ns.run([CTL, "dns", "spf-eval", "-c", w.conf, "--record", record, IP4,
                      f"postmaster@{name}.spfrec.test"], check=0)
        assert p.stdout.splitlines()[0] == "pass", (name, p.stdout)


def test_text_output_lines():
    w = world()
    p = w.ns.run([CTL, "dns", "check", "void.spfrec.test", "-c", w.conf], check=1, timeout=120)
    assert re.search(r"^FAIL  spf-void-lookups +3 void lookups", p.stdout, re.M), p.stdout
    assert not re.search(r"^PASS  spf", p.stdout, re.M), p.stdout


# --------------------------------------------------------------------------
# dns spf: merges that never remove an authorisation

def published(w, merged):
    """A second namespace whose nsd serves the merged records."""
    return dnsns.NetnsDns(zones(merged)).start()


def test_tenant_merge_keeps_exchange_online():
    w = world()
    domain = "tenant.spfrec.test"
    before = {ip: pyspf(w.ns, ip, domain) for ip in (IP4, EXO_SAMPLE, EXO_OTHER, UNRELATED,
                                                     "198.51.100.20")}
    assert set(before.values()) == {"permerror"}, before  # two records (RFC 7208 4.5)
    p = dns_spf(w, domain)
    rec = printed_record(p)
    assert rec == ("v=spf1 ip4:198.51.100.20 include:spf.protection.outlook.com "
                   f"ip4:{IP4} ip6:{IP6} -all"), p.stdout
    assert "2 records merged into one" in p.stdout, p.stdout
    assert "all:           -all (the strictest" in p.stdout, p.stdout
    rows = table(p)
    assert rows[IP4] == ("the relay", "permerror", "pass"), rows
    assert rows[EXO_SAMPLE] == ("include:spf.protection.outlook.com", "permerror", "pass"), rows
    assert rows["192.0.2.1"] == ("an address nobody lists", "permerror", "fail"), rows
    ns2 = published(w, {"tenant": rec})
    try:
        after = {ip: pyspf(ns2, ip, domain) for ip in before}
    finally:
        ns2.stop()
    assert after[IP4] == "pass" and after[EXO_SAMPLE] == "pass", after
    assert after[EXO_OTHER] == "pass" and after["198.51.100.20"] == "pass", after
    # the unrelated address: fail, as under the stricter of the two records
    assert after[UNRELATED] == "fail", after
    # our evaluator's after column is what pyspf says with the record published
    for ip, (_label, _b, a) in rows.items():
        if ip in after:
            assert a == after[ip], (ip, a, after[ip])


def test_minus_all_wins_over_tilde_all():
    w = world()
    p = dns_spf(w, "strict.spfrec.test", "--ip4", IP4)
    assert printed_record(p) == f"v=spf1 ip4:198.51.100.30 ip4:198.51.100.31 ip4:{IP4} -all"
    ns2 = published(w, {"strict": printed_record(p)})
    try:
        assert pyspf(ns2, "198.51.100.31", "strict.spfrec.test") == "pass"
        assert pyspf(ns2, UNRELATED, "strict.spfrec.test") == "fail"
    finally:
        ns2.stop()


def test_redirect_becomes_include():
    w = world()
    p = dns_spf(w, "redir.spfrec.test", "--ip4", IP4)
    rec = printed_record(p)
    assert rec == ("v=spf1 include:_spf.redir.spfrec.test include:spf.protection.outlook.com "
                   f"ip4:{IP4} ~all"), p.stdout
    assert "redirect= turned into include:" in p.stdout, p.stdout
    ns2 = published(w, {"redir": rec})
    try:
        for ip in ("198.51.100.40", EXO_SAMPLE, IP4):
            assert pyspf(ns2, ip, "redir.spfrec.test") == "pass", ip
    finally:
        ns2.stop()


def test_merge_that_would_stop_a_sender_is_refused():
    """Records that disagree about 198.51.100.50: merged, the -ip4 of the first wins."""
    w = world()
    p = dns_spf(w, "conflict.spfrec.test", "--ip4", IP4, check=1)
    assert "BUG: the merged record would stop 198.51.100.50 (published record 2)" in p.stderr, p.stderr
    assert "Value:" not in p.stdout, p.stdout


def test_merged_record_past_the_limit_says_so():
    w = world()
    p = dns_spf(w, "lookups.spfrec.test")
    assert "DNS lookups: 11 of 10" in p.stdout, p.stdout
    assert re.search(r"^  after: .*4\.6\.4", p.stdout, re.M), p.stdout
    assert "warning: the printed record is a permerror for the relay" in p.stdout, p.stdout
    assert table(p)[IP4] == ("the relay", "permerror", "permerror"), p.stdout


def test_current_option_still_merges():
    w = world()
    p = dns_spf(w, "tenant.spfrec.test", "--ip4", IP4, "--current",
                "v=spf1 include:spf.protection.outlook.com -all")
    assert printed_record(p) == f"v=spf1 include:spf.protection.outlook.com ip4:{IP4} -all"
    rows = table(p)
    assert rows[EXO_SAMPLE] == ("include:spf.protection.outlook.com", "pass", "pass"), rows
    assert rows[IP4] == ("the relay", "fail", "pass"), rows


if __name__ == "__main__":
    try:
        mxtest.main()
    finally:
        dnsns.cleanup_all()
