"""MTA-STS discovery and caching (RFC 8461 3, 5.1) in the daemon's own code:
mta/delivery/sts.c with https.c, the dns module and the spool's sts_policies,
driven by test/integration/sts_probe.c (what deliver_new builds, from a real
mxrelay.conf) inside the tlspeers network: nsd + unbound for the _mta-sts
TXT records, a real HTTPS policy server on 443 with a certificate from the
test CA. Checks:
- the policy is fetched once (also for waiters asking at the same time), then served from memory (no new GET), and
  fetched again when the TXT id changes;
- it is stored (sts_policies) and applies after a restart while the HTTPS
  server is down (event=sts_policy source=spool), also when a new id cannot
  be fetched (5.1: a failed fetch keeps the cached policy);
- a redirect, a wrong Content-Type, an oversized body, a 404, an invalid
  policy, or a certificate for another name give no policy, the RFC 8460
  problem and an event=sts_fetch_failed line; redirects are never followed;
- a waiter that starts a new round from its callback leaves the later
  waiters their problem detail;
- max_age 0 is cached for 300 s (no GET per round), and domains whose policy
  expired or whose failed fetch may be retried are freed (sts_sweep);
- a policy host that answers after 12 s (RFC 8461 3.3 gives hosts a minute)
  still delivers its policy;
- https.c withdraws each ended host from curl's DNS cache (CURLOPT_RESOLVE
  entries never expire), so many hosts do not pile up there.
Enforcement (MX filtering, certificate names) is tlspol's and dest's test."""

import json
import os
import sqlite3
import subprocess
import time

import mxtest
import tlspeers

PROBE = os.path.join(os.path.dirname(mxtest.MXRELAYD), "..", "test", "sts_probe")

net = tlspeers.net


def policy(mode="enforce", mx=("mx.example.plain.test",), max_age=86400):
    lines = ["version: STSv1", f"mode: {mode}"] + [f"mx: {m}" for m in mx]
    return "\n".join(lines + [f"max_age: {max_age}"]) + "\n"


class Probe:
    """sts_probe CONFIG in the namespace; get(domain) -> the view as a dict."""

    runs = 0

    def __init__(self, n, d):
        Probe.runs += 1
        self.log_path = os.path.join(d.tmp, f"probe-{Probe.runs}.log")
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(n.cmd([PROBE, d.conf_path]), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.p.stdout.readline()
        assert line.startswith('{"ready"'), line + self.logtext()

    def get(self, domain, times=1):
        """times > 1: asked that often at once (one write), the last view returned."""
        self.p.stdin.write(f"get {domain}\n" * times)
        self.p.stdin.flush()
        for _ in range(times):
            line = self.p.stdout.readline()
            mxtest.note(f"# probe get {domain}: {line.strip()}")
            assert line, "sts_probe died:\n" + self.logtext()
        return json.loads(line)

    def stats(self):
        self.p.stdin.write("stats\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def quit(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.flush()
        assert self.p.wait(timeout=20) == 0, self.logtext()
        self.log.close()

    def logtext(self):
        self.log.flush()
        return open(self.log_path, errors="replace").read()

    def events(self, name):
        out = []
        for ln in self.logtext().splitlines():
            if f"event={name} " in ln + " ":
                out.append(dict(kv.split("=", 1) for kv in ln.split() if "=" in kv))
        return out


def relay_conf(n):
    d = n.relay(start=False)
    os.makedirs(d.data_dir, exist_ok=True)
    return d


def wait_id(pr, domain, want, timeout=20):
    """The TXT record is cached for its TTL (min 5 s in the dns module): ask until seen."""
    deadline = time.monotonic() + timeout
    while True:
        v = pr.get(domain)
        if v["id"] == want or time.monotonic() > deadline:
            return v
        time.sleep(1)


def test_fetched_once_cached_refreshed_and_kept_across_a_restart():
    n = net()
    n.set_zone("plain.test", ['_mta-sts.a TXT "v=STSv1; id=1"', "mta-sts.a A 127.0.0.31"])
    h = n.https("mta-sts.a.plain.test", "127.0.0.31", body=policy(mx=("mx1.a.plain.test",
                                                                       "*.b.plain.test")))
    d = relay_conf(n)
    pr = Probe(n, d)
    v = pr.get("a.plain.test", times=3)     # three waiters share one lookup and fetch
    assert (v["mode"], v["id"], v["mx"], v["problem"]) == (
        "enforce", "1", ["mx1.a.plain.test", "*.b.plain.test"], "ok"), v
    assert v["policy"] == policy(mx=("mx1.a.plain.test", "*.b.plain.test")), v
    reqs = h.requests()
    assert [(r["method"], r["path"], r["host"]) for r in reqs] == [
        ("GET", "/.well-known/mta-sts.txt", "mta-sts.a.plain.test")], reqs
    assert [e["source"] for e in pr.events("sts_policy")] == ["fetch"], pr.logtext()
    # same id, policy not expired: from memory, no second GET
    v = pr.get("a.plain.test")
    assert (v["mode"], v["id"]) == ("enforce", "1") and len(h.requests()) == 1, v
    # a new id means a new policy (RFC 8461 3.1, 5.1)
    h.set(body=policy(mode="testing", mx=("mx2.a.plain.test",), max_age=3600))
    n.set_zone("plain.test", ['_mta-sts.a TXT "v=STSv1; id=2"', "mta-sts.a A 127.0.0.31"])
    v = wait_id(pr, "a.plain.test", "2")
    assert (v["mode"], v["id"], v["mx"]) == ("testing", "2", ["mx2.a.plain.test"]), v
    assert len(h.requests()) == 2, h.requests()
    assert pr.stats() == {"fetch_ok": 2, "fetch_error": 0}, pr.stats()
    pr.quit()
    db = sqlite3.connect(os.path.join(d.data_dir, "spool.db"))
    rows = db.execute("SELECT domain, id, mode, mx, max_age, expires - fetched FROM"
                      " sts_policies").fetchall()
    db.close()
    assert rows == [("a.plain.test", "2", "testing", "mx2.a.plain.test", 3600, 3600)], rows

    # restart with the policy server down: the stored policy applies
    h.stop()
    pr = Probe(n, d)
    v = pr.get("a.plain.test")
    assert (v["mode"], v["id"], v["mx"], v["problem"]) == (
        "testing", "2", ["mx2.a.plain.test"], "ok"), v
    assert [e["source"] for e in pr.events("sts_policy")] == ["spool"], pr.logtext()
    assert pr.events("sts_fetch_failed") == [], pr.logtext()
    # a new id that cannot be fetched: the cached policy still applies (RFC 8461 5.1)
    n.set_zone("plain.test", ['_mta-sts.a TXT "v=STSv1; id=3"', "mta-sts.a A 127.0.0.31"])
    deadline = time.monotonic() + 20
    while not pr.events("sts_fetch_failed") and time.monotonic() < deadline:
        v = pr.get("a.plain.test")
        time.sleep(1)
    assert (v["mode"], v["id"], v["problem"]) == ("testing", "2", "sts-policy-fetch-error"), v
    ev = pr.events("sts_fetch_failed")
    assert ev and ev[0]["domain"] == "a.plain.test" and ev[0]["id"] == "3", pr.logtext()
    assert ev[0]["cached"] == "2", ev
    pr.quit()
    h.start()


# (label, https options, problem, words in the reason)
BAD = [
    ("redirect", {"redirect": "https://mta-sts.a.plain.test/.well-known/mta-sts.txt"},
     "sts-policy-fetch-error", "HTTP status 301"),
    ("ctype", {"content_type": "text/html"}, "sts-policy-fetch-error", "Content-Type"),
    ("big", {"body": policy() + "x" * 70000 + "\n"}, "sts-policy-fetch-error", "larger than"),
    ("missing", {"status": 404}, "sts-policy-fetch-error", "HTTP status 404"),
    ("invalid", {"body": "version: STSv1\nmode: enforce\nmax_age: 100\n"},
     "sts-policy-invalid", "no mx field"),
    ("cert", {"wrong_cert": True}, "sts-webpki-invalid", "certificate"),
]


def test_bad_policy_hosts_give_no_policy_and_say_why():
    n = net()
    recs, servers = [], {}
    for i, (label, _, _, _) in enumerate(BAD):
        recs += [f'_mta-sts.{label} TXT "v=STSv1; id=7"', f"mta-sts.{label} A 127.0.0.{41 + i}"]
    n.set_zone("plain.test", recs)
    for i, (label, opts, _, _) in enumerate(BAD):
        opts = dict(opts)
        cert = n.leaf("other.plain.test") if opts.pop("wrong_cert", False) else None
        opts.setdefault("body", policy())
        servers[label] = n.https(f"mta-sts.{label}.plain.test", f"127.0.0.{41 + i}",
                                 cert=cert, **opts)
    d = relay_conf(n)
    pr = Probe(n, d)
    for label, _, problem, why in BAD:
        v = pr.get(f"{label}.plain.test")
        assert (v["mode"], v["id"], v["mx"], v["problem"]) == ("none", "", [], problem), v
        assert why in v["detail"], (label, v)
        fails = [e for e in pr.events("sts_fetch_failed") if e["domain"] == f"{label}.plain.test"]
        assert len(fails) == 1 and fails[0]["result"] == problem, pr.logtext()
    # the redirect was not followed: one GET, to the policy host only
    assert len(servers["redirect"].requests()) == 1, servers["redirect"].requests()
    # the TLS handshake failed before any request reached the server
    assert servers["cert"].requests() == [], servers["cert"].requests()
    # a failed fetch is not repeated for the same id at once
    v = pr.get("missing.plain.test")
    assert v["problem"] == "sts-policy-fetch-error" and len(servers["missing"].requests()) == 1
    # no TXT record at all: no policy, no problem, no fetch
    v = pr.get("nosts.plain.test")
    assert (v["mode"], v["problem"]) == ("none", "ok"), v
    assert pr.events("sts_policy") == [], pr.logtext()
    assert pr.stats() == {"fetch_ok": 0, "fetch_error": len(BAD)}, pr.stats()
    pr.quit()


def test_https_post_for_tlsrpt_reports():
    """https_post (TLS-RPT https: rua, RFC 8460 3): the body arrives once with its
    Content-Type; a certificate for another name stops it before any request;
    an address literal or a non-https URL is refused at once."""
    n = net()
    n.set_zone("plain.test", ["rua A 127.0.0.61", "badrua A 127.0.0.62"])
    good = n.https("rua.plain.test", "127.0.0.61")
    bad = n.https("badrua.plain.test", "127.0.0.62", cert=n.leaf("other.plain.test"))
    pr = Probe(n, relay_conf(n))
    pr.p.stdin.write("post https://rua.plain.test/tlsrpt report-body-1\n")
    pr.p.stdin.flush()
    r = json.loads(pr.p.stdout.readline())
    assert (r["status"], r["http_code"], r["body"]) == ("ok", 200, "ok\n"), r
    reqs = good.requests()
    assert [(q["method"], q["path"], q["body"]) for q in reqs] == [
        ("POST", "/tlsrpt", b"report-body-1")], reqs
    assert reqs[0]["headers"].get("Content-Type") == "application/tlsrpt+gzip", reqs[0]
    pr.p.stdin.write("post https://badrua.plain.test/tlsrpt report-body-2\n")
    pr.p.stdin.flush()
    r = json.loads(pr.p.stdout.readline())
    assert r["status"] == "certificate" and bad.requests() == [], (r, bad.requests())
    for url in ("https://127.0.0.61/tlsrpt", "http://rua.plain.test/tlsrpt"):
        pr.p.stdin.write(f"post {url} x\n")
        pr.p.stdin.flush()
        assert json.loads(pr.p.stdout.readline()) == {"status": "refused"}, url
    pr.quit()


def command(pr, line, replies=1):
    pr.p.stdin.write(line + "\n")
    pr.p.stdin.flush()
    out = []
    for _ in range(replies):
        ln = pr.p.stdout.readline()
        mxtest.note(f"# probe {line}: {ln.strip()}")
        assert ln, "sts_probe died:\n" + pr.logtext()
        out.append(json.loads(ln))
    return out if replies > 1 else out[0]


def test_waiter_starting_a_new_round_keeps_the_detail_for_the_others():
    """round_end: the first waiter's callback asks again (a new round starts and
    clears the domain's detail); the waiter after it must still get the detail."""
    n = net()
    n.set_zone("plain.test", ['_mta-sts.nf TXT "v=STSv1; id=1"', "mta-sts.nf A 127.0.0.51"])
    h = n.https("mta-sts.nf.plain.test", "127.0.0.51", status=404, body=policy())
    pr = Probe(n, relay_conf(n))
    # waiters fire newest first: "reget" (which asks again) before "get"
    pr.p.stdin.write("get nf.plain.test\nreget nf.plain.test\n")
    pr.p.stdin.flush()
    views = [json.loads(pr.p.stdout.readline()) for _ in range(3)]
    mxtest.note(f"# views: {views}")
    for v in views:
        assert v["problem"] == "sts-policy-fetch-error" and v["detail"], views
    assert "HTTP status 404" in views[0]["detail"] and views[0]["detail"] == views[1]["detail"]
    assert len(h.requests()) == 1, h.requests()
    pr.quit()


def test_tiny_max_age_is_floored_and_expired_domains_are_freed():
    n = net()
    n.set_zone("plain.test", ['_mta-sts.zero TXT "v=STSv1; id=1"', "mta-sts.zero A 127.0.0.52",
                              '_mta-sts.gone TXT "v=STSv1; id=1"', "mta-sts.gone A 127.0.0.53"])
    h = n.https("mta-sts.zero.plain.test", "127.0.0.52", body=policy(max_age=0))
    n.https("mta-sts.gone.plain.test", "127.0.0.53", status=404, body=policy())
    d = relay_conf(n)
    pr = Probe(n, d)
    for _ in range(3):
        v = pr.get("zero.plain.test")
        assert (v["mode"], v["id"], v["problem"]) == ("enforce", "1", "ok"), v
    # max_age 0: cached for the 300 s floor, not fetched on every round
    assert len(h.requests()) == 1, h.requests()
    assert pr.get("gone.plain.test")["problem"] == "sts-policy-fetch-error"
    assert pr.get("nosts.plain.test")["problem"] == "ok"   # remembers nothing: freed at once
    assert command(pr, "sweep 0") == {"domains": 2}
    assert command(pr, "sweep 200") == {"domains": 2}      # policy and retry time still ahead
    assert command(pr, "sweep 400") == {"domains": 0}      # both past: freed
    v = pr.get("zero.plain.test")                           # asked again: fetched again
    assert (v["mode"], v["problem"]) == ("enforce", "ok") and len(h.requests()) == 2, v
    pr.quit()
    db = sqlite3.connect(os.path.join(d.data_dir, "spool.db"))
    rows = db.execute("SELECT domain, max_age, expires - fetched FROM sts_policies").fetchall()
    db.close()
    assert rows == [("zero.plain.test", 0, 300)], rows


SLOW_SERVER = r"""
import socket, ssl, sys, time
cert, key, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.create_server(("127.0.0.55", 443))
print("ready", flush=True)
c, _ = ls.accept()
t = ctx.wrap_socket(c, server_side=True)
t.recv(4096)
time.sleep(12)
t.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
          b"Connection: close\r\n\r\n" % len(body) + body)
t.close()
"""


def test_slow_policy_host_within_a_minute_is_waited_for():
    n = net()
    n.set_zone("plain.test", ['_mta-sts.slow TXT "v=STSv1; id=1"', "mta-sts.slow A 127.0.0.55"])
    leaf = n.leaf("mta-sts.slow.plain.test")
    srv = subprocess.Popen(n.cmd(["python3", "-c", SLOW_SERVER, leaf.cert, leaf.key, policy()]),
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready"
        pr = Probe(n, relay_conf(n))
        t0 = time.monotonic()
        v = pr.get("slow.plain.test")
        assert (v["mode"], v["id"], v["problem"]) == ("enforce", "1", "ok"), v
        assert time.monotonic() - t0 >= 12
        pr.quit()
    finally:
        srv.kill()
        srv.wait()


def test_https_withdraws_ended_hosts_from_the_curl_dns_cache():
    """CURLOPT_RESOLVE entries never expire in the multi handle's cache: one per
    host for the life of the process unless withdrawn. 30 hosts, one after the
    other, leave at most the last one there."""
    n = net()
    hosts = [f"h{i}.plain.test" for i in range(30)]
    n.set_zone("plain.test", [f"h{i} A 127.0.0.54" for i in range(30)])
    srv = n.https("h0.plain.test", "127.0.0.54")   # certificate for h0 only
    pr = Probe(n, relay_conf(n))
    for i, host in enumerate(hosts):
        r = command(pr, f"post https://{host}/r x")
        assert r["status"] == ("ok" if i == 0 else "certificate"), r
        assert command(pr, "entries")["dns_entries"] <= 1
    assert len(srv.requests()) == 1
    # the withdrawal went with a later transfer, and h0 still resolves (its own entry)
    assert command(pr, "post https://h0.plain.test/r y")["status"] == "ok"
    assert command(pr, "entries") == {"dns_entries": 1}
    pr.quit()


if __name__ == "__main__":
    mxtest.main()
