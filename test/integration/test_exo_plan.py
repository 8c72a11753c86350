#!/usr/bin/python3
"""The inventory's plan and `mxrelayctl m365` on hard inputs (issue 15
items 7 and 9, second review):

- a mailbox is "moved" (an uncommented Set-CASMailbox ... $true) only when
  the credential it was seen with names that exact address; a credential
  allowed "@domain" (a CRM server that once sent as ceo@) gets the
  commented "check it is the device" line instead;
- the CSV's domains must be host names: '*', blanks and shell characters
  are refused at import (they reached -SenderDomains and the shell lines
  of part 3); the shell lines quote --domain's words and the config path;
- proposed credential names for many senders with one local part are made
  unique in linear time (5000 scanner@dN rows: was cubic, minutes);
- more than 64 sending domains: m365 says how many were left out."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

HDR = "Sender address,TLS 1.0,TLS 1.1,TLS 1.2,Messages sent\n"


def ctl(d, *args, check=0, conf=None, timeout=60):
    return mxtest.run([mxtest.MXRELAYCTL] + list(args) + ["-c", conf or d.conf_path],
                      check=check, input="", timeout=timeout)


def write_csv(d, name, rows):
    path = os.path.join(d.tmp, name)
    mxtest.write_file(path, HDR + "".join(f"{r},0,0,100,{n}\n" for r, n in rows))
    return path


def offline(name="c.conf"):
    """A configuration (no daemon) whose data_dir exists, under a path with a blank."""
    tmp = mxtest.tmpdir()
    d = mxtest.Daemon(tmp=tmp, conf={"hostname": "relay.example.com",
                                     "source_ipv4": "192.0.2.25"},
                      listeners={"sub": {"tls": "starttls"}})
    os.makedirs(d.data_dir, exist_ok=True)
    return d


def test_domain_wide_credential_does_not_prove_a_move():
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"),
                              [("crmsrv", "crmsrv-pw", "@example.com", False),
                               ("scanner", "scanner-pw", "scans@example.com", False)])
    d = mxtest.Daemon(tmp=tmp, conf={"credentials": creds, "hostname": "relay.example.com",
                                     "source_ipv4": "192.0.2.25"},
                      listeners={"main": {"tls": "none", "auth_without_tls": "yes"},
                                 "sub": {"tls": "starttls"}}).start()
    for user, sender in (("crmsrv", "ceo@example.com"), ("scanner", "scans@example.com")):
        s = d.connect()
        s.ehlo()
        s.auth_plain(user, user + "-pw").expect(235, "2.7.0")
        s.mail(sender, ["r@example.net"], mxtest.message(frm=sender))
        s.quit()
    mxtest.wait_for(lambda: len(d.query("SELECT * FROM audit WHERE auth_user != ''")) >= 2, 10,
                    what="the audit rows")
    ctl(d, "audit", "import-exo", write_csv(d, "r.csv", [("ceo@example.com", 300),
                                                         ("scans@example.com", 40)]), check=0)
    by = {e["sender"]: e for e in json.loads(ctl(d, "audit", "plan", "--json").stdout)["senders"]}
    assert by["ceo@example.com"]["todo"][-1] == (
        "seen as user crmsrv, whose senders do not name ceo@example.com: check that this is "
        "the device, then turn SMTP AUTH off for it in Exchange Online"), by["ceo@example.com"]
    assert by["scans@example.com"]["todo"][-1].startswith("turn SMTP AUTH off for scans@"), by
    out = ctl(d, "m365", "--by-ip", "--plan").stdout.splitlines()
    i = out.index("# seen as user crmsrv, whose senders do not name this address: check it "
                  "is the device, then:")
    assert out[i + 1] == ("# Set-CASMailbox -Identity 'ceo@example.com' "
                          "-SmtpClientAuthenticationDisabled $true"), out[i:i + 2]
    assert ("Set-CASMailbox -Identity 'scans@example.com' -SmtpClientAuthenticationDisabled "
            "$true") in out, out


def test_csv_domains_must_be_host_names():
    d = offline()
    pre = "mxrelayctl audit import-exo: "
    for bad in ("scans@*", "x@*.com", "x@ex$(touch${IFS}/tmp/pwned).com", "x@localhost",
                "x@-a.example", "x@a..example"):
        path = write_csv(d, "bad.csv", [("ok@example.com", 1), (bad, 1)])
        p = ctl(d, "audit", "import-exo", path, check=1)
        assert p.stderr.strip() == pre + (
            f"{path}:3: column 1 'Sender address': its domain is not a host name (letters, "
            f"digits and '-' in dot-separated labels, an IDN as its xn-- A-label; no '*') "
            f"'{bad}'"), p.stderr
    assert not os.path.exists(os.path.join(d.data_dir, "exo-inventory.csv"))
    # an IDN as its A-label is a host name
    ctl(d, "audit", "import-exo", write_csv(d, "ok.csv", [("a@xn--bcher-kva.example", 1)]),
        check=0)
    # --domain is the admin's own word: not refused, but quoted in the shell lines
    out = ctl(d, "m365", "--by-ip", "--domain", "ex$(id).com").stdout
    assert "#   mxrelayctl dns spf 'ex$(id).com' -c " in out, out


def test_m365_shell_lines_quote_the_config_path():
    d = offline()
    conf = os.path.join(d.tmp, "my relay.conf")
    mxtest.write_file(conf, d.config_text())
    out = ctl(d, "m365", "--by-ip", "--domain", "example.com", conf=conf).stdout
    assert f"#   mxrelayctl dns spf example.com -c '{conf}'" in out.splitlines(), out


def test_plan_names_many_colliding_senders_in_linear_time():
    d = offline()
    n = 5000
    ctl(d, "audit", "import-exo", write_csv(d, "many.csv",
                                            [(f"scanner@d{i}.example", 1) for i in range(n)]
                                            + [("scanner-2@x.example", 1)]), check=0)
    t = time.monotonic()
    doc = json.loads(ctl(d, "audit", "plan", "--json", timeout=60).stdout)
    took = time.monotonic() - t
    names = [e["create_credential"] for e in doc["senders"]]
    assert len(names) == n + 1 and len(set(names)) == n + 1, "proposed names collide"
    # the last sender's own name scanner-2 was proposed already: it gets scanner-2-2
    assert names == ["scanner"] + [f"scanner-{k}" for k in range(2, n + 1)] + ["scanner-2-2"], \
        (names[:3], names[-3:])
    print(f"# audit plan --json of {n + 1} colliding senders: {took:.2f}s")
    assert took < 20, f"audit plan took {took:.1f}s for {n + 1} rows"


def test_m365_says_when_sending_domains_are_left_out():
    d = offline()
    ctl(d, "audit", "import-exo", write_csv(d, "doms.csv",
                                            [(f"s@d{i}.example", 1) for i in range(70)]), check=0)
    p = ctl(d, "m365", "--by-ip", "--plan")
    assert "mxrelayctl m365: 6 more sending domains left out: at most 64 per run; run again " \
           "with --domain D for the rest" in p.stderr, p.stderr


if __name__ == "__main__":
    mxtest.main()
