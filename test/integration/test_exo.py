#!/usr/bin/python3
"""Moving senders off Exchange Online (issue 15 items 7 and 9): import the
sample SMTP AUTH Clients report (test/data/exo/smtp-auth-clients.csv: BOM,
CRLF, quoted, an extra Domain column) with `mxrelayctl audit import-exo`,
drive real SMTP through a running mxrelayd (TLS 1.0 + AUTH on a legacy
listener, TLS 1.3 + AUTH, an allowlisted script without AUTH), then
`audit plan` (text and strict --json) joins the report with the relay's
audit and credentials; the passwd command it prints works; `m365` prints
the expected PowerShell by IP and by certificate (openssl test certs),
with --plan the Set-CASMailbox lines for the senders that moved; bad CSV
files get FILE:LINE: column errors and never replace a good import."""

import json
import os
import ssl
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "exo",
                      "smtp-auth-clients.csv")
USERS = [
    ("scanner", "scanner-pw", "scans@example.com", False),
    ("crmsrv", "crmsrv-pw", "crm@example.com", False),
]


def daemon():
    def make():
        tmp = mxtest.tmpdir()
        creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
        d = mxtest.Daemon(
            tmp=tmp, shared=True,
            conf={"credentials": creds, "relay_from": "127.0.0.1/32",
                  "hostname": "relay.example.com"},
            listeners={"legacy": {"tls": "starttls", "legacy_tls": "yes",
                                  "legacy_tls_until": "2027-03-31"},
                       "sub": {"tls": "starttls"}}).start()
        d.creds = creds
        return d
    return mxtest.shared_daemon("exo", make)


def ctl(d, *args, check=0, conf=None):
    return mxtest.run([mxtest.MXRELAYCTL] + list(args) + ["-c", conf or d.conf_path],
                      check=check, input="")


def send(d, listener, sender, ctx=None, user=None, n=1):
    s = d.connect(listener)
    s.ehlo()
    if ctx is not None:
        s.starttls(ctx)
        s.ehlo()
    if user:
        s.auth_plain(user, user + "-pw").expect(235, "2.7.0")
    for i in range(n):
        s.cmd(f"MAIL FROM:<{sender}>", 250)
        s.cmd("RCPT TO:<r@example.net>", 250)
        s.data(mxtest.message(frm=sender, subject=f"exo {i}")).qid()
    s.quit()
    return s


def populate():
    d = daemon()
    if getattr(d, "populated", False):
        return d
    s = send(d, "legacy", "scans@example.com", mxtest.legacy_ctx(ssl.TLSVersion.TLSv1),
             "scanner", 2)
    assert s.tls[0] == "TLSv1", s.tls
    send(d, "sub", "crm@example.com", mxtest.client_ctx(), "crmsrv")
    send(d, "sub", "alerts@example.org")  # a script from relay_from: no AUTH, no TLS
    ctl(d, "audit", "import-exo", SAMPLE)
    d.populated = True
    return d


def strict_json(text):
    """json.loads that refuses NaN/Infinity and duplicate keys."""
    def pairs(kv):
        keys = [k for k, _ in kv]
        assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
        return dict(kv)

    def bad(c):
        raise AssertionError(f"not JSON: {c}")
    return json.loads(text, object_pairs_hook=pairs, parse_constant=bad)


def plan(d):
    doc = strict_json(ctl(d, "audit", "plan", "--json").stdout)
    assert list(doc) == ["senders"], doc
    return {e["sender"]: e for e in doc["senders"]}


def test_import_sample():
    d = populate()
    p = ctl(d, "audit", "import-exo", SAMPLE)
    store = os.path.join(d.data_dir, "exo-inventory.csv")
    assert p.stdout.strip() == (f"imported 5 senders (1711 messages, 2 with TLS 1.0/1.1) "
                                f"into {store}"), p.stdout
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    tables = [r["name"] for r in d.query("SELECT name FROM sqlite_master WHERE type='table'")]
    assert not any("exo" in t for t in tables), f"the import must stay out of spool.db: {tables}"


def test_plan_json():
    d = populate()
    by = plan(d)
    assert list(by) == ["scans@example.com", "crm@example.com", "Copier-3F@example.com",
                        "alerts@example.org", "o'brien@example.com"], list(by)
    e = by["scans@example.com"]
    assert (e["status"], e["seen"], e["seen_user"], e["seen_ip"]) == \
        ("moved", True, "scanner", "127.0.0.1"), e
    assert e["first_seen"].endswith("Z") and e["first_seen"] <= e["last_seen"], e
    assert (e["credential"], e["create_credential"]) == ("scanner", None), e
    assert (e["listener"], e["legacy_tls"], e["sunset"]) == ("legacy", True, "2027-03-31"), e
    assert (e["messages"], e["tls10"], e["tls11"], e["tls12"]) == (412, 100, 0, 0), e
    assert e["todo"] == [
        "move the device to TLS 1.2 before 2027-03-31 (legacy_tls_until of listener legacy)",
        "turn SMTP AUTH off for scans@example.com in Exchange Online (mxrelayctl m365 --plan)"], e
    e = by["crm@example.com"]
    assert (e["status"], e["credential"], e["listener"], e["legacy_tls"], e["sunset"]) == \
        ("moved", "crmsrv", "sub", False, None), e
    assert e["messages"] == 1250, e
    e = by["alerts@example.org"]
    assert (e["status"], e["seen_user"], e["credential"]) == ("moved", None, None), e
    assert e["todo"][-1] == ("seen only without AUTH from allowlisted 127.0.0.1: check that "
                             "this is the device, then turn SMTP AUTH off for "
                             "alerts@example.org in Exchange Online"), e
    e = by["Copier-3F@example.com"]
    port = d.port("legacy")
    assert (e["status"], e["seen"], e["first_seen"], e["credential"]) == \
        ("todo", False, None, None), e
    assert (e["create_credential"], e["listener"], e["legacy_tls"]) == \
        ("copier-3f", "legacy", True), e
    assert e["listener_address"] == f"127.0.0.1:{port}", e
    assert e["todo"][:2] == [
        f"create the credential: mxrelayctl passwd copier-3f -f {d.creds} "
        "--senders Copier-3F@example.com",
        f"point the device at 127.0.0.1:{port} (listener legacy, STARTTLS, AUTH as copier-3f)"], e
    e = by["o'brien@example.com"]
    assert e["todo"][0].endswith("--senders 'o'\\''brien@example.com'"), e


def test_plan_text():
    d = populate()
    out = ctl(d, "audit", "plan").stdout.splitlines()
    i = out.index("scans@example.com  moved  messages=412 tls1.0=100% tls1.1=0% tls1.2=0%")
    assert out[i + 1].startswith("  seen:        ") and \
        out[i + 1].endswith(" from 127.0.0.1 as user scanner"), out[i + 1]
    assert out[i + 2:i + 4] == ["  credential:  scanner",
                                f"  listener:    legacy 127.0.0.1:{d.port('legacy')} "
                                "(legacy TLS 1.0/1.1)"], out[i:i + 6]
    i = out.index("Copier-3F@example.com  todo  messages=37 tls1.0=25% tls1.1=75% tls1.2=0%")
    assert out[i + 1:i + 3] == ["  seen:        not yet through the relay",
                                "  credential:  copier-3f (to create)"], out[i:i + 6]
    assert any(ln.endswith("without AUTH (relay_from)") for ln in out), out


def test_printed_passwd_command_works():
    """The plan's passwd command creates the credential; the sender becomes 'ready'."""
    d = populate()
    cmd = plan(d)["Copier-3F@example.com"]["todo"][0].split(": ", 1)[1]
    mxtest.run(["sh", "-c", cmd.replace("mxrelayctl", mxtest.MXRELAYCTL, 1)],
               input="copier-pw\n", check=0)
    e = plan(d)["Copier-3F@example.com"]
    assert (e["status"], e["credential"], e["create_credential"]) == \
        ("ready", "copier-3f", None), e


def test_plan_listener_rules():
    """The audit records the listener each client last used (schema 9): a moved
    sender keeps that listener in the plan, and the plan names the bounce_owner
    its DSNs follow, listener: rules included (matched as the daemon does)."""
    d = populate()
    conf = m365_conf(d, ["bounce_owner = listener:sub it@example.com",
                         "bounce_owner = user:scanner scan-owner@example.com"])
    rows = {(r["client_ip"], r["auth_user"]): r["listener"]
            for r in d.query("SELECT client_ip, auth_user, listener FROM audit")}
    assert rows == {("127.0.0.1", "scanner"): "legacy", ("127.0.0.1", "crmsrv"): "sub",
                    ("127.0.0.1", ""): "sub"}, rows
    doc = strict_json(ctl(d, "audit", "plan", "--json", conf=conf).stdout)
    by = {e["sender"]: e for e in doc["senders"]}
    got = {k: (by[k]["listener"], by[k]["bounce_owner"]) for k in
           ("scans@example.com", "crm@example.com", "alerts@example.org",
            "Copier-3F@example.com")}
    assert got == {"scans@example.com": ("legacy", "scan-owner@example.com"),
                   "crm@example.com": ("sub", "it@example.com"),
                   "alerts@example.org": ("sub", "it@example.com"),
                   "Copier-3F@example.com": ("legacy", None)}, got
    out = ctl(d, "audit", "plan", conf=conf).stdout.splitlines()
    i = out.index("crm@example.com  moved  messages=1250 tls1.0=0% tls1.1=0% tls1.2=100%")
    assert any(ln.startswith("  bounces:     to it@example.com (bounce_owner listener:sub, "
                             "line ") for ln in out[i:i + 6]), out[i:i + 6]


def m365_conf(d, extra):
    """A copy of the daemon's config with pinned egress addresses and extra keys."""
    text = d.config_text().replace("[listener", "\n".join(
        ["source_ipv4 = 192.0.2.25", "source_ipv6 = 2001:db8::25"] + extra + ["", "[listener"]),
        1)
    path = os.path.join(d.tmp, f"m365-{len(extra)}.conf")
    mxtest.write_file(path, text)
    return path


RESTRICT_WARNING = {
    kind: [f"# warning: -RestrictDomainsTo{sw} makes Exchange Online reject mail from these "
           f"domains that comes from any other {what}:",
           "#   services that send as these domains straight to Exchange Online (SaaS: CRM, "
           "ticketing, newsletters) need their own connector or must relay through mxrelay."]
    for kind, sw, what in (("ip", "IPAddresses", "IP address"),
                           ("cert", "Certificate", "certificate"))}


def test_m365_by_ip_with_plan():
    d = populate()
    conf = m365_conf(d, [])
    out = ctl(d, "m365", "--by-ip", "--plan", conf=conf).stdout.splitlines()
    assert out == [
        "# Exchange Online PowerShell for moving senders to mxrelay (relay.example.com).",
        "# Run it in a session opened with Connect-ExchangeOnline.",
        "# 1. An inbound Partner connector: Exchange Online knows the relay by its IP addresses.",
        ] + RESTRICT_WARNING["ip"] + [
        "# note: 2001:db8::25 (IPv6) is left out: -SenderIPAddresses takes IPv4 only, so mail "
        "the relay sends over IPv6 does not match this connector (--by-cert matches both)",
        "New-InboundConnector -Name 'mxrelay relay.example.com' -ConnectorType Partner "
        "-SenderDomains 'example.com','example.org' -SenderIPAddresses "
        "'192.0.2.25' -RestrictDomainsToIPAddresses $true",
        "# 2. SMTP AUTH off for the mailboxes whose devices send through the relay now.",
        "Set-CASMailbox -Identity 'scans@example.com' -SmtpClientAuthenticationDisabled $true",
        "Set-CASMailbox -Identity 'crm@example.com' -SmtpClientAuthenticationDisabled $true",
        "# seen only without AUTH from allowlisted 127.0.0.1: check it is the device, then:",
        "# Set-CASMailbox -Identity 'alerts@example.org' -SmtpClientAuthenticationDisabled $true",
        "# not moved yet (keep SMTP AUTH): Copier-3F@example.com",
        "# not moved yet (keep SMTP AUTH): o'brien@example.com",
        "# 3. SPF and DKIM for each sending domain (DNS, not PowerShell): keep "
        "include:spf.protection.outlook.com while Exchange Online still sends.",
        f"#   mxrelayctl dns spf example.com -c {conf}",
        f"#   mxrelayctl dns dkim example.com -c {conf}",
        f"#   mxrelayctl dns spf example.org -c {conf}",
        f"#   mxrelayctl dns dkim example.org -c {conf}",
    ], "\n".join(out)


def test_m365_by_cert():
    d = populate()
    cert, key = mxtest.make_cert(d.tmp, cn="cn-only.example.com", name="cn")
    conf = m365_conf(d, [f"tls_client_cert = {cert}", f"tls_client_key = {key}"])
    # no known domain: never -SenderDomains '*' with a Restrict switch (it would
    # reject all inbound internet mail): refused, naming the ways to give them
    for how in ("--by-cert", "--by-ip"):
        p = ctl(d, "m365", how, conf=conf, check=1)
        assert p.stdout == "" and p.stderr.strip() == (
            f"mxrelayctl m365: no sending domain known for the connector's -SenderDomains: "
            f"add dkim_key lines to {conf}, import the report (audit import-exo) and use "
            "--plan, or name them with --domain D"), (p.stdout, p.stderr)
    out = ctl(d, "m365", "--by-cert", "--domain", "example.com", "--domain",
              "ex\u2019ample.net", conf=conf).stdout.splitlines()
    assert "'*'" not in "\n".join(out), out
    assert out[2:7] == [
        "# 1. An inbound Partner connector: Exchange Online knows the relay by its TLS certificate.",
        ] + RESTRICT_WARNING["cert"] + [
        "New-InboundConnector -Name 'mxrelay relay.example.com' -ConnectorType Partner "
        "-SenderDomains 'example.com','ex\u2019\u2019ample.net' -RequireTls $true "
        "-RestrictDomainsToCertificate $true -TlsSenderCertificateName 'cn-only.example.com'",
        "# 2. SMTP AUTH off per mailbox: mxrelayctl audit import-exo, then m365 --plan.",
    ], "\n".join(out)
    # with a subjectAltName, its first DNS name wins over the CN
    san_cert, san_key = os.path.join(d.tmp, "san.pem"), os.path.join(d.tmp, "san.key")
    mxtest.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=Relay Cert", "-addext",
                "subjectAltName=DNS:relay.example.com,DNS:other.example.com",
                "-keyout", san_key, "-out", san_cert], check=0, quiet=True, timeout=60)
    conf = m365_conf(d, [f"tls_client_cert = {san_cert}", f"tls_client_key = {san_key}", "#"])
    out = ctl(d, "m365", "--by-cert", "--plan", conf=conf).stdout.splitlines()
    assert out[5] == ("New-InboundConnector -Name 'mxrelay relay.example.com' -ConnectorType "
                      "Partner -SenderDomains 'example.com','example.org' -RequireTls $true "
                      "-RestrictDomainsToCertificate $true -TlsSenderCertificateName "
                      "'relay.example.com'"), out[5]


def test_m365_errors():
    d = populate()
    p = ctl(d, "m365", "--by-cert", check=1)
    assert "sets no tls_client_cert" in p.stderr and p.stdout == "", p.stderr
    p = ctl(d, "m365", "--by-ip", "--by-cert", check=2)
    assert "--by-ip and --by-cert exclude each other" in p.stderr, p.stderr
    p = ctl(d, "m365", "--by-ip", "--domain", "*", check=2)
    assert "--domain takes a domain name (no '*', no '@')" in p.stderr, p.stderr


def test_plan_unique_names_case_variants_ended_sunset():
    """Two senders with one local part get two credential names (one passwd
    would replace the other's password and senders), case variants of one
    address are one row, no name starts with '-', and a legacy listener whose
    legacy_tls_until has passed is never recommended (review of issue 15 item 7)."""
    d = daemon()
    conf_dir = mxtest.tmpdir()
    conf = os.path.join(conf_dir, "c.conf")
    text = d.config_text().replace("2027-03-31", "2020-01-31")
    text = "\n".join(f"data_dir = {conf_dir}" if ln.strip().startswith("data_dir") else ln
                     for ln in text.splitlines()) + "\n"
    mxtest.write_file(conf, text)
    path = os.path.join(conf_dir, "r.csv")
    mxtest.write_file(path, "Sender address,TLS 1.0,TLS 1.1,TLS 1.2,Messages sent\n"
                            "scans@a.example.com,100,0,0,30\n"
                            "scans@b.example.com,0,0,100,5\n"
                            "Scans@A.example.com,0,0,100,10\n"
                            "-x@example.com,0,0,100,1\n" +
                            "".join(f"big{i}@example.com,0,0,100,922337203685477000\n"
                                    for i in range(11)))
    p = ctl(d, "audit", "import-exo", path, conf=conf)  # the total saturates (was UB)
    assert "(9223372036854775807 messages," in p.stdout, p.stdout
    doc = strict_json(ctl(d, "audit", "plan", "--json", conf=conf).stdout)
    by = {e["sender"]: e for e in doc["senders"]}
    assert list(by) == ["scans@a.example.com", "scans@b.example.com", "-x@example.com"] + \
        [f"big{i}@example.com" for i in range(11)], list(by)
    a, b = by["scans@a.example.com"], by["scans@b.example.com"]
    assert (a["messages"], a["tls10"], a["tls12"]) == (40, 75, 25), a
    assert (a["create_credential"], b["create_credential"]) == ("scans", "scans-2"), (a, b)
    assert b["todo"][0].startswith("create the credential: mxrelayctl passwd scans-2 "), b
    assert by["-x@example.com"]["create_credential"] == "x", by["-x@example.com"]
    # legacy_tls_until 2020-01-31 has passed: TLS 1.2 now, on a listener that takes it
    assert (a["legacy_tls"], a["listener"], a["sunset"]) == (True, "legacy", None), a
    assert a["todo"][2] == ("move the device to TLS 1.2 now: legacy TLS ended on 2020-01-31 "
                            "(legacy_tls_until of listener legacy)"), a


def bad_csv(d, name, text):
    path = os.path.join(d.tmp, name)
    with open(path, "wb") as f:
        f.write(text.encode())
    p = ctl(d, "audit", "import-exo", path, check=1)
    assert p.stdout == "", p.stdout
    return path, p.stderr.strip()


def test_bad_csv_errors():
    d = populate()
    pre = "mxrelayctl audit import-exo: "
    hdr = "Sender address,TLS 1.0,TLS 1.1,TLS 1.2,Messages sent\n"
    path, err = bad_csv(d, "nocol.csv", "Sender address,TLS 1.0,TLS 1.2,Messages sent\n")
    assert err.startswith(pre + f"{path}:1: column 'TLS 1.1': not in the header"), err
    path, err = bad_csv(d, "num.csv", hdr + "a@example.com,0,0,100,5\nb@example.com,abc,0,0,1\n")
    assert err == pre + f"{path}:3: column 2 'TLS 1.0': not a percentage from 0 to 100 'abc'", err
    path, err = bad_csv(d, "pct.csv", hdr + "a@example.com,0,0,101,5\n")
    assert err == pre + f"{path}:2: column 4 'TLS 1.2': not a percentage from 0 to 100 '101'", err
    path, err = bad_csv(d, "addr.csv", hdr + "\n\nnot-an-address,0,0,100,5\n")
    assert err == pre + (f"{path}:4: column 1 'Sender address': not a mail address "
                         "(want user@domain) 'not-an-address'"), err
    path, err = bad_csv(d, "count.csv", hdr + "a@example.com,0,0,100,many\n")
    assert err == pre + f"{path}:2: column 5 'Messages sent': not a count of messages 'many'", err
    path, err = bad_csv(d, "short.csv", hdr + "a@example.com,0,0\n")
    assert err == pre + f"{path}:2: column 4 'TLS 1.2': missing: the row has 3 columns", err
    path, err = bad_csv(d, "quote.csv", hdr + '"a@example.com,0,0,100,5\n')
    assert err == pre + f"{path}:2: column 1: line break or NUL inside a field", err
    path, err = bad_csv(d, "empty.csv", "")
    assert err == pre + f"{path}:1: empty file: no header line", err
    p = ctl(d, "audit", "import-exo", "/nonexistent.csv", check=1)
    assert "/nonexistent.csv: No such file or directory" in p.stderr, p.stderr
    p = ctl(d, "audit", "import-exo", check=2)
    assert "missing FILE.csv" in p.stderr, p.stderr
    # the good import is still there
    assert len(plan(d)) == 5


def test_tolerant_header():
    """Any column order, any case, unquoted, LF only, extra columns, '%' values."""
    d = daemon()
    conf_dir = mxtest.tmpdir()
    conf = os.path.join(conf_dir, "c.conf")
    mxtest.write_file(conf, f"data_dir = {conf_dir}\nhostname = relay.example.com\n")
    path = os.path.join(conf_dir, "r.csv")
    mxtest.write_file(path, "Messages Sent,Report date,tls1.2,TLS1.1 (%),tls 1.0,"
                            "UserPrincipalName\n"
                            '"1,024",2026-12-01,50%,25 %,25%,"Dev ""x""@example.com"\n')
    p = ctl(d, "audit", "import-exo", path, check=1, conf=conf)
    assert "column 6 'Sender address': not a mail address" in p.stderr, p.stderr
    mxtest.write_file(path, "Messages Sent,Report date,tls1.2,TLS1.1 (%),tls 1.0,"
                            "UserPrincipalName\n"
                            '"1,024",2026-12-01,50%,25 %,25%,dev@example.com\n')
    ctl(d, "audit", "import-exo", path, conf=conf)
    doc = strict_json(ctl(d, "audit", "plan", "--json", conf=conf).stdout)
    e = doc["senders"][0]
    assert (e["sender"], e["messages"], e["tls10"], e["tls11"], e["tls12"]) == \
        ("dev@example.com", 1024, 25, 25, 50), e
    assert (e["status"], e["listener"], e["todo"][1]) == \
        ("todo", None, "add a listener with tls = starttls and legacy_tls = yes and AUTH"), e


def test_plan_without_import():
    d = daemon()
    conf_dir = mxtest.tmpdir()
    conf = os.path.join(conf_dir, "c.conf")
    mxtest.write_file(conf, f"data_dir = {conf_dir}\n")
    p = ctl(d, "audit", "plan", check=1, conf=conf)
    assert p.stderr.strip() == (f"mxrelayctl audit plan: no Exchange Online inventory at "
                                f"{conf_dir}/exo-inventory.csv: run mxrelayctl audit import-exo "
                                "FILE.csv first"), p.stderr


mxtest.main()
