"""MTA-STS enforcement (RFC 8461 4, 5) and tls_policy floors end to end:
mxrelayd in a tlspeers network namespace, _mta-sts TXT records in the
unsigned plain.test zone (so DANE never applies here), real HTTPS policy
servers on 443 and aiosmtpd MXs with certificates from the test CA.
Each case checks the delivery log (dsn, tls_policy=, tls_verified=), the
MX side (no MAIL without TLS; for a certificate refused, no MAIL at all;
for an MX outside the policy, no connection) and the tls_stats /
tls_failures rows."""

import mxtest
import tlspeers
from tlspeers import delivery

_net = None
_c = {}

# label -> (MX address, policy server address, mode, mx patterns)
DOMAINS = {
    "good": ("127.0.0.21", "127.0.0.41", "enforce", ["mx.good.plain.test"]),
    "wrong": ("127.0.0.22", "127.0.0.42", "enforce", ["*.wrong.plain.test"]),
    "nomx": ("127.0.0.23", "127.0.0.43", "enforce", ["mx.elsewhere.plain.test"]),
    "strip": ("127.0.0.24", "127.0.0.44", "enforce", ["mx.strip.plain.test"]),
    "tst": ("127.0.0.25", "127.0.0.45", "testing", ["mx.tst.plain.test"]),
    "cache": ("127.0.0.26", "127.0.0.46", "enforce", ["mx.cache.plain.test"]),
}


def policy(mode, mx):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: 86400\r\n" % (
        mode, "".join(f"mx: {m}\r\n" for m in mx))


def net():
    global _net
    if _net is None:
        n = tlspeers.TlsNet()
        recs = ["noenc MX 10 mx.noenc", "mx.noenc A 127.0.0.27"]
        for label, (ip, web, mode, mx) in DOMAINS.items():
            recs += [f"{label} MX 10 mx.{label}", f"mx.{label} A {ip}",
                     f'_mta-sts.{label} TXT "v=STSv1; id=1"', f"mta-sts.{label} A {web}"]
        n.set_zone("plain.test", recs)
        for label, (ip, web, mode, mx) in DOMAINS.items():
            _c["https-" + label] = n.https(f"mta-sts.{label}.plain.test", web,
                                           body=policy(mode, mx), keep=True)
        _c["other"] = n.leaf("other.plain.test")         # valid chain, another name
        _net = n
    return _net


def mx(label, cert=None, **kw):
    n = net()
    cert = cert or n.leaf(f"mx.{label}.plain.test")
    ip = DOMAINS[label][0] if label in DOMAINS else "127.0.0.27"
    return {f"mx.{label}": {"host": ip, "hostname": f"mx.{label}.plain.test",
                            "tls": {"cert": cert.chain, "key": cert.key}, **kw}}


def failures(d, domain):
    return [(f["policy"], f["result_type"]) for f in d.query(
        "SELECT policy, result_type FROM tls_failures WHERE domain = ?", (domain,))]


def test_enforce_good_certificate_delivers():
    n = net()
    s = n.sinks(mx("good"))
    d = n.relay()
    ev = n.deliver(d, ["bob@good.plain.test"], "sent")[0]
    assert ev["tls_policy"] == "mta-sts" and ev["tls_verified"] == "yes", ev
    assert s.wait_messages(1)[0].tls and n.plaintext_mail(s) == []
    gets = [r for r in _c["https-good"].requests() if r["method"] == "GET"]
    assert [r["path"] for r in gets] == ["/.well-known/mta-sts.txt"], gets
    d.stop()
    rows = d.query("SELECT policy, policy_string, delivered, verified FROM tls_stats "
                   "WHERE domain = 'good.plain.test' AND mx <> ''")
    assert [(r["policy"], r["delivered"], r["verified"]) for r in rows] == [
        ("mta-sts", 1, 1)], rows
    assert "mode: enforce" in rows[0]["policy_string"], rows


def test_enforce_wrong_name_certificate_defers_475_no_mail():
    n = net()
    s = n.sinks(mx("wrong", cert=_c["other"]))
    d = n.relay()
    ev = n.deliver(d, ["carol@wrong.plain.test"], "deferred")[0]
    assert ev["dsn"] == "4.7.5" and ev["tls_policy"] == "mta-sts", ev
    assert ev["tls_verified"] == "no" and "MTA-STS" in ev["reply"], ev
    assert s.connections() >= 1 and s.events("mail") == [], s.events()
    d.stop()
    assert failures(d, "wrong.plain.test") == [("mta-sts", "certificate-host-mismatch")]


def test_enforce_mx_not_in_policy_defers_470_no_connection():
    n = net()
    s = n.sinks(mx("nomx"))
    d = n.relay()
    ev = n.deliver(d, ["dan@nomx.plain.test"], "deferred")[0]
    assert ev["dsn"] == "4.7.0" and "MTA-STS policy (id 1)" in ev["reply"], ev
    assert ev["relay"] == "none" and ev["tls_policy"] == "mta-sts", ev
    assert s.connections() == 0, s.events()
    d.stop()
    assert failures(d, "nomx.plain.test") == [("mta-sts", "validation-failure")]


def test_enforce_starttls_stripped_defers_474():
    n = net()
    s = n.sinks(mx("strip", drop=["STARTTLS"]))
    d = n.relay()
    ev = n.deliver(d, ["erin@strip.plain.test"], "deferred")[0]
    assert ev["dsn"] == "4.7.4" and ev["tls_policy"] == "mta-sts", ev
    assert s.connections() >= 1 and s.events("mail") == [], s.events()
    d.stop()
    assert failures(d, "strip.plain.test") == [("mta-sts", "starttls-not-supported")]


def test_testing_mode_bad_certificate_delivers_and_reports():
    n = net()
    s = n.sinks(mx("tst", cert=_c["other"]))
    d = n.relay()
    ev = n.deliver(d, ["fay@tst.plain.test"], "sent")[0]
    assert ev["tls_policy"] == "mta-sts" and ev["tls_verified"] == "no", ev
    assert s.wait_messages(1)[0].tls
    d.stop()
    assert failures(d, "tst.plain.test") == [("mta-sts", "certificate-host-mismatch")]


def test_policy_cached_across_restart_while_https_down():
    n = net()
    s = n.sinks(mx("cache"))
    d = n.relay()
    q1 = n.submit(d, ["gus@cache.plain.test"])
    assert delivery(d, q1, "sent")[0]["tls_policy"] == "mta-sts"
    d.stop()
    s.stop()
    h = _c["https-cache"]
    before = len(h.requests())
    h.stop()
    s = n.sinks(mx("cache", cert=_c["other"]))      # now a certificate for another name
    d.start()
    ev = n.deliver(d, ["hal@cache.plain.test"], "deferred")[0]
    assert ev["dsn"] == "4.7.5" and ev["tls_policy"] == "mta-sts", ev
    assert s.events("mail") == [], s.events()
    assert d.query("SELECT count(*) AS n FROM sts_policies WHERE domain = 'cache.plain.test'")[
        0]["n"] == 1
    h.start()
    assert len(h.requests()) == before


def test_tls_policy_encrypt_without_starttls_defers_474():
    n = net()
    s = n.sinks(mx("noenc", drop=["STARTTLS"]))
    d = n.relay(conf={"tls_policy": "noenc.plain.test encrypt"})
    ev = n.deliver(d, ["ivy@noenc.plain.test"], "deferred")[0]
    assert ev["dsn"] == "4.7.4" and ev["tls_policy"] == "encrypt", ev
    assert "tls_policy encrypt" in ev["reply"], ev
    assert s.connections() == 1 and s.events("mail") == [], s.events()



def test_ca_file_reload_reaches_policy_fetches():
    """Issue 16: a tls_ca_file read again by `mxrelayctl reload` is the one the MTA-STS policy
    fetch verifies with too. With a CA that did not sign the policy server the fetch fails
    and mail goes out as without MTA-STS (RFC 8461 5); after the reload to the test CA the
    next domain's policy is fetched and applied, without a restart."""
    n = net()
    n.sinks({**mx("tst"), **mx("good")})
    other, _ = mxtest.make_cert(mxtest.tmpdir(), cn="unrelated-ca.test", name="unrelated")
    d = n.relay(conf={"tls_ca_file": other})
    ev = n.deliver(d, ["ann@tst.plain.test"], "sent")[0]
    assert ev["tls_policy"] != "mta-sts", ev
    assert d.grep(r"event=sts_fetch_failed .*domain=tst\.plain\.test"), d.tail(20)
    d.configure({"tls_ca_file": n.ca_file})
    p = mxtest.run([mxtest.MXRELAYCTL, "reload", "-c", d.conf_path], timeout=30, check=0)
    assert "mxrelayd reloaded" in p.stdout, p.stdout + p.stderr
    ev = n.deliver(d, ["ben@good.plain.test"], "sent")[0]
    assert ev["tls_policy"] == "mta-sts" and ev["tls_verified"] == "yes", ev

if __name__ == "__main__":
    mxtest.main()
