"""The outbound-TLS test network itself (tlspeers.py): the validating resolver
sets AD for the signed zone only, the sinks' certificates satisfy DANE and
PKIX as a real client checks them, a sink can require a client certificate,
the HTTPS policy server serves and logs, and the relay (running inside the
namespace) delivers into it over TLS. Every other issue-13 test relies on
these facts."""

import ssl

import mxtest
import tlspeers
from tlspeers import tlsa_311, tlsa_201

net = tlspeers.net


def test_resolver_sets_ad_for_the_signed_zone_only():
    n = net()
    leaf = n.leaf("mx1.dane.sig.test")
    rr = tlsa_311(leaf)
    n.set_zones({
        "sig.test": ["dane MX 10 mx1.dane", "mx1.dane A 127.0.0.11",
                     "_25._tcp.mx1.dane TLSA " + rr],
        "plain.test": ["mx A 127.0.0.12", "_25._tcp.mx TLSA " + rr],
    })
    r = n.lookup("TLSA", "_25._tcp.mx1.dane.sig.test")
    assert r["status"] == "NOERROR" and r["ad"], r["text"]
    assert [(t, d.replace(" ", "").lower()) for _, t, d in r["answer"]] == [
        ("TLSA", rr.replace(" ", ""))], r["text"]
    r = n.lookup("A", "mx1.dane.sig.test")
    assert r["ad"] and r["answer"] == [("mx1.dane.sig.test.", "A", "127.0.0.11")], r["text"]
    r = n.lookup("MX", "dane.sig.test")
    assert r["ad"] and r["answer"] == [("dane.sig.test.", "MX", "10 mx1.dane.sig.test.")]
    r = n.lookup("TLSA", "_25._tcp.mx.plain.test")
    assert r["status"] == "NOERROR" and not r["ad"] and len(r["answer"]) == 1, r["text"]
    # a signed name that does not exist: NXDOMAIN proven by NSEC, so AD too
    r = n.lookup("TLSA", "_25._tcp.nowhere.sig.test")
    assert r["status"] == "NXDOMAIN" and r["ad"], r["text"]
    # nsd itself is authoritative, never validating: no AD from it
    r = n.lookup("TLSA", "_25._tcp.mx1.dane.sig.test", port=tlspeers.NSD_PORT)
    assert not r["ad"] and "RRSIG" in r["text"] and "aa" in r["flags"], r["text"]
    # a broken signature: unbound finds the RRset bogus and answers SERVFAIL
    n.set_zone("sig.test", ["mx1.dane A 127.0.0.11", "_25._tcp.mx1.dane TLSA " + rr],
               bogus=[("_25._tcp.mx1.dane", "TLSA")])
    r = n.lookup("TLSA", "_25._tcp.mx1.dane.sig.test")
    assert r["status"] == "SERVFAIL" and r["answer"] == [], r["text"]
    assert n.lookup("A", "mx1.dane.sig.test")["ad"]
    n.set_zone("sig.test", ["mx1.dane A 127.0.0.11", "_25._tcp.mx1.dane TLSA " + rr])
    r = n.lookup("TLSA", "_25._tcp.mx1.dane.sig.test")
    assert r["status"] == "NOERROR" and r["ad"], r["text"]


def test_sink_certificates_verify_with_dane_and_pkix():
    n = net()
    ee = n.leaf("mx1.dane.sig.test", self_signed=True)
    ca_signed = n.leaf("mx2.dane.sig.test")
    expired = n.leaf("mx3.dane.sig.test", expired=True)
    sinks = n.sinks({
        "mx1": {"host": "127.0.0.11", "tls": {"cert": ee.cert, "key": ee.key}},
        "mx2": {"host": "127.0.0.12", "tls": {"cert": ca_signed.chain, "key": ca_signed.key}},
        "mx3": {"host": "127.0.0.13", "tls": {"cert": expired.cert, "key": expired.key}},
    })
    out = n.s_client("127.0.0.11", "-dane_tlsa_domain", "mx1.dane.sig.test",
                   "-dane_tlsa_rrdata", tlsa_311(ee))
    assert "Verification: OK" in out and "DANE TLSA 3 1 1" in out, out
    wrong = tlsa_311(n.leaf("other.sig.test"))
    out = n.s_client("127.0.0.11", "-dane_tlsa_domain", "mx1.dane.sig.test",
                   "-dane_tlsa_rrdata", wrong)
    assert "no matching DANE TLSA records" in out, out
    out = n.s_client("127.0.0.12", "-dane_tlsa_domain", "mx2.dane.sig.test",
                   "-dane_tlsa_rrdata", tlsa_201(n.ca))
    assert "Verification: OK" in out and "DANE TLSA 2 0 1" in out, out
    out = n.s_client("127.0.0.12", "-CAfile", n.ca_file, "-verify_hostname",
                   "mx2.dane.sig.test")
    assert "Verification: OK" in out, out
    out = n.s_client("127.0.0.12", "-CAfile", n.ca_file, "-verify_hostname",
                   "mx9.dane.sig.test")
    assert "hostname mismatch" in out, out
    out = n.s_client("127.0.0.13", "-CAfile", n.ca_file, "-verify_hostname",
                   "mx3.dane.sig.test")
    assert "certificate has expired" in out, out
    assert sinks.events("starttls", "mx1"), sinks.events()


def test_sink_requires_a_client_certificate():
    n = net()
    leaf = n.leaf("mx.cc.plain.test")
    client = n.leaf("relay.client.test", client=True)
    sinks = n.sinks({"cc": {"host": "127.0.0.14", "tls": {
        "cert": leaf.cert, "key": leaf.key, "client_ca": n.ca_file}}})
    ctx = mxtest.client_ctx()       # no server check here: the client side is the point
    with n.inside():
        s = mxtest.Smtp(25, host="127.0.0.14")
        s.ehlo()
        s.cmd("STARTTLS", 220)
        try:
            s.wrap(ctx)
            s.ehlo()
            refused = None
        except (ssl.SSLError, OSError, mxtest.ConnectionClosed) as e:
            refused = e
        assert refused, "the sink went on without a client certificate"
        mxtest.note(f"# refused: {refused!r}")
        s.close()
        ctx.load_cert_chain(client.cert, client.key)
        s = mxtest.Smtp(25, host="127.0.0.14")
        s.ehlo()
        s.cmd("STARTTLS", 220)
        s.wrap(ctx)
        s.ehlo()
        s.cmd("MAIL FROM:<a@sender.plain.test>", 250)
        s.cmd("RCPT TO:<b@cc.plain.test>", 250)
        s.cmd("DATA", 354)
        s.send_body(mxtest.message()).expect(250)
        s.quit()
    m = sinks.wait_messages(1, "cc")[0]
    assert m.tls and m.peer_cert == "CN=relay.client.test", m.meta
    assert [e["peer_cert"] for e in sinks.events("starttls", "cc")] == ["CN=relay.client.test"]
    assert tlspeers.TlsNet.plaintext_mail(sinks) == []
    assert [e["tls"] for e in sinks.events("mail", "cc")] == [m.tls]


def test_plaintext_and_refused_starttls_are_seen():
    """The "no plaintext copy reached the MX" check can fail: MAIL without TLS is seen."""
    n = net()
    leaf = n.leaf("mx.nostarttls.plain.test")
    sinks = n.sinks({
        "strip": {"host": "127.0.0.15", "drop": ["STARTTLS"],
                  "tls": {"cert": leaf.cert, "key": leaf.key}},
        "refuse": {"host": "127.0.0.16", "starttls_reply": "454 4.7.0 TLS not available now",
                   "tls": {"cert": leaf.cert, "key": leaf.key}},
        "cc": {"host": "127.0.0.17", "tls": {"cert": leaf.cert, "key": leaf.key,
                                             "client_ca": n.ca_file}},
    })
    with n.inside():
        s = mxtest.Smtp(25, host="127.0.0.15")
        assert "STARTTLS" not in s.ehlo().lines[-1] and "STARTTLS" not in s.ext, s.ext
        s.cmd("MAIL FROM:<a@sender.plain.test>", 250)
        s.cmd("RCPT TO:<b@x.plain.test>", 250)
        s.quit()
        s = mxtest.Smtp(25, host="127.0.0.16")
        assert "STARTTLS" in s.ehlo().lines[-1] or "STARTTLS" in s.ext
        s.cmd("STARTTLS", 454, "4.7.0")
        s.cmd("MAIL FROM:<a@sender.plain.test>", 250)
        s.quit()
        s = mxtest.Smtp(25, host="127.0.0.17")
        s.ehlo()
        s.cmd("STARTTLS", 220)
        try:
            s.wrap(mxtest.client_ctx())
            s.ehlo()
        except (ssl.SSLError, OSError, mxtest.ConnectionClosed):
            pass
        s.close()
    seen = [(e["listener"], e["ev"]) for e in n.plaintext_mail(sinks)]
    assert seen == [("strip", "mail"), ("strip", "rcpt"), ("refuse", "mail")], seen
    fails = mxtest.wait_for(lambda: sinks.events("tls_failed", "cc"), 5, what="tls_failed")
    assert "CERTIFICATE" in fails[0]["error"].upper(), fails


def test_https_policy_server():
    n = net()
    policy = "version: STSv1\r\nmode: enforce\r\nmx: mx.good.plain.test\r\nmax_age: 86400\r\n"
    n.set_zone("plain.test", ["mta-sts.good A 127.0.0.30"])
    h = n.https("mta-sts.good.plain.test", "127.0.0.30", body=policy)
    url = "https://mta-sts.good.plain.test/.well-known/mta-sts.txt"

    def curl(*args):
        return n.run(["curl", "-sS", "--max-time", "5", "--proto", "=https", "--max-redirs",
                      "0", "--cacert", n.ca_file, "--resolve",
                      "mta-sts.good.plain.test:443:127.0.0.30", *args], quiet=True)
    p = curl("-i", url)
    assert p.returncode == 0 and p.stdout.endswith(policy), p.stdout + p.stderr
    assert "content-type: text/plain" in p.stdout.lower(), p.stdout
    p = curl("--data-binary", "report-body", "-H", "Content-Type: application/tlsrpt+gzip",
             "https://mta-sts.good.plain.test/rua")
    assert p.returncode == 0, p.stderr
    r = h.requests()
    assert [(x["method"], x["path"]) for x in r] == [
        ("GET", "/.well-known/mta-sts.txt"), ("POST", "/rua")], r
    assert r[1]["body"] == b"report-body" and r[0]["host"] == "mta-sts.good.plain.test", r
    h.set(redirect="https://elsewhere.plain.test/")
    p = curl("-o", "/dev/null", "-w", "%{http_code}", url)
    assert p.stdout == "301", p.stdout + p.stderr
    h.set(redirect=None, status=404)
    assert curl("-o", "/dev/null", "-w", "%{http_code}", url).stdout == "404"
    # a certificate for another name fails verification
    bad = n.https("mta-sts.bad.plain.test", "127.0.0.31", body=policy,
                  cert=n.leaf("other.plain.test"))
    p = n.run(["curl", "-sS", "--max-time", "5", "--cacert", n.ca_file, "--resolve",
               "mta-sts.bad.plain.test:443:127.0.0.31",
               "https://mta-sts.bad.plain.test/.well-known/mta-sts.txt"], quiet=True)
    assert p.returncode == 60 and bad.requests() == [], p.stderr
    # a certificate from another CA: curl aborts the handshake, the server logs it
    rogue = n.https("mta-sts.rogue.plain.test", "127.0.0.32", body=policy,
                    cert=n.leaf("mta-sts.rogue.plain.test", ca=n.new_ca("rogue CA")))
    p = n.run(["curl", "-sS", "--max-time", "5", "--cacert", n.ca_file, "--resolve",
               "mta-sts.rogue.plain.test:443:127.0.0.32",
               "https://mta-sts.rogue.plain.test/.well-known/mta-sts.txt"], quiet=True)
    assert p.returncode == 60 and rogue.requests() == [], p.stderr
    err = mxtest.wait_for(rogue.tls_errors, 5, what="the refused handshake in tls_errors()")
    assert "UNKNOWN_CA" in err[0]["error"], err
    h.stop()
    assert curl(url).returncode != 0
    h.start()
    h.set(status=200)
    assert curl(url).stdout == policy


def test_relay_in_the_namespace_delivers_over_tls():
    n = net()
    leaf = n.leaf("mx.tls.plain.test")
    n.set_zone("plain.test", ["tls MX 10 mx.tls", "mx.tls A 127.0.0.21"])
    sinks = n.sinks({"mx.tls": {"host": "127.0.0.21", "hostname": "mx.tls.plain.test",
                                "tls": {"cert": leaf.cert, "key": leaf.key}}})
    d = n.relay()
    qid = n.submit(d, ["bob@tls.plain.test"])
    m = sinks.wait_messages(1, "mx.tls")[0]
    assert m.rcpts == ["bob@tls.plain.test"] and m.tls == "TLSv1.3", m.meta
    assert m.sni == "mx.tls.plain.test", m.meta
    assert n.plaintext_mail(sinks) == [], n.plaintext_mail(sinks)
    import mxpeers
    ev = mxpeers.wait_event(d, "delivery", qid=qid, status="sent")
    assert ev[0]["tls"] == "TLSv1.3" and ev[0]["relay"].startswith("mx.tls.plain.test"), ev
    # mxrelayctl reaches the daemon in the namespace through its socket file
    p = mxtest.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path, "summary"], check=0, quiet=True)
    assert p.returncode == 0, p.stderr


if __name__ == "__main__":
    mxtest.main()
