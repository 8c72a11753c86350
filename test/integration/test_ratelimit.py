#!/usr/bin/python3
"""rate_limit (issue 15 item 4): messages and recipients per hour per
credential (user:NAME) and per client network (CIDR), every matching rule
with its own counter. Past a limit MAIL / RCPT get 451 4.7.1 naming the
limit, the rule's line and when it frees up; the log says
event=rate_limited rule=... key=...; mxrelay_rate_limited_total counts it;
the limit recovers when the window moves on; a SIGHUP that keeps a rule
keeps its counters.

Test hook: MXRELAY_TEST_RATE_WINDOW=SECONDS (1..3600) shortens the hour
(mta/smtpd/ratelimit.c reads it once at the first use), so recovery is seen
in seconds. The SIGHUP daemon runs with the real hour."""

import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

WINDOW = 6  # seconds: the shortened "hour" of the shared daemon
USERS = [(u, u + "-pw", "*", False) for u in ("dev1", "dev2", "dev3", "dev4")]
# repeated keys: the dict writes "rate_limit = " before the first value only
RULES = ("user:dev1 2 0\n"
         "rate_limit = user:dev3 0 3\n"
         "rate_limit = 127.0.0.8/30 3\n"
         "rate_limit = user:dev4 10 10")


def make(window=None):
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
    d = mxtest.Daemon(
        tmp=tmp, shared=window is not None,
        conf={"credentials": creds, "relay_from": "127.0.0.8/30",
              "metrics_listen": f"127.0.0.1:{mxtest.free_port()}", "rate_limit": RULES},
        listeners={"main": {"tls": "none", "auth_without_tls": "yes"}})
    if window is not None:
        os.environ["MXRELAY_TEST_RATE_WINDOW"] = str(window)
    try:
        return d.start()
    finally:
        os.environ.pop("MXRELAY_TEST_RATE_WINDOW", None)


def daemon():
    return mxtest.shared_daemon("ratelimit", lambda: make(WINDOW))


def login(d, user=None, src=None):
    s = d.connect(src=src)
    s.ehlo()
    if user:
        s.auth_plain(user, user + "-pw").expect(235, "2.7.0")
    return s


def send(s, rcpts=("r@example.net",)):
    s.cmd("MAIL FROM:<dev@example.com>", 250)
    for r in rcpts:
        s.cmd(f"RCPT TO:<{r}>", 250)
    return s.data(mxtest.message("dev@example.com", rcpts[0])).qid()


def metric(d, limit):
    url = f"http://{d.conf['metrics_listen']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    m = re.search(r'^mxrelay_rate_limited_total\{limit="%s"\} (\d+)$' % limit, text, re.M)
    assert m, f"no mxrelay_rate_limited_total{{limit=\"{limit}\"}} in /metrics"
    return int(m.group(1))


def test_user_messages_limit_and_recovery():
    d = daemon()
    before = metric(d, "messages")
    s = login(d, "dev1")
    send(s)
    send(s)
    t_full = time.time()
    r = s.cmd("MAIL FROM:<dev@example.com>", 451, "4.7.1")
    assert "at most 2 messages per hour for user:dev1" in r.text, r
    assert re.search(r"try again after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r.text), r
    assert "config line" in r.text, r
    d.wait_log(r'event=rate_limited ip=127\.0\.0\.1 user=dev1 rule="user:dev1 2 0" line=\d+ '
               r'key="user:dev1 2 0" limit=messages max=2 ')
    assert metric(d, "messages") == before + 1
    # another credential is not held back by dev1's counter
    s2 = login(d, "dev2")
    send(s2)
    s2.quit()
    # the window moves on: dev1 sends again in the same session
    time.sleep(max(0.0, t_full + WINDOW + 0.5 - time.time()))
    send(s)
    s.quit()


def test_user_recipients_limit():
    d = daemon()
    before = metric(d, "recipients")
    s = login(d, "dev3")
    s.cmd("MAIL FROM:<dev@example.com>", 250)
    for i in range(3):
        s.cmd(f"RCPT TO:<r{i}@example.net>", 250)
    r = s.cmd("RCPT TO:<r3@example.net>", 451, "4.7.1")
    assert "at most 3 recipients per hour for user:dev3" in r.text, r
    # a duplicate of an accepted recipient costs nothing
    s.cmd("RCPT TO:<r0@example.net>", 250)
    s.data(mxtest.message("dev@example.com", "r0@example.net")).qid()
    assert metric(d, "recipients") == before + 1
    d.wait_log(r'event=rate_limited .*user=dev3 rule="user:dev3 0 3" .*limit=recipients max=3')
    s.quit()


def test_cidr_limit_shared_by_the_network():
    """127.0.0.8/30 allows 3 messages an hour for the whole network, with or without AUTH."""
    d = daemon()
    time.sleep(0.1)
    a = login(d, src="127.0.0.8")
    send(a)
    send(a)
    b = login(d, src="127.0.0.9")
    send(b)
    r = b.cmd("MAIL FROM:<dev@example.com>", 451, "4.7.1")
    assert "at most 3 messages per hour for 127.0.0.8/30" in r.text, r
    # dev4's own rule has room, but the network's rule counts too
    c = login(d, "dev4", src="127.0.0.10")
    c.cmd("MAIL FROM:<dev@example.com>", 451, "4.7.1")
    # from outside the network dev4 sends, counted in its own rule only
    e = login(d, "dev4")
    send(e)
    d.wait_log(r'event=rate_limited ip=127\.0\.0\.9 user=- rule="127\.0\.0\.8/30 3 0" ')
    for s in (a, b, c, e):
        s.quit()


def test_sighup_keeps_counters_of_unchanged_rules():
    d = make()  # the real hour: nothing expires during the test
    s = login(d, "dev1")
    send(s)
    send(s)
    s.cmd("MAIL FROM:<dev@example.com>", 451, "4.7.1")
    s.quit()
    mark = d._log_size()
    d.hup()
    d.wait_log(r"event=reloaded ", since=mark)
    s = login(d, "dev1")
    s.cmd("MAIL FROM:<dev@example.com>", 451, "4.7.1")
    s.quit()
    # a changed rule starts a new counter
    d.configure({"rate_limit": RULES.replace("user:dev1 2 0", "user:dev1 3 0")})
    mark = d._log_size()
    d.hup()
    d.wait_log(r"event=reloaded ", since=mark)
    s = login(d, "dev1")
    send(s)
    s.quit()


if __name__ == "__main__":
    mxtest.main()
