"""DANE for SMTP (RFC 7672) end to end: mxrelayd inside a network namespace
with a validating unbound (tlspeers.py), DNSSEC-signed TLSA records in
sig.test, unsigned ones in plain.test, and aiosmtpd MXs with certificates
from the test CA or self-signed. Every case checks the delivery log
(tls_policy=, tls_verified=, dsn), what reached the MX (no MAIL without TLS,
no MAIL at all when the certificate does not match) and the tls_stats /
tls_failures rows the daemon writes for the TLS report and TLS-RPT."""

import json
import urllib.request

import mxtest
import tlspeers
from tlspeers import delivery, tlsa_201, tlsa_311

_net = None
_certs = {}


def net():
    """One namespace and zone pair for the module; every MX below lives in it."""
    global _net
    if _net is None:
        n = tlspeers.TlsNet()
        ee = n.leaf("mx.ee.sig.test", self_signed=True)      # DANE-EE: no CA needed
        ta = n.leaf("mx.ta.sig.test")                          # DANE-TA: the test CA
        other = n.leaf("other.sig.test", self_signed=True)
        bad = n.leaf("mx.bad.sig.test", self_signed=True)
        plain = n.leaf("mx.un.plain.test", self_signed=True)
        _certs.update(ee=ee, ta=ta, bad=bad, plain=plain, nost=n.leaf("mx.nost.sig.test"))
        n.set_zones({
            "sig.test": [
                "ee MX 10 mx.ee", "mx.ee A 127.0.0.11",
                "_25._tcp.mx.ee TLSA " + tlsa_311(ee),
                "ta MX 10 mx.ta", "mx.ta A 127.0.0.12",
                "_25._tcp.mx.ta TLSA " + tlsa_201(n.ca),
                "bad MX 10 mx.bad", "mx.bad A 127.0.0.13",
                "_25._tcp.mx.bad TLSA " + tlsa_311(other),     # another key: no match
                "nost MX 10 mx.nost", "mx.nost A 127.0.0.14",
                "_25._tcp.mx.nost TLSA " + tlsa_311(other),
                # a signed host whose TLSA signature is broken: SERVFAIL via unbound
                "bogus MX 10 mx.bogus", "mx.bogus A 127.0.0.16",
                "_25._tcp.mx.bogus TLSA " + tlsa_311(ee),
            ],
            # the same mismatching TLSA in the unsigned zone: no AD, so ignored
            "plain.test": ["un MX 10 mx.un", "mx.un A 127.0.0.15",
                           "_25._tcp.mx.un TLSA " + tlsa_311(other)],
        }, bogus=[("_25._tcp.mx.bogus", "TLSA")])
        _net = n
    return _net


def mx(name, host, cert, **kw):
    """A sink listener serving cert's chain (the leaf alone when self-signed)."""
    return {name: {"host": host, "hostname": name,
                   "tls": {"cert": cert.chain, "key": cert.key}, **kw}}


def sink(name, host, cert, **kw):
    return net().sinks(mx(name, host, cert, **kw))


def stats(d, domain):
    """tls_stats / tls_failures rows of domain (written at exit: stop d first)."""
    rows = d.query("SELECT policy, mx, sessions_ok, sessions_failed, delivered, verified "
                   "FROM tls_stats WHERE domain = ?", (domain,))
    fails = d.query("SELECT policy, result_type, mx, mx_ip, count, detail FROM tls_failures "
                    "WHERE domain = ?", (domain,))
    return rows, fails


def report(d):
    """`mxrelayctl tls report --json` (the admin's view of the same rows), per domain."""
    p = mxtest.run([mxtest.MXRELAYCTL, "tls", "report", "--json", "-c", d.conf_path],
                   timeout=30, check=0)
    return {x["domain"]: x for x in json.loads(p.stdout)["domains"]}


def metric(d, name):
    """One value from GET /metrics (metrics_listen inside the namespace)."""
    with net().inside():
        body = urllib.request.urlopen("http://127.0.0.1:9125/metrics", timeout=5).read()
    for ln in body.decode().splitlines():
        if ln.startswith(name + " "):
            return float(ln.split()[1])
    return 0.0


def every_connection_used_tls(sinks, listener):
    """Each connection to listener sent STARTTLS (none went on in plaintext)."""
    conns = {e["conn"] for e in sinks.events("connect", listener)}
    tls = {e["conn"] for e in sinks.events("starttls_cmd", listener)}
    return conns and conns == tls


def test_tlsa_match_dane_ee_and_dane_ta():
    n = net()
    s1 = s2 = n.sinks({**mx("mx.ee.sig.test", "127.0.0.11", _certs["ee"]),
                       **mx("mx.ta.sig.test", "127.0.0.12", _certs["ta"])})
    d = n.relay(conf={"metrics_listen": "127.0.0.1:9125"})
    q1 = n.submit(d, ["bob@ee.sig.test"])
    q2 = n.submit(d, ["carol@ta.sig.test"])
    for q, host in ((q1, "mx.ee.sig.test"), (q2, "mx.ta.sig.test")):
        ev = delivery(d, q, "sent")[0]
        assert ev["tls_policy"] == "dane" and ev["tls_verified"] == "yes", ev
        assert ev["tls"].startswith("TLSv1.") and ev["relay"].startswith(host), ev
    assert s1.wait_messages(1, "mx.ee.sig.test")[0].rcpts == ["bob@ee.sig.test"]
    assert s2.wait_messages(1, "mx.ta.sig.test")[0].rcpts == ["carol@ta.sig.test"]
    assert n.plaintext_mail(s1) == [] and n.plaintext_mail(s2) == []
    assert metric(d, 'mxrelay_outbound_tls_total{policy="dane"}') == 2
    assert metric(d, 'mxrelay_outbound_tls_total{policy="opportunistic"}') == 0
    d.stop()
    rows, fails = stats(d, "ee.sig.test")
    assert rows == [{"policy": "dane", "mx": "mx.ee.sig.test", "sessions_ok": 1,
                     "sessions_failed": 0, "delivered": 1, "verified": 1}], rows
    assert fails == [], fails
    rows, _ = stats(d, "ta.sig.test")
    assert [(r["policy"], r["delivered"], r["verified"]) for r in rows] == [("dane", 1, 1)], rows
    rep = report(d)
    assert rep["ee.sig.test"]["delivered"]["dane"] == 1, rep
    assert rep["ta.sig.test"]["delivered"]["dane"] == 1 and rep["ta.sig.test"]["verified"] == 1


def test_tlsa_mismatch_defers_without_plaintext_retry():
    n = net()
    s = sink("mx.bad.sig.test", "127.0.0.13", _certs["bad"])
    d = n.relay(conf={"metrics_listen": "127.0.0.1:9125"})
    evs = n.deliver(d, ["dan@bad.sig.test"], "deferred", n=2)  # two tries (retry_min 1 s)
    for ev in evs:
        assert ev["dsn"] == "4.7.5" and ev["tls_policy"] == "dane", ev
        assert ev["tls_verified"] == "no", ev
        assert "certificate" in ev["reply"] and "DANE" in ev["reply"], ev
        assert ev["relay"].startswith("mx.bad.sig.test[127.0.0.13]"), ev
    # the handshake happened, then nothing: no MAIL at all, no connection without TLS
    assert s.events("mail") == [] and s.messages() == [], s.events()
    assert every_connection_used_tls(s, "mx.bad.sig.test"), s.events()
    assert metric(d, 'mxrelay_outbound_tls_failures_total{result="validation-failure"}') >= 2
    d.stop()
    rows, fails = stats(d, "bad.sig.test")
    assert rows and rows[0]["sessions_failed"] >= 2 and rows[0]["delivered"] == 0, rows
    assert [(f["policy"], f["result_type"], f["mx_ip"]) for f in fails] == [
        ("dane", "validation-failure", "127.0.0.13")], fails
    assert fails[0]["count"] >= 2, fails
    rep = report(d)["bad.sig.test"]
    assert rep["failures"]["validation-failure"] >= 2 and sum(rep["delivered"].values()) == 0, rep


def test_tlsa_but_no_starttls_defers_474():
    n = net()
    s = sink("mx.nost.sig.test", "127.0.0.14", _certs["nost"], drop=["STARTTLS"])
    d = n.relay()
    ev = n.deliver(d, ["erin@nost.sig.test"], "deferred")[0]
    assert ev["dsn"] == "4.7.4" and ev["tls_policy"] == "dane", ev
    assert "offered no STARTTLS" in ev["reply"], ev
    assert s.events("mail") == [] and n.plaintext_mail(s) == [], s.events()
    assert s.connections() >= 1
    d.stop()
    _, fails = stats(d, "nost.sig.test")
    assert [f["result_type"] for f in fails] == ["starttls-not-supported"], fails


def test_tlsa_in_unsigned_zone_is_ignored():
    n = net()
    s = sink("mx.un.plain.test", "127.0.0.15", _certs["plain"])
    d = n.relay()
    ev = n.deliver(d, ["fay@un.plain.test"], "sent")[0]
    # the TLSA record would not match: had it been used, this would be deferred
    assert ev["tls_policy"] == "opportunistic" and ev["tls_verified"] == "no", ev
    assert s.wait_messages(1)[0].tls, s.events()
    d.stop()
    rows, fails = stats(d, "un.plain.test")
    assert [(r["policy"], r["delivered"], r["verified"]) for r in rows] == [
        ("opportunistic", 1, 0)], rows
    assert fails == [], fails



def test_tlsa_lookup_failure_for_a_signed_host_is_never_a_downgrade():
    n = net()
    s = sink("mx.bogus.sig.test", "127.0.0.16", _certs["ee"])
    d = n.relay()
    ev = n.deliver(d, ["hal@bogus.sig.test"], "deferred")[0]
    assert ev["dsn"] == "4.7.5" and "TLSA lookup for mx.bogus.sig.test failed" in ev["reply"], ev
    assert ev["tls_policy"] == "dane" and ev["relay"] == "none", ev
    assert s.connections() == 0, s.events()
    d.stop()
    _, fails = stats(d, "bogus.sig.test")
    assert [(f["policy"], f["result_type"], f["mx"]) for f in fails] == [
        ("dane", "dnssec-invalid", "mx.bogus.sig.test")], fails


def test_tls_policy_may_is_an_admin_downgrade():
    """tls_policy = D may switches DANE off for D: the mismatching TLSA no longer defers."""
    n = net()
    s = sink("mx.bad.sig.test", "127.0.0.13", _certs["bad"])
    d = n.relay(conf={"tls_policy": "bad.sig.test may"})
    d.wait_log(r"event=tls_policy_downgrade domain=bad.sig.test level=may")
    assert not d.grep("event=dane_off"), d.tail()
    ev = n.deliver(d, ["gil@bad.sig.test"], "sent")[0]
    assert ev["tls_policy"] == "opportunistic" and ev["tls_verified"] == "no", ev
    assert s.wait_messages(1)[0].tls


def test_dane_off_when_a_resolver_is_not_on_loopback():
    """An AD bit that crossed a network proves nothing (RFC 7672 2.1.1): DANE off, said once."""
    n = net()
    s = sink("mx.bad.sig.test", "127.0.0.13", _certs["bad"])
    d = n.relay(conf={"dns_servers": "127.0.0.1:53,192.0.2.53"})
    assert len(d.wait_log(r'event=dane_off reason="resolver not on loopback"')) == 1
    ev = n.deliver(d, ["hui@bad.sig.test"], "sent")[0]
    assert ev["tls_policy"] == "opportunistic", ev
    assert s.wait_messages(1)[0].tls


def test_named_route_host_gets_dane():
    """route = D HOST (a name): DANE applies to HOST's secure TLSA (the lead's decision;
    RFC 7672 2.2.1: per host whose address records are secure). A match is delivered
    verified; a mismatch defers 4.7.5 with no MAIL. D itself has no MX at all."""
    n = net()
    s = n.sinks({**mx("mx.ee.sig.test", "127.0.0.11", _certs["ee"]),
                 **mx("mx.bad.sig.test", "127.0.0.13", _certs["bad"])})
    d = n.relay(routes=["viaee.plain.test mx.ee.sig.test", "viabad.plain.test mx.bad.sig.test"])
    ev = n.deliver(d, ["ina@viaee.plain.test"], "sent")[0]
    assert ev["tls_policy"] == "dane" and ev["tls_verified"] == "yes", ev
    assert ev["relay"].startswith("mx.ee.sig.test[127.0.0.11]"), ev
    assert s.wait_messages(1, "mx.ee.sig.test")[0].rcpts == ["ina@viaee.plain.test"]
    ev = n.deliver(d, ["jon@viabad.plain.test"], "deferred")[0]
    assert ev["dsn"] == "4.7.5" and ev["tls_policy"] == "dane", ev
    assert ev["tls_verified"] == "no" and "DANE" in ev["reply"], ev
    assert s.events("mail", "mx.bad.sig.test") == [], s.events()
    assert every_connection_used_tls(s, "mx.bad.sig.test"), s.events()
    d.stop()
    rows, _ = stats(d, "viaee.plain.test")
    assert [(r["policy"], r["mx"], r["delivered"], r["verified"]) for r in rows] == [
        ("dane", "mx.ee.sig.test", 1, 1)], rows
    _, fails = stats(d, "viabad.plain.test")
    assert [(f["policy"], f["result_type"]) for f in fails] == [
        ("dane", "validation-failure")], fails


if __name__ == "__main__":
    mxtest.main()
