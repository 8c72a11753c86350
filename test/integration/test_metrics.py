#!/usr/bin/python3
"""Metrics: the Prometheus endpoint (metrics_listen) scraped with urllib after
real SMTP traffic: exact counters (accepted, rejected by reason, AUTH, TLS
versions, sessions), queue gauges, histograms (monotonic buckets, +Inf =
count), the text format and content type, 404/405 for anything but GET
/metrics, a non-loopback metrics_listen refused by `mxrelayd -n`,
`mxrelayctl stats` (text and --json), delivered/deferred/bounced through
real peers (mxpeers: nsd + sinks), and the explicit event=expired log line."""

import json
import os
import re
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402

FAR = "127.0.0.9"
USERS = [("alice", "alice-pw", "alice@example.com", False)]
QUEUED, HELD = 'mxrelay_queue_messages{state="queued"}', 'mxrelay_queue_messages{state="held"}'
SAMPLE_RE = re.compile(r'^(mxrelay_[a-z_]+)(\{[a-z]+="[^"]*"\})? (-?[0-9.e+]+)$')


def metrics_conf(extra=None):
    c = {"metrics_listen": f"127.0.0.1:{mxtest.free_port()}"}
    c.update(extra or {})
    return c


def url(d, path="/metrics"):
    return f"http://{d.conf['metrics_listen']}{path}"


def scrape(d):
    """{'name' or 'name{label="v"}': float} from one GET /metrics, plus the raw text."""
    with urllib.request.urlopen(url(d), timeout=5) as r:
        assert r.status == 200
        ctype = r.headers["Content-Type"]
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        text = r.read().decode()
    out = {}
    for ln in text.splitlines():
        if ln.startswith("#") or not ln:
            continue
        m = SAMPLE_RE.match(ln)
        assert m, f"not a Prometheus sample line: {ln!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out, text


def values(d):
    return scrape(d)[0]


def wait_value(d, key, want, timeout=15):
    return mxtest.wait_for(lambda: values(d).get(key) == want, timeout,
                           what=f"{key} == {want} (now {values(d).get(key)})")


def check_histogram(v, name):
    buckets = [(k, x) for k, x in v.items() if k.startswith(name + "_bucket{")]
    les = [k.split('le="')[1].rstrip('"}') for k, _ in buckets]
    assert les[-1] == "+Inf", les
    bounds = [float(x) for x in les[:-1]]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), les
    counts = [x for _, x in buckets]
    assert counts == sorted(counts), f"{name} buckets not cumulative: {counts}"
    assert counts[-1] == v[name + "_count"], (counts[-1], v[name + "_count"])
    assert v[name + "_sum"] >= 0
    return v[name + "_count"]


def daemon():
    def make():
        tmp = mxtest.tmpdir()
        creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
        return mxtest.Daemon(
            tmp=tmp, shared=True,
            conf=metrics_conf({"credentials": creds, "relay_from": "127.0.0.1/32",
                               "max_message_size": "4K", "dns_timeout": "100ms",
                               "dns_tries": "1", "auth_max_failures": "50"}),
            listeners={"main": {"tls": "starttls"},
                       "plain": {"tls": "none", "auth_without_tls": "yes"}}).start()
    return mxtest.shared_daemon("metrics", make)


def traffic(d):
    """Once per file: a known mix of accepted and refused mail. Returns connections made."""
    if getattr(d, "traffic_done", False):
        return d.traffic_done
    conns = 0
    # 2 accepted, allowlisted, plaintext
    s = d.connect("plain")
    conns += 1
    s.mail("app@example.com", ["r1@example.net"], mxtest.message("app@example.com"))
    s.mail("app@example.com", ["r2@example.net"], mxtest.message("app@example.com"))
    # size refusal: 552 5.3.4
    s.cmd("MAIL FROM:<app@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.data(mxtest.message(body="x" * 70 + "\r\n") * 80).expect(552, "5.3.4")
    # content refusal: bare CR, 550 5.6.0 (a bare LF is normalised by default)
    s.cmd("MAIL FROM:<app@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.data(b"Subject: x\r\n\r\nbare\rCR\r\n", stuff=False).expect(550, "5.6.0")
    s.quit()
    # TLS 1.3 + AUTH: 1 accepted, then a refused sender and a refused header From
    s = d.connect("main")
    conns += 1
    s.ehlo()
    s.starttls()
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(235)
    s.mail("alice@example.com", ["r3@example.net"], mxtest.message("alice@example.com"))
    s.cmd("MAIL FROM:<mallory@example.com>", 553, "5.7.1")
    s.cmd("MAIL FROM:<alice@example.com>", 250)
    s.cmd("RCPT TO:<r@example.net>", 250)
    s.data(mxtest.message("ceo@bank.example")).expect(550, "5.7.1")
    s.quit()
    # AUTH failure (plaintext listener), and relaying refused from a non-allowlisted address
    s = d.connect("plain", src=FAR)
    conns += 1
    s.ehlo()
    s.auth_plain("alice", "wrong").expect(535, "5.7.8")
    s.cmd("MAIL FROM:<x@example.com>", 250)
    r = s.cmd("RCPT TO:<y@example.net>")
    assert r.code in (530, 554), r
    s.quit()
    d.traffic_done = conns
    return conns


def test_counters_exact():
    d = daemon()
    conns = traffic(d)
    v = values(d)
    want = {
        "mxrelay_accepted_total": 3,
        'mxrelay_rejected_total{reason="size"}': 1,
        'mxrelay_rejected_total{reason="content"}': 1,
        'mxrelay_rejected_total{reason="policy"}': 1,
        'mxrelay_rejected_total{reason="relay"}': 1,
        'mxrelay_rejected_total{reason="sender"}': 1,
        'mxrelay_rejected_total{reason="system"}': 0,
        'mxrelay_auth_total{result="success"}': 1,
        'mxrelay_auth_total{result="failure"}': 1,
        'mxrelay_tls_sessions_total{version="TLSv1.3"}': 1,
        'mxrelay_tls_sessions_total{version="TLSv1"}': 0,
        "mxrelay_sessions_total": conns,
        "mxrelay_delivered_total": 0,
        "mxrelay_bounced_total": 0,
    }
    got = {k: v.get(k) for k in want}
    assert got == want, "\n".join(f"{k}: got {got[k]}, want {want[k]}" for k in want
                                  if got[k] != want[k])
    wait_value(d, "mxrelay_sessions", 0)
    # DNS is a dead port here: every recipient is deferred once (retry_min is 5m)
    wait_value(d, "mxrelay_deferred_total", 3)
    wait_value(d, QUEUED, 3)
    v = values(d)
    assert check_histogram(v, "mxrelay_delivery_attempt_seconds") == 3, v
    assert check_histogram(v, "mxrelay_dns_lookup_seconds") >= 1, v
    assert 0 <= v["mxrelay_queue_oldest_age_seconds"] < 300, v


def test_format_help_type():
    d = daemon()
    _, text = scrape(d)
    fams = {}
    for ln in text.splitlines():
        m = re.match(r"^# (HELP|TYPE) (\S+) (.+)$", ln)
        if m:
            fams.setdefault(m.group(2), {})[m.group(1)] = m.group(3)
        elif ln:
            name = SAMPLE_RE.match(ln).group(1)
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            fam = name if name in fams else base
            assert fam in fams, f"sample before its # TYPE: {ln}"
    for f, ht in fams.items():
        assert f.startswith("mxrelay_"), f
        assert "HELP" in ht and ht.get("TYPE") in ("counter", "gauge", "histogram"), (f, ht)
        if ht["TYPE"] == "counter":
            assert f.endswith("_total"), f
    for f in ("mxrelay_accepted_total", "mxrelay_rejected_total", "mxrelay_delivered_total",
              "mxrelay_deferred_total", "mxrelay_bounced_total", "mxrelay_sessions",
              "mxrelay_sessions_total", "mxrelay_tls_sessions_total", "mxrelay_auth_total",
              "mxrelay_queue_messages", "mxrelay_queue_oldest_age_seconds",
              "mxrelay_dns_lookup_seconds", "mxrelay_delivery_attempt_seconds"):
        assert f in fams, f"family {f} missing"
    assert fams["mxrelay_dns_lookup_seconds"]["TYPE"] == "histogram"


def test_other_paths_and_methods():
    d = daemon()
    for path in ("/", "/metricsx", "/metrics/", "/favicon.ico"):
        try:
            urllib.request.urlopen(url(d, path), timeout=5)
            raise AssertionError(f"{path} answered 200")
        except urllib.error.HTTPError as e:
            assert e.code == 404, (path, e.code)
    req = urllib.request.Request(url(d), data=b"x=1", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("POST /metrics answered 200")
    except urllib.error.HTTPError as e:
        assert e.code == 405, e.code
    with urllib.request.urlopen(urllib.request.Request(url(d), method="HEAD"), timeout=5) as r:
        assert r.status == 200 and r.read() == b""


def test_stats_command():
    d = daemon()
    traffic(d)
    wait_value(d, "mxrelay_deferred_total", 3)
    p = mxtest.run([mxtest.MXRELAYCTL, "stats", "-c", d.conf_path], check=0)
    out = p.stdout
    assert "3 accepted, 5 rejected" in out, out
    for part in ("size 1", "content 1", "policy 1", "relay 1", "sender 1"):
        assert part in out, (part, out)
    assert "0 delivered, 3 deferred, 0 bounced" in out, out
    assert "TLSv1.3 1" in out and "1 succeeded, 1 failed" in out, out
    assert re.search(r"queue:\s+3 messages, oldest \d+[smhd]", out), out
    p = mxtest.run([mxtest.MXRELAYCTL, "stats", "-c", d.conf_path, "--json"], check=0)
    j = json.loads(p.stdout)
    v = values(d)
    assert j["accepted_total"] == v["mxrelay_accepted_total"] == 3, j
    assert j["rejected_total"]["size"] == 1 and j["auth_total"]["failure"] == 1, j
    assert j["delivery_attempt_seconds_count"] == 3, j
    # metrics off in the configuration, and a daemon that is not running
    tmp = mxtest.tmpdir()
    off = mxtest.write_file(os.path.join(tmp, "off.conf"), f"data_dir = {tmp}/d\n")
    p = mxtest.run([mxtest.MXRELAYCTL, "stats", "-c", off], check=1)
    assert "metrics are off" in p.stderr, p.stderr
    down = mxtest.write_file(os.path.join(tmp, "down.conf"),
                             f"data_dir = {tmp}/d\nmetrics_listen = 127.0.0.1:{mxtest.free_port()}\n")
    p = mxtest.run([mxtest.MXRELAYCTL, "stats", "-c", down], check=1)
    assert "cannot connect" in p.stderr, p.stderr


def test_listen_address_checked():
    tmp = mxtest.tmpdir()

    def check(lines, status):
        conf = mxtest.write_file(os.path.join(tmp, "m.conf"),
                                 f"data_dir = {tmp}/d\n" + "".join(x + "\n" for x in lines))
        p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", conf], check=status)
        return p.stderr

    for addr in ("192.0.2.1:9125", "0.0.0.0:9125", "[::]:9125", "10.1.2.3:9125"):
        err = check([f"metrics_listen = {addr}"], 1)
        assert re.search(r"m\.conf:2: metrics_listen: .*not a loopback address.*metrics_allow_remote",
                         err), err
    check(["metrics_listen = 192.0.2.1:9125", "metrics_allow_remote = yes"], 0)
    check(["metrics_listen = 127.0.0.2:9125"], 0)
    check(["metrics_listen = [::1]:9125"], 0)
    check(["metrics_listen = off"], 0)
    err = check(["metrics_listen = localhost"], 1)
    assert "metrics_listen" in err and "IP:PORT" in err, err


def test_port_in_use_fails_startup():
    d = daemon()
    busy = mxtest.Daemon(conf={"metrics_listen": d.conf["metrics_listen"]})   # config only
    # != 0, not == 1: under ASan the early exit's unfreed start-up state aborts with leaks
    p = mxtest.run([mxtest.MXRELAYD, "-c", busy.conf_path], timeout=20)
    assert p.returncode != 0, "a second daemon started on a metrics port in use"
    assert re.search(r"metrics_listen 127\.0\.0\.1:\d+: cannot serve metrics", p.stderr), p.stderr


def test_delivery_outcomes():
    """delivered / deferred / bounced per recipient through real peers, exact."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, conf=metrics_conf())
    z = mxpeers.ZONE
    mxpeers.submit(d, [f"ok@sink.{z}", f"perm-x@sink.{z}", f"temp1-y@sink.{z}"])
    # first attempt: 1 delivered, 1 bounced, 1 deferred; the DSN to the sender delivered;
    # the retry of temp1-y delivered
    sinks.wait_messages(1, "mx.sender")
    sinks.wait_messages(2, "mx.sink")
    mxpeers.wait_spool_empty(d)
    wait_value(d, "mxrelay_delivered_total", 3)
    v = values(d)
    assert v["mxrelay_bounced_total"] == 1 and v["mxrelay_deferred_total"] == 1, v
    assert check_histogram(v, "mxrelay_delivery_attempt_seconds") == 3, v
    assert check_histogram(v, "mxrelay_dns_lookup_seconds") >= 2, v
    wait_value(d, QUEUED, 0)


def test_queue_gauge_counts_held():
    """issue 16: held messages used to make the queue gauge read 0; now labelled state=held."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, conf=metrics_conf({"retry_min": "1h", "retry_max": "1h"}))
    z = mxpeers.ZONE
    q1 = mxpeers.submit(d, [f"tempforever-a@sink.{z}"])
    q2 = mxpeers.submit(d, [f"tempforever-b@sink.{z}"])
    for q in (q1, q2):
        mxpeers.wait_event(d, "delivery", qid=q, status="deferred")
    wait_value(d, QUEUED, 2)
    for q in (q1, q2):
        mxtest.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path, "hold", q], check=0)
    wait_value(d, HELD, 2)
    assert values(d)[QUEUED] == 0
    p = mxtest.run([mxtest.MXRELAYCTL, "stats", "-c", d.conf_path], check=0)
    assert re.search(r"queue:\s+0 messages, oldest \d+[smhd]; 2 held", p.stdout), p.stdout
    d.stop()
    d.start()       # loaded held from the spool at start
    wait_value(d, HELD, 2)
    mxtest.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path, "release", q1], check=0)
    wait_value(d, HELD, 1)
    wait_value(d, QUEUED, 1)


def test_expired_logged():
    d = mxtest.Daemon(conf={"max_queue_lifetime": "1s", "retry_min": "1s", "retry_max": "1s",
                            "dns_timeout": "100ms", "dns_tries": "1"}).start()
    qid = d.connect().mail("s@example.com", ["gone@example.net"], mxtest.message())
    lines = d.wait_log(rf"qid={qid} event=expired ", timeout=20)
    assert re.search(r'event=expired to="<gone@example\.net>" age=\d+ lifetime=1 attempts=\d+',
                     lines[0]), lines[0]
    d.wait_log(rf"qid={qid} event=bounce ", timeout=10)


mxtest.main()
