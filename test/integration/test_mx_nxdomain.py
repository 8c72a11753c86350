#!/usr/bin/python3
"""MX host names that do not exist (issue 16): the MX records of a domain name
hosts for which nsd answers NXDOMAIN. Every MX host NXDOMAIN: the recipients
bounce at the first attempt with 5.4.4 (Postfix: "Host or domain name not
found"), a DSN reaches the sender; one host NXDOMAIN and one that exists: the
mail goes to the one that exists; one NXDOMAIN and one whose zone answers
SERVFAIL: a deferral (4.4.3), never a bounce, since the SERVFAIL may pass.

nsd serves the delivery zone of mxpeers plus these names, on loopback only."""

import atexit
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, submit, events, wait_event, wait_gone  # noqa: E402
from test_bounce import Dsn, unfold  # noqa: E402

EXTRA = [
    "nxmx IN MX 10 gone1.nxmx",            # neither host exists
    "nxmx IN MX 20 gone2.nxmx",
    "halfnx IN MX 10 gone.halfnx",         # the best one does not exist, the other does
    "halfnx IN MX 20 mx.sink",
    "nxsf IN MX 10 gone.nxsf",             # one NXDOMAIN, one SERVFAIL (zone without a file)
    f"nxsf IN MX 20 mx.{mxpeers.SERVFAIL_ZONE}.",
]

_nsd = None


def nsd():
    """This file's nsd (the delivery zone plus EXTRA), started once, stopped at exit."""
    global _nsd
    if _nsd is None or not _nsd.alive():
        d = tempfile.mkdtemp(prefix="mxnsd-nx-")
        atexit.register(lambda: shutil.rmtree(d, ignore_errors=True))
        zone = mxpeers.delivery_zone() + "\n".join(EXTRA) + "\n"
        _nsd = mxpeers.Nsd(d, {ZONE: zone, mxpeers.SERVFAIL_ZONE: None}).start()
        atexit.register(_nsd.stop)
    return _nsd


def relay(sinks):
    return mxpeers.relay(sinks, {"dns_servers": f"127.0.0.1:{nsd().port}"})


def test_every_mx_host_nxdomain_bounces_at_once():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks)
    rcpt = f"someone@nxmx.{ZONE}"
    qid = submit(d, [rcpt])
    (ev,) = wait_event(d, "delivery", qid=qid)
    assert ev["status"] == "bounced" and ev["dsn"] == "5.4.4", ev["_line"]
    assert "Host or domain name not found" in ev["reply"] and "NXDOMAIN" in ev["reply"], ev["_line"]
    (m,) = sinks.wait_messages(1, "mx.sender")
    dsn = Dsn(m)
    r = dsn.rcpt(rcpt)
    assert r["Action"].strip().lower() == "failed" and r["Status"].strip() == "5.4.4", r
    assert "Host or domain name not found" in unfold(r["Diagnostic-Code"]), r["Diagnostic-Code"]
    wait_gone(d, qid)
    time.sleep(1.5)   # retry_min is 1 s: a deferral would have come back by now
    assert len(events(d, "delivery", qid=qid)) == 1, "tried more than once"


def test_one_host_nxdomain_other_delivers():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks)
    rcpt = f"half@halfnx.{ZONE}"
    qid = submit(d, [rcpt])
    (m,) = sinks.wait_messages(1, "mx.sink")
    assert m.rcpts == [rcpt], m
    (ev,) = wait_event(d, "delivery", qid=qid)
    assert ev["status"] == "sent", ev["_line"]
    wait_gone(d, qid)


def test_nxdomain_and_servfail_defers():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks)
    rcpt = f"maybe@nxsf.{ZONE}"
    qid = submit(d, [rcpt])
    evs = wait_event(d, "delivery", qid=qid, n=2, timeout=20)
    for ev in evs:
        assert ev["status"] == "deferred" and ev["dsn"].startswith("4."), ev["_line"]
    assert mxpeers.in_spool(d, qid)
    assert not sinks.messages("mx.sender"), "a DSN for a deferral"


if __name__ == "__main__":
    mxtest.main()
