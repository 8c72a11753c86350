#!/usr/bin/python3
"""A header From whose display name (or comment) shows another domain's
address (issue 15's open policy question): `"ceo@bank.example"
<scans@dev.dlv.test>` is valid RFC 5322, and readers show ceo@bank.example as
the author. By default the relay refuses it (550 5.7.1 naming the address
and the key `display_name_address`), whether quoted by the device or by the
from_at repair, in a comment or hidden in an encoded word; the own domain,
its subdomains and parents, and an '@' without a dot are accepted.
`display_name_address = WHO warn` lets it through with a log line
(event=display_name_address action=warn), `WHO allow` silently; the most
specific rule wins. Emulated devices (raw sockets) to an aiosmtpd sink."""

import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
from mxpeers import ZONE, events  # noqa: E402
from test_header_repair import DOM, at_sink, device, env, field  # noqa: E402

B64 = base64.b64encode(b"ceo@bank.example").decode()


def test_default_refuses_and_names_the_address():
    sinks, d = env(["header_repair = listener:dev from_at"], {"main": {}, "dev": {}})
    refused = [f'"ceo@bank.example" <scans@{DOM}>',
               f"scans@{DOM} (CEO ceo@bank.example)",
               f"=?utf-8?b?{B64}?= <scans@{DOM}>"]
    for i, v in enumerate(refused):
        r = device(d, "main", f"From: {v}\r\n".encode(), subject=f"no{i}")
        assert (r.code, r.enh) == (550, "5.7.1"), f"{v}: {r}"
        assert "ceo@bank.example" in r.text and "display_name_address" in r.text, r
    # the repair quotes an unquoted name only when the result is acceptable: a spoof stays out
    r = device(d, "dev", f"From: ceo@bank.example <scans@{DOM}>\r\n".encode(), subject="rep")
    assert (r.code, r.enh) == (550, "5.7.1"), r
    fine = [f'"it@{DOM}" <scans@{DOM}>', f'"desk@mail.{DOM}" <scans@{DOM}>',
            f'"boss@{ZONE}" <scans@{DOM}>', f'"Scans@Floor2" <scans@{DOM}>']
    for i, v in enumerate(fine):
        r = device(d, "main", f"From: {v}\r\n".encode(), subject=f"ok{i}")
        assert r.code == 250, f"{v}: {r}"
        assert field(at_sink(sinks, f"ok{i}"), "From") == [f"From: {v}".encode()]
    assert not events(d, "display_name_address")


def test_warn_and_allow_rules():
    sinks, d = env(["display_name_address = * warn",
                    "display_name_address = listener:crm allow"], {"main": {}, "crm": {}})
    spoof = f'From: "ceo@bank.example" <scans@{DOM}>'
    r = device(d, "main", spoof.encode() + b"\r\n", subject="warned")
    assert r.code == 250, r
    (w,) = events(d, "display_name_address")
    assert (w["action"], w["shown"], w["from"], w["qid"]) == \
        ("warn", "ceo@bank.example", f"<scans@{DOM}>", r.qid()), w["_line"]
    assert int(w["line"]) > 0, w["_line"]
    assert field(at_sink(sinks, "warned"), "From") == [spoof.encode()]
    # the listener rule outranks "*": allowed without a word in the log
    r = device(d, "crm", spoof.encode() + b"\r\n", subject="allowed")
    assert r.code == 250, r
    assert field(at_sink(sinks, "allowed"), "From") == [spoof.encode()]
    assert len(events(d, "display_name_address")) == 1


def test_bad_rule_is_a_config_error():
    tmp = mxtest.tmpdir()
    path = mxtest.write_file(os.path.join(tmp, "bad.conf"), "hostname = x.example\n"
                             "display_name_address = * maybe\n")
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15)
    assert p.returncode != 0 and f"{path}:2: display_name_address: expected WHO refuse, " \
        "WHO warn or WHO allow" in p.stderr, p.stderr


if __name__ == "__main__":
    mxtest.main()
