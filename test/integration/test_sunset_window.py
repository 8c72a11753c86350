#!/usr/bin/python3
"""Sunset dates at their edges (issue 15 item 3, second review):

- the warning window starts 30 days before the date: a date 29 days ahead
  warns (event=sunset_near, days_left=29), so does 30, one 31 days ahead is quiet; for
  a credential (mxrelayctl passwd --sunset) and auth_without_tls_until;
- after auth_without_tls_until, the 538 names what this client can change
  to: STARTTLS on a listener that offers it, another listener with TLS
  (its name and address) on a tls = none listener, or says that no
  listener has TLS; and EHLO there no longer advertises AUTH (after
  STARTTLS it does again)."""

import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import test_sunset as ts  # noqa: E402

TODAY = datetime.datetime.now(datetime.timezone.utc).date()
D29 = (TODAY + datetime.timedelta(days=29)).isoformat()
D30 = (TODAY + datetime.timedelta(days=30)).isoformat()
D31 = (TODAY + datetime.timedelta(days=31)).isoformat()
PAST = ts.PAST
PW = "pw-xxxxxxxx"


def make_creds(tmp):
    path = os.path.join(tmp, "passwd")
    for user, day in (("u29", D29), ("u30", D30), ("u31", D31), ("plain", None)):
        ts.passwd(path, user, "--senders", "@example.com", *(["--sunset", day] if day else []))
    os.chmod(path, 0o644)
    return path


def daemon(listeners):
    tmp = mxtest.tmpdir()
    return mxtest.Daemon(tmp=tmp, conf={"credentials": make_creds(tmp)},
                         listeners=listeners).start()


def auth_ok(d, listener, user):
    s = d.connect(listener)
    s.ehlo()
    assert "AUTH" in s.ext, s.ext
    s.auth_plain(user, PW).expect(235, "2.7.0")
    s.quit()


def test_warning_window_starts_30_days_before():
    d = daemon({"main": {"tls": "none", "auth_without_tls": "yes"},
                "p29": {"tls": "none", "auth_without_tls": "yes",
                        "auth_without_tls_until": D29},
                "p31": {"tls": "none", "auth_without_tls": "yes",
                        "auth_without_tls_until": D31}})
    # start-up: the 29-day dates are announced, the 31-day ones are not
    assert d.wait_log(r"event=sunset_near user=u29 rule=credential date=" + D29
                      + r" days_left=29\b")
    assert d.wait_log(r"event=sunset_near listener=p29 rule=auth_without_tls_until date="
                      + D29 + r" days_left=29\b")
    assert d.wait_log(r"event=sunset_near user=u30 rule=credential date=" + D30
                      + r" days_left=30\b")
    auth_ok(d, "main", "u31")
    auth_ok(d, "p31", "plain")
    assert not d.grep(r"event=sunset_near .*(u31|p31|" + D31 + ")"), d.grep("sunset_near")
    auth_ok(d, "main", "u29")
    assert d.wait_log(r"event=sunset_near ip=\S+ listener=main user=u29 rule=credential date="
                      + D29 + r" days_left=29\b")
    auth_ok(d, "p29", "plain")
    assert d.wait_log(r"event=sunset_near ip=\S+ listener=p29 user=plain "
                      r"rule=auth_without_tls_until date=" + D29 + r" days_left=29\b")


def auth_refused(d, listener):
    s = d.connect(listener)
    s.ehlo()
    assert "AUTH" not in s.ext, f"{listener}: EHLO still offers AUTH after the date: {s.ext}"
    r = s.auth_plain("plain", PW).expect(538, "5.7.11")
    s.quit()
    assert PAST in r.text and listener in r.text, r
    return r.text


def test_after_auth_without_tls_until_the_reply_names_the_way():
    d = daemon({"old": {"tls": "none", "auth_without_tls": "yes",
                        "auth_without_tls_until": PAST},
                "both": {"tls": "starttls", "auth_without_tls": "yes",
                         "auth_without_tls_until": PAST},
                "sub": {"tls": "required"}})
    # a tls = none listener offers no STARTTLS: the first listener with TLS
    text = auth_refused(d, "old")
    addr = d.listeners["both"]["address"]
    assert f"connect to listener both at {addr} and use STARTTLS" in text, text
    # where STARTTLS is offered: use it; after it, AUTH is offered and works
    text = auth_refused(d, "both")
    assert "use STARTTLS (TLS 1.2 or newer) before AUTH" in text, text
    s = d.connect("both")
    s.ehlo()
    s.cmd("STARTTLS", 220, "2.0.0")
    s.wrap(mxtest.client_ctx())
    s.ehlo()
    assert "AUTH" in s.ext, s.ext
    s.auth_plain("plain", PW).expect(235, "2.7.0")
    s.quit()
    # a relay with no TLS listener at all says so
    d2 = daemon({"old": {"tls": "none", "auth_without_tls": "yes",
                         "auth_without_tls_until": PAST}})
    text = auth_refused(d2, "old")
    assert "offers no TLS" in text and "TLS 1.2 or newer" in text, text


if __name__ == "__main__":
    mxtest.main()
