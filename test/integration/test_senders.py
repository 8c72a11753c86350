#!/usr/bin/python3
"""Allowed senders (issue 15 item 2): local parts compare case-insensitively
(Exchange treats Scans@ and scans@ as one mailbox) unless sender_case =
sensitive; domains compare by A-label, so an IDN entry matches its xn-- form
and the other way round. Real clients: Python smtplib and raw sockets."""

import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

SENDERS = "scans@example.com,@b\u00fccher.example,@xn--caf-dma.example"


def start(case=None):
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"), [("scans", "scan-pw", SENDERS, False)])
    conf = {"credentials": creds, "relay_from": "192.0.2.0/24"}
    if case:
        conf["sender_case"] = case
    return mxtest.Daemon(tmp=tmp, conf=conf, listeners={"sub": {"tls": "starttls"}}).start()


def authed(d):
    s = d.connect("sub")
    s.ehlo()
    s.starttls()
    s.ehlo()
    s.auth_plain("scans", "scan-pw").expect(235, "2.7.0")
    return s


def test_local_part_case_insensitive_by_default():
    d = start()
    s = authed(d)
    s.cmd("MAIL FROM:<Scans@Example.COM>", 250)
    s.cmd("RSET", 250)
    s.cmd("MAIL FROM:<SCANS@example.com>", 250)
    s.cmd("RSET", 250)
    # still exact otherwise
    s.cmd("MAIL FROM:<Scan@example.com>", 553, "5.7.1")
    s.cmd("MAIL FROM:<Scans@example.com.evil.example>", 553, "5.7.1")
    qid = s.mail("Scans@Example.COM", ["far@example.net"],
                 mxtest.message("Scans@Example.COM", "far@example.net", "case"))
    s.quit()
    assert d.message(qid)["auth_user"] == "scans"


def test_smtplib_device_with_capital_sender():
    d = start()
    c = smtplib.SMTP("127.0.0.1", d.port("sub"), timeout=20)
    c.starttls(context=mxtest.client_ctx())
    c.login("scans", "scan-pw")
    msg = mxtest.message("Scans@Example.COM", "far@example.net", "from a copier")
    refused = c.sendmail("Scans@Example.COM", ["far@example.net"], msg)
    c.quit()
    assert refused == {}, refused
    assert d.count(received_only=True) == 1


def test_sender_case_sensitive_keeps_old_rule():
    d = start("sensitive")
    s = authed(d)
    s.cmd("MAIL FROM:<scans@Example.COM>", 250)
    s.cmd("RSET", 250)
    r = s.cmd("MAIL FROM:<Scans@example.com>", 553, "5.7.1")
    assert "not allowed" in r.text, r
    s.quit()
    assert d.wait_log(r"event=sender_refused .*from=\"<Scans@example.com>\"")


def test_idn_entry_matches_a_label():
    d = start()
    s = authed(d)
    # U-label entry @bücher.example, A-label address
    s.cmd("MAIL FROM:<anyone@xn--bcher-kva.example>", 250)
    s.cmd("RSET", 250)
    s.cmd("MAIL FROM:<anyone@XN--BCHER-KVA.example>", 250)
    s.cmd("RSET", 250)
    s.cmd("MAIL FROM:<anyone@bucher.example>", 553, "5.7.1")
    # A-label entry @xn--caf-dma.example, U-label address (SMTPUTF8, RFC 6531)
    s.cmd("MAIL FROM:<anyone@caf\u00e9.example> SMTPUTF8", 250)
    s.cmd("RSET", 250)
    s.cmd("MAIL FROM:<anyone@b\u00fccher.example> SMTPUTF8", 250)
    s.quit()


if __name__ == "__main__":
    mxtest.main()
