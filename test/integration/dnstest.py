"""dnstest: what the DNS tool tests share (test_dns_*.py, test_spf_ip.py, test_dnstools.py,
test_dkim_rotate.py, test_dkim_e2e.py).

Owns: the world made once per test file (`once`), its directory and relay configs, running
mxrelayctl in a dnsns namespace with its raw output, reading `--json` strictly, the lines of
`dns check --json`, and the Mail::DKIM verifier script. The zone files themselves stay with
dnsns (zone_text, txt_strings); each test keeps its own zones and expectations.
"""

import atexit
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import mxtest

SANITIZER = re.compile(r"(AddressSanitizer|LeakSanitizer|runtime error:)")

# Mail::DKIM (libmail-dkim-perl), an independent verifier: every signature's result, one per
# line, "s=SELECTOR a=ALGORITHM RESULT (DETAIL)". Arguments: the message file and the port of
# the test's nsd on 127.0.0.1, which it asks for the keys.
MAIL_DKIM = r"""
use strict; use warnings;
use Mail::DKIM::Verifier; use Mail::DKIM::DNS; use Net::DNS;
my ($file, $port) = @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $port,
                                                  recurse => 0, retry => 2, udp_timeout => 5));
open(my $fh, '<:raw', $file) or die "$file: $!";
my $v = Mail::DKIM::Verifier->new();
$v->load($fh);
for my $sig ($v->signatures) {
    printf "s=%s a=%s %s (%s)\n", $sig->selector, $sig->algorithm, $sig->result,
        $sig->result_detail // '';
}
"""


def once(build):
    """world(): build() on its first call, the same object after; a Skip is kept and raised again."""
    made = []

    @functools.wraps(build)
    def world():
        if not made:
            try:
                made.append(build())
            except mxtest.Skip as e:
                made.append(e)
        if isinstance(made[0], mxtest.Skip):
            raise made[0]
        return made[0]
    return world


def world_dir(prefix):
    """A directory for a test file's keys and configs, readable by all, removed at exit."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    atexit.register(shutil.rmtree, d, True)
    return d


def relay_conf(path, helo, ip4=None, ip6=None, lines=()):
    """A relay config at path: helo_name, the egress addresses given, then lines."""
    out = [f"helo_name = {helo}"]
    out += [f"source_ipv4 = {ip4}"] if ip4 else []
    out += [f"source_ipv6 = {ip6}"] if ip6 else []
    return mxtest.write_file(path, "\n".join(out + list(lines)) + "\n")


def no_sanitizer_report(*texts):
    """Fails on a sanitizer report in texts (builds with MXRELAY_SANITIZE)."""
    text = "".join(texts)
    assert SANITIZER.search(text) is None, f"sanitizer report:\n{text[-3000:]}"


def run_raw(ns, cmd, timeout=120):
    """cmd inside namespace ns, output kept as bytes (for strict UTF-8); (process, seconds).

    The output goes to the transcript; a sanitizer report on stderr fails."""
    mxtest.note("$ " + " ".join(str(c) for c in cmd))
    t0 = time.monotonic()
    p = subprocess.run(["ip", "netns", "exec", ns.name] + [str(c) for c in cmd],
                       capture_output=True, timeout=timeout)
    took = time.monotonic() - t0
    for ln in (p.stdout + p.stderr).decode("utf-8", "replace").splitlines()[-40:]:
        mxtest.note("  " + ln)
    mxtest.note(f"  (exit {p.returncode}, {took:.1f}s)")
    no_sanitizer_report(p.stderr.decode("utf-8", "replace"))
    return p, took


def strict_json(raw):
    """json.loads of --json output: bytes as strict UTF-8, no NaN/Infinity, no duplicate keys."""
    def pairs(kv):
        keys = [k for k, _ in kv]
        assert len(keys) == len(set(keys)), f"duplicate keys {keys}"
        return dict(kv)

    def constant(name):
        raise AssertionError(f"not JSON: {name}")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="strict")
    return json.loads(raw, object_pairs_hook=pairs, parse_constant=constant)


def check_lines(checks):
    """{name: line} of dns check's "checks": each exactly name, status, detail and fix, the
    fix null exactly when the status is pass, no name twice."""
    got = {}
    for c in checks:
        assert set(c) == {"name", "status", "detail", "fix"}, c
        assert c["status"] in ("pass", "warn", "fail"), c
        assert (c["fix"] is None) == (c["status"] == "pass"), c
        assert c["name"] not in got, f"check {c['name']} twice"
        got[c["name"]] = c
    return got
