#!/usr/bin/python3
"""`mxrelayctl dns check`'s spf-ip and dmarc-alignment lines, and `dns
spf-eval`, against pyspf over real DNS (issue 14: with SPF past the
processing limits of RFC 7208 4.6.4, spf-ip and dmarc-alignment said PASS
where pyspf and Mail::SPF return permerror).

nsd serves one domain per limit in a network namespace (dnsns.py); pyspf
(python3-spf) runs in the same namespace (spfsuite.pyspf_eval) and is the
reference: spf-ip is PASS exactly when pyspf passes, and a permerror's
detail names the limit. The whole RFC 7208 suite is test_spf_suite.py.
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
HELO = "mail.lim.test"
OTHER = [f"192.0.2.{n}" for n in range(1, 12)]

# domain -> (SPF record, pyspf's result for both egress addresses, words of the spf-ip detail)
CASES = {
    # three void lookups (NXDOMAIN) before the relay's terms: libspf2 has no void limit
    "void.lim.test": (f"v=spf1 a:n1.void.lim.test a:n2.void.lim.test a:n3.void.lim.test "
                      f"ip4:{IP4} ip6:{IP6} -all", "permerror", "void lookups"),
    # an mx with 11 names, the first one the relay: RFC 4408 only looked at 10, 7208 is permerror
    "mx.lim.test": ("v=spf1 mx -all", "permerror", "MX names"),
    # the relay's terms after an 11th DNS-querying term
    "terms.lim.test": ("v=spf1 " + " ".join(f"a:h{n}.lim.test" for n in range(1, 12)) +
                       f" ip4:{IP4} ip6:{IP6} -all", "permerror", "DNS-querying terms"),
    # within every limit: 10 terms, 2 void lookups
    "ok.lim.test": ("v=spf1 a:n1.ok.lim.test a:n2.ok.lim.test " +
                    " ".join(f"a:h{n}.lim.test" for n in range(1, 9)) +
                    f" ip4:{IP4} ip6:{IP6} -all", "pass", ""),
    "plain.lim.test": (f"v=spf1 ip4:{IP4} ip6:{IP6} -all", "pass", ""),
}


class World:
    pass


def zone():
    recs = [f"mail IN A {IP4}", f"mail IN AAAA {IP6}"]
    for n, ip in enumerate(OTHER, 1):
        recs += [f"h{n} IN A {ip}", f"h{n} IN AAAA 2001:db8:1::{n}"]
    for dom, (spf, _res, _words) in CASES.items():
        rel = dom[:-len(".lim.test")]
        recs.append(f"{rel} IN TXT {dnsns.txt_strings(spf)}")
        recs.append(f"_dmarc.{rel} IN TXT \"v=DMARC1; p=reject\"")
    recs.append("why IN TXT \"%{i} is not one of %{d}'s senders\"")
    # 11 MX names; the relay is the first (preference 0) and would match
    recs.append("mx IN MX 0 mail.lim.test.")
    for n in range(1, 11):
        recs.append(f"mx IN MX {n} h{n}.lim.test.")
    return dnsns.zone_text("lim.test", recs)


@dnstest.once
def world():
    w = World()
    w.dir = dnstest.world_dir("mxspfip-")
    w.conf = dnstest.relay_conf(os.path.join(w.dir, "relay.conf"), HELO, IP4, IP6)
    w.ns = dnsns.NetnsDns({"lim.test": zone()}).start()
    return w


def spf_eval(w, ip, sender, *args, check=0):
    p = w.ns.run([CTL, "dns", "spf-eval", "-c", w.conf, *args, ip, sender], check=check)
    dnstest.no_sanitizer_report(p.stderr)
    return p


def dns_check(w, domain):
    p = w.ns.run([CTL, "dns", "check", domain, "-c", w.conf, "--json"], timeout=120)
    dnstest.no_sanitizer_report(p.stderr)
    return dnstest.check_lines(dnstest.strict_json(p.stdout)["checks"])


def test_pyspf_sees_the_limits():
    """The reference first: pyspf gives each domain the result CASES says."""
    w = world()
    for dom, (_spf, want, _words) in CASES.items():
        for ip in (IP4, IP6):
            got = spfsuite.pyspf_eval(ip, f"postmaster@{dom}", HELO, netns=w.ns)[0]
            assert got == want, f"pyspf {dom} {ip}: {got}, expected {want}"


def test_spf_eval_agrees_with_pyspf():
    w = world()
    for dom, (_spf, want, words) in CASES.items():
        for ip in (IP4, IP6):
            out = spf_eval(w, ip, f"postmaster@{dom}", "--helo", HELO).stdout.splitlines()
            assert out[0] == want, f"spf-eval {dom} {ip}: {out}"
            assert out[1].startswith("why: ") and words in out[1], out
            if want == "permerror":
                assert "4.6.4" in out[1], out


def test_spf_ip_is_pass_only_when_pyspf_passes():
    w = world()
    for dom, (_spf, want, words) in CASES.items():
        checks = dns_check(w, dom)
        for ip in (IP4, IP6):
            line = checks[f"spf-ip {ip}"]
            assert line["status"] == ("pass" if want == "pass" else "fail"), (dom, line)
            if want != "pass":
                assert f"is {want}" in line["detail"] and words in line["detail"], line
                assert "4.6.4" in line["detail"] and "4.6.4" in line["fix"], line
                assert f"spf-eval --trace {ip} postmaster@{dom}" in line["fix"], line
        # no DKIM key in the config: alignment rests on SPF alone
        align = checks["dmarc-alignment"]
        if want == "pass":
            assert align["status"] == "warn" and "only SPF aligns" in align["detail"], align
        else:
            assert align["status"] == "fail" and "neither DKIM nor SPF" in align["detail"], align


def test_spf_eval_cli():
    w = world()
    # --record: an unpublished record, its include looked up in DNS
    p = spf_eval(w, IP4, "x@void.lim.test", "--helo", HELO, "--trace",
                 "--record", "v=spf1 include:plain.lim.test -all")
    out = p.stdout.splitlines()
    assert out[:2] == ["pass", "why: include:plain.lim.test"], out
    assert any(ln.startswith("trace: lookup TXT plain.lim.test") for ln in out), out
    assert out[-1].startswith("trace: 1 DNS-querying terms, 0 void lookups"), out
    # an IPv4-mapped IPv6 client is evaluated as IPv4 (RFC 7208 5)
    p = spf_eval(w, f"::ffff:{IP4}", "x@ok.lim.test", "--helo", HELO)
    assert p.stdout.splitlines()[:2] == ["pass", f"why: ip4:{IP4}"], p.stdout
    p = spf_eval(w, "198.51.100.7", "x@ok.lim.test", "--helo", HELO,
                 "--record", "v=spf1 -all exp=why.lim.test")
    assert p.stdout.splitlines() == [
        "fail", "why: -all", "explanation: 198.51.100.7 is not one of ok.lim.test's senders"], p.stdout
    # the null sender is postmaster@HELO; no record there: none
    p = spf_eval(w, IP4, "", "--helo", HELO)
    assert p.stdout.splitlines()[0] == "none", p.stdout
    # a config error exits 1 with FILE:LINE: KEY: reason
    bad = mxtest.write_file(os.path.join(w.dir, "bad.conf"), "helo_name = a.test\nno_such_key = 1\n")
    p = w.ns.run([CTL, "dns", "spf-eval", "-c", bad, IP4, "a@ok.lim.test"], check=1)
    assert re.search(rf"{re.escape(bad)}:2: no_such_key: ", p.stderr), p.stderr
    assert p.stdout == "", p.stdout
    # usage errors exit 2 with a clear message
    for args, word in [([IP4], "expected IP and SENDER"), (["1.2.3", "a@b.test"], "bad IP"),
                       (["--helo", "", IP4, "a@b.test"], "empty --helo"),
                       (["--bogus", IP4, "a@b.test"], "bogus")]:
        p = w.ns.run([CTL, "dns", "spf-eval", *args], check=2)
        assert word in p.stderr.splitlines()[0], (args, p.stderr)


if __name__ == "__main__":
    try:
        mxtest.main()
    finally:
        dnsns.cleanup_all()
