#!/usr/bin/python3
"""The bounce owner's digest at its edges (issue 15 item 5, second review):

- more failures than the digest lists (1000): the digest still goes out,
  its last line "... and N more (not listed)." starting with a "." is
  dot-stuffed inside its own line (it used to be refused as a bare LF and
  every entry was lost);
- dkim_unsigned = refuse on a relay whose hostname has no dkim_key: the
  digest is sent From MAILER-DAEMON@ the owner's domain when that domain
  has a key, signed with it (it used to be refused, "No DKIM key for the
  header From domain"); with a key for neither, mxrelayd -n and the
  start-up log say so (event=bounce_digest_unsigned)."""

import os
import re
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, events, wait_event  # noqa: E402
import test_bounce_owner as tbo  # noqa: E402

KEY_DOM = f"sender.{ZONE}"     # the owner's domain (tbo.OWNER is it-owner@ it)


def relay(sinks, extra):
    d = mxpeers.relay(sinks, start=False)
    creds = mxtest.make_creds(os.path.join(d.tmp, "passwd"),
                              [("scanner", "scanner-pw", "*", False)])
    conf = {"credentials": creds, "bounce_owner": f"user:scanner {tbo.OWNER} digest"}
    conf.update(extra)
    d.configure(conf, {"main": {"tls": "none", "auth_without_tls": "yes"}})
    return d


def digest(d):
    return mxtest.run([mxtest.MXRELAYCTL, "queue", "-c", d.conf_path, "bounce-digest"],
                      check=0).stdout.strip()


def test_digest_past_its_listing_limit():
    """1001 failures of one message: one digest listing 1000 and "1 more"."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks, {"max_recipients": "1100"}).start()
    rcpts = [f"perm-{i}@sink.{ZONE}" for i in range(1001)]
    body = mxtest.message(tbo.DEVICE, rcpts[0], "many", "x\r\n")
    with smtplib.SMTP("127.0.0.1", d.port(), timeout=60) as s:
        s.ehlo("copier.test.example")
        s.login("scanner", "scanner-pw")
        s.sendmail(tbo.DEVICE, rcpts, body.encode())
    wait_event(d, "bounce", timeout=60)
    sinks.wait_messages(1, "mx.sender", timeout=30)      # the DSN
    out = digest(d)
    refused = [e["_line"] for e in events(d, "bounce_digest_refused")]
    assert out == "bounce digests queued: 1, refused: 0", (out, refused)
    ms = sinks.wait_messages(2, "mx.sender", timeout=30)
    text = ms[1].data.decode()
    assert "Subject: Undelivered mail digest: 1001 recipients" in text, text[:600]
    assert len(re.findall(r"^  from <", text, re.M)) == 1000, text[-600:]
    # the receiver sees the line as written: one "." (the relay stuffed it on the wire)
    assert "\r\n... and 1 more (not listed).\r\n" in text, text[-300:]


def test_digest_signed_by_the_owners_domain_under_refuse():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks, {})
    path = os.path.join(d.tmp, "k.pem")
    mxtest.run([mxtest.MXRELAYCTL, "dkim", "keygen", KEY_DOM, "dev", "--type", "ed25519",
                "--out", path], timeout=60)
    os.chmod(path, 0o644)
    d.configure({"dkim_key": f"{KEY_DOM} dev {path}", "dkim_unsigned": "refuse"})
    d.start()
    assert not events(d, "bounce_digest_unsigned"), d.grep("bounce_digest_unsigned")
    q = tbo.send_auth(d, "scanner", tbo.DEVICE, f"perm-one@sink.{ZONE}")
    wait_event(d, "bounce", qid=q)
    sinks.wait_messages(1, "mx.sender", timeout=20)      # the DSN
    out = digest(d)
    refused = [e["_line"] for e in events(d, "bounce_digest_refused")]
    assert out == "bounce digests queued: 1, refused: 0", (out, refused)
    m = sinks.wait_messages(2, "mx.sender", timeout=20)[1]
    text = m.data.decode()
    assert f"From: Mail Delivery System <MAILER-DAEMON@{KEY_DOM}>" in text, text[:800]
    assert re.search(rf"DKIM-Signature:[^\r]*d={re.escape(KEY_DOM)};", text.replace(
        "\r\n\t", " ").replace("\r\n ", " ")), text[:800]


def test_digest_without_any_key_is_said_at_start():
    """Owner in a domain without a key, hostname without one: -n and start-up warn."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = relay(sinks, {})
    path = os.path.join(d.tmp, "k.pem")
    mxtest.run([mxtest.MXRELAYCTL, "dkim", "keygen", f"other.{ZONE}", "dev", "--type",
                "ed25519", "--out", path], timeout=60)
    os.chmod(path, 0o644)
    d.configure({"dkim_key": f"other.{ZONE} dev {path}", "dkim_unsigned": "refuse"})
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", d.conf_path], timeout=15, check=0)
    assert p.returncode == 0, p.stderr
    assert "bounce_owner: dkim_unsigned = refuse and no dkim_key for" in p.stderr, p.stderr
    assert tbo.OWNER in p.stderr, p.stderr
    d.start()
    (w,) = events(d, "bounce_digest_unsigned")
    assert w["to"] == f"<{tbo.OWNER}>", w["_line"]


if __name__ == "__main__":
    mxtest.main()
