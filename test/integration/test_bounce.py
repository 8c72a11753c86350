#!/usr/bin/python3
"""Permanent failures and their RFC 3464 DSNs, delivered for real to the
sender's MX sink (mx.sender.dlv.test) and parsed with python's email package.

Covered: a 5xx RCPT reply (DSN with Final-Recipient, Action: failed, Status
5.1.1, Diagnostic-Code holding the remote reply, Remote-MTA, original headers;
null envelope sender; the accepted recipient not listed), a DSN that itself
fails (no second DSN), null MX (5.1.10), NXDOMAIN (5.1.2), max_queue_lifetime
expiry (4.4.7 / 5.4.7), 8-bit content to a server without 8BITMIME (5.6.3),
SMTPUTF8 content to one without SMTPUTF8 (5.6.7), SIZE exceeded (5.3.4)."""

import email
import email.policy
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, SENDER, submit, events, wait_event, wait_gone  # noqa: E402


class Dsn:
    """A DSN as received by the sender's sink, taken apart."""

    def __init__(self, m):
        self.m = m
        self.msg = email.message_from_bytes(m.data, policy=email.policy.compat32)
        msg = self.msg
        ctype = msg.get_content_type()
        assert ctype == "multipart/report", f"DSN Content-Type {ctype!r}:\n{m.data[:800]!r}"
        assert msg.get_param("report-type") == "delivery-status", \
            f"report-type {msg.get_param('report-type')!r}"
        self.parts = msg.get_payload()
        types = [p.get_content_type() for p in self.parts]
        assert len(self.parts) in (2, 3) and types[0] == "text/plain" and \
            types[1] == "message/delivery-status", f"DSN parts: {types}"
        self.text = self.parts[0].get_payload(decode=True).decode("utf-8", "replace")
        blocks = self.parts[1].get_payload()
        assert isinstance(blocks, list) and len(blocks) >= 2, \
            f"delivery-status needs per-message fields and at least one recipient block: {blocks!r}"
        self.per_msg = blocks[0]
        self.rcpts = blocks[1:]
        self.original = self.parts[2] if len(self.parts) == 3 else None
        self.orig_type = types[2] if len(types) == 3 else None

    def rcpt(self, addr):
        for b in self.rcpts:
            fr = b.get("Final-Recipient", "")
            if fr.split(";", 1)[-1].strip().lower() == addr.lower():
                return b
        raise AssertionError(f"no recipient block for {addr}: "
                             f"{[b.get('Final-Recipient') for b in self.rcpts]}")

    def original_headers(self):
        """The returned original header block (text/rfc822-headers or message/rfc822)."""
        assert self.original is not None, "the DSN does not return the original headers"
        if self.orig_type == "text/rfc822-headers":
            return self.original.get_payload(decode=True)
        if self.orig_type == "message/rfc822":
            inner = self.original.get_payload()[0]
            return inner.as_bytes()
        raise AssertionError(f"third part is {self.orig_type}")


def unfold(v):
    return re.sub(r"\r?\n[ \t]+", " ", v or "").strip()


def wait_dsn(sinks, n=1, timeout=20):
    ms = sinks.wait_messages(n, "mx.sender", timeout=timeout)
    return [Dsn(m) for m in ms]


def check_dsn_envelope(m, to=SENDER):
    assert m.mail_from in ("", "<>"), f"DSN envelope sender {m.mail_from!r}, expected <>"
    assert m.rcpts == [to], f"DSN went to {m.rcpts}, expected [{to}]"


def test_5xx_gives_dsn_to_sender():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks)
    bad, good = f"perm-zed@sink.{ZONE}", f"ok@sink.{ZONE}"
    msgid = f"<{time.time_ns()}.dsn@client.test.example>"
    orig = mxtest.message(SENDER, bad, "will bounce", "this body is not returned\r\n",
                          msgid=False, headers=[f"Message-ID: {msgid}", "X-Trace: bounce-1"])
    qid = submit(d, [bad, good], orig)
    (ok,) = sinks.wait_messages(1, "mx.sink")
    assert ok.rcpts == [good]
    (dsn,) = wait_dsn(sinks)
    check_dsn_envelope(dsn.m)
    wait_gone(d, qid)
    (ev,) = events(d, "delivery", qid=qid, to=f"<{bad}>")
    assert ev["status"] == "bounced" and ev["dsn"] == "5.1.1", ev["_line"]
    (b,) = events(d, "bounce", qid=qid)
    bq = b["bounce_qid"]
    assert b["to"] == f"<{SENDER}>" and b.get("failed") == "1", b["_line"]
    wait_gone(d, bq)
    (bev,) = events(d, "delivery", qid=bq)
    assert bev["status"] == "sent" and bev["to"] == f"<{SENDER}>", bev["_line"]

    h = dsn.msg
    assert SENDER in (h["To"] or ""), f"DSN To: {h['To']}"
    assert h["From"] and h["Subject"] and h["Date"] and h["Message-ID"], \
        f"DSN lacks From/Subject/Date/Message-ID: {dict(h.items())}"
    assert "Reporting-MTA" in dsn.per_msg and mxtest.HOSTNAME in dsn.per_msg["Reporting-MTA"], \
        f"Reporting-MTA: {dsn.per_msg.get('Reporting-MTA')}"
    assert len(dsn.rcpts) == 1, f"only {bad} failed; the DSN lists {len(dsn.rcpts)} recipients"
    r = dsn.rcpt(bad)
    assert r["Final-Recipient"].split(";")[0].strip().lower() == "rfc822", r["Final-Recipient"]
    assert r["Action"].strip().lower() == "failed", r["Action"]
    assert r["Status"].strip() == "5.1.1", r["Status"]
    diag = unfold(r["Diagnostic-Code"])
    assert diag.lower().startswith("smtp;") and "550 5.1.1" in diag and "no such user here (sink)" in diag, \
        f"Diagnostic-Code should carry the remote reply: {diag!r}"
    assert "mx.sink." + ZONE in (r["Remote-MTA"] or ""), f"Remote-MTA: {r['Remote-MTA']}"
    hdrs = dsn.original_headers()
    for want in (b"Subject: will bounce", f"Message-ID: {msgid}".encode(), b"X-Trace: bounce-1"):
        assert want in hdrs, f"original header {want!r} not returned: {hdrs!r}"
    assert b"this body is not returned" not in dsn.m.data or dsn.orig_type == "message/rfc822"


def test_failed_dsn_gives_no_second_dsn():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks)
    sender = f"perm-bouncer@sender.{ZONE}"     # the sender's MX refuses this mailbox too
    qid = submit(d, [f"perm-x@sink.{ZONE}"], sender=sender)
    (b,) = wait_event(d, "bounce", qid=qid)
    bq = b["bounce_qid"]
    (bev,) = wait_event(d, "delivery", qid=bq)
    assert bev["status"] == "bounced" and bev["to"] == f"<{sender}>", bev["_line"]
    wait_gone(d, qid)
    wait_gone(d, bq)
    mails = sinks.events("mail", "mx.sender")
    assert [e["addr"] for e in mails] in ([""], ["<>"]), f"MAIL FROM at the sender's MX: {mails}"
    time.sleep(1.2)   # longer than a retry_min: any second DSN would be on its way
    assert len(events(d, "bounce")) == 1, "a DSN was sent about a failed DSN:\n" + \
        "\n".join(e["_line"] for e in events(d, "bounce"))
    assert sinks.messages("mx.sender") == [] and len(sinks.events("mail", "mx.sender")) == 1
    assert d.count() == 0


def _dsn_for(d, sinks, rcpt, status, reply_has):
    qid = submit(d, [rcpt])
    (ev,) = wait_event(d, "delivery", qid=qid)
    assert ev["status"] == "bounced" and ev["dsn"] == status, ev["_line"]
    assert reply_has in ev["reply"], f"reply should mention {reply_has!r}: {ev['_line']}"
    (dsn,) = wait_dsn(sinks)
    check_dsn_envelope(dsn.m)
    r = dsn.rcpt(rcpt)
    assert r["Action"].strip().lower() == "failed" and r["Status"].strip() == status, \
        f"Action {r['Action']!r}, Status {r['Status']!r}"
    wait_gone(d, qid)
    mxpeers.wait_spool_empty(d)
    return dsn


def test_null_mx_bounces_5_1_10():
    sinks = mxpeers.Sinks({}).start()
    d = mxpeers.relay(sinks)
    _dsn_for(d, sinks, f"nobody@nullmx.{ZONE}", "5.1.10", "null MX")


def test_nxdomain_bounces_5_1_2():
    sinks = mxpeers.Sinks({}).start()
    d = mxpeers.relay(sinks)
    _dsn_for(d, sinks, f"ghost@nx.{ZONE}", "5.1.2", "NXDOMAIN")


def test_queue_lifetime_expiry_bounces():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = mxpeers.relay(sinks, {"max_queue_lifetime": "4s"})
    rcpt = f"tempforever-tom@sink.{ZONE}"
    t0 = time.monotonic()
    qid = submit(d, [rcpt])
    (b,) = wait_event(d, "bounce", qid=qid, timeout=20)
    took = time.monotonic() - t0
    evs = events(d, "delivery", qid=qid)
    lines = "\n".join(repr(e["_line"]) for e in evs)
    # the relay of every line is the MX tried (for the expiry line: the last one, or
    # none), never garbage; garbage here has been freed memory (deliver.c job_finish)
    sink_relay = f"mx.sink.{ZONE}[{mxpeers.host_ip('mx.sink')}]:{sinks.port}"
    for e in evs:
        assert e.get("relay") in ("none", sink_relay) and \
            re.search(r" relay=\S+ delay=[\d.]+ attempt_time=", e["_line"]), \
            f"relay= should be {sink_relay} or none:\n{lines}"
    assert [e.get("status") for e in evs[:-1]] == ["deferred"] * (len(evs) - 1) and len(evs) >= 2, \
        lines
    last = evs[-1]
    assert last.get("status") == "bounced" and last.get("dsn") in ("4.4.7", "5.4.7"), lines
    assert 3.5 <= took < 15, f"max_queue_lifetime = 4s, bounced after {took:.1f}s"
    (dsn,) = wait_dsn(sinks)
    check_dsn_envelope(dsn.m)
    r = dsn.rcpt(rcpt)
    assert r["Action"].strip().lower() == "failed", r["Action"]
    assert r["Status"].strip() in ("4.4.7", "5.4.7"), f"Status {r['Status']!r} for an expired message"
    diag = unfold(r.get("Diagnostic-Code", ""))
    assert "451 4.2.0" in diag, f"Diagnostic-Code should carry the last remote reply: {diag!r}"
    if r["Remote-MTA"] is not None:
        assert unfold(r["Remote-MTA"]) == f"dns; mx.sink.{ZONE}", \
            f"Remote-MTA of the expired recipient: {r['Remote-MTA']!r}"
    mxpeers.wait_spool_empty(d)


def test_8bit_to_server_without_8bitmime():
    sinks = mxpeers.Sinks({"mx.no8bit": {"drop": ["8BITMIME"]}}).start()
    d = mxpeers.relay(sinks)
    # control: 7-bit mail goes through
    q7 = submit(d, [f"seven@no8bit.{ZONE}"])
    sinks.wait_messages(1, "mx.no8bit")
    wait_gone(d, q7)
    assert "8BITMIME" not in sinks.events("ehlo", "mx.no8bit")[0]["exts"]
    rcpt = f"eight@no8bit.{ZONE}"
    body = mxtest.message(SENDER, rcpt, "8bit", "Gr\u00fc\u00dfe aus K\u00f6ln\r\n").encode("utf-8")
    qid = submit(d, [rcpt], body, mail_options=["BODY=8BITMIME"])
    (ev,) = wait_event(d, "delivery", qid=qid)
    assert ev["status"] == "bounced" and ev["dsn"] == "5.6.3", ev["_line"]
    (dsn,) = wait_dsn(sinks)
    check_dsn_envelope(dsn.m)
    assert dsn.rcpt(rcpt)["Status"].strip() == "5.6.3"
    assert len(sinks.messages("mx.no8bit")) == 1, "the 8-bit message reached the 7-bit server"
    assert len(sinks.events("mail", "mx.no8bit")) == 1, "a transaction was started for the 8-bit message"
    mxpeers.wait_spool_empty(d)


def test_smtputf8_to_server_without_smtputf8():
    sinks = mxpeers.Sinks({"mx.noutf8": {"drop": ["SMTPUTF8"]}}).start()
    d = mxpeers.relay(sinks)
    rcpt = f"j\u00fcrgen@noutf8.{ZONE}"
    body = mxtest.message(SENDER, rcpt, "utf8", "Hallo J\u00fcrgen\r\n").encode("utf-8")
    qid = submit(d, [rcpt], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    (ev,) = wait_event(d, "delivery", qid=qid)
    assert ev["status"] == "bounced" and ev["dsn"] == "5.6.7", ev["_line"]
    (dsn,) = wait_dsn(sinks)
    check_dsn_envelope(dsn.m)
    assert len(dsn.rcpts) == 1 and dsn.rcpts[0]["Status"].strip() == "5.6.7", \
        [dict(b.items()) for b in dsn.rcpts]
    assert sinks.messages("mx.noutf8") == []
    mxpeers.wait_spool_empty(d)


def test_size_over_server_limit():
    sinks = mxpeers.Sinks({"mx.small": {"size": 2000}}).start()
    d = mxpeers.relay(sinks)
    rcpt = f"big@small.{ZONE}"
    qid = submit(d, [rcpt], mxtest.message(SENDER, rcpt, "big", ("y" * 70 + "\r\n") * 80))
    (ev,) = wait_event(d, "delivery", qid=qid)
    assert ev["status"] == "bounced" and ev["dsn"] == "5.3.4", ev["_line"]
    (dsn,) = wait_dsn(sinks)
    assert dsn.rcpt(rcpt)["Status"].strip() == "5.3.4"
    assert sinks.messages("mx.small") == [] and not sinks.events("mail", "mx.small")
    mxpeers.wait_spool_empty(d)


if __name__ == "__main__":
    mxtest.main()
