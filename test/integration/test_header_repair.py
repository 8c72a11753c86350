#!/usr/bin/python3
"""header_repair (issue 15 item 6): emulated devices (raw sockets) send the
broken header forms through the relay to an aiosmtpd sink (nsd, mxpeers).

from_at: `From: scans@x <scans@x>` and `From: John@Acme <j@...>` (also folded)
arrive with the display name quoted (RFC 5322 3.2.4), but not
`ceo@bank.example <scans@x>` (still refused: a spoof); add_to: a message without
To or Cc arrives with `To: undisclosed-recipients:;`. Each repair is logged
(event=header_repair repair=...), and with a dkim_key the signature made by
the relay (after the repair) verifies at the sink with python3-dkim. Repairs
are off by default (another listener: the broken From is refused as before);
a user:NAME rule applies to that credential only, and `none` switches a
broader rule off."""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE  # noqa: E402

DOM = f"dev.{ZONE}"
RCPT = f"r@sink.{ZONE}"
USERS = [("scanner", "scanner-pw", f"@{DOM}", False),
         ("other", "other-pw", f"@{DOM}", False)]


def keygen(tmp):
    """An Ed25519 key from mxrelayctl dkim keygen; (conf value, TXT value)."""
    path = os.path.join(tmp, "dev.pem")
    p = mxtest.run([mxtest.MXRELAYCTL, "dkim", "keygen", DOM, "dev", "--type", "ed25519",
                    "--out", path], timeout=60, check=0)
    os.chmod(path, 0o644)
    value = re.findall(r"^  Value: (.*)$", p.stdout, re.M)[0].strip()
    return f"{DOM} dev {path}", value


def env(lines, listeners, creds=False):
    """A sink and a relay with extra global lines (header_repair, dkim_key)."""
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    tmp = mxtest.tmpdir()
    conf = {}
    if creds:
        conf["credentials"] = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
    d = mxpeers.relay(sinks, conf, start=False)
    base = type(d)

    class RepairRelay(base):
        def config_text(self):
            head, sep, rest = base.config_text(self).partition("\n[listener")
            return head.rstrip("\n") + "\n" + "".join(x + "\n" for x in lines) + sep + rest

    d.__class__ = RepairRelay
    d.configure(listeners=listeners)
    d.start()
    return sinks, d


def device(d, listener, header, user=None, subject="scan"):
    """An old device: plain SMTP, optional AUTH PLAIN, the header as given; the reply."""
    s = d.connect(listener)
    s.ehlo("copier")
    if user:
        s.auth_plain(user, user + "-pw").expect(235, "2.7.0")
    s.cmd(f"MAIL FROM:<scans@{DOM}>", 250)
    s.cmd(f"RCPT TO:<{RCPT}>", 250)
    s.cmd("DATA", 354)
    s.send(header + f"Subject: {subject}\r\n\r\nscanned page\r\n.\r\n".encode())
    r = s.reply()
    s.quit()
    return r


def at_sink(sinks, subject):
    (m,) = sinks.wait_messages(1, "mx.sink", pred=lambda m: f"Subject: {subject}\r\n".encode()
                               in m.data)
    return m.data


def field(data, name):
    head = data.split(b"\r\n\r\n", 1)[0]
    return [ln for ln in re.split(rb"\r\n(?![ \t])", head)
            if ln.lower().startswith(name.lower().encode() + b":")]


def audit_count(d, ip, key):
    """The audit's KEY count for ip without AUTH (mxrelayctl audit --json)."""
    p = mxtest.run([mxtest.MXRELAYCTL, "audit", "-c", d.conf_path, "--json"], check=0)
    rows = [r for r in json.loads(p.stdout) if r["client_ip"] == ip and r["user"] == ""]
    return rows[0][key] if rows else 0


def test_from_at_and_add_to_signed():
    tmp = mxtest.tmpdir()
    key, txt = keygen(tmp)
    sinks, d = env([f"dkim_key = {key}", "header_repair = listener:dev from_at,add_to"],
                   {"main": {}, "dev": {}})
    cases = {
        "s1": (f"From: scans@{DOM} <scans@{DOM}>\r\n".encode(),
               f'From: "scans@{DOM}" <scans@{DOM}>'.encode()),
        "s2": (f"From: John@Acme <john@{DOM}>\r\n".encode(),
               f'From: "John@Acme" <john@{DOM}>'.encode()),
        "s3": (f"From: Scan@Floor 2\r\n\t<scans@{DOM}>\r\n".encode(),
               f'From: "Scan@Floor 2" <scans@{DOM}>'.encode()),
    }
    import dkim
    for subject, (sent, want) in cases.items():
        r = device(d, "dev", sent, subject=subject)
        assert r.code == 250, f"{sent!r}: {r}"
        data = at_sink(sinks, subject)
        assert field(data, "From") == [want], f"{sent!r} arrived as {field(data, 'From')}"
        assert field(data, "To") == [b"To: undisclosed-recipients:;"], field(data, "To")
        qid = r.qid()
        for rep in ("from_at", "add_to"):
            assert d.wait_log(rf"qid={qid} event=header_repair repair={rep} ip="), d.tail(20)
        ok = dkim.DKIM(data).verify(dnsfunc=lambda name, timeout=5: txt.encode())
        assert ok, f"the DKIM signature does not verify at the sink:\n{data[:800]!r}"
    # a display name naming another address stays refused (the spoof hdrfrom refuses)
    r = device(d, "dev", f"From: ceo@bank.example <scans@{DOM}>\r\n".encode(), subject="spoof")
    assert r.code == 550 and r.enh == "5.7.1", f"a spoofing display name was repaired: {r}"
    # a message that needs nothing is left alone, and logs no repair
    r = device(d, "dev", f'From: "Scans" <scans@{DOM}>\r\nCc: <c@sink.{ZONE}>\r\n'.encode(),
               subject="fine")
    data = at_sink(sinks, "fine")
    assert field(data, "From") == [f'From: "Scans" <scans@{DOM}>'.encode()] and not field(data, "To")
    assert not d.grep(rf"qid={r.qid()} event=header_repair")


def test_look_alike_spoofs_stay_refused():
    """from_at never turns hdrfrom's refusal into an acceptance (review of issue 15)."""
    sinks, d = env(["header_repair = * from_at"], {"main": {}})
    spoofs = ["ceo@bank\u2024example", "ceo@bank\uff0eexample", "ceo@bank\u3002example",
              "ceo@bank\t.example", "ceo@bank .example", "ceo@bank.example"]
    for i, name in enumerate(spoofs):
        r = device(d, "main", f"From: {name} <scans@{DOM}>\r\n".encode(), subject=f"lk{i}")
        assert r.code == 550 and r.enh == "5.7.1", f"{name!r} was repaired: {r}"
    assert not d.grep("event=header_repair")
    # already quoted: valid RFC 5322, but readers show ceo@bank.example as the author:
    # refused by display_name_address's default, never repaired (README, Header From)
    quoted = f'From: "ceo@bank.example" <scans@{DOM}>'.encode()
    r = device(d, "main", quoted + b"\r\n", subject="quoted")
    assert r.code == 550 and r.enh == "5.7.1" and "ceo@bank.example" in r.text, r
    assert not d.grep("event=header_repair")
    # the mailbox's own address, any case, and an '@' with no dot after it are still repaired
    r = device(d, "main", f"From: SCANS@{DOM.upper()} <scans@{DOM}>\r\n".encode(), subject="own")
    assert r.code == 250, r
    r = device(d, "main", f"From: Scan@Floor 2 <scans@{DOM}>\r\n".encode(), subject="nodot")
    assert r.code == 250, r
    # counted in the audit once stored: the two repaired ones, not the refused spoofs
    mxtest.wait_for(lambda: audit_count(d, "127.0.0.1", "repaired") == 2, 10,
                    what="repaired=2 in the audit")


def test_off_by_default():
    sinks, d = env([], {"main": {}})
    r = device(d, "main", f"From: scans@{DOM} <scans@{DOM}>\r\n".encode())
    assert r.code == 550 and r.enh == "5.7.1" and "From" in r.text, r
    r = device(d, "main", f"From: <scans@{DOM}>\r\n".encode(), subject="noto")
    assert r.code == 250, r
    assert not field(at_sink(sinks, "noto"), "To"), "To added without a header_repair rule"
    assert not d.grep("event=header_repair")


def test_per_credential_rule():
    sinks, d = env(["header_repair = * add_to", "header_repair = user:scanner from_at,add_to",
                    "header_repair = user:other none"],
                   {"main": {"tls": "none", "auth_without_tls": "yes"}}, creds=True)
    broken = f"From: scans@{DOM} <scans@{DOM}>\r\n".encode()
    r = device(d, "main", broken, user="scanner", subject="mine")
    assert r.code == 250, r
    data = at_sink(sinks, "mine")
    assert field(data, "From") == [f'From: "scans@{DOM}" <scans@{DOM}>'.encode()], data[:400]
    assert field(data, "To") == [b"To: undisclosed-recipients:;"]
    r = device(d, "main", broken, user="other", subject="theirs")
    assert r.code == 550 and r.enh == "5.7.1", f"user other got scanner's repair: {r}"
    r = device(d, "main", f"From: <scans@{DOM}>\r\n".encode(), user="other", subject="none")
    assert r.code == 250, r
    assert not field(at_sink(sinks, "none"), "To"), "'none' did not switch add_to off"
    # no credential: the '*' rule (add_to only)
    r = device(d, "main", f"From: <scans@{DOM}>\r\n".encode(), subject="anyone")
    assert field(at_sink(sinks, "anyone"), "To") == [b"To: undisclosed-recipients:;"]


if __name__ == "__main__":
    mxtest.main()
