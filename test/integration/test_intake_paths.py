#!/usr/bin/python3
"""One intake path: the same messages through SMTP (smtplib) and through local
submission (the mxrelay-sendmail binary, and the submit socket's own wire
form with the bytes exactly as given) must meet the same fate: accepted, or
refused with the same reply code and enhanced status code (RFC 3463), and
counted alike in mxrelay_accepted_total / mxrelay_rejected_total{reason}.

Messages: good plain, good DKIM-signed domain (stored with a signature on
both paths), bare CR inside a line, bare LF inside a line, NUL, two From
headers, From group, From with two mailboxes, no From (missing_from =
refuse), oversize, a header over max_header_size, an over-long line, a
header From domain without a DKIM key and an envelope sender domain without
one (dkim_unsigned = refuse).

mxrelay-sendmail reads Unix text, so three messages cannot reach the daemon
through the binary unchanged: it turns every LF into CRLF (a bare LF is a
line end to it), adds a From header when there is none (sendmail(8)), and
refuses a message over the daemon's size itself (exit 65). For those the
binary's own documented outcome is checked, and the submit socket carries
the identical bytes to the daemon."""

import json
import os
import re
import smtplib
import socket
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

SENDMAIL = os.environ.get("MXRELAY_SENDMAIL") or os.path.join(mxtest.SRC, "build", "tools",
                                                               "mxrelay-sendmail")
SIGNED = "signed.example"
RCPT = "rcpt@example.net"
MAX_MSG = 16384
MAX_HDR = 2048
CODE_RE = re.compile(r"\((\d{3}) (\d\.\d{1,3}\.\d{1,3})\)\s*$")


def _daemon(key, conf):
    def make():
        tmp = mxtest.tmpdir()
        c = {"metrics_listen": f"127.0.0.1:{mxtest.free_port()}",
             "max_message_size": str(MAX_MSG), "max_header_size": str(MAX_HDR),
             "missing_from": "refuse"}
        c.update(conf(tmp))
        return mxtest.Daemon(tmp=tmp, shared=True, conf=c,
                             # the submit socket is strict about bare CR/LF: so is this
                             # listener (bare_lf = normalize has test_bare_lf.py)
                             listeners={"main": {"tls": "none", "bare_lf": "reject"}}).start()
    return mxtest.shared_daemon(key, make)


def plain_daemon():
    return _daemon("plain", lambda tmp: {})


def dkim_daemon():
    def conf(tmp):
        path = os.path.join(tmp, "signed.pem")
        mxtest.run([mxtest.MXRELAYCTL, "dkim", "keygen", SIGNED, "s1", "--type", "ed25519",
                    "--out", path], timeout=60, check=0)
        return {"dkim_key": f"{SIGNED} s1 {path}", "dkim_unsigned": "refuse",
                "dkim_require_published": "no"}
    return _daemon("dkim", conf)


def msg(head, body=b"hello\r\n"):
    """head: header lines (bytes, without line ends), joined with CRLF."""
    return b"\r\n".join(head) + b"\r\n\r\n" + body


STD = [b"To: <rcpt@example.net>", b"Subject: intake paths",
       b"Date: Mon, 01 Jan 2024 10:00:00 +0000"]


def frm(addr):
    return [b"From: <" + addr.encode() + b">"] + STD


# ---- the three routes: each returns ("accepted", qid) or ("refused", "550 5.6.0")

def via_smtp(d, sender, data):
    s = smtplib.SMTP("127.0.0.1", d.port(), timeout=20)
    try:
        s.ehlo("paths.test.example")
        code, resp = s.mail(sender)
        if code != 250:
            return ("refused", _code(code, resp))
        code, resp = s.rcpt(RCPT)
        if code != 250:
            return ("refused", _code(code, resp))
        code, resp = s.data(data)
        m = mxtest.QUEUED_RE.match(f"{code} {resp.decode()}")
        return ("accepted", m.group(1)) if m else ("refused", _code(code, resp))
    finally:
        s.close()


def _code(code, resp):
    return f"{code} {resp.decode('utf-8', 'replace').split()[0]}"


def via_sendmail(d, sender, data):
    sock = os.path.join(d.data_dir, "submit.sock")
    mxtest.wait_for(lambda: os.path.exists(sock), 20, what="the submit socket")
    # the binary reads Unix text: the same message with LF line ends
    p = mxtest.run([SENDMAIL, "-C", d.conf_path, "-f", sender, "-v", RCPT],
                   input=data.replace(b"\r\n", b"\n"), timeout=30)
    if p.returncode == 0:
        m = re.search(r"queued as ([0-9A-Fa-f]{16})", p.stdout)
        assert m, f"sendmail exit 0 without a queue id: {p.stdout!r}"
        return ("accepted", m.group(1))
    m = CODE_RE.search(p.stderr)
    return ("refused", m.group(1) + " " + m.group(2) if m else f"exit {p.returncode}")


def via_socket(d, sender, data):
    """The submit socket's protocol, as the binary speaks it, with the bytes as given."""
    stuffed = re.sub(rb"(^|\n)\.", rb"\1..", data)
    req = (f"SUBMIT\nFROM {sender}\nTO {RCPT}\nDATA {len(stuffed)}\n").encode() + stuffed
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(20)
        c.connect(os.path.join(d.data_dir, "submit.sock"))
        c.sendall(req)
        out = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            out += b
    mxtest.note(f"  submit socket: {out!r}")
    doc = json.loads(out)
    if "queued" in doc:
        return ("accepted", doc["queued"])
    return ("refused", doc.get("code") or "no code")


# ---- counters

def counters(d):
    with urllib.request.urlopen(f"http://{d.conf['metrics_listen']}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for ln in text.splitlines():
        m = re.match(r"^(mxrelay_(?:accepted|rejected)_total(?:\{[^}]*\})?) (\S+)$", ln)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def delta(d, fn, *args):
    """fn's outcome, the counters it moved, and its intake log events (event, reason)."""
    before, mark = counters(d), d._log_size()
    res = fn(d, *args)
    after = counters(d)
    events = [(m.group(1), m.group(2)) for ln in d.grep(r"event=(accepted|rejected)", mark)
              for m in [re.search(r'event=(accepted|rejected) .*?(?:reason="([^"]*)")?$', ln)]]
    if res[0] == "accepted":
        assert d.grep(rf"qid={res[1]} event=accepted ", mark), f"no event=accepted for {res[1]}"
    moved = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    return res, moved, events


def check_case(d, label, sender, data, expect, binary=None):
    """expect: "accepted" or "CODE X.Y.Z"; binary: the binary's own outcome when it
    cannot carry these bytes unchanged (None: the same as the daemon's)."""
    got = {}
    for name, fn in (("smtp", via_smtp), ("socket", via_socket), ("sendmail", via_sendmail)):
        (kind, val), counted, events = delta(d, fn, sender, data)
        got[name] = ("accepted" if kind == "accepted" else val, counted, val, events)
    smtp, sock, bin_ = got["smtp"], got["socket"], got["sendmail"]
    # intake logs both doors alike (a refusal at MAIL FROM is smtpd's own and logs none)
    if smtp[3]:
        assert sock[3] == smtp[3], f"{label}: submit logged {sock[3]}, SMTP {smtp[3]}"
    assert smtp[0] == expect, f"{label}: SMTP gave {smtp[0]}, expected {expect}"
    assert sock[0] == smtp[0], f"{label}: submit gave {sock[0]}, SMTP {smtp[0]}"
    assert sock[1] == smtp[1], f"{label}: submit counted {sock[1]}, SMTP {smtp[1]}"
    if binary is None:
        assert bin_[0] == smtp[0], f"{label}: mxrelay-sendmail gave {bin_[0]}, SMTP {smtp[0]}"
        assert bin_[1] == smtp[1], f"{label}: mxrelay-sendmail counted {bin_[1]}, SMTP {smtp[1]}"
    else:
        assert bin_[0] == binary, f"{label}: mxrelay-sendmail gave {bin_[0]}, expected {binary}"
    return {k: v[2] for k, v in got.items()}


# ---- the messages

def test_good_plain():
    d = plain_daemon()
    ids = check_case(d, "good plain", "dev@plain.example", msg(frm("dev@plain.example")),
                     "accepted")
    for route in ("smtp", "socket", "sendmail"):
        body = d.message(ids[route])["body"]
        assert b"DKIM-Signature" not in body, f"{route}: signed without a key"
        assert re.search(rb"^Message-ID: ", body, re.M), f"{route}: no Message-ID added"


def test_good_dkim_signed():
    d = dkim_daemon()
    sender = f"cron@{SIGNED}"
    ids = check_case(d, "good DKIM", sender, msg(frm(sender)), "accepted")
    for route in ("smtp", "socket", "sendmail"):
        body = d.message(ids[route])["body"]
        assert body.startswith(b"DKIM-Signature:") and f"d={SIGNED}".encode() in body, \
            f"{route}: not signed on top: {body[:200]!r}"


def test_bare_cr_inside():
    d = plain_daemon()
    check_case(d, "bare CR", "dev@plain.example",
               msg(frm("dev@plain.example"), b"one\rtwo\r\n"), "550 5.6.0")


def test_bare_lf_inside():
    d = plain_daemon()
    # the binary reads the LF as a line end (Unix text): it delivers two clean lines
    check_case(d, "bare LF", "dev@plain.example",
               msg(frm("dev@plain.example"), b"one\ntwo\r\n"), "550 5.6.0", binary="accepted")


def test_nul():
    d = plain_daemon()
    check_case(d, "NUL", "dev@plain.example",
               msg(frm("dev@plain.example"), b"one\0two\r\n"), "550 5.6.0")


def test_two_from():
    d = plain_daemon()
    head = [b"From: <dev@plain.example>", b"From: <boss@plain.example>"] + STD
    check_case(d, "two From", "dev@plain.example", msg(head), "550 5.7.1")


def test_from_group():
    d = plain_daemon()
    check_case(d, "From group", "dev@plain.example",
               msg([b"From: undisclosed-recipients:;"] + STD), "550 5.7.1")


def test_from_two_mailboxes():
    d = plain_daemon()
    check_case(d, "From two mailboxes", "dev@plain.example",
               msg([b"From: <dev@plain.example>, <boss@plain.example>"] + STD), "550 5.7.1")


def test_no_from_refused():
    d = plain_daemon()
    # sendmail(8) adds From: SENDER to a message without one, so the binary's is accepted
    check_case(d, "no From", "dev@plain.example", msg(STD), "550 5.7.1", binary="accepted")


def test_oversize():
    d = plain_daemon()
    body = (b"x" * 78 + b"\r\n") * (2 * MAX_MSG // 80)
    # the binary knows the limit (INFO) and refuses before sending: EX_DATAERR
    check_case(d, "oversize", "dev@plain.example", msg(frm("dev@plain.example"), body),
               "552 5.3.4", binary="exit 65")


def test_header_over_max_header_size():
    d = plain_daemon()
    pad = [b"X-Pad-%d: " % i + b"p" * 70 for i in range(MAX_HDR // 60)]
    check_case(d, "header size", "dev@plain.example", msg(frm("dev@plain.example") + pad),
               "552 5.3.4")


def test_over_long_line():
    d = plain_daemon()
    check_case(d, "long line", "dev@plain.example",
               msg(frm("dev@plain.example"), b"y" * 1200 + b"\r\n"), "550 5.6.0")


def test_unsigned_header_from_refused():
    d = dkim_daemon()
    check_case(d, "unsigned From", f"cron@{SIGNED}", msg(frm("dev@unsigned.example")),
               "550 5.7.1")


def test_unsigned_envelope_sender_refused():
    d = dkim_daemon()
    # SMTP refuses it at MAIL FROM; local submission must not let it through either
    check_case(d, "unsigned sender", "dev@unsigned.example", msg(frm(f"cron@{SIGNED}")),
               "550 5.7.1")


def submit_raw(d, req):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(20)
        c.connect(os.path.join(d.data_dir, "submit.sock"))
        c.sendall(req)
        out = b""
        while (b := c.recv(65536)):
            out += b
    mxtest.note(f"  submit socket: {out!r}")
    return json.loads(out)


def test_submit_envelope_refusals():
    """The envelope replies of the submit socket, from the reply table, byte for byte."""
    d = dkim_daemon()
    cases = [
        (b"SUBMIT\nFROM <a@signed.example>\nFROM <b@signed.example>\n",
         "503 5.5.1", "FROM given twice"),
        (b"SUBMIT\nDATA 5\n", "503 5.5.1", "FROM and at least one TO come before DATA"),
        (b"SUBMIT\nFROM <a@signed.example>\nTO <b@example.net>\nDATA x\n",
         "501 5.5.4", "DATA needs the size in octets"),
        (b"SUBMIT\nHELO x\n", "500 5.5.2", 'Unknown envelope line "HELO"'),
        (b"SUBMIT\nFROM <a@@x>\n", "553 5.1.7", "Bad sender address <<a@@x>>: "),
        (b"SUBMIT\nFROM <a@signed.example>\nTO <b@[192.0.2.1]>\n", "550 5.1.2",
         "<b@[192.0.2.1]>: Address literals are not relayed (no route for them)"),
        (b"SUBMIT\nFROM <a@unsigned.example>\n", "550 5.7.1",
         "<a@unsigned.example>: no DKIM key for this sender domain; mail from it is not "
         "relayed unsigned"),
        (b"SUBMIT\nFROM <a@signed.example>\nTO <b@example.net>\nDATA 99999999\n",
         "552 5.3.4", "Message size exceeds fixed limit"),
    ]
    for req, code, text in cases:
        doc = submit_raw(d, req)
        assert doc.get("code") == code, f"{req!r}: {doc}"
        assert doc.get("error", "").startswith(text), f"{req!r}: {doc}"


if __name__ == "__main__":
    mxtest.main()
