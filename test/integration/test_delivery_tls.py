#!/usr/bin/python3
"""Opportunistic STARTTLS on delivery: TLS used when the MX offers it (the
sink sees the TLS session and the SNI = MX host name, the log says
tls=TLSv1.x), plaintext when it is not offered, TLS 1.2 accepted, and a
server that only speaks TLS 1.0/1.1 (below the relay's floor) gets the mail
in plaintext on a second connection to the same host. A tighter tls_policy
loaded by SIGHUP reaches a connection already open: its next message is not
sent over it in plaintext."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, submit, events, wait_gone  # noqa: E402


def delivered(d, qid):
    wait_gone(d, qid)
    (ev,) = events(d, "delivery", qid=qid)
    assert ev["status"] == "sent", ev["_line"]
    return ev


def test_starttls_used_when_offered():
    sinks = mxpeers.Sinks({"mx.tls": {"tls": True}}).start()
    d = mxpeers.relay(sinks)
    qid = submit(d, [f"tina@tls.{ZONE}"])
    (m,) = sinks.wait_messages(1, "mx.tls")
    ev = delivered(d, qid)
    assert m.tls in ("TLSv1.2", "TLSv1.3"), f"the sink saw the message over {m.tls!r}"
    assert ev["tls"] == m.tls, f"log says tls={ev['tls']}, the sink saw {m.tls}: {ev['_line']}"
    assert m.sni == f"mx.tls.{ZONE}", f"SNI at the MX: {m.sni!r} (expected the MX host name)"
    ehlos = sinks.events("ehlo", "mx.tls")
    assert len(ehlos) == 2, f"expected EHLO before and after STARTTLS: {ehlos}"
    mails = sinks.events("mail", "mx.tls")
    assert len(mails) == 1 and len(sinks.events("starttls", "mx.tls")) == 1


def test_plaintext_when_not_offered():
    sinks = mxpeers.Sinks({"mx.plain": {}}).start()
    d = mxpeers.relay(sinks)
    qid = submit(d, [f"paul@plain.{ZONE}"])
    (m,) = sinks.wait_messages(1, "mx.plain")
    ev = delivered(d, qid)
    assert m.tls is None and ev["tls"] == "none", f"sink tls={m.tls}, {ev['_line']}"
    assert not sinks.events("starttls_cmd", "mx.plain"), "STARTTLS sent although not offered"


def test_tls12_only_server():
    sinks = mxpeers.Sinks({"mx.tls": {"tls": {"max": "TLSv1_2"}}}).start()
    d = mxpeers.relay(sinks)
    qid = submit(d, [f"twelve@tls.{ZONE}"])
    (m,) = sinks.wait_messages(1, "mx.tls")
    ev = delivered(d, qid)
    assert m.tls == "TLSv1.2" and ev["tls"] == "TLSv1.2", f"sink {m.tls}, {ev['_line']}"


def test_failed_handshake_falls_back_to_plaintext():
    sinks = mxpeers.Sinks({"mx.oldtls": {"tls": {"max": "TLSv1_1"}}}).start()
    d = mxpeers.relay(sinks)
    qid = submit(d, [f"olga@oldtls.{ZONE}"])
    (m,) = sinks.wait_messages(1, "mx.oldtls")
    ev = delivered(d, qid)
    assert m.tls is None and ev["tls"] == "none", f"sink tls={m.tls}, {ev['_line']}"
    assert ev["relay"].startswith(f"mx.oldtls.{ZONE}["), ev["_line"]
    tried = sinks.events("starttls_cmd", "mx.oldtls")
    assert tried and tried[0]["conn"] != m.conn, \
        f"expected a STARTTLS attempt on an earlier connection, then plaintext: {tried}, msg conn {m.conn}"
    assert not sinks.events("starttls", "mx.oldtls"), "a TLS 1.0/1.1 session was established"
    assert sinks.connections("mx.oldtls") == 2, f"{sinks.connections('mx.oldtls')} connections"
    assert events(d, "connect_failed"), "the failed handshake is not logged"


def test_reload_tighter_policy_retires_open_plaintext_connection():
    """Message 1 goes in plaintext (no STARTTLS offered, tls_policy may); the
    connection stays open (idle, 5 s). `tls_policy = D encrypt` + SIGHUP, then
    message 2 to D: deferred 4.7.4, never sent over the old connection."""
    sinks = mxpeers.Sinks({"mx.plain": {}}).start()
    d = mxpeers.relay(sinks)
    q1 = submit(d, [f"una@plain.{ZONE}"])
    (m1,) = sinks.wait_messages(1, "mx.plain")
    assert delivered(d, q1)["tls"] == "none" and m1.tls is None
    mark = d._log_size()
    d.configure(conf={"tls_policy": f"plain.{ZONE} encrypt"})
    d.hup()
    d.wait_log("event=reloaded", since=mark)
    assert sinks.connections("mx.plain") == 1 and not sinks.events("disconnect", "mx.plain"), \
        "message 1's connection should still be open for reuse: " + str(sinks.events())
    q2 = submit(d, [f"vic@plain.{ZONE}"])
    (ev,) = mxpeers.wait_event(d, "delivery", qid=q2, timeout=15)
    assert ev["status"] == "deferred" and ev["dsn"] == "4.7.4", ev["_line"]
    assert ev["tls_policy"] == "encrypt", ev["_line"]
    mails = sinks.events("mail", "mx.plain")
    assert len(mails) == 1 and mails[0]["conn"] == m1.conn, \
        f"message 2 went out in plaintext after the reload: {mails}"
    assert events(d, "conn_retired"), "the old connection was not retired"


if __name__ == "__main__":
    mxtest.main()
