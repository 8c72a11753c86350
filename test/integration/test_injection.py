#!/usr/bin/python3
"""Injection: bare CR/LF inside command lines must not reach the stored
headers or the spool columns, and client-chosen strings (HELO names, AUTH
user names, addresses) must not forge log lines or log keys."""

import base64
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

LOG_PREFIX = re.compile(r"^\S+ mxrelayd\[\d+\]: ")
TOKEN = re.compile(r'\s*([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def daemon():
    def make():
        tmp = mxtest.tmpdir()
        creds = mxtest.make_creds(os.path.join(tmp, "passwd"), [("alice", "alice-pw", "*", False)])
        return mxtest.Daemon(tmp=tmp, shared=True, conf={"credentials": creds},
                             listeners={"main": {"tls": "none", "auth_without_tls": "yes"}}).start()
    return mxtest.shared_daemon("inject", make)


def _clean_headers(d, qid):
    m = d.message(qid)
    body = m["body"]
    bare = re.search(rb"(?<!\r)\n|\r(?!\n)", body)
    assert not bare, f"stored message has a bare CR/LF at {bare.start()}: {body[:400]!r}"
    head = body.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^X-Injected", head, re.M | re.I), f"header injected: {head!r}"
    for col in ("helo", "sender"):
        v = m[col] or ""
        assert "\n" not in v and "\r" not in v, f"{col} column holds CR/LF: {v!r}"
    for r in m["rcpts"]:
        assert "\n" not in r and "\r" not in r, f"recipient holds CR/LF: {r!r}"


def test_helo_with_bare_lf():
    d = daemon()
    s = d.connect()
    s.send("EHLO evil.example\nX-Injected: yes\r\n")
    replies = [s.reply()]
    try:
        replies.append(s.reply(timeout=0.5))
    except AssertionError:
        pass
    for r in replies:
        assert r.code in (250, 500, 501), f"EHLO with a bare LF: {r}"
    s.cmd("EHLO clean.example", 250)
    qid = s.mail("a@example.com", ["b@example.net"], mxtest.message(subject="helo lf"), ehlo=False)
    s.quit()
    _clean_headers(d, qid)


def test_helo_with_bare_cr():
    d = daemon()
    s = d.connect()
    r = s.cmd("EHLO evil.example\rX-Injected: yes")
    if r.code == 250:
        qid = s.mail("a@example.com", ["b@example.net"], mxtest.message(subject="helo cr"), ehlo=False)
        _clean_headers(d, qid)
    else:
        assert r.code in (500, 501), f"EHLO with a bare CR: {r}"
    s.quit()


def test_mail_and_rcpt_with_bare_cr_lf():
    d = daemon()
    before = d.count(received_only=True)
    s = d.connect()
    s.ehlo()
    r = s.cmd("MAIL FROM:<a@example.com>\rX-Injected: yes")
    assert r.code in (500, 501), f"MAIL with a bare CR accepted: {r}"
    s.cmd("MAIL FROM:<a@example.com>", 250)
    r = s.cmd("RCPT TO:<b@example.net>\rX-Injected: yes")
    assert r.code in (500, 501, 553), f"RCPT with a bare CR accepted: {r}"
    s.cmd("RCPT TO:<c@example.net>", 250)
    qid = s.data(mxtest.message(subject="cr")).qid()
    s.quit()
    assert d.count(received_only=True) == before + 1
    _clean_headers(d, qid)
    assert d.message(qid)["rcpts"] == ["c@example.net"]


def _log_tokens(line):
    rest = LOG_PREFIX.sub("", line, count=1)
    if rest == line:
        raise AssertionError(f"log line without the usual prefix: {line!r}")
    keys, pos = [], 0
    while pos < len(rest):
        m = TOKEN.match(rest, pos)
        if not m or m.end() == pos:
            raise AssertionError(f"log line is not key=value at column {pos} (a value with an unquoted "
                                 f"space or quote, so client text reads as extra keys): {line!r}")
        keys.append(m.group(1))
        pos = m.end()
        while pos < len(rest) and rest[pos] == " ":
            pos += 1
    return keys


def _check_log(d):
    lines = d.log(d.mark).splitlines()
    assert lines
    for ln in lines:
        keys = _log_tokens(ln)
        dup = {k for k in keys if keys.count(k) > 1}
        assert not dup, f"log line repeats keys {dup} (forged?): {ln!r}"
        assert keys.count("event") <= 1


def test_log_injection_via_auth_user():
    d = daemon()
    s = d.connect(src="127.0.0.61")
    s.ehlo()
    evil_users = [
        "mallory\n2026-01-01T00:00:00.000Z mxrelayd[1]: level=info event=auth_ok user=root",
        'mallory" event=auth_ok user="root',
        "mallory event=auth_ok user=root",
    ]
    for u in evil_users:
        r = s.auth_login(u, "whatever")
        assert r.code in (501, 535), f"AUTH with a hostile user name: {r}"
    s.quit()
    d.wait_log(r"event=disconnect")
    _check_log(d)
    assert not [ln for ln in d.log(d.mark).splitlines() if not LOG_PREFIX.match(ln)], "a forged log line"


def test_log_injection_via_helo_and_addresses():
    d = daemon()
    s = d.connect()
    s.cmd('EHLO x.example" event=accepted qid=0000000000000000 x="', 250)
    # quoted local parts are valid (RFC 5321 4.1.2); a relay may still refuse them
    r = s.cmd('MAIL FROM:<"a event=fake"@example.com>')
    if r.code != 250:
        r.expect(501, "5.1.7")
        s.cmd("MAIL FROM:<a@example.com>", 250)
    r = s.cmd('RCPT TO:<"b\\" event=fake2 x=\\""@example.net>')
    if r.code != 250:
        r.expect(501, "5.1.3")
        s.cmd("RCPT TO:<b@example.net>", 250)
    s.data(mxtest.message(subject="log")).qid()
    s.quit()
    d.wait_log(r"event=disconnect")
    _check_log(d)


def test_auth_plain_with_nul_tricks():
    d = daemon()
    s = d.connect(src="127.0.0.62")
    s.ehlo()
    # user name with an embedded NUL in LOGIN: not alice
    u = base64.b64encode(b"alice\0junk").decode()
    r = s.cmd("AUTH LOGIN " + u)
    if r.code == 334:
        r = s.cmd(base64.b64encode(b"alice-pw").decode())
    assert r.code in (501, 535), f"LOGIN user 'alice\\0junk' accepted: {r}"
    # PLAIN with four fields
    tok = base64.b64encode(b"\0alice\0alice-pw\0extra").decode()
    r = s.cmd("AUTH PLAIN " + tok)
    assert r.code in (501, 535), f"PLAIN with an extra field accepted: {r}"
    s.quit()


if __name__ == "__main__":
    mxtest.main()
