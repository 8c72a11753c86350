#!/usr/bin/python3
"""The SMTP client's TLS under a required level (issue 13), against real
aiosmtpd sinks: `tls_policy encrypt` towards an MX without STARTTLS defers
451 4.7.4 on one connection per attempt and no MAIL reaches the sink, and
a failed handshake defers 4.7.5 (neither is retried in plaintext); `verify` with a certificate for another name, or from an
untrusted issuer, defers 451 4.7.5 right after the handshake, before EHLO is
sent again (the sink saw STARTTLS and no second EHLO, no MAIL); `verify` with
a certificate trusted through `tls_ca_file` and naming the MX delivers;
`encrypt` delivers over TLS whatever the certificate; `none` never sends
STARTTLS; `verify` over a route to [ADDR] sends no SNI and checks the address
against the certificate's iPAddress SAN. The client certificate (tls_client_cert/key, the key root's alone)
reaches an MX that requires one (tlspeers network); without it, `encrypt`
defers and opportunistic TLS falls back to plaintext. Start-up errors for the
certificate files name FILE:LINE: KEY."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, submit, events, wait_event, wait_gone  # noqa: E402

# one attempt per test: the retry comes long after the test is over
ONE_TRY = {"retry_min": "10m", "retry_max": "1h"}


def relay(sinks, policy, **conf):
    c = dict(ONE_TRY, tls_policy=policy)
    c.update(conf)
    return mxpeers.relay(sinks, conf=c)


def deferred(d, qid):
    (ev,) = wait_event(d, "delivery", qid=qid)
    assert ev["status"] == "deferred", ev["_line"]
    return ev


def delivered(d, qid):
    wait_gone(d, qid)
    (ev,) = events(d, "delivery", qid=qid)
    assert ev["status"] == "sent", ev["_line"]
    return ev


def no_mail(sinks, name):
    mails = sinks.events("mail", name)
    assert not mails and not sinks.messages(name), f"MAIL reached {name}: {mails}"


def test_encrypt_without_starttls_defers_474():
    sinks = mxpeers.Sinks({"mx.plain": {}}).start()
    d = relay(sinks, f"plain.{ZONE} encrypt")
    qid = submit(d, [f"paula@plain.{ZONE}"])
    ev = deferred(d, qid)
    assert ev["dsn"] == "4.7.4", ev["_line"]
    assert re.search(r"451 4\.7\.4 mx\.plain\.\S+ offered no STARTTLS \(no STARTTLS in the EHLO "
                     r"reply\); TLS required by tls_policy encrypt", ev["reply"]), ev["_line"]
    no_mail(sinks, "mx.plain")
    assert sinks.connections("mx.plain") == 1, \
        f"{sinks.connections('mx.plain')} connections for one attempt (a plaintext retry?)"
    assert mxpeers.in_spool(d, qid)


def test_encrypt_failed_handshake_not_retried_in_plaintext():
    sinks = mxpeers.Sinks({"mx.oldtls": {"tls": {"max": "TLSv1_1"}}}).start()
    d = relay(sinks, f"oldtls.{ZONE} encrypt")
    qid = submit(d, [f"otto@oldtls.{ZONE}"])
    ev = deferred(d, qid)
    assert ev["dsn"] == "4.7.5" and "TLS handshake with mx.oldtls" in ev["reply"] and \
        "required by tls_policy encrypt" in ev["reply"], ev["_line"]
    no_mail(sinks, "mx.oldtls")
    assert sinks.connections("mx.oldtls") == 1, "the same host again in plaintext"


def test_encrypt_any_certificate_over_tls():
    sinks = mxpeers.Sinks({"mx.tls": {"tls": True}}).start()  # self-signed, another name
    d = relay(sinks, f"tls.{ZONE} encrypt")
    qid = submit(d, [f"erin@tls.{ZONE}"])
    (m,) = sinks.wait_messages(1, "mx.tls")
    ev = delivered(d, qid)
    assert m.tls in ("TLSv1.2", "TLSv1.3") and ev["tls"] == m.tls, ev["_line"]


def test_verify_wrong_name_defers_475_before_ehlo():
    sinks = mxpeers.Sinks({"mx.tls": {"tls": True}}).start()
    # trusted (the sinks' certificate is its own anchor), but it names mx.sink, not mx.tls
    d = relay(sinks, f"tls.{ZONE} verify", tls_ca_file=mxpeers._sink_cert()[0])
    qid = submit(d, [f"vera@tls.{ZONE}"])
    ev = deferred(d, qid)
    assert ev["dsn"] == "4.7.5", ev["_line"]
    assert re.search(r"451 4\.7\.5 mx\.tls\.\S+ certificate: hostname mismatch; required by "
                     r"tls_policy verify", ev["reply"]), ev["_line"]
    # the relay hangs up right after its side of the handshake: the sink may not see it end
    assert len(sinks.events("starttls_cmd", "mx.tls")) == 1, sinks.events(None, "mx.tls")
    ehlos = sinks.events("ehlo", "mx.tls")
    assert len(ehlos) == 1, f"EHLO sent again after an unverified handshake: {ehlos}"
    no_mail(sinks, "mx.tls")
    assert sinks.connections("mx.tls") == 1, "the same host again (in plaintext?)"


def test_verify_untrusted_defers_475():
    sinks = mxpeers.Sinks({"mx.sink": {"tls": True}}).start()
    d = relay(sinks, f"sink.{ZONE} verify")  # no tls_ca_file: the system store
    qid = submit(d, [f"una@sink.{ZONE}"])
    ev = deferred(d, qid)
    assert ev["dsn"] == "4.7.5" and "self-signed certificate" in ev["reply"], ev["_line"]
    no_mail(sinks, "mx.sink")
    assert sinks.connections("mx.sink") == 1


def test_verify_good_certificate_delivers():
    sinks = mxpeers.Sinks({"mx.sink": {"tls": True}}).start()
    d = relay(sinks, f"sink.{ZONE} verify", tls_ca_file=mxpeers._sink_cert()[0])
    qid = submit(d, [f"gina@sink.{ZONE}"])
    (m,) = sinks.wait_messages(1, "mx.sink")
    ev = delivered(d, qid)
    assert m.tls in ("TLSv1.2", "TLSv1.3") and ev["tls"] == m.tls, ev["_line"]
    assert m.sni == f"mx.sink.{ZONE}", m.sni


def test_ca_file_applies_on_reload():
    """tls_ca_file is read again by a reload (issue 16): a CA that did not sign
    the MX defers `verify`; a missing file fails `mxrelayctl reload` naming
    FILE:LINE: KEY and the file, and changes nothing; the right CA, reloaded,
    delivers without a restart."""
    sinks = mxpeers.Sinks({"mx.sink": {"tls": True}}).start()
    other, _ = mxtest.make_cert(mxtest.tmpdir(), cn="other.test.example", name="otherca")
    d = relay(sinks, f"sink.{ZONE} verify", tls_ca_file=other)
    ev = deferred(d, submit(d, [f"una@sink.{ZONE}"]))
    assert ev["dsn"] == "4.7.5", ev["_line"]
    missing = os.path.join(d.tmp, "elsewhere.pem")
    d.configure({"tls_ca_file": missing})
    p = mxtest.run([mxtest.MXRELAYCTL, "reload", "-c", d.conf_path], timeout=30, check=1)
    assert re.search(rf"{re.escape(d.conf_path)}:\d+: tls_ca_file: cannot use "
                     rf"{re.escape(missing)}", p.stderr), p.stderr
    d.configure({"tls_ca_file": mxpeers._sink_cert()[0]})
    p = mxtest.run([mxtest.MXRELAYCTL, "reload", "-c", d.conf_path], timeout=30, check=0)
    assert "mxrelayd reloaded" in p.stdout, p.stdout + p.stderr
    qid = submit(d, [f"rita@sink.{ZONE}"])
    sinks.wait_messages(1, "mx.sink")
    assert delivered(d, qid)["tls"] in ("TLSv1.2", "TLSv1.3")


def test_policy_none_never_starttls():
    sinks = mxpeers.Sinks({"mx.tls": {"tls": True}}).start()
    d = relay(sinks, f"tls.{ZONE} none")
    qid = submit(d, [f"nora@tls.{ZONE}"])
    (m,) = sinks.wait_messages(1, "mx.tls")
    ev = delivered(d, qid)
    assert m.tls is None and ev["tls"] == "none", ev["_line"]
    assert not sinks.events("starttls_cmd", "mx.tls"), "STARTTLS sent under tls_policy none"


def ip_cert(addr):
    """A self-signed certificate naming addr in an iPAddress SAN (and no DNS name)."""
    tmp = mxtest.tmpdir()
    os.chmod(tmp, 0o755)
    cert, key = os.path.join(tmp, "ip.pem"), os.path.join(tmp, "ip.key")
    mxtest.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "2", "-subj", "/CN=ip literal", "-addext",
                f"subjectAltName=IP:{addr}", "-keyout", key, "-out", cert], timeout=60, quiet=True,
               check=0)
    os.chmod(key, 0o644)
    return cert, key


def test_verify_ip_literal_route():
    """route = DOMAIN [ADDR]:PORT with tls_policy verify: no SNI (RFC 6066 3), and the
    certificate is checked for the address (iPAddress SAN), not for "[ADDR]" as a name."""
    addr = mxpeers.ip(73)
    cert, key = ip_cert(addr)
    sinks = mxpeers.Sinks({"lit": {"host": addr, "tls": {"cert": cert, "key": key}}}).start()
    d = mxpeers.relay(sinks, conf=dict(ONE_TRY, tls_policy=f"lit.{ZONE} verify", tls_ca_file=cert),
                      routes=[f"lit.{ZONE} [{addr}]:{sinks.port}"])
    qid = submit(d, [f"lena@lit.{ZONE}"])
    (ev,) = wait_event(d, "delivery", qid=qid)
    assert ev["status"] == "sent", ev["_line"]
    (m,) = sinks.wait_messages(1, "lit")
    assert m.tls and m.sni is None, f"SNI {m.sni!r} sent for an IP literal"


def net():
    """The module's TlsNet (netns, test CA, zones), for the client certificate cases."""
    import tlspeers  # only these cases need the TLS test network
    return tlspeers.net()


def cc_sink(n):
    """mx.cc.plain.test requiring a client certificate from the test CA."""
    leaf = n.leaf("mx.cc.plain.test")
    n.set_zone("plain.test", ["cc MX 10 mx.cc", "mx.cc A 127.0.0.14"])
    return n.sinks({"cc": {"host": "127.0.0.14", "tls": {
        "cert": leaf.cert, "key": leaf.key, "client_ca": n.ca_file}}})


def test_client_certificate_presented():
    n = net()
    sinks = cc_sink(n)
    client = n.leaf("relay.client.test", client=True)
    os.chmod(client.key, 0o600)  # root's alone: read before the privilege drop
    d = n.relay(conf={"tls_client_cert": client.cert, "tls_client_key": client.key,
                      "tls_policy": "cc.plain.test verify"})
    qid = n.submit(d, ["carl@cc.plain.test"])
    (m,) = sinks.wait_messages(1, "cc")
    assert m.tls and m.peer_cert == "CN=relay.client.test", m.meta
    assert n.plaintext_mail(sinks) == [], n.plaintext_mail(sinks)
    (ev,) = wait_event(d, "delivery", qid=qid, status="sent")
    assert ev["tls"] == m.tls, ev["_line"]
    assert events(d, "privileges") and "user=root" not in events(d, "privileges")[-1]["_line"]


def test_without_client_certificate_not_over_tls():
    n = net()
    sinks = cc_sink(n)
    # TLS required: the sink's refusal (an alert after our side of the TLS 1.3
    # handshake) is a failed handshake: deferred, never retried in plaintext
    d = n.relay(conf=dict(ONE_TRY, tls_policy="cc.plain.test encrypt"))
    qid = n.submit(d, ["cora@cc.plain.test"])
    ev = deferred(d, qid)
    assert ev["dsn"] == "4.7.5" and "TLS handshake with mx.cc.plain.test" in ev["reply"], \
        ev["_line"]
    assert sinks.events("mail", "cc") == [] and sinks.connections("cc") == 1, sinks.events()
    d.stop()
    # opportunistic: as after any failed handshake, the same host again in plaintext
    d = n.relay(conf=ONE_TRY)
    qid = n.submit(d, ["cole@cc.plain.test"])
    (m,) = sinks.wait_messages(1, "cc")
    assert m.tls is None and m.peer_cert is None, m.meta
    assert sinks.connections("cc") == 3, sinks.events()


def check(text):
    tmp = mxtest.tmpdir()
    path = mxtest.write_file(os.path.join(tmp, "mxrelay.conf"), text.format(tmp=tmp))
    return path, tmp, mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15, cwd=tmp)


def test_certificate_file_errors_name_file_line_key():
    cert, key = mxpeers._sink_cert()
    other_cert, _ = mxtest.make_cert(mxtest.tmpdir(), cn="other.test.example", name="other")
    cases = [
        ("missing CA file", "tls_ca_file = {tmp}/nope.pem\n", 2, "tls_ca_file",
         "No such file or directory"),
        ("CA file without a certificate", "tls_ca_file = {tmp}/mxrelay.conf\n", 2,
         "tls_ca_file", ""),
        ("missing client key", f"tls_client_cert = {cert}\ntls_client_key = {{tmp}}/nokey\n", 3,
         "tls_client_key", "No such file or directory"),
        ("key of another certificate", f"tls_client_cert = {other_cert}\ntls_client_key = {key}\n",
         3, "tls_client_key", "the key does not match tls_client_cert"),
        ("certificate file without one", f"tls_client_cert = {key}\ntls_client_key = {key}\n", 2,
         "tls_client_cert", ""),
    ]
    enc_key = os.path.join(mxtest.tmpdir(), "enc.key")  # the sink's key under a passphrase
    mxtest.run(["openssl", "pkey", "-in", key, "-aes256", "-passout", "pass:secret", "-out",
                enc_key], timeout=30, quiet=True, check=0)
    cases.append(("encrypted client key (never prompted for)",
                  f"tls_client_cert = {cert}\ntls_client_key = {enc_key}\n", 3, "tls_client_key",
                  "the key is encrypted"))
    failures = []
    for label, body, line, keyname, why in cases:
        path, tmp, p = check("hostname = relay.test.example\n" + body)
        pat = rf"{re.escape(path)}:{line}: {keyname}: cannot use \S+: \S*{re.escape(why)}"
        if p.returncode == 0 or not re.search(pat, p.stderr):
            failures.append(f"{label}: exit {p.returncode}, stderr {p.stderr.strip()!r}")
    path, tmp, p = check(f"hostname = relay.test.example\ntls_client_cert = {cert}\n"
                         f"tls_client_key = {key}\ntls_ca_file = {cert}\n")
    if p.returncode != 0:
        failures.append(f"a good cert, key and CA file refused: {p.stderr.strip()!r}")
    assert not failures, "\n".join(failures)


def test_root_only_client_key_noted_for_the_unit():
    """-n as root, user = nobody: the key is read as root at a root start, but the
    systemd unit starts mxrelayd as that user: say so (runas probe), exit 0."""
    tmp = mxtest.tmpdir()
    os.chmod(tmp, 0o755)
    cert, key = mxtest.make_cert(tmp, cn="relay.test.example", name="client")
    os.chmod(key, 0o600)
    path = mxtest.write_file(os.path.join(tmp, "mxrelay.conf"),
                             f"hostname = relay.test.example\nuser = nobody\n"
                             f"tls_client_cert = {cert}\ntls_client_key = {key}\n")
    os.chmod(path, 0o644)
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15, cwd=tmp, check=0)
    assert p.returncode == 0, p.stderr
    assert re.search(rf"note: {re.escape(path)}:4: tls_client_key {re.escape(key)}: not readable "
                     r"by user nobody \(mode 0600", p.stderr), p.stderr


if __name__ == "__main__":
    mxtest.main()
