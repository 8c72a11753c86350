"""TLS-RPT end to end (RFC 8460): real deliveries in a tlspeers network namespace
(validating unbound, signed sig.test, unsigned plain.test, HTTPS MTA-STS policy
servers on :443, aiosmtpd MXs with test-CA certificates) feed the daemon's own
tls_stats / tls_failures rows (written by the tlsstats flush at exit); those rows
are re-dated to yesterday (reports cover whole past days only), the daemon is
started again and `mxrelayctl tls send-reports --day YESTERDAY` mails one report
per domain to the rua of `_smtp._tls.DOMAIN`. Each report, gunzipped, is valid
against test/data/tlsrpt.schema.json and its counts are the sessions the log
shows:
- dmis.sig.test: DANE, TLSA of another key -> policy-type tlsa, every deferred
  attempt one validation-failure session;
- dok.sig.test: DANE match -> tlsa, one successful session;
- tst.plain.test: MTA-STS testing, a certificate for another name -> sts, the
  policy text, one certificate-host-mismatch (delivered all the same);
- opp.plain.test: nothing -> no-policy-found, one successful session.
The rua domain rua.plain.test publishes MTA-STS enforce while its MX shows a
certificate for another name: ordinary mail to it is deferred 4.7.5, but the
reports are delivered (RFC 8460 3: "Sending MTAs MUST deliver reports despite
any TLS-related failures and SHOULD NOT include this SMTP session in the next
report") under opportunistic TLS, and their sessions are not in tls_stats."""

import base64
import email
import email.policy
import gzip
import json
import os
import sqlite3
import time

import mxpeers
import mxtest
import tlspeers
from tlspeers import tlsa_311

SRC = os.environ.get("MXRELAY_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA = os.path.join(SRC, "test", "data", "tlsrpt.schema.json")
RUA = "rpt@rua.plain.test"
FROM = "tlsrpt@sender.plain.test"
RPT_TXT = f'TXT "v=TLSRPTv1; rua=mailto:{RUA}"'

_net = None
_c = {}


def policy(mode, mx):
    return f"version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"


def net():
    global _net
    if _net is None:
        n = tlspeers.TlsNet()
        other = n.leaf("other.plain.test")                 # valid chain, another name
        dok = n.leaf("mx.dok.sig.test", self_signed=True)
        dmis = n.leaf("mx.dmis.sig.test", self_signed=True)
        _c.update(other=other, dok=dok, dmis=dmis, opp=n.leaf("mx.opp.plain.test"))
        n.set_zones({
            "sig.test": [
                "dmis MX 10 mx.dmis", "mx.dmis A 127.0.0.51",
                "_25._tcp.mx.dmis TLSA " + tlsa_311(other),   # another key: no match
                "dok MX 10 mx.dok", "mx.dok A 127.0.0.52",
                "_25._tcp.mx.dok TLSA " + tlsa_311(dok),
                "_smtp._tls.dmis " + RPT_TXT, "_smtp._tls.dok " + RPT_TXT,
            ],
            "plain.test": [
                "tst MX 10 mx.tst", "mx.tst A 127.0.0.53",
                '_mta-sts.tst TXT "v=STSv1; id=1"', "mta-sts.tst A 127.0.0.63",
                "_smtp._tls.tst " + RPT_TXT,
                "opp MX 10 mx.opp", "mx.opp A 127.0.0.55", "_smtp._tls.opp " + RPT_TXT,
                "rua MX 10 mx.rua", "mx.rua A 127.0.0.54",
                '_mta-sts.rua TXT "v=STSv1; id=7"', "mta-sts.rua A 127.0.0.64",
            ],
        })
        _c["sts-tst"] = n.https("mta-sts.tst.plain.test", "127.0.0.63",
                                body=policy("testing", "mx.tst.plain.test"), keep=True)
        _c["sts-rua"] = n.https("mta-sts.rua.plain.test", "127.0.0.64",
                                body=policy("enforce", "mx.rua.plain.test"), keep=True)
        _net = n
    return _net


def mx(name, host, cert):
    return {name: {"host": host, "hostname": name, "tls": {"cert": cert.chain, "key": cert.key}}}


def delivery(d, qid, status, n=1):
    return mxpeers.wait_event(d, "delivery", qid=qid, status=status, n=n, timeout=30)


def report_of(msg):
    """The JSON report inside one TLS-RPT message (RFC 8460 5.3), checked against the schema."""
    import jsonschema
    m = email.message_from_bytes(msg.data, policy=email.policy.default)
    assert m.get_content_type() == "multipart/report" and m.get_param("report-type") == "tlsrpt"
    (part,) = [p for p in m.iter_parts() if p.get_content_type() == "application/tlsrpt+gzip"]
    doc = json.loads(gzip.decompress(base64.b64decode(part.get_payload())))
    with open(SCHEMA) as f:
        jsonschema.validate(doc, json.load(f))
    return doc


def one_policy(doc, ptype):
    pols = [p for p in doc["policies"] if p["policy"]["policy-type"] == ptype]
    assert len(pols) == 1, doc
    return pols[0]


def failures(pol):
    return sorted((f["result-type"], f["failed-session-count"])
                  for f in pol.get("failure-details", []))


def test_reports_from_real_deliveries_and_reports_despite_tls_failures():
    n = net()
    s = n.sinks({**mx("mx.dmis.sig.test", "127.0.0.51", _c["dmis"]),
                 **mx("mx.dok.sig.test", "127.0.0.52", _c["dok"]),
                 **mx("mx.tst.plain.test", "127.0.0.53", _c["other"]),
                 **mx("mx.opp.plain.test", "127.0.0.55", _c["opp"]),
                 **mx("mx.rua.plain.test", "127.0.0.54", _c["other"])})
    key, _ = tlspeers.dkim_key(FROM.split("@")[1])  # RFC 8460 3: mailed reports are signed
    d = n.relay(conf={"tlsrpt_from": FROM, "dkim_key": f"{FROM.split('@')[1]} rpt {key}"})
    # ---- day 1: real deliveries, counted by the daemon
    q = {dom: n.submit(d, [f"user@{dom}"]) for dom in
         ("dok.sig.test", "tst.plain.test", "opp.plain.test", "dmis.sig.test")}
    for dom in ("dok.sig.test", "tst.plain.test", "opp.plain.test"):
        delivery(d, q[dom], "sent")
    delivery(d, q["dmis.sig.test"], "deferred", n=2)
    d.stop()                                  # the tlsstats flush at exit writes the rows
    dmis_tries = mxpeers.events(d, "delivery", qid=q["dmis.sig.test"], status="deferred")
    assert all(e["dsn"] == "4.7.5" and e["tls_policy"] == "dane" for e in dmis_tries)
    ev = mxpeers.events(d, "delivery", qid=q["tst.plain.test"])[0]
    assert ev["tls_policy"] == "mta-sts" and ev["tls_verified"] == "no", ev
    today = int(time.time()) // 86400
    yday = today - 1
    con_rows = d.query("SELECT domain, policy, sessions_ok, sessions_failed, delivered "
                       "FROM tls_stats WHERE day = ? AND mx <> '' ORDER BY domain", (today,))
    assert {r["domain"] for r in con_rows} == {
        "dmis.sig.test", "dok.sig.test", "tst.plain.test", "opp.plain.test"}, con_rows
    con = sqlite3.connect(os.path.join(d.data_dir, "spool.db"), timeout=10)
    for table in ("tls_stats", "tls_failures"):
        con.execute(f"UPDATE {table} SET day = ? WHERE day = ?", (yday, today))
    con.commit()
    con.close()
    # ---- day 2: the reports, and ordinary mail to the rua domain
    s_before = len(s.messages("mx.rua.plain.test"))
    d.start()
    normal = n.submit(d, ["ops@rua.plain.test"])
    day = time.strftime("%Y-%m-%d", time.gmtime(yday * 86400))
    p = mxtest.run([mxtest.MXRELAYCTL, "tls", "send-reports", "--day", day, "--json",
                    "-c", d.conf_path], timeout=60, check=0)
    res = json.loads(p.stdout)
    assert res["sent"] == 4 and res["failed"] == 0, res
    ev = delivery(d, normal, "deferred")[0]
    assert ev["dsn"] == "4.7.5" and ev["tls_policy"] == "mta-sts", ev   # enforce holds
    msgs = s.wait_messages(s_before + 4, "mx.rua.plain.test", timeout=30)
    assert all(m.rcpts == [RUA] for m in msgs), [m.rcpts for m in msgs]
    assert all(m.tls for m in msgs), "a report went in plaintext although TLS was offered"
    for e in mxpeers.events(d, "tlsrpt_queued"):
        (dev,) = delivery(d, e["qid"], "sent")
        assert dev["tls_policy"] == "opportunistic" and dev["tls_verified"] == "no", dev
    docs = {}
    for m in msgs:
        doc = report_of(m)
        assert doc["date-range"]["start-datetime"] == day + "T00:00:00Z", doc
        (pol,) = {p["policy"]["policy-domain"] for p in doc["policies"]}
        docs[pol] = doc
    assert sorted(docs) == ["dmis.sig.test", "dok.sig.test", "opp.plain.test",
                            "tst.plain.test"], docs
    tlsa = one_policy(docs["dmis.sig.test"], "tlsa")
    assert tlsa["policy"]["mx-host"] == ["mx.dmis.sig.test"], tlsa
    assert tlsa["summary"] == {"total-successful-session-count": 0,
                               "total-failure-session-count": len(dmis_tries)}, tlsa
    assert failures(tlsa) == [("validation-failure", len(dmis_tries))], tlsa
    good = one_policy(docs["dok.sig.test"], "tlsa")
    assert good["summary"] == {"total-successful-session-count": 1,
                               "total-failure-session-count": 0}, good
    assert failures(good) == [], good
    sts = one_policy(docs["tst.plain.test"], "sts")
    assert "mode: testing" in sts["policy"]["policy-string"], sts
    assert failures(sts) == [("certificate-host-mismatch", 1)], sts
    # one session, delivered under testing but failed the policy: one failure, no success
    assert sts["summary"] == {"total-successful-session-count": 0,
                              "total-failure-session-count": 1}, sts
    opp = one_policy(docs["opp.plain.test"], "no-policy-found")
    assert opp["summary"] == {"total-successful-session-count": 1,
                              "total-failure-session-count": 0}, opp
    # ---- the reports' own sessions are in no counter (RFC 8460 3)
    d.stop()
    rows = d.query("SELECT policy, sessions_ok, sessions_failed, delivered FROM tls_stats "
                   "WHERE domain = 'rua.plain.test'")
    assert sum(r["delivered"] for r in rows) == 0, rows
    assert sum(r["sessions_ok"] for r in rows) == 0, rows
    fails = d.query("SELECT policy, result_type FROM tls_failures "
                    "WHERE domain = 'rua.plain.test'")
    assert {(f["policy"], f["result_type"]) for f in fails} == {
        ("mta-sts", "certificate-host-mismatch")}, fails


if __name__ == "__main__":
    mxtest.main()
