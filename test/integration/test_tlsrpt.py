#!/usr/bin/python3
"""TLS-RPT (RFC 8460): the daemon's reports and `mxrelayctl tls`.

A relay resolving through nsd (mxpeers) where `_smtp._tls.rpt.dlv.test`
publishes `v=TLSRPTv1; rua=mailto:tlsrpt@sink.dlv.test`; outbound
TLS counters for yesterday and the day before are seeded into spool.db with
sqlite3 (the rows the daemon's delivery code writes), a policy text and an
MX reply holding bytes that are not UTF-8. Then:
- `mxrelayctl tls send-reports --day YESTERDAY`: the sink (MX of sink.dlv.test)
  gets one multipart/report; report-type=tlsrpt message with the RFC 8460
  5.3 headers and subject; its application/tlsrpt+gzip part, gunzipped by
  python's gzip, is JSON valid against RFC 8460's report schema
  (test/data/tlsrpt.schema.json, python3-jsonschema) with the seeded counts;
  the message is DKIM-signed by tlsrpt_from's domain key and verified by
  dkimpy; bad bytes arrive as U+FFFD; the file name's unique-id is letters
  and digits (RFC 8460 5.3);
- a second run sends nothing (tlsrpt_sent);
- `--day TODAY` (or later) is refused: the day is not complete (RFC 8460 4.1);
- 10,000 pairs reported already do not push a due one out of the run's cap;
- with no dkim_key for tlsrpt_from's domain the mailto: rua is skipped
  (event=tlsrpt_unsigned) and the day stays due; `mxrelayd -n` says so;
- the default run (last 7 complete days) marks a domain without a
  _smtp._tls record as "no policy" and sends nothing for it;
- `mxrelayctl tls report --json` and the table show the counts by policy
  and failures by result type;
- tlsrpt = no: the verb says reports are off; bad --day values are usage
  errors;
- in the TLS test network (tlspeers: a netns with unbound and HTTPS on :443)
  a record with an https: and a mailto: rua: the HTTPS receiver gets one
  POST, Content-Type application/tlsrpt+gzip, with the same gzip body as
  the mail, its certificate verified through tls_ca_file; once only.
Everything on loopback (nsd on 127.0.0.1, sinks on this run's 127.A.B.0/24) or
inside the test's own network namespace."""

import base64
import email
import email.policy
import gzip
import json
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
import tlspeers  # noqa: E402
from mxpeers import ZONE  # noqa: E402

CTL = mxtest.MXRELAYCTL
SRC = os.environ.get("MXRELAY_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA = os.path.join(SRC, "test", "data", "tlsrpt.schema.json")

RPT = f"rpt.{ZONE}"          # publishes a reporting policy
NOPOL = f"nopol.{ZONE}"      # publishes none
RUA = f"tlsrpt@sink.{ZONE}"  # its mailto: rua (MX mx.sink)
FROM_DOMAIN = f"sender.{ZONE}"
FROM = f"tlsrpt@{FROM_DOMAIN}"
TODAY = int(time.time()) // 86400
YDAY = TODAY - 1  # the last complete UTC day


def day_name(day):
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


_env = {}


def make_key():
    """An Ed25519 key for FROM_DOMAIN: (its file, its TXT value)."""
    return tlspeers.dkim_key(FROM_DOMAIN)


def env():
    """nsd with the policy records, the sink, an Ed25519 key for FROM_DOMAIN (once per test:
    mxtest cleans temp dirs and peers up after each)."""
    if _env:
        return _env
    key, value = make_key()
    zone = mxpeers.delivery_zone()
    zone += (f'_smtp._tls.rpt IN TXT "v=TLSRPTv1; rua=mailto:{RUA}"\n'
             f'_smtp._tls.rpt IN TXT "v=spf1 -all"\n'
             f'_smtp._tls.nopol IN TXT "v=STSv1; id=1"\n')
    ns = mxpeers.Nsd(mxtest.tmpdir("mxtlsrptnsd-"), {ZONE: zone}).start()
    mxtest.on_cleanup(ns.stop)
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    _env.update(ns=ns, sinks=sinks, key=key, dkim_value=value)
    return _env


def relay(extra=None, key=True):
    _env.clear()
    e = env()
    conf = {"dns_servers": f"127.0.0.1:{e['ns'].port}", "tlsrpt_from": FROM}
    conf.update(extra or {})
    d = mxpeers.relay(e["sinks"], conf, start=False)
    base = type(d)

    class KeyRelay(base):
        def config_text(self):
            head, sep, rest = base.config_text(self).partition("\n[listener")
            return head.rstrip("\n") + f"\ndkim_key = {FROM_DOMAIN} rpt {e['key']}\n" + sep + rest

    if key:
        d.__class__ = KeyRelay
    d.write_config()
    return d.start()


def seed(d, RPT=RPT, day=YDAY):
    """Counters as the delivery code keeps them: DAY for RPT, the day before for NOPOL.
    The MTA-STS policy text and one MX reply hold bytes that are not UTF-8."""
    con = sqlite3.connect(os.path.join(d.data_dir, "spool.db"), timeout=10)
    sts = b"version: STSv1\nmode: enforce\nmx: mx.rpt.dlv.test\nmax_age: 86400\nx-note: caf\xe9\xff"
    con.executemany(
        "INSERT INTO tls_stats (day, domain, policy, policy_string, mx, sessions_ok,"
        " sessions_failed, delivered, verified) VALUES (?,?,?,?,?,?,?,?,?)",
        [(day, RPT, "mta-sts", "", "mx.rpt.dlv.test", 11, 3, 12, 11),
         (day, RPT, "dane", "3 1 1 " + "ab" * 32, "mx2.rpt.dlv.test", 5, 1, 5, 5),
         (day, RPT, "opportunistic", "", "mx3.rpt.dlv.test", 2, 0, 2, 0),
         (day - 1, NOPOL, "plaintext", "", "mx.nopol.dlv.test", 4, 0, 4, 0)])
    # the delivery code keeps the MTA-STS policy text in sts_policies, not in tls_stats
    con.execute("INSERT INTO sts_policies (domain, id, mode, mx, max_age, policy, fetched,"
                " expires) VALUES (?, '1', 'enforce', 'mx.rpt.dlv.test', 86400, ?, ?, ?)",
                (RPT, sts, int(time.time()), int(time.time()) + 86400))
    con.executemany(
        "INSERT INTO tls_failures (day, domain, policy, result_type, sending_ip, mx, mx_ip,"
        " detail, count) VALUES (?,?,?,?,?,?,?,?,?)",
        [(day, RPT, "mta-sts", "certificate-host-mismatch", "192.0.2.25", "mx.rpt.dlv.test",
          "198.51.100.7", b"hostname mismatch \xe9\xff", 2),
         (day, RPT, "mta-sts", "starttls-not-supported", "192.0.2.25", "mx.rpt.dlv.test",
          "198.51.100.7", "", 1),
         (day, RPT, "dane", "validation-failure", "192.0.2.25", "mx2.rpt.dlv.test",
          "198.51.100.8", "no matching TLSA record", 1)])
    con.commit()
    con.close()


def tls(d, *args, check=0):
    return mxtest.run([CTL, "tls"] + list(args) + ["-c", d.conf_path], timeout=60, check=check)


def report_part(msg):
    """(the message, the gzip part's file name, the decoded JSON)."""
    m = email.message_from_bytes(msg.data, policy=email.policy.default)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert m.get_param("report-type") == "tlsrpt", m["Content-Type"]
    parts = [p for p in m.iter_parts() if p.get_content_type() == "application/tlsrpt+gzip"]
    assert len(parts) == 1, [p.get_content_type() for p in m.iter_parts()]
    raw = base64.b64decode(parts[0].get_payload())
    return m, parts[0].get_filename(), json.loads(gzip.decompress(raw))


def check_json(doc, RPT=RPT):
    import jsonschema
    with open(SCHEMA) as f:
        jsonschema.validate(doc, json.load(f))
    assert doc["date-range"] == {"start-datetime": day_name(YDAY) + "T00:00:00Z",
                                 "end-datetime": day_name(YDAY) + "T23:59:59Z"}, doc
    assert doc["contact-info"] == FROM and doc["organization-name"] == mxtest.HOSTNAME, doc
    pol = {p["policy"]["policy-type"]: p for p in doc["policies"]}
    assert sorted(pol) == ["no-policy-found", "sts", "tlsa"], doc
    sts = pol["sts"]
    assert sts["policy"]["policy-domain"] == RPT and sts["policy"]["mx-host"] == [
        "mx.rpt.dlv.test"], sts
    assert sts["policy"]["policy-string"][1] == "mode: enforce", sts
    # RFC 8259 8.1: bytes that are not UTF-8 arrive as U+FFFD (json.loads read the bytes)
    assert sts["policy"]["policy-string"][-1] == "x-note: caf\ufffd\ufffd", sts
    assert sts["summary"] == {"total-successful-session-count": 11,
                              "total-failure-session-count": 3}, sts
    got = sorted((f["result-type"], f["failed-session-count"]) for f in sts["failure-details"])
    assert got == [("certificate-host-mismatch", 2), ("starttls-not-supported", 1)], got
    f0 = [f for f in sts["failure-details"] if f["result-type"].startswith("cert")][0]
    assert f0["sending-mta-ip"] == "192.0.2.25" and f0["receiving-ip"] == "198.51.100.7", f0
    assert f0["receiving-mx-hostname"] == "mx.rpt.dlv.test", f0
    assert f0["failure-reason-code"] == "hostname mismatch \ufffd\ufffd", f0
    dane = pol["tlsa"]
    assert dane["policy"]["mx-host"] == ["mx2.rpt.dlv.test"], dane
    assert dane["summary"]["total-successful-session-count"] == 5, dane
    assert [f["result-type"] for f in dane["failure-details"]] == ["validation-failure"], dane
    assert pol["no-policy-found"]["summary"]["total-successful-session-count"] == 2, pol


def check_dkim(msg):
    import dkim
    value = env()["dkim_value"]

    def dnsfunc(name, timeout=5):
        n = (name.decode() if isinstance(name, bytes) else name).rstrip(".")
        return value.encode() if n == f"rpt._domainkey.{FROM_DOMAIN}" else None
    assert b"DKIM-Signature:" in msg.data, "the report is not DKIM-signed"
    assert dkim.verify(msg.data, dnsfunc=dnsfunc), "dkimpy could not verify the report"


def test_send_reports_day():
    d = relay()
    seed(d)
    sinks = env()["sinks"]
    before = len(sinks.messages("mx.sink"))
    p = tls(d, "send-reports", "--day", day_name(YDAY), "--json")
    res = json.loads(p.stdout)
    assert res == {"from": day_name(YDAY), "to": day_name(YDAY), "sent": 1, "no_policy": 0,
                   "failed": 0}, res
    msgs = sinks.wait_messages(before + 1, listener="mx.sink")
    msg = msgs[-1]
    assert msg.meta["rcpts"] == [RUA] and msg.meta["mail_from"] == FROM, msg.meta
    m, fname, doc = report_part(msg)
    rid = doc["report-id"]
    assert rid == f"{day_name(YDAY)}.{RPT}@{mxtest.HOSTNAME}", rid  # the same if sent again
    assert m["Subject"] == f"Report Domain: {RPT} Submitter: {mxtest.HOSTNAME} Report-ID: <{rid}>"
    assert m["TLS-Report-Domain"] == RPT and m["TLS-Report-Submitter"] == mxtest.HOSTNAME, m
    begin = YDAY * 86400
    # RFC 8460 5.3: unique-id = 1*(ALPHA / DIGIT)
    assert re.fullmatch(rf"{re.escape(mxtest.HOSTNAME)}!{re.escape(RPT)}!{begin}!{begin + 86399}"
                        r"![A-Za-z0-9]+\.json\.gz", fname), fname
    check_json(doc)
    check_dkim(msg)
    mxpeers.wait_event(d, "tlsrpt_queued", domain=RPT)
    # the same day again: already reported
    p = tls(d, "send-reports", "--day", day_name(YDAY), "--json")
    assert json.loads(p.stdout)["sent"] == 0, p.stdout
    time.sleep(1)
    assert len(sinks.messages("mx.sink")) == before + 1, "a second report was sent"
    rows = sqlite3.connect(os.path.join(d.data_dir, "spool.db")).execute(
        "SELECT rua, status FROM tlsrpt_sent WHERE day = ? ORDER BY rua", (YDAY,)).fetchall()
    assert [r[0] for r in rows] == [f"mailto:{RUA}"] and rows[0][1].startswith("queued "), rows


def test_default_run_no_policy():
    """The default run: complete days only (today's RPT counters wait), NOPOL marked."""
    d = relay()
    seed(d, day=TODAY)
    sinks = env()["sinks"]
    before = len(sinks.messages("mx.sink"))
    p = tls(d, "send-reports")
    assert re.search(r"0 sent, 1 domains without a reporting policy", p.stdout), p.stdout
    mxpeers.wait_event(d, "tlsrpt_no_policy", domain=NOPOL)
    p = tls(d, "send-reports", "--json")
    assert json.loads(p.stdout)["no_policy"] == 0, p.stdout  # marked: not asked again
    assert len(sinks.messages("mx.sink")) == before


def test_report_command():
    d = relay()
    seed(d)
    doc = json.loads(tls(d, "report", "--json").stdout)
    dom = {x["domain"]: x for x in doc["domains"]}
    assert dom[RPT]["delivered"] == {"dane": 5, "mta-sts": 12, "verify": 0, "encrypt": 0,
                                     "opportunistic": 2, "plaintext": 0}, dom
    assert dom[RPT]["failures"] == {"starttls-not-supported": 1, "certificate-host-mismatch": 2,
                                    "validation-failure": 1}, dom
    assert dom[RPT]["sessions_failed"] == 4 and dom[RPT]["verified"] == 16, dom
    assert dom[NOPOL]["delivered"]["plaintext"] == 4, dom
    # --since yesterday leaves the day before's domain out; the table names the columns
    doc = json.loads(tls(d, "report", "--json", "--since", day_name(YDAY)).stdout)
    assert [x["domain"] for x in doc["domains"]] == [RPT], doc
    out = tls(d, "report").stdout
    assert re.search(r"DANE +MTA-STS +VERIFY +ENCRYPT +OPPORTUNISTIC +PLAINTEXT", out), out
    assert re.search(rf"{re.escape(RPT)} +5 +12 +0 +0 +2 +0 +.*certificate-host-mismatch=2",
                     out), out


def test_off_and_usage():
    d = relay({"tlsrpt": "no"})
    p = tls(d, "send-reports", check=1)
    assert "TLS reports are off (tlsrpt = no)" in p.stderr, p.stderr
    p = tls(d, "send-reports", "--day", "2026-13-45", check=2)
    assert "bad --day" in p.stderr, p.stderr
    p = tls(d, "report", "--since", "yesterday", check=2)
    assert "bad --since" in p.stderr, p.stderr
    p = mxtest.run([CTL, "tls", "frobnicate"], check=2)
    assert "unknown tls command" in p.stderr, p.stderr


def test_day_not_complete_refused():
    """RFC 8460 4.1: a report covers a whole UTC day. Today (or later) is refused with a
    clear error and exit 1, and nothing is marked: the day is reported once it is over."""
    d = relay()
    seed(d, day=TODAY)
    for day in (TODAY, TODAY + 1):
        p = tls(d, "send-reports", "--day", day_name(day), check=1)
        assert f"day {day_name(day)} is not over yet (UTC)" in p.stderr, p.stderr
    rows = sqlite3.connect(os.path.join(d.data_dir, "spool.db")).execute(
        "SELECT count(*) FROM tlsrpt_sent").fetchone()
    assert rows == (0,), rows
    assert not mxpeers.events(d, "tlsrpt_queued"), d.log()


def test_sent_pairs_do_not_fill_the_cap():
    """10,000 (day, domain) pairs reported already (the run's cap) and one due pair
    sorting after them: the due one is reported; the sent ones are left out first."""
    d = relay()
    seed(d)
    con = sqlite3.connect(os.path.join(d.data_dir, "spool.db"), timeout=10)
    doms = [f"a{i:05d}.example" for i in range(10000)]
    con.executemany("INSERT INTO tls_stats (day, domain, policy, mx, sessions_ok) VALUES"
                    " (?, ?, 'opportunistic', 'mx', 1)", [(YDAY, x) for x in doms])
    con.executemany("INSERT INTO tlsrpt_sent (day, domain, rua, report_id, sent, status)"
                    " VALUES (?, ?, '', 'x', 0, 'no policy')", [(YDAY, x) for x in doms])
    con.commit()
    con.close()
    p = tls(d, "send-reports", "--day", day_name(YDAY), "--json")
    assert json.loads(p.stdout)["sent"] == 1, p.stdout
    mxpeers.wait_event(d, "tlsrpt_queued", domain=RPT)
    assert not mxpeers.events(d, "tlsrpt_capped"), d.log()


def test_report_json_utf8():
    """`mxrelayctl tls report --json`: a domain holding a byte that is not UTF-8 still
    gives JSON that a strict UTF-8 reader takes (U+FFFD)."""
    import subprocess
    d = relay()
    con = sqlite3.connect(os.path.join(d.data_dir, "spool.db"), timeout=10)
    con.execute("INSERT INTO tls_stats (day, domain, policy, mx, sessions_ok) VALUES"
                " (?, ?, 'opportunistic', 'mx', 1)", (YDAY, b"caf\xe9\xff.example"))
    con.commit()
    con.close()
    p = subprocess.run([CTL, "tls", "report", "--json", "-c", d.conf_path], capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)  # bytes: decoded as strict UTF-8
    assert [x["domain"] for x in doc["domains"]] == ["caf\ufffd\ufffd.example"], doc


def test_unsigned_mailto_skipped():
    """RFC 8460 3: mailed reports must be DKIM-signed. Without a dkim_key for tlsrpt_from's
    domain: a warning at start-up and from `mxrelayd -n`, the mailto: rua is skipped and
    logged, nothing is mailed and the day stays due for a run with a key."""
    d = relay(key=False)
    seed(d)
    sinks = env()["sinks"]
    before = len(sinks.messages("mx.sink"))
    ev = mxpeers.wait_event(d, "tlsrpt_unsigned", **{"from": FROM})
    assert "level=warn" in ev[0]["_line"], ev  # tlsrpt_from is set: signing was meant
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", d.conf_path], timeout=15, check=0)
    assert f"tlsrpt_from {FROM} has no dkim_key" in p.stderr, p.stderr
    p = tls(d, "send-reports", "--day", day_name(YDAY), "--json", check=1)
    assert json.loads(p.stdout) == {"from": day_name(YDAY), "to": day_name(YDAY), "sent": 0,
                                    "no_policy": 0, "failed": 1}, p.stdout
    ev = mxpeers.wait_event(d, "tlsrpt_unsigned", domain=RPT)
    assert ev[0]["rua"] == f"mailto:{RUA}", ev
    time.sleep(0.5)
    assert len(sinks.messages("mx.sink")) == before, "an unsigned report was mailed"
    rows = sqlite3.connect(os.path.join(d.data_dir, "spool.db")).execute(
        "SELECT count(*) FROM tlsrpt_sent").fetchone()
    assert rows == (0,), rows
    # with the key, -n has nothing to say about it
    k = relay()
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", k.conf_path], timeout=15, check=0)
    assert "no dkim_key" not in p.stderr, p.stderr
    assert not mxpeers.events(k, "tlsrpt_unsigned"), k.log()


# --------------------------------------------------------------------------
# the https: rua, in the TLS test network (tlspeers: netns, unbound, HTTPS on :443)

net = tlspeers.net


def rua_net(label, path):
    """The module's network with a TLS-RPT record for label.sig.test naming two rua URIs:
    https://rua.sig.test PATH and mailto:tlsrpt@sink.sig.test. (net, HTTPS receiver, MX sink)."""
    n = net()
    n.set_zones({"sig.test": [
        f'_smtp._tls.{label} TXT "v=TLSRPTv1; rua=https://rua.sig.test{path},'
        'mailto:tlsrpt@sink.sig.test"',
        "rua A 127.0.0.40", "sink MX 10 mx.sink", "mx.sink A 127.0.0.41"]})
    h = n.https("rua.sig.test", "127.0.0.40")
    return n, h, n.sinks({"mx.sink": {"host": "127.0.0.41"}})


def test_https_and_mailto_rua():
    """Both URIs of one record get the same gzip body: POSTed (RFC 8460 5.4) to the
    HTTPS receiver, whose certificate the relay verifies with tls_ca_file, and mailed."""
    dom = "rpt.sig.test"
    n, h, sinks = rua_net("rpt", "/v1/tlsrpt")
    key, _ = make_key()  # RFC 8460 3: mailed reports are DKIM-signed
    d = n.relay({"tlsrpt_from": FROM, "dkim_key": f"{FROM_DOMAIN} rpt {key}"})
    seed(d, RPT=dom)
    p = tls(d, "send-reports", "--day", day_name(YDAY), "--json")
    assert json.loads(p.stdout) == {"from": day_name(YDAY), "to": day_name(YDAY), "sent": 2,
                                    "no_policy": 0, "failed": 0}, p.stdout
    posts = [r for r in h.requests() if r["method"] == "POST"]
    assert len(posts) == 1 and posts[0]["path"] == "/v1/tlsrpt", h.requests()
    ctype = {k.lower(): v for k, v in posts[0]["headers"].items()}["content-type"]
    assert ctype == "application/tlsrpt+gzip", posts[0]["headers"]
    doc = json.loads(gzip.decompress(posts[0]["body"]))
    check_json(doc, RPT=dom)
    msg = sinks.wait_messages(1, listener="mx.sink")[-1]
    m = email.message_from_bytes(msg.data, policy=email.policy.default)
    part = [x for x in m.iter_parts() if x.get_content_type() == "application/tlsrpt+gzip"][0]
    assert base64.b64decode(part.get_payload()) == posts[0]["body"], "mail and POST differ"
    mxpeers.wait_event(d, "tlsrpt_posted", domain=dom)
    # reported: a second run posts nothing
    p = tls(d, "send-reports", "--day", day_name(YDAY), "--json")
    assert json.loads(p.stdout)["sent"] == 0, p.stdout
    assert len([r for r in h.requests() if r["method"] == "POST"]) == 1, h.requests()


def test_unsigned_https_still_posted():
    """No dkim_key for tlsrpt_from's domain: the https: rua is still posted, the mailto: one
    skipped (RFC 8460 3); the day counts as reported through the POST."""
    dom = "rpt2.sig.test"
    n, h, sinks = rua_net("rpt2", "/v2")
    d = n.relay({"tlsrpt_from": FROM})
    seed(d, RPT=dom)
    p = tls(d, "send-reports", "--day", day_name(YDAY), "--json", check=1)
    assert json.loads(p.stdout) == {"from": day_name(YDAY), "to": day_name(YDAY), "sent": 1,
                                    "no_policy": 0, "failed": 1}, p.stdout
    posts = [r for r in h.requests() if r["method"] == "POST"]
    assert len(posts) == 1 and posts[0]["path"] == "/v2", h.requests()
    check_json(json.loads(gzip.decompress(posts[0]["body"])), RPT=dom)
    ev = mxpeers.wait_event(d, "tlsrpt_unsigned", domain=dom)
    assert ev[0]["rua"] == "mailto:tlsrpt@sink.sig.test", ev
    time.sleep(0.5)
    assert sinks.messages("mx.sink") == [], "an unsigned report was mailed"


mxtest.main()
