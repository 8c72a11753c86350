#!/usr/bin/python3
"""Provider-aware delivery (issue 15 item 8) against scripted receiving MX
hosts that answer with the real replies of Microsoft, Gmail and Yahoo.

DNS is our own nsd on loopback serving real-looking MX names
(a.mail.protection.outlook.com, g.l.google.com, y.am0.yahoodns.net: zones
outlook.com, google.com, yahoodns.net on that nsd only, nothing leaves
127.0.0.0/8), so the relay groups them by its built-in MX host suffixes.
Each MX host is a scripted SMTP server (one thread per connection) on its
own 127.A.B.X address; the recipient's local part picks the reply.

Checked: every known reply gives its reason_code in the delivery log line,
its reason and fix in `mxrelayctl queue show` (text and --json) and its count in
mxrelay_delivery_provider_replies_total; a rate-limit reply (4.7.650) from
host A of the Microsoft group pauses the next connection to host B of the
same group (measured), doubles on a second one, logs event=provider_backoff,
shows in mxrelay_provider_backoff_seconds and steps back on each success;
an unrelated domain is delivered at once meanwhile."""

import atexit
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import events, submit, wait_event  # noqa: E402

SENDER = "dev@nomx.prov.test"
IP = mxpeers.ip

# host name -> last octet of its address
HOSTS = {
    "a.mail.protection.outlook.com": 11,
    "b.mail.protection.outlook.com": 12,
    "g.l.google.com": 21,
    "g2.l.google.com": 22,
    "y.am0.yahoodns.net": 31,
    "y1.am0.yahoodns.net": 32,
    "y2.am0.yahoodns.net": 33,
    "g3.l.google.com": 23,
    "g4.l.google.com": 24,
    "mx.other.prov.test": 41,
    "mx.tss.prov.test": 42,                   # not Yahoo, greets with Yahoo's [TSS04] text
    "c.mail.protection.outlook.com": 13,      # Microsoft, throttles at the greeting
}
# recipient domain (under prov.test) -> its MX host
DOMAINS = {
    "msa": "a.mail.protection.outlook.com",
    "msb": "b.mail.protection.outlook.com",
    "gm": "g.l.google.com",
    "gm2": "g2.l.google.com",
    "ya": "y.am0.yahoodns.net",
    "other": "mx.other.prov.test",
    "tss": "mx.tss.prov.test",
    "msc": "c.mail.protection.outlook.com",
}
# recipient domain -> its two MX hosts of one provider (10, 20): the first
# refuses with a rate-limit reply at the greeting or at EHLO
TWO_MX = {
    "yy": ("y1.am0.yahoodns.net", "y2.am0.yahoodns.net"),
    "gg": ("g3.l.google.com", "g4.l.google.com"),
}

# Replies as the providers send them (see mta/shared/provider.c for the pages).
RCPT_REPLIES = {
    "ms650": ["451 4.7.650 The mail server [127.0.0.1] has been temporarily rate limited due "
              "to IP reputation. For e-mail delivery information, see "
              "https://postmaster.live.com (S843)"],
    "ms606": ["550 5.7.606 Access denied, banned sending IP [127.0.0.1]. To request removal "
              "from this list please visit https://sender.office.com/ and follow the "
              "directions."],
    "ms515": ["550 5.7.515 Access denied, sending domain [nomx.prov.test] doesn't meet the "
              "required authentication level."],
    "ms68": ["550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
             "organization from unauthorized sources"],
    "gm26": ["550-5.7.26 This mail has been blocked because the sender is unauthenticated.",
             "550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.",
             "550 5.7.26 x1si - gsmtp"],
    "gm28": ["421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating",
             "421 4.7.28 from your IP address. x2si - gsmtp"],
    # the real one carries "- 4.16.55.1" after "complaints": left out, as the
    # harness's loopback check reads it as an IPv4 address
    "tss04": ["421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to "
              "unexpected volume or user complaints; see "
              "https://postmaster.yahooinc.com/error-codes"],
}
GREETING_REFUSE = {"y1.am0.yahoodns.net": RCPT_REPLIES["tss04"],
                   "mx.tss.prov.test": RCPT_REPLIES["tss04"],
                   "c.mail.protection.outlook.com": RCPT_REPLIES["ms650"]}
EHLO_REFUSE = {"g3.l.google.com": RCPT_REPLIES["gm28"]}
DOT_REPLIES = {
    "gmmid": ["550-5.7.1 Messages missing a valid Message-ID header are not accepted.",
              "550 5.7.1 Review RFC 5322 specifications. x3si - gsmtp"],
}


class ScriptedMx:
    """One listener per HOSTS address on a shared port; records (time, host, event)."""

    def __init__(self):
        self.port = mxtest.free_port()
        self.log = []
        self.lock = threading.Lock()
        self.socks = []
        self.stop_ev = threading.Event()
        for name, last in HOSTS.items():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((IP(last), self.port))
            s.listen(16)
            s.settimeout(0.2)
            self.socks.append(s)
            threading.Thread(target=self._accept, args=(s, name), daemon=True).start()
        atexit.register(self.stop)

    def stop(self):
        self.stop_ev.set()
        for s in self.socks:
            s.close()

    def note(self, host, what):
        with self.lock:
            self.log.append((time.monotonic(), host, what))

    def times(self, host, what):
        with self.lock:
            return [t for t, h, w in self.log if h == host and w == what]

    def _accept(self, s, host):
        while not self.stop_ev.is_set():
            try:
                c, _ = s.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(c, host), daemon=True).start()

    def _serve(self, c, host):
        self.note(host, "connect")
        f = c.makefile("rb")
        say = lambda lines: c.sendall("".join(ln + "\r\n" for ln in lines).encode())  # noqa: E731
        try:
            if host in GREETING_REFUSE:
                return say(GREETING_REFUSE[host])
            say([f"220 {host} ESMTP scripted"])
            rcpts = []
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode(errors="replace").strip()
                up = cmd.upper()
                if up.startswith("EHLO") and host in EHLO_REFUSE:
                    return say(EHLO_REFUSE[host])
                if up.startswith("EHLO"):
                    say([f"250-{host}", "250 8BITMIME"])
                elif up.startswith("MAIL"):
                    rcpts = []
                    say(["250 2.1.0 OK"])
                elif up.startswith("RCPT"):
                    local = re.search(r"<([^@>]*)@", cmd).group(1)
                    rep = RCPT_REPLIES.get(local)
                    if rep:
                        self.note(host, "reply:" + local)
                        say(rep)
                        if rep[-1].startswith("421"):
                            return
                    else:
                        rcpts.append(local)
                        say(["250 2.1.5 OK"])
                elif up == "DATA":
                    say(["354 go ahead"])
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    rep = next((DOT_REPLIES[r] for r in rcpts if r in DOT_REPLIES), None)
                    if rep:
                        self.note(host, "reply:" + rcpts[0])
                        say(rep)
                    else:
                        self.note(host, "delivered")
                        say(["250 2.0.0 OK queued"])
                elif up == "RSET" or up == "NOOP":
                    say(["250 2.0.0 OK"])
                elif up == "QUIT":
                    say(["221 2.0.0 bye"])
                    return
                else:
                    say(["502 5.5.2 not here"])
        except OSError:
            pass
        finally:
            c.close()


def zones():
    def zone(origin, recs):
        return "\n".join([f"$ORIGIN {origin}.", "$TTL 60",
                          f"@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60",
                          f"@ IN NS ns.{origin}.", "ns IN A 127.0.0.1"] + recs) + "\n"
    out = {}
    for origin in ("prov.test", "outlook.com", "google.com", "yahoodns.net"):
        recs = [f"{h[:-len(origin) - 1]} IN A {IP(last)}" for h, last in HOSTS.items()
                if h.endswith("." + origin)]
        if origin == "prov.test":
            recs += [f"{d} IN MX 10 {h}." for d, h in DOMAINS.items()]
            recs += [f"{d} IN MX {10 * (i + 1)} {h}." for d, hs in TWO_MX.items()
                     for i, h in enumerate(hs)]
            # "mix": a first MX where nothing listens, then Microsoft's host B
            recs += [f"down IN A {IP(51)}", "mix IN MX 10 down.prov.test.",
                     "mix IN MX 20 b.mail.protection.outlook.com."]
        out[origin] = zone(origin, recs)
    return out


_env = {}


def env():
    """The scripted MX hosts and their nsd (one per test file)."""
    if not _env:
        d = mxtest.tmpdir("mxprovns-")
        ns = mxpeers.Nsd(d, zones()).start()
        atexit.register(ns.stop)
        _env["nsd"] = ns
        _env["mx"] = ScriptedMx()
        mxtest.note(f"# nsd on 127.0.0.1:{ns.port}, scripted MX on port {_env['mx'].port}")
    return _env["nsd"], _env["mx"]


def make_relay(extra=None):
    ns, mx = env()
    conf = {"dns_servers": f"127.0.0.1:{ns.port}", "smtp_port": str(mx.port),
            "retry_min": "1h", "retry_max": "1h",
            "metrics_listen": f"127.0.0.1:{mxtest.free_port()}",
            "provider_backoff_min": "3s", "provider_backoff_max": "12s"}
    conf.update(extra or {})
    return mxpeers.relay(None, conf=conf), mx


def scrape(d):
    with urllib.request.urlopen(f"http://{d.conf['metrics_listen']}/metrics", timeout=5) as r:
        return r.read().decode()


def metric(text, name, label):
    m = re.search(r"^" + re.escape(name + "{" + label + "}") + r" (\d+)$", text, re.M)
    assert m, f"no {name}{{{label}}} in metrics"
    return int(m.group(1))


def ctl(d, *args):
    p = mxtest.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path] + list(args), timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout


EXPECT = {  # recipient -> (reason_code, status, a piece of the fix)
    "ms606@msa.prov.test": ("ms_banned_ip", "bounced", "https://sender.office.com"),
    "ms515@msa.prov.test": ("ms_auth_required", "bounced", "mxrelayctl dns check"),
    "ms68@msa.prov.test": ("ms_direct_send_rejected", "bounced", "partner connector"),
    "ms650@msa.prov.test": ("ms_ip_throttled", "deferred", "Microsoft SNDS"),
    "gm26@gm.prov.test": ("gmail_unauthenticated", "bounced", "mxrelayctl dns check"),
    "gmmid@gm.prov.test": ("gmail_no_message_id", "bounced", "Message-ID"),
    "gm28@gm2.prov.test": ("gmail_rate_limited", "deferred", "sender guidelines"),
    "tss04@ya.prov.test": ("yahoo_tss04", "deferred", "senders.yahooinc.com"),
    "ok@other.prov.test": ("none", "sent", None),
}


def test_reason_codes_log_queue_show_metrics():
    d, mx = make_relay()
    qid = submit(d, list(EXPECT), sender=SENDER)
    evs = wait_event(d, "delivery", n=len(EXPECT), qid=qid, timeout=30)
    seen = {e["to"].strip("<>"): e for e in evs}
    for rcpt, (code, status, _) in EXPECT.items():
        e = seen[rcpt]
        assert e.get("reason_code") == code and e["status"] == status, e["_line"]
    # the deferred ones stay queued: queue show names the reason and the fix
    out = ctl(d, "show", qid)
    mxtest.note(out)
    for rcpt, (code, status, fix) in EXPECT.items():
        if status != "deferred":
            continue
        block = re.split(r"\n  \S", out.split(rcpt, 1)[1])[0]
        assert f"reason: {code}" in block and fix in block, f"{rcpt}:\n{block}"
    js = json.loads(ctl(d, "--json", "show", qid))
    for r in js["recipients"]:
        code, _, fix = EXPECT[r["address"]]
        assert r["reason_code"] == (None if code == "none" else code), r
        assert fix is None and r["fix"] is None or fix in r["fix"], r
    text = scrape(d)
    for rcpt, (code, _, _) in EXPECT.items():
        if code != "none":
            assert metric(text, "mxrelay_delivery_provider_replies_total",
                          f'reason="{code}"') == 1, code
    # the rate-limit replies backed off their groups; Microsoft's and Yahoo's at least
    for g in ("microsoft", "google", "yahoo"):
        assert metric(text, "mxrelay_provider_backoff_total", f'group="{g}"') == 1, g
        assert metric(text, "mxrelay_provider_backoff_seconds", f'group="{g}"') == 3, g
    ev = events(d, "provider_backoff", group="microsoft")
    assert ev and ev[0]["delay"] == "3" and ev[0]["reason_code"] == "ms_ip_throttled", ev


def test_rate_limit_slows_the_whole_group_and_recovers():
    d, mx = make_relay()
    a, b, other = (DOMAINS["msa"], DOMAINS["msb"], DOMAINS["other"])
    q1 = submit(d, ["ms650@msa.prov.test"], sender=SENDER)
    wait_event(d, "delivery", qid=q1, status="deferred", reason_code="ms_ip_throttled")
    t_rl = mx.times(a, "reply:ms650")[-1]
    wait_event(d, "provider_backoff", group="microsoft", delay="3", state="backoff")
    # host B of the same group waits the pause; an unrelated domain does not
    n_b = len(mx.times(b, "connect"))
    t_sub = time.monotonic()
    q2 = submit(d, ["ok@msb.prov.test"], sender=SENDER)
    q3 = submit(d, ["ok@other.prov.test"], sender=SENDER)
    wait_event(d, "delivery", qid=q3, status="sent")
    t_other = mx.times(other, "connect")[-1] - t_sub
    wait_event(d, "delivery", qid=q2, status="sent", timeout=20)
    t_b = mx.times(b, "connect")[n_b] - t_rl
    print(f"# pause at host B after host A's 4.7.650: {t_b:.2f}s; unrelated: {t_other:.2f}s")
    assert 2.8 <= t_b < 4.5, f"host B was tried {t_b:.2f}s after host A's rate-limit reply"
    assert t_other < 1.5, f"an unrelated domain waited {t_other:.2f}s"
    # the success at B stepped the backoff back: 3 s halves below the minimum, so it ends
    wait_event(d, "provider_backoff", group="microsoft", delay="0", state="recovered")
    assert metric(scrape(d), "mxrelay_provider_backoff_seconds", 'group="microsoft"') == 0
    # two rate-limit replies in a row double the pause; then each success halves it
    mark = d._log_size()
    q4 = submit(d, ["ms650@msa.prov.test"], sender=SENDER)
    wait_event(d, "provider_backoff", since=mark, delay="3", state="backoff")
    q5 = submit(d, ["ms650@msa.prov.test"], sender=SENDER)
    wait_event(d, "provider_backoff", since=mark, delay="6", state="backoff", timeout=10)
    ts = mx.times(a, "reply:ms650")[-2:]
    assert ts[1] - ts[0] >= 2.8, f"the second connection came {ts[1] - ts[0]:.2f}s after"
    assert metric(scrape(d), "mxrelay_provider_backoff_seconds", 'group="microsoft"') == 6
    wait_event(d, "delivery", since=mark, qid=q5, status="deferred")
    assert q4 != q5
    q6 = submit(d, ["ok@msb.prov.test"], sender=SENDER)
    wait_event(d, "provider_backoff", since=mark, delay="3", state="recovering", timeout=15)
    q7 = submit(d, ["ok@msb.prov.test"], sender=SENDER)
    wait_event(d, "provider_backoff", since=mark, delay="0", state="recovered", timeout=15)
    for q in (q6, q7):
        wait_event(d, "delivery", since=mark, qid=q, status="sent")
    starts = mx.times(b, "connect")[-2:]
    assert starts[1] - starts[0] >= 2.8, f"B's connections {starts[1] - starts[0]:.2f}s apart"


def test_rate_limit_at_greeting_or_ehlo_pauses_the_next_mx_of_the_group():
    """A 421 [TSS04] greeting (Yahoo) or a 421 4.7.28 EHLO reply (Gmail) from
    a domain's first MX: its second MX, of the same provider, is tried only
    after the group's delay (it throttles the sending IP on both), not at once
    (review of issue 15 item 8)."""
    d, mx = make_relay()
    for dom, reason in (("yy", "yahoo_tss04"), ("gg", "gmail_rate_limited")):
        first, second = TWO_MX[dom]
        mark = d._log_size()
        q = submit(d, [f"ok@{dom}.prov.test"], sender=SENDER)
        wait_event(d, "provider_backoff", since=mark, state="backoff", reason_code=reason)
        (h,) = wait_event(d, "provider_hold", since=mark, domain=f"{dom}.prov.test")
        assert h["host"] == second and 2000 <= int(h["wait_ms"]) <= 3000, h["_line"]
        wait_event(d, "delivery", since=mark, qid=q, status="sent", timeout=20)
        gap = mx.times(second, "connect")[0] - mx.times(first, "connect")[0]
        print(f"# {dom}: MX 2 tried {gap:.2f}s after MX 1's rate-limit reply")
        assert 2.8 <= gap < 4.5, f"{second} was tried {gap:.2f}s after {first}'s refusal"
        # the success at MX 2 steps the group's backoff back (3 s halves: ends)
        wait_event(d, "provider_backoff", since=mark, delay="0", state="recovered")



def test_backup_mx_of_a_group_waits_its_delay():
    """A domain whose first MX is no provider's and whose second is
    Microsoft's: while the Microsoft group backs off, the walk from the failed
    first MX to the second waits the group's delay."""
    d, mx = make_relay()
    b = DOMAINS["msb"]
    q1 = submit(d, ["ms650@msa.prov.test"], sender=SENDER)
    wait_event(d, "delivery", qid=q1, status="deferred", reason_code="ms_ip_throttled")
    t_rl = mx.times(DOMAINS["msa"], "reply:ms650")[-1]
    n_b = len(mx.times(b, "connect"))
    mark = d._log_size()
    q2 = submit(d, ["ok@mix.prov.test"], sender=SENDER)
    (h,) = wait_event(d, "provider_hold", since=mark, domain="mix.prov.test")
    assert h["host"] == b and h["group"] == "microsoft", h["_line"]
    wait_event(d, "delivery", since=mark, qid=q2, status="sent", timeout=20)
    t_b = mx.times(b, "connect")[n_b] - t_rl
    assert 2.8 <= t_b < 4.5, f"the backup MX {b} was tried {t_b:.2f}s after the 4.7.650"


def test_provider_reply_from_another_mx_gets_no_reason_code():
    """Microsoft's 5.7.606 text from an MX outside Microsoft's group is not
    classified: its reason_code is none (no Microsoft delisting page)."""
    d, mx = make_relay()
    q = submit(d, ["ms606@other.prov.test"], sender=SENDER)
    (ev,) = wait_event(d, "delivery", qid=q, status="bounced")
    assert ev["reason_code"] == "none" and "5.7.606" in ev["reply"], ev["_line"]
    assert ev["relay"].startswith("mx.other.prov.test["), ev["_line"]
    q = submit(d, ["ms606@msa.prov.test"], sender=SENDER)
    (ev,) = wait_event(d, "delivery", qid=q, status="bounced")
    assert ev["reason_code"] == "ms_banned_ip", ev["_line"]


def test_queue_show_checks_the_host_too():
    """`queue show` classifies a stored reply only with the host that gave
    it (stored as "host H[IP]:PORT said: ..."), as the delivery log does:
    Microsoft's 4.7.650 text from another MX has no reason there either."""
    d, mx = make_relay()
    q = submit(d, ["ms650@other.prov.test"], sender=SENDER)
    (ev,) = wait_event(d, "delivery", qid=q, status="deferred")
    assert ev["reason_code"] == "none", ev["_line"]
    out = ctl(d, "show", q)
    assert "4.7.650" in out and "host mx.other.prov.test[" in out, out
    assert "reason:" not in out, out
    (r,) = json.loads(ctl(d, "--json", "show", q))["recipients"]
    assert r["reason_code"] is None and r["fix"] is None, r


def test_all_mx_failed_is_classified_by_the_host_that_replied():
    """Every MX fails: the outcome (451 4.4.1 all MX hosts ... failed; last:
    host H said: REPLY) takes its reason code from REPLY only when H is of
    REPLY's provider: a non-Yahoo MX copying [TSS04] gets none, Microsoft's
    own MX greeting with 4.7.650 gets ms_ip_throttled (log, queue show, metrics)."""
    d, mx = make_relay()
    q1 = submit(d, ["ok@tss.prov.test"], sender=SENDER)
    (ev,) = wait_event(d, "delivery", qid=q1, status="deferred", timeout=20)
    assert ev["reason_code"] == "none" and "[TSS04]" in ev["reply"], ev["_line"]
    assert "reason:" not in ctl(d, "show", q1)
    q2 = submit(d, ["ok@msc.prov.test"], sender=SENDER)
    (ev,) = wait_event(d, "delivery", qid=q2, status="deferred", timeout=20)
    assert ev["reason_code"] == "ms_ip_throttled", ev["_line"]
    assert "host c.mail.protection.outlook.com[" in ev["reply"], ev["_line"]
    out = ctl(d, "show", q2)
    assert "reason: ms_ip_throttled (microsoft)" in out, out
    text = scrape(d)
    assert metric(text, "mxrelay_delivery_provider_replies_total",
                  'reason="ms_ip_throttled"') == 1, text
    assert metric(text, "mxrelay_delivery_provider_replies_total",
                  'reason="yahoo_tss04"') == 0, text


if __name__ == "__main__":
    mxtest.main()
