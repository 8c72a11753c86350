#!/usr/bin/python3
"""Signals: SIGTERM drains (no new sessions, in-flight ones may finish within
shutdown_timeout, every 250 is in the spool) and SIGHUP reloads relay_from
and the credentials file for new sessions."""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

SHUTDOWN = 3


def _new_session_refused(d):
    """After SIGTERM a new connection is refused (or reset), or greeted with 421."""
    try:
        sock = socket.create_connection(("127.0.0.1", d.port()), SHUTDOWN + 2)
    except (ConnectionRefusedError, ConnectionResetError):
        return "refused"
    try:
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        raise AssertionError(f"new connection after SIGTERM: no reply within {SHUTDOWN + 2}s")
    finally:
        sock.close()
    mxtest.note(f"S: {data!r}")
    if not data.startswith(b"421"):
        raise AssertionError(f"new connection after SIGTERM got {data!r}, expected refusal or 421")
    return "421"


def test_sigterm_mid_transaction():
    d = mxtest.Daemon(conf={"shutdown_timeout": f"{SHUTDOWN}s"}).start()
    done = d.connect()
    q_done = done.mail("early@example.com", ["r@example.net"], mxtest.message(subject="before TERM"))
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<inflight@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.cmd("DATA", 354)
    s.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    time.sleep(0.3)
    how = _new_session_refused(d)
    mxtest.note(f"# new session after TERM: {how}")
    # the in-flight session finishes its message
    s.send(b"second half\r\n.\r\n")
    r = s.reply(timeout=SHUTDOWN + 3)
    q_inflight = r.qid() if r.code == 250 else None
    assert r.code in (250, 421), f"final reply of the in-flight message: {r}"
    rc = d.wait_exit(SHUTDOWN + 3)
    took = time.monotonic() - t0
    assert rc is not None, f"daemon still running {SHUTDOWN + 3}s after SIGTERM (shutdown_timeout = {SHUTDOWN}s)"
    assert rc == 0, f"exit status after SIGTERM: {rc}"
    mxtest.note(f"# exited {took:.1f}s after SIGTERM")
    stored = {m["qid"] for m in d.messages(received_only=True)}
    assert q_done in stored, "message acknowledged before SIGTERM is missing"
    if q_inflight:
        assert q_inflight in stored, "in-flight message got 250 but is not in the spool"
    else:
        assert len(stored) == 1, "in-flight message got 421 but was stored"


def test_sigterm_idle_session_is_cut_at_timeout():
    d = mxtest.Daemon(conf={"shutdown_timeout": f"{SHUTDOWN}s"}).start()
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<slow@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.cmd("DATA", 354)
    s.send(b"Subject: never finished\r\n\r\npartial\r\n")
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(SHUTDOWN + 3)
    took = time.monotonic() - t0
    assert rc is not None, f"daemon still running {took:.1f}s after SIGTERM with an idle session"
    assert rc == 0, f"exit status after SIGTERM: {rc}"
    assert took >= SHUTDOWN - 0.5, f"daemon cut the in-flight session after {took:.1f}s, before shutdown_timeout"
    # cut in the middle of DATA, the client still hears why (RFC 5321 3.8)
    r = s.reply(timeout=2)
    assert r.code == 421 and "4.3.2" in r.text, f"reply to a session cut at shutdown_timeout: {r}"
    assert s.closed(2), "session not closed by the exiting daemon"
    assert d.count(received_only=True) == 0, "a partial message was stored"


def test_sigterm_idle_daemon_exits_fast():
    d = mxtest.Daemon(conf={"shutdown_timeout": "20s"}).start()
    s = d.connect()
    s.quit()
    t0 = time.monotonic()
    rc = d.stop(timeout=10)
    assert rc == 0, f"exit status after SIGTERM: {rc}"
    assert time.monotonic() - t0 < 3, "an idle daemon took over 3s to exit on SIGTERM"


def test_sigint_stops():
    d = mxtest.Daemon().start()
    d.signal(signal.SIGINT)
    rc = d.wait_exit(8)
    assert rc is not None, "daemon ignored SIGINT"


def _rcpt_code(d, src):
    s = d.connect(src=src)
    s.ehlo()
    s.cmd("MAIL FROM:<hup@example.com>", 250)
    r = s.cmd("RCPT TO:<r@example.net>")
    s.quit()
    return r


def test_sighup_reloads_relay_from():
    d = mxtest.Daemon(conf={"relay_from": "127.0.0.1/32"}).start()
    _rcpt_code(d, "127.0.0.1").expect(250)
    _rcpt_code(d, "127.0.0.9").expect(554, "5.7.1")
    held = d.connect(src="127.0.0.9")     # a session opened before the reload
    held.ehlo()
    d.configure(conf={"relay_from": "127.0.0.9/32"})
    d.hup()
    mxtest.wait_for(lambda: _rcpt_code(d, "127.0.0.9").code == 250, 5,
                    what="127.0.0.9 may relay after SIGHUP")
    _rcpt_code(d, "127.0.0.9").expect(250)
    _rcpt_code(d, "127.0.0.1").expect(554, "5.7.1")
    assert d.alive()
    held.cmd("NOOP", 250, "2.0.0")
    held.quit()


def test_sighup_reloads_credentials():
    tmp = mxtest.tmpdir()
    creds = os.path.join(tmp, "passwd")
    mxtest.make_creds(creds, [("dave", "old-pw", "dave@example.com", False)])
    d = mxtest.Daemon(tmp=tmp, conf={"credentials": creds, "relay_from": "192.0.2.1/32"},
                      listeners={"main": {"tls": "none", "auth_without_tls": "yes"}}).start()

    def auth(user, pw, src):
        s = d.connect(src=src)
        s.ehlo()
        r = s.auth_plain(user, pw)
        s.quit()
        return r

    auth("dave", "old-pw", "127.0.0.51").expect(235, "2.7.0")
    auth("erin", "erin-pw", "127.0.0.52").expect(535, "5.7.8")
    mxtest.make_creds(creds, [("dave", "new-pw", "dave@example.com", False),
                              ("erin", "erin-pw", "erin@example.com", False)])
    d.hup()
    mxtest.wait_for(lambda: auth("erin", "erin-pw", "127.0.0.53").code == 235, 5,
                    what="new user erin can authenticate after SIGHUP")
    auth("dave", "new-pw", "127.0.0.54").expect(235, "2.7.0")
    auth("dave", "old-pw", "127.0.0.55").expect(535, "5.7.8")
    # disabling takes effect too
    mxtest.run([mxtest.MXRELAYCTL, "passwd", "erin", "-f", creds, "--disable"], input="erin-pw\n", check=0)
    os.chmod(creds, 0o644)
    d.hup()
    mxtest.wait_for(lambda: auth("erin", "erin-pw", "127.0.0.56").code == 535, 5,
                    what="disabled erin refused after SIGHUP")


def test_sighup_with_broken_config_keeps_running():
    d = mxtest.Daemon().start()
    good = open(d.conf_path).read()
    mxtest.write_file(d.conf_path, good + "\nthis_key_does_not_exist = 1\n")
    d.hup()
    time.sleep(0.5)
    assert d.alive(), "daemon exited on SIGHUP with a broken config"
    s = d.connect()
    s.mail("still@example.com", ["r@example.net"], mxtest.message())
    s.quit()
    assert d.grep(r"this_key_does_not_exist"), "the reload error was not logged"


def test_sighup_during_data():
    d = mxtest.Daemon().start()
    s = d.connect()
    s.ehlo()
    s.cmd("MAIL FROM:<hupdata@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.cmd("DATA", 354)
    s.send(b"Subject: across a reload\r\n\r\nbefore\r\n")
    d.hup()
    time.sleep(0.3)
    s.send(b"after\r\n.\r\n")
    qid = s.reply().qid()
    s.quit()
    assert d.message(qid)["body"].endswith(b"before\r\nafter\r\n")
    assert d.alive()


if __name__ == "__main__":
    mxtest.main()
