#!/usr/bin/python3
"""TLS: STARTTLS, the plaintext-injection rule, implicit TLS, version floors,
legacy TLS 1.0 (per listener, per source CIDR, with a sunset date),
configured and generated certificates."""

import os
import re
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

OLD = "127.0.0.9"


def daemon():
    def make():
        return mxtest.Daemon(shared=True, listeners={
            "sub": {"tls": "starttls"},
            "smtps": {"tls": "implicit"},
            "legacy": {"tls": "starttls", "legacy_tls": "yes"},
            "legacy_from": {"tls": "starttls", "legacy_tls_from": f"{OLD}/32",
                            "legacy_tls_until": "2999-12-31"},
            "sunset": {"tls": "starttls", "legacy_tls": "yes", "legacy_tls_until": "2001-01-01"},
            "tls13": {"tls": "starttls", "tls_min_version": "1.3"},
        }).start()
    return mxtest.shared_daemon("tls", make)


def test_starttls_then_mail():
    d = daemon()
    s = d.connect("sub")
    s.ehlo()
    s.starttls()
    assert s.tls[0] == "TLSv1.3", f"default client should get TLS 1.3, got {s.tls}"
    # RFC 3207 4.2: the session is reset; a new EHLO is needed
    s.cmd("MAIL FROM:<a@example.com>", 503, "5.5.1")
    s.ehlo()
    assert "STARTTLS" not in s.ext
    cipher = s.tls[1]
    r = s.cmd("STARTTLS")
    assert 500 <= r.code < 600 and (r.enh or "").startswith("5."), f"second STARTTLS: {r}"
    qid = s.mail("a@example.com", ["b@example.net"], mxtest.message(subject="over tls"))
    s.quit()
    body = d.message(qid)["body"]
    received = mxtest.header_values(body, "Received")
    assert received and "TLSv1.3" in received[0], f"Received header should name TLSv1.3: {received}"
    assert cipher in received[0], f"Received header should name the cipher {cipher}: {received}"


def test_starttls_plaintext_injection_discarded():
    d = daemon()
    s = d.connect("sub")
    s.ehlo()
    s.send("STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
    s.reply().expect(220, "2.0.0")
    s.wrap()
    s.send("NOOP\r\n")
    first = s.reply()
    assert first.code == 250 and first.enh == "2.0.0", \
        f"first reply after the handshake must answer NOOP, got: {first} (the injected MAIL was processed)"
    s.silent(0.5)
    # and the injected MAIL did not open a transaction
    s.ehlo()
    s.cmd("RCPT TO:<b@example.net>", 503, "5.5.1")
    s.quit()


def test_starttls_injection_with_pipelined_rcpt():
    d = daemon()
    s = d.connect("sub")
    s.ehlo()
    s.send("MAIL FROM:<x@example.com>\r\nSTARTTLS\r\nRCPT TO:<y@example.net>\r\nDATA\r\n")
    s.reply().expect(250)
    s.reply().expect(220, "2.0.0")
    s.wrap()
    s.send("NOOP\r\n")
    s.reply().expect(250, "2.0.0")
    s.silent(0.5)
    # RFC 3207 4.2: the MAIL given before TLS is forgotten
    s.ehlo()
    s.cmd("RCPT TO:<y@example.net>", 503, "5.5.1")
    s.quit()


def test_starttls_on_tls_none_listener():
    d = mxtest.Daemon(listeners={"plain": {"tls": "none"}}).start()
    s = d.connect("plain")
    s.ehlo()
    assert "STARTTLS" not in s.ext, "tls = none must not offer STARTTLS"
    r = s.cmd("STARTTLS")
    assert 400 <= r.code < 600, f"STARTTLS on tls = none: {r}"
    s.cmd("NOOP", 250, "2.0.0")
    s.quit()


def test_implicit_tls_raw():
    d = daemon()
    s = d.connect("smtps")
    assert s.tls and s.tls[0] in ("TLSv1.2", "TLSv1.3"), s.tls
    assert s.banner.code == 220 and "ESMTP mxrelay" in s.banner.lines[0]
    s.ehlo()
    assert "STARTTLS" not in s.ext
    qid = s.mail("imp@example.com", ["b@example.net"], mxtest.message(subject="implicit"))
    s.quit()
    received = mxtest.header_values(d.message(qid)["body"], "Received")
    assert received and re.search(r"TLSv1\.[23]", received[0]), received


def test_implicit_tls_plaintext_client_fails():
    d = daemon()
    s = mxtest.Smtp(d.port("smtps"), banner=False)
    s.send("EHLO plain.example\r\n")
    assert s.closed(5), "a plaintext client on an implicit TLS port was not dropped"
    assert d.alive()


def test_swaks_and_curl_implicit_tls():
    d = daemon()
    p = mxtest.swaks(d.port("smtps"), "--tls-on-connect", check=0)
    assert d.message(mxtest.swaks_qid(p))
    p = mxtest.curl(f"smtps://127.0.0.1:{d.port('smtps')}", "-k", check=0)
    assert d.message(mxtest.curl_qid(p))


def test_tls12_client_works_by_default():
    d = daemon()
    s, err = d.starttls_with("sub", mxtest.client_ctx(maxv=ssl.TLSVersion.TLSv1_2))
    assert s, f"TLS 1.2 handshake failed: {err}"
    assert s.tls[0] == "TLSv1.2"
    s.ehlo()
    s.quit()


def test_tls_min_version_13():
    d = daemon()
    s, err = d.starttls_with("tls13", mxtest.client_ctx(maxv=ssl.TLSVersion.TLSv1_2))
    assert s is None, f"TLS 1.2 accepted on a tls_min_version = 1.3 listener ({s and s.tls})"
    s, err = d.starttls_with("tls13", mxtest.client_ctx())
    assert s and s.tls[0] == "TLSv1.3", err
    s.quit()


def test_tls10_refused_on_normal_listener():
    d = daemon()
    s, err = d.starttls_with("sub", mxtest.legacy_ctx())
    assert s is None, f"TLS 1.0 accepted on a listener without legacy_tls ({s and s.tls})"
    s, err = d.starttls_with("sub", mxtest.legacy_ctx(ssl.TLSVersion.TLSv1_1))
    assert s is None, f"TLS 1.1 accepted on a listener without legacy_tls ({s and s.tls})"
    assert d.alive()
    assert not d.grep(r"event=legacy_tls")


def test_tls10_on_legacy_listener():
    d = daemon()
    s, err = d.starttls_with("legacy", mxtest.legacy_ctx())
    assert s, f"TLS 1.0 handshake failed on legacy_tls = yes: {err}"
    assert s.tls[0] == "TLSv1", s.tls
    s.ehlo()
    qid = s.mail("copier@example.com", ["b@example.net"], mxtest.message(subject="from a copier"))
    s.quit()
    warn = d.wait_log(r"event=legacy_tls")
    assert any(re.search(r"\blevel=warn\b", ln) for ln in warn), f"legacy_tls line not level=warn: {warn}"
    received = mxtest.header_values(d.message(qid)["body"], "Received")
    assert received and re.search(r"TLSv1(\.0)?\b(?!\.[123])", received[0]), \
        f"Received should name TLSv1: {received}"


def test_tls11_on_legacy_listener():
    d = daemon()
    s, err = d.starttls_with("legacy", mxtest.legacy_ctx(ssl.TLSVersion.TLSv1_1))
    assert s, f"TLS 1.1 handshake failed on legacy_tls = yes: {err}"
    assert s.tls[0] == "TLSv1.1", s.tls
    s.ehlo()
    s.quit()
    assert d.wait_log(r"event=legacy_tls")


def test_modern_client_on_legacy_listener_gets_modern_tls():
    d = daemon()
    s, err = d.starttls_with("legacy", mxtest.client_ctx())
    assert s and s.tls[0] == "TLSv1.3", f"modern client on a legacy listener: {err or s.tls}"
    s.quit()
    assert not d.grep(r"event=legacy_tls"), "a TLS 1.3 session logged event=legacy_tls"


def test_openssl_s_client_tls1():
    d = daemon()
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{d.port('legacy')}", "-starttls", "smtp",
           "-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-name", "copier.example", "-crlf", "-ign_eof"]
    p = mxtest.run(cmd, input="EHLO copier.example\nNOOP\nQUIT\n", timeout=20)
    out = p.stdout + p.stderr
    assert re.search(r"Protocol\s*:\s*TLSv1\s*$", out, re.M), "s_client -tls1 did not negotiate TLSv1"
    assert re.search(r"^250 2\.0\.0", out, re.M), "no 250 2.0.0 reply to NOOP over TLS 1.0"
    assert re.search(r"^221 2\.0\.0", out, re.M), "no 221 reply to QUIT over TLS 1.0"
    p = mxtest.run(cmd[:3] + [f"127.0.0.1:{d.port('sub')}"] + cmd[4:], input="QUIT\n", timeout=20)
    out = p.stdout + p.stderr
    assert p.returncode != 0 or not re.search(r"Protocol\s*:\s*TLSv1\s*$", out, re.M), \
        "s_client -tls1 negotiated TLSv1 on a listener without legacy_tls"


def test_legacy_tls_from_cidr():
    d = daemon()
    s, err = d.starttls_with("legacy_from", mxtest.legacy_ctx(), src=OLD)
    assert s, f"TLS 1.0 from {OLD} (in legacy_tls_from) failed: {err}"
    assert s.tls[0] == "TLSv1"
    s.quit()
    s, err = d.starttls_with("legacy_from", mxtest.legacy_ctx(), src="127.0.0.1")
    assert s is None, f"TLS 1.0 from 127.0.0.1 (not in legacy_tls_from) was accepted: {s and s.tls}"
    # a modern client from outside the CIDR is fine
    s, err = d.starttls_with("legacy_from", mxtest.client_ctx(), src="127.0.0.1")
    assert s, err
    s.quit()


def test_legacy_tls_until_past():
    d = daemon()
    s, err = d.starttls_with("sunset", mxtest.legacy_ctx())
    assert s is None, f"TLS 1.0 accepted after legacy_tls_until ({s and s.tls})"
    s, err = d.starttls_with("sunset", mxtest.client_ctx())
    assert s, err
    s.quit()


def test_configured_certificate():
    tmp = mxtest.tmpdir()
    cert, key = mxtest.make_cert(tmp, cn="configured.test.example")
    d = mxtest.Daemon(tmp=tmp, listeners={"main": {"tls": "starttls", "cert": cert, "key": key},
                                          "smtps": {"tls": "implicit", "cert": cert, "key": key}}).start()
    want = ssl.PEM_cert_to_DER_cert(open(cert).read())
    for listener in ("main", "smtps"):
        s = d.connect(listener)
        if listener == "main":
            s.ehlo()
            s.starttls()
        got = s.sock.getpeercert(binary_form=True)
        assert got == want, f"{listener} does not serve the configured certificate"
        s.quit()


def test_generated_certificate_persists():
    d = mxtest.Daemon().start()

    def peer_cert():
        s = d.connect()
        s.ehlo()
        s.starttls()
        c = s.sock.getpeercert(binary_form=True)
        s.quit()
        return c

    first = peer_cert()
    assert first
    files = os.listdir(d.data_dir)
    assert any(f.endswith((".pem", ".crt", ".key")) for f in files), f"no certificate in data_dir: {files}"
    d.stop()
    d.start()
    assert peer_cert() == first, "the generated certificate changed after a restart"


def test_failed_handshake_does_not_hurt_daemon():
    d = daemon()
    s = d.connect("sub")
    s.ehlo()
    s.cmd("STARTTLS", 220, "2.0.0")
    s.send(b"\x16\x03\x01\x00\x05garbagegarbage\r\n")
    assert s.closed(5), "garbage handshake not dropped"
    s = d.connect("sub")
    s.ehlo()
    s.starttls()
    s.ehlo()
    s.quit()


def test_stalled_tls_handshakes_time_out():
    import socket
    import time
    d = mxtest.Daemon(conf={"session_timeout": "2s"},
                      listeners={"main": {"tls": "starttls"}, "smtps": {"tls": "implicit"}}).start()
    implicit = socket.create_connection(("127.0.0.1", d.port("smtps")), 5)     # never says hello
    s = d.connect()
    s.ehlo()
    s.cmd("STARTTLS", 220, "2.0.0")                                            # never says hello
    t0 = time.monotonic()
    implicit.settimeout(8)
    try:
        data = implicit.recv(100)
        ok = data == b""
    except ConnectionResetError:
        ok = True
    except socket.timeout:
        ok = False
    implicit.close()
    assert ok, "a silent client on the implicit TLS port was not dropped within session_timeout + 6s"
    assert s.closed(max(0.5, 8 - (time.monotonic() - t0))), \
        "a client that never starts the TLS handshake after STARTTLS was not dropped"


def test_implicit_tls_over_limit_sends_no_plaintext():
    """Over max_connections_per_ip on an implicit TLS port: a 421 inside TLS, or a plain close;
    never plaintext bytes that a TLS client reads as a broken handshake."""
    import socket
    import time
    d = mxtest.Daemon(conf={"max_connections_per_ip": "1"},
                      listeners={"main": {"tls": "starttls"}, "smtps": {"tls": "implicit"}}).start()
    hold = d.connect("main")
    # at work in DATA: never evicted to make room (issue 12), so the cap holds
    hold.ehlo()
    hold.cmd("MAIL FROM:<hold@example.com>", 250)
    hold.cmd("RCPT TO:<r@example.net>", 250)
    hold.cmd("DATA", 354)
    raw = socket.create_connection(("127.0.0.1", d.port("smtps")), 5)
    time.sleep(0.5)
    raw.setblocking(False)
    try:
        early = raw.recv(200)
    except BlockingIOError:
        early = None
    except ConnectionResetError:
        early = b""
    raw.close()
    mxtest.note(f"S (before any ClientHello): {early!r}")
    assert not early, f"plaintext sent on the implicit TLS port before the handshake: {early!r}"
    try:
        s = mxtest.Smtp(d.port("smtps"), implicit_tls=True, banner=False)
    except (ssl.SSLError, OSError) as e:
        raise AssertionError(f"TLS client over the limit sees a broken handshake: {e}")
    try:
        s.reply().expect(421, "4.7.0")
    except mxtest.ConnectionClosed:
        pass
    hold.close()


if __name__ == "__main__":
    mxtest.main()
