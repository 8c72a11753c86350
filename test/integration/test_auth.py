#!/usr/bin/python3
"""SMTP AUTH: where it is offered, PLAIN and LOGIN in every form, failures,
the per-IP failure delay and block, allowed senders (envelope and header),
and real clients (swaks, curl, msmtp) over STARTTLS and implicit TLS."""

import base64
import os
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

USERS = [
    ("alice", "alice-pw", "alice@example.com,@branch.example.com", False),
    ("bob", "bob-pw", "*", True),          # disabled
    ("carol", "carol pw: with spaces", "*", False),
]


def daemon():
    def make():
        tmp = mxtest.tmpdir()
        creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
        return mxtest.Daemon(
            tmp=tmp, shared=True,
            # no loopback address may relay without AUTH here
            conf={"credentials": creds, "relay_from": "192.0.2.0/24", "auth_max_failures": "50"},
            listeners={"sub": {"tls": "starttls"},
                       "req": {"tls": "required"},
                       "open": {"tls": "none", "auth_without_tls": "yes"},
                       "smtps": {"tls": "implicit"}}).start()
    return mxtest.shared_daemon("auth", make)


def authed(listener="sub", src=None):
    """A session on listener that is under TLS (if possible) and did EHLO."""
    d = daemon()
    s = d.connect(listener, src=src)
    s.ehlo()
    if listener in ("sub", "req"):
        s.starttls()
        s.ehlo()
    return s


def test_auth_offered_only_under_tls():
    d = daemon()
    s = d.connect("sub")
    s.ehlo()
    assert "AUTH" not in s.ext, f"AUTH offered in plaintext: {s.ext}"
    s.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLXB3", 538, "5.7.11")
    s.cmd("AUTH LOGIN", 538, "5.7.11")
    s.starttls()
    s.ehlo()
    mechs = s.ext.get("AUTH", "").upper().split()
    assert "PLAIN" in mechs and "LOGIN" in mechs, f"AUTH line: {s.ext.get('AUTH')!r}"
    s.quit()
    s = d.connect("smtps")
    s.ehlo()
    assert "STARTTLS" not in s.ext, "STARTTLS offered on an implicit TLS listener"
    assert set(s.ext.get("AUTH", "").upper().split()) >= {"PLAIN", "LOGIN"}, s.ext
    s.quit()
    s = d.connect("open")
    s.ehlo()
    assert "STARTTLS" not in s.ext, "STARTTLS offered on a tls = none listener"
    assert set(s.ext.get("AUTH", "").upper().split()) >= {"PLAIN", "LOGIN"}, s.ext
    s.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLXB3", 235, "2.7.0")  # alice / alice-pw
    s.quit()


def test_tls_required_listener():
    d = daemon()
    s = d.connect("req")
    s.ehlo()
    assert "STARTTLS" in s.ext
    assert "AUTH" not in s.ext
    s.cmd("MAIL FROM:<alice@example.com>", 530, "5.7.0")
    s.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLXB3", 530, "5.7.0")
    s.cmd("NOOP", 250, "2.0.0")
    s.starttls()
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    qid = s.mail("alice@example.com", ["far@example.net"],
                 mxtest.message("alice@example.com", "far@example.net", "required"))
    s.quit()
    m = d.message(qid)
    assert m["auth_user"] == "alice", m["auth_user"]


def test_plain_with_initial_response():
    s = authed()
    s.auth_plain("alice", "alice-pw", initial=True).expect(235, "2.7.0")
    s.quit()


def test_plain_without_initial_response():
    s = authed()
    r = s.cmd("AUTH PLAIN")
    r.expect(334)
    assert r.lines[0].rstrip() in ("334", "334 "), f"PLAIN challenge must be empty: {r}"
    import base64
    s.cmd(base64.b64encode(b"\0alice\0alice-pw").decode(), 235, "2.7.0")
    s.quit()


def test_login_without_initial_response():
    s = authed()
    s.cmd("AUTH LOGIN", 334)
    s.cmd("YWxpY2U=", 334)                 # alice
    s.cmd("YWxpY2UtcHc=", 235, "2.7.0")    # alice-pw
    s.quit()


def test_login_with_initial_response():
    s = authed()
    s.cmd("AUTH LOGIN YWxpY2U=", 334)
    s.cmd("YWxpY2UtcHc=", 235, "2.7.0")
    s.quit()


def test_password_with_spaces_and_colon():
    s = authed("smtps")
    s.auth_login("carol", "carol pw: with spaces").expect(235, "2.7.0")
    s.quit()


def test_cancel_with_star():
    s = authed(src="127.0.0.41")
    r = s.cmd("AUTH PLAIN")
    r.expect(334)
    r = s.cmd("*")
    assert r.code == 501 and (r.enh or "").startswith("5."), f"cancel PLAIN: {r}"
    s.cmd("AUTH LOGIN", 334)
    r = s.cmd("*")
    assert r.code == 501 and (r.enh or "").startswith("5."), f"cancel LOGIN at user: {r}"
    s.cmd("AUTH LOGIN", 334)
    s.cmd("YWxpY2U=", 334)
    r = s.cmd("*")
    assert r.code == 501 and (r.enh or "").startswith("5."), f"cancel LOGIN at password: {r}"
    # the session can still authenticate afterwards
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.quit()


def test_bad_base64_and_unknown_mechanism():
    s = authed(src="127.0.0.42")
    r = s.cmd("AUTH PLAIN !!!not-base64!!!")
    assert r.code == 501, f"bad base64: {r}"
    r = s.cmd("AUTH CRAM-MD5")
    assert r.code == 504, f"unknown mechanism: {r}"
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    r = s.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLXB3")
    assert r.code == 503, f"second AUTH in one session: {r}"
    s.quit()


def test_wrong_password():
    s = authed(src="127.0.0.31")
    s.auth_plain("alice", "not-her-password").expect(535, "5.7.8")
    s.cmd("MAIL FROM:<alice@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 530, "5.7.0")
    s.quit()


def test_unknown_user():
    s = authed(src="127.0.0.32")
    s.auth_plain("nosuchuser", "alice-pw").expect(535, "5.7.8")
    s.quit()
    s = authed(src="127.0.0.33")
    s.auth_login("nosuchuser", "whatever").expect(535, "5.7.8")
    s.quit()


def test_disabled_user():
    s = authed(src="127.0.0.34")
    s.auth_plain("bob", "bob-pw").expect(535, "5.7.8")
    s.quit()


def test_envelope_sender_restriction():
    d = daemon()
    s = authed(src="127.0.0.9")
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.cmd("MAIL FROM:<mallory@example.com>", 553, "5.7.1")
    s.cmd("MAIL FROM:<alice@evil.example>", 553, "5.7.1")
    s.cmd("MAIL FROM:<>", 553, "5.7.1")
    s.cmd("MAIL FROM:<scanner@branch.example.com>", 250)
    s.cmd("RSET", 250, "2.0.0")
    qid = s.mail("alice@example.com", ["far@example.net"],
                 mxtest.message("alice@example.com", "far@example.net", "allowed"))
    s.quit()
    m = d.message(qid)
    assert m["auth_user"] == "alice" and m["client_ip"] == "127.0.0.9", m


def test_header_from_restriction():
    d = daemon()
    before = d.count(received_only=True)
    s = authed(src="127.0.0.9")
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.cmd("MAIL FROM:<alice@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 250)
    s.data(mxtest.message("ceo@evil.example", "far@example.net", "spoof")).expect(550, "5.7.1")
    assert d.count(received_only=True) == before, "a message with a forbidden header From was stored"
    # the session continues; display names and domain wildcards are fine
    s.cmd("MAIL FROM:<alice@example.com>", 250)
    s.cmd("RCPT TO:<far@example.net>", 250)
    body = ("From: Alice Example <printer@branch.example.com>\r\nTo: far@example.net\r\n"
            "Subject: ok\r\n\r\nok\r\n")
    qid = s.data(body).qid()
    s.quit()
    assert d.message(qid)["auth_user"] == "alice"


def test_swaks_plain_starttls():
    d = daemon()
    p = mxtest.swaks(d.port("sub"), "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                     "--auth-password", "alice-pw", frm="alice@example.com", check=0)
    assert d.message(mxtest.swaks_qid(p))["auth_user"] == "alice"


def test_swaks_login_starttls():
    d = daemon()
    p = mxtest.swaks(d.port("req"), "--tls", "--auth", "LOGIN", "--auth-user", "alice",
                     "--auth-password", "alice-pw", frm="alice@example.com", check=0)
    assert d.message(mxtest.swaks_qid(p))["auth_user"] == "alice"


def test_swaks_plain_implicit_tls():
    d = daemon()
    p = mxtest.swaks(d.port("smtps"), "--tls-on-connect", "--auth", "PLAIN", "--auth-user", "carol",
                     "--auth-password", "carol pw: with spaces", frm="anyone@example.org", check=0)
    assert d.message(mxtest.swaks_qid(p))["auth_user"] == "carol"


def test_swaks_login_implicit_tls():
    d = daemon()
    p = mxtest.swaks(d.port("smtps"), "--tls-on-connect", "--auth", "LOGIN", "--auth-user", "alice",
                     "--auth-password", "alice-pw", frm="alice@example.com", check=0)
    assert d.message(mxtest.swaks_qid(p))["auth_user"] == "alice"


def test_swaks_wrong_password_and_no_auth():
    d = daemon()
    mxtest.swaks(d.port("sub"), "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                 "--auth-password", "wrong", "--local-interface", "127.0.0.35",
                 frm="alice@example.com", check=28)
    # no AUTH from a non-allowlisted address: the RCPT is refused (swaks exit 24)
    p = mxtest.swaks(d.port("sub"), "--tls", frm="alice@example.com", check=24)
    assert "530 5.7.0" in p.stdout, "RCPT without AUTH should read 530 5.7.0"


def test_curl_auth_starttls_and_smtps():
    d = daemon()
    p = mxtest.curl(f"smtp://127.0.0.1:{d.port('sub')}", "--ssl-reqd", "-k", "--user", "alice:alice-pw",
                    frm="alice@example.com", check=0)
    q1 = mxtest.curl_qid(p)
    p = mxtest.curl(f"smtps://127.0.0.1:{d.port('smtps')}", "-k", "--user", "alice:alice-pw",
                    frm="alice@example.com", check=0)
    q2 = mxtest.curl_qid(p)
    for q in (q1, q2):
        assert d.message(q)["auth_user"] == "alice"
    # curl with a bad password: 67 = login denied
    mxtest.curl(f"smtps://127.0.0.1:{d.port('smtps')}", "-k", "--user", "alice:bad",
                "--interface", "127.0.0.36", frm="alice@example.com", check=67)


def test_msmtp_auth_login():
    d = daemon()
    msg = mxtest.message("alice@example.com", "far@example.net", "via msmtp", "msmtp auth\r\n")
    mxtest.run(["msmtp", "--host=127.0.0.1", f"--port={d.port('sub')}", "--from=alice@example.com",
                "--tls=on", "--tls-starttls=on", "--tls-certcheck=off", "--auth=login",
                "--user=alice", "--passwordeval=echo alice-pw", "far@example.net"],
               input=msg, check=0)
    msgs = [m for m in d.messages(received_only=True) if b"msmtp auth" in m["body"]]
    assert len(msgs) == 1 and msgs[0]["auth_user"] == "alice", msgs


def test_failure_delay_and_block():
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS[:1])
    d = mxtest.Daemon(tmp=tmp, conf={"credentials": creds, "relay_from": "192.0.2.0/24",
                                     "auth_max_failures": "3", "auth_block_time": "4s"},
                      listeners={"main": {"tls": "none", "auth_without_tls": "yes"}}).start()
    bad_ip, other_ip = "127.0.0.21", "127.0.0.22"
    delays = []
    for i in range(3):
        s = d.connect(src=bad_ip, timeout=30)
        s.ehlo()
        t0 = time.monotonic()
        s.auth_plain("alice", f"wrong-{i}").expect(535, "5.7.8")
        delays.append(time.monotonic() - t0)
        s.close()
    mxtest.note(f"# failure reply delays: {[round(x, 2) for x in delays]}")
    assert delays[2] > delays[0] and delays[2] >= 0.5, \
        f"failures should be answered with a growing delay, got {[round(x, 2) for x in delays]}"
    # blocked now, even with the right password
    t_block = time.monotonic()
    s = d.connect(src=bad_ip, timeout=30)
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(454, "4.7.0")
    s.auth_login("alice", "alice-pw").expect(454, "4.7.0")
    s.quit()
    # another address is not affected
    s = d.connect(src=other_ip, timeout=30)
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.quit()
    # the block ends after auth_block_time
    time.sleep(max(0.0, 4.5 - (time.monotonic() - t_block)))
    ok = None
    for _ in range(6):
        s = d.connect(src=bad_ip, timeout=30)
        s.ehlo()
        ok = s.auth_plain("alice", "alice-pw")
        s.close()
        if ok.code == 235:
            break
        time.sleep(1)
    ok.expect(235, "2.7.0")


def throttle_daemon(max_failures, users=USERS[:1]):
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"), users)
    return mxtest.Daemon(tmp=tmp, conf={"credentials": creds, "relay_from": "192.0.2.0/24",
                                        "auth_max_failures": str(max_failures),
                                        "auth_block_time": "10m",
                                        "max_connections_per_ip": "50"},
                         listeners={"main": {"tls": "none", "auth_without_tls": "yes"}}).start()


PLAIN_WRONG = base64.b64encode(b"\0alice\0wrong-password").decode()
PLAIN_RIGHT = base64.b64encode(b"\0alice\0alice-pw").decode()


def test_parallel_auth_counts_checks_in_flight():
    """Issue 8: 20 parallel connections from one address, each sending a wrong
    password at once (smtplib in threads): no more password checks than
    auth_max_failures; the others get 454 at once."""
    d = throttle_daemon(3)
    n = 20
    conns = []
    for _ in range(n):
        c = smtplib.SMTP("127.0.0.1", d.port(), source_address=("127.0.0.61", 0), timeout=30)
        c.ehlo("parallel.test.example")
        conns.append(c)
    barrier = threading.Barrier(n)
    codes = [None] * n

    def attempt(i):
        barrier.wait()
        codes[i] = conns[i].docmd("AUTH", "PLAIN " + PLAIN_WRONG)[0]

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for c in conns:
        c.close()
    mxtest.note(f"# replies: {sorted(codes)}")
    checked = codes.count(535)
    assert checked <= 3 and codes.count(454) == n - checked, \
        f"{checked} parallel password checks, want at most 3: {sorted(codes)}"
    assert len(d.grep(r"event=auth_failed")) == checked


def test_dialog_opened_before_the_block_is_refused():
    """Issue 8: AUTH LOGIN (and PLAIN without initial response) dialogs opened
    before the block began get 454 when their password arrives, not a check."""
    d = throttle_daemon(2)
    ip = "127.0.0.62"
    login = d.connect(src=ip, timeout=30)
    login.ehlo()
    login.cmd("AUTH LOGIN", 334)
    login.cmd(base64.b64encode(b"alice").decode(), 334)
    plain = d.connect(src=ip, timeout=30)
    plain.ehlo()
    plain.cmd("AUTH PLAIN", 334)
    for i in range(2):
        c = d.connect(src=ip, timeout=30)
        c.ehlo()
        c.auth_plain("alice", f"wrong-{i}").expect(535, "5.7.8")
        c.close()
    # the right password, but the address is blocked now
    login.cmd(base64.b64encode(b"alice-pw").decode(), 454, "4.7.0")
    plain.cmd(PLAIN_RIGHT, 454, "4.7.0")
    login.cmd("MAIL FROM:<alice@example.com>", 250)
    login.cmd("RCPT TO:<far@example.net>", 530, "5.7.0")
    login.quit()
    plain.quit()
    assert not d.grep(r"event=auth ip="), "a blocked address authenticated"


def test_blocked_client_is_closed_and_logged_once():
    """Issue 8: a blocked client that keeps sending AUTH gets 3 x 454, then 421
    and the connection closes; the auth_blocked log line is rate-limited."""
    d = throttle_daemon(1)
    ip = "127.0.0.63"
    c = d.connect(src=ip, timeout=30)
    c.ehlo()
    c.auth_plain("alice", "wrong").expect(535, "5.7.8")
    c.close()
    refusals = 0
    for _ in range(5):
        c = d.connect(src=ip, timeout=30)
        c.ehlo()
        for _ in range(3):
            c.cmd("AUTH PLAIN " + PLAIN_RIGHT, 454, "4.7.0")
        c.send("AUTH PLAIN " + PLAIN_RIGHT + "\r\n")
        c.reply().expect(421, "4.7.0")
        refusals += 4
        assert c.closed(5), "the server kept a blocked client's connection open"
    lines = d.grep(r"event=auth_blocked")
    assert len(lines) == 1 and "refused=1" in lines[0], \
        f"{refusals} refusals gave {len(lines)} log lines: {lines}"


def auth_code(d, ip, user, password):
    """One AUTH PLAIN on a new smtplib connection from ip: the reply code."""
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    with smtplib.SMTP("127.0.0.1", d.port(), source_address=(ip, 0), timeout=30) as c:
        c.ehlo("device.test.example")
        return c.docmd("AUTH", "PLAIN " + token)[0]


def test_valid_login_does_not_forgive_other_users_failures():
    """Review of issue 8: a client holding one valid credential (alice) guesses another
    user's password (carol), 4 guesses then 1 good login of its own, again and again.
    The good login forgives alice's failures only: the address is blocked after
    auth_max_failures guesses (454 4.7.0), alice's password included."""
    d = throttle_daemon(5, [USERS[0], USERS[2]])
    ip = "127.0.0.64"
    got = []
    for rnd in range(3):
        for i in range(4):
            got.append(("carol", auth_code(d, ip, "carol", f"guess-{rnd}-{i}")))
        got.append(("alice", auth_code(d, ip, "alice", "alice-pw")))
    mxtest.note(f"# replies: {got}")
    want = [535] * 4 + [235] + [535] + [454] * 9
    assert [c for _, c in got] == want, f"want {want}, got {got}"
    assert len(d.grep(r"event=auth_failed")) == 5
    # another address is not affected
    assert auth_code(d, "127.0.0.65", "alice", "alice-pw") == 235


def test_parallel_valid_logins_do_not_forgive_other_users_failures():
    """The same from 4 parallel clients of one address: no more than auth_max_failures
    guesses are ever checked, however many good logins come in between."""
    d = throttle_daemon(5, [USERS[0], USERS[2]])
    ip = "127.0.0.66"
    codes = []
    lock = threading.Lock()

    def device(t):
        for i in range(5):
            for user, pw in (("carol", f"guess-{t}-{i}"), ("alice", "alice-pw")):
                c = auth_code(d, ip, user, pw)
                with lock:
                    codes.append((user, c))

    threads = [threading.Thread(target=device, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    mxtest.note(f"# replies: {codes}")
    guesses = [c for u, c in codes if u == "carol"]
    assert len(codes) == 40 and guesses.count(535) <= 5, \
        f"{guesses.count(535)} wrong passwords checked, want at most 5: {codes}"
    assert len(d.grep(r"event=auth_failed")) == guesses.count(535)
    # the guesses ran out: the address is blocked, its own good password included
    assert auth_code(d, ip, "alice", "alice-pw") == 454


def test_mistyped_then_logged_in_is_never_blocked():
    """A device that mistypes its own password once and then logs in, again and again,
    is never blocked: its success forgives its own failure."""
    d = throttle_daemon(3)
    ip = "127.0.0.67"
    got = []
    for i in range(5):
        got.append(auth_code(d, ip, "alice", f"typo-{i}"))
        got.append(auth_code(d, ip, "alice", "alice-pw"))
    assert got == [535, 235] * 5, got


FROM_TRICKS = [
    ("two From headers", "From: <alice@example.com>\r\nFrom: <ceo@evil.example>\r\n"),
    ("two addresses", "From: alice@example.com, ceo@evil.example\r\n"),
    ("allowed address in the display name", 'From: "alice@example.com" <ceo@evil.example>\r\n'),
    ("allowed address in a comment", "From: ceo@evil.example (alice@example.com)\r\n"),
    ("folded header", "From: Alice\r\n <ceo@evil.example>\r\n"),
    ("lower-case header name", "from: <ceo@evil.example>\r\n"),
    ("group syntax", "From: staff: alice@example.com, ceo@evil.example;\r\n"),
    # issue 8: read differently by the old relay and by receivers (Python's email package)
    ("unquoted @ in the display name", "From: ceo@bank.example <alice@example.com>\r\n"),
    ("allowed address as a bare display name", "From: alice@example.com <ceo@bank.example>\r\n"),
    ("address after the angle-addr", "From: <alice@example.com> ceo@bank.example\r\n"),
    ("unterminated angle in a second mailbox",
     "From: Alice <alice@example.com>, <ceo@bank.example\r\n"),
    ("quoted > inside a second angle-addr",
     'From: Alice <alice@example.com>, <"x@branch.example.com>"@bank.example>\r\n'),
    ("trailing backslash in a quoted name", 'From: alice@example.com, "\\\r\n'),
    ("unterminated comment", "From: alice@example.com (ceo@bank.example\r\n"),
    ("empty From", "From: \r\n"),
    ("From without an address", "From: Alice\r\n"),
    ("forbidden Sender", "From: alice@example.com\r\nSender: ceo@bank.example\r\n"),
    ("forbidden Sender, no From", "Sender: <ceo@bank.example>\r\n"),
    ("two Sender headers",
     "From: alice@example.com\r\nSender: alice@example.com\r\nSender: x@branch.example.com\r\n"),
    ("unreadable Sender", "From: alice@example.com\r\nSender: ceo@bank.example <alice@example.com>\r\n"),
    ("forbidden second Resent-From mailbox",
     "From: alice@example.com\r\nResent-From: alice@example.com, ceo@bank.example\r\n"),
    ("forbidden Resent-From in a second block", "From: alice@example.com\r\n"
     "Resent-From: alice@example.com\r\nResent-From: <ceo@bank.example>\r\n"),
    ("forbidden Resent-Sender", "From: alice@example.com\r\nResent-Sender: ceo@bank.example\r\n"),
]


def test_header_from_tricks():
    d = daemon()
    before = d.count(received_only=True)
    s = authed(src="127.0.0.9")
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    bad = []
    for label, from_lines in FROM_TRICKS:
        mark = mxtest.transcript_mark()
        s.cmd("MAIL FROM:<alice@example.com>", 250)
        s.cmd("RCPT TO:<far@example.net>", 250)
        r = s.data(from_lines + "To: far@example.net\r\nSubject: " + label + "\r\n\r\nbody\r\n")
        if not (r.code == 550 and r.enh == "5.7.1"):
            bad.append(f"{label}: {r}\n" + mxtest.transcript_since(mark))
    s.quit()
    assert not bad, "forbidden header From accepted: " + "\n".join(bad)
    assert d.count(received_only=True) == before


def test_sender_and_resent_from_allowed():
    d = daemon()
    s = authed(src="127.0.0.9")
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    body = ("From: Alice (the printer) <alice@example.com>\r\n"
            "Sender: \"Scanner, 2nd floor\" <scan@branch.example.com>\r\n"
            "Resent-From: alice@example.com, Copier <copier@branch.example.com>\r\n"
            "Resent-Sender: alice@example.com\r\nTo: far@example.net\r\n"
            "Subject: all allowed\r\n\r\nbody\r\n")
    qid = s.mail("alice@example.com", ["far@example.net"], body)
    s.quit()
    assert d.message(qid)["auth_user"] == "alice"


def test_missing_from_filled_from_envelope():
    """missing_from = envelope (the default): the checked envelope sender becomes the From."""
    d = daemon()
    s = authed(src="127.0.0.9")
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    qid = s.mail("scan@branch.example.com", ["far@example.net"],
                 "To: far@example.net\r\nSubject: no From\r\n\r\nbody\r\n")
    s.quit()
    body = d.message(qid)["body"]
    assert mxtest.header_values(body, "From") == ["<scan@branch.example.com>"], body


def test_from_line_in_body_is_not_header():
    d = daemon()
    s = authed(src="127.0.0.9")
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    body = ("From: <alice@example.com>\r\nTo: far@example.net\r\nSubject: quoting\r\n\r\n"
            "From: ceo@evil.example wrote:\r\n> hi\r\n")
    qid = s.mail("alice@example.com", ["far@example.net"], body)
    s.quit()
    assert d.message(qid)["auth_user"] == "alice"


def test_sender_domain_case_insensitive():
    s = authed(src="127.0.0.9")
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.cmd("MAIL FROM:<alice@EXAMPLE.com>", 250)
    s.cmd("RSET", 250, "2.0.0")
    s.cmd("MAIL FROM:<x@Branch.Example.COM>", 250)
    s.cmd("RSET", 250, "2.0.0")
    s.cmd("MAIL FROM:<alice@example.com.evil.example>", 553, "5.7.1")
    s.cmd("MAIL FROM:<x@evilbranch.example.com>", 553, "5.7.1")
    s.cmd("MAIL FROM:<x@sub.branch.example.com>", 553, "5.7.1")
    s.quit()


def test_authzid_does_not_grant_other_rights():
    d = daemon()
    s = authed(src="127.0.0.43")
    r = s.auth_plain("alice", "alice-pw", authzid="carol")   # carol may send as anyone
    if r.code == 235:
        s.cmd("MAIL FROM:<ceo@evil.example>", 553, "5.7.1")
        qid = s.mail("alice@example.com", ["far@example.net"],
                     mxtest.message("alice@example.com", "far@example.net", "authzid"))
        assert d.message(qid)["auth_user"] == "alice", "authzid became the authenticated user"
    else:
        assert r.code in (535, 501), f"AUTH with a foreign authzid: {r}"
    s.quit()


def test_auth_before_ehlo():
    d = daemon()
    s = d.connect("open", src="127.0.0.44")
    r = s.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLXB3")
    r.expect(503, "5.5.1")
    s.quit()


def test_address_tricks_refused_after_auth():
    s = authed(src="127.0.0.9")
    s.auth_plain("carol", "carol pw: with spaces").expect(235, "2.7.0")
    s.cmd("MAIL FROM:<carol@example.org>", 250)
    for t in ("<user%other.example@example.net>", "<relay.example!user@example.net>",
              "<@a.example:user@b.example>", "<\"a@b\"@example.net>"):
        s.cmd(f"RCPT TO:{t}", 553, "5.1.3")
    s.cmd("RCPT TO:<fine@example.net>", 250)
    s.quit()


def test_rset_keeps_authentication():
    d = daemon()
    s = authed(src="127.0.0.9")
    s.auth_plain("alice", "alice-pw").expect(235, "2.7.0")
    s.cmd("MAIL FROM:<alice@example.com>", 250)
    s.cmd("RSET", 250, "2.0.0")
    qid = s.mail("alice@example.com", ["far@example.net"],
                 mxtest.message("alice@example.com", "far@example.net", "after rset"))
    s.quit()
    assert d.message(qid)["auth_user"] == "alice"


if __name__ == "__main__":
    mxtest.main()
