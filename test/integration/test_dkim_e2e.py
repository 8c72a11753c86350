#!/usr/bin/python3
"""DKIM end to end: keys from `mxrelayctl dkim keygen`, the daemon signing at
intake, delivery through nsd (mxpeers) to an aiosmtpd sink, and python3-dkim
verifying what the sink received, with the TXT values keygen printed.

Covered: dual signing (RSA + Ed25519 for one domain) and an RSA-only domain;
an 8-bit UTF-8 body (BODY=8BITMIME), 998-octet lines, leading dots (stuffed
on both hops), 150 header fields, folded header fields, a mixed-case From
domain, Date and Message-ID added by the relay before signing; the tags of
every signature (a=, c=, d=, s=, h= with From oversigned and no Received, no
l=/x=); tampered copies (a body byte, the Subject, an extra From, an extra
Subject) failing; a retried recipient getting the identical signed message
as the one delivered on the first attempt and as the spool holds;
the RSA signatures of every variant verified a second time by Mail::DKIM
(libmail-dkim-perl; Debian 12's has no Ed25519), asking nsd for the keys;
an SMTPUTF8 message from bücher.dlv.test signed (RSA and Ed25519) with the
keys configured for its A-label xn--bcher-kva.dlv.test, d= the A-label,
verified by both;
dkim_unsigned = refuse (550 5.7.1 at MAIL FROM and at the end of DATA) and
= send (delivered unsigned, warning logged); dkim_require_published = yes
(only the key whose TXT record matches signs, event=dkim_key_held for the
others); a dkim_key line with a U-label domain refused, naming the A-label to write;
an unreadable, unparsable or too small key refused by `mxrelayd -n`
and at start-up with FILE:LINE: dkim_key: ...

Everything stays on loopback: nsd on 127.0.0.1, sinks on this run's
127.A.B.0/24 (mxpeers)."""

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnstest  # noqa: E402
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE, submit, events, wait_event  # noqa: E402

CTL = mxtest.MXRELAYCTL

DUAL = f"dual.{ZONE}"       # RSA + Ed25519
RSAONLY = f"rsa.{ZONE}"     # RSA only
NOKEY = f"nokey.{ZONE}"     # no key at all
PUB = f"pub.{ZONE}"         # dkim_require_published: one matching, one wrong, one missing
IDN_U = f"bücher.{ZONE}"    # internationalized From domain (SMTPUTF8)
IDN_A = f"xn--bcher-kva.{ZONE}"  # its A-label: the keys are configured for this one
SINK = f"sink.{ZONE}"       # MX mx.sink
SINK2 = f"sink2.{ZONE}"     # MX mx.sink as well (a second destination)

# --------------------------------------------------------------------------
# keys (made once per file with the real tool) and the zone that publishes them


class Key:
    def __init__(self, domain, selector, alg, path, value):
        self.domain, self.selector, self.alg, self.path, self.value = \
            domain, selector, alg, path, value

    @property
    def conf(self):
        return f"{self.domain} {self.selector} {self.path}"

    @property
    def name(self):
        return f"{self.selector}._domainkey.{self.domain}"


_keys = {}
_keydir = None


def keygen(tag, domain, selector, alg):
    """mxrelayctl dkim keygen ... --type alg --out F; the plain TXT value it printed."""
    global _keydir
    if tag in _keys:
        return _keys[tag]
    if _keydir is None:
        _keydir = tempfile.mkdtemp(prefix="mxdkimkeys-")
        os.chmod(_keydir, 0o755)
        atexit.register(shutil.rmtree, _keydir, True)
    path = os.path.join(_keydir, f"{domain}.{selector}.pem")
    p = mxtest.run([CTL, "dkim", "keygen", domain, selector, "--type", alg, "--out", path],
                   timeout=60, check=0)
    name = f"{selector}._domainkey.{domain}"
    names = re.findall(r"^  Name:  (.*)$", p.stdout, re.M)
    values = re.findall(r"^  Value: (.*)$", p.stdout, re.M)
    assert name in names and len(values) == len(names), \
        f"keygen did not print the record for {name}:\n{p.stdout}"
    value = values[names.index(name)].strip()
    assert value.startswith("v=DKIM1;") and f"k={alg};" in value.replace(" ", ""), value
    _keys[tag] = Key(domain, selector, alg, path, value)
    return _keys[tag]


def keys():
    k = {
        "dual_rsa": keygen("dual_rsa", DUAL, "r2026", "rsa"),
        "dual_ed": keygen("dual_ed", DUAL, "e2026", "ed25519"),
        "rsa": keygen("rsa", RSAONLY, "main", "rsa"),
        "pub_wrong": keygen("pub_wrong", PUB, "wrong", "ed25519"),
        "pub_missing": keygen("pub_missing", PUB, "missing", "ed25519"),
        "other_ed": keygen("other_ed", f"other.{ZONE}", "x", "ed25519"),
        "idn_ed": keygen("idn_ed", IDN_A, "ie", "ed25519"),
    }
    # RSA key generation costs seconds: pub's matching key is dual's RSA key again
    r = k["dual_rsa"]
    k["pub_good"] = Key(PUB, "good", "rsa", r.path, r.value)
    k["idn_rsa"] = Key(IDN_A, "ir", "rsa", r.path, r.value)
    return k


def published():
    """name -> TXT value as the zone publishes it (wrong: another key's record; missing: none)."""
    k = keys()
    pub = {x.name: x.value for x in (k["dual_rsa"], k["dual_ed"], k["rsa"], k["pub_good"],
                                     k["idn_rsa"], k["idn_ed"])}
    pub[k["pub_wrong"].name] = k["other_ed"].value
    return pub


def txt_strings(value):
    value = value.replace("\\", "\\\\").replace('"', '\\"')
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


_nsd = None


def dkim_nsd():
    """nsd with mxpeers' delivery zone plus the key records (one per file)."""
    global _nsd
    if _nsd is None or not _nsd.alive():
        zone = mxpeers.delivery_zone()
        for name, value in published().items():
            rel = name[:-len("." + ZONE)]
            zone += f"{rel} IN TXT {txt_strings(value)}\n"
        d = tempfile.mkdtemp(prefix="mxdkimnsd-")
        atexit.register(shutil.rmtree, d, True)
        _nsd = mxpeers.Nsd(d, {ZONE: zone, mxpeers.SERVFAIL_ZONE: None}).start()
        atexit.register(_nsd.stop)
        # mxpeers.relay() asks mxpeers.nsd() for its default: this one serves a superset
        mxpeers._nsd = _nsd
        r = mxpeers.dns_query(_nsd.port, keys()["dual_ed"].name, 16)
        assert r and r[0] == 0 and r[1] == 1, f"nsd does not serve the DKIM TXT records: {r}"
        mxtest.note(f"# nsd with DKIM records on 127.0.0.1:{_nsd.port}")
    return _nsd


def dkim_relay(sinks, key_list, conf=None, start=True):
    """mxpeers.relay() plus one `dkim_key = ...` line per key (in this order)."""
    ns = dkim_nsd()
    c = {"dns_servers": f"127.0.0.1:{ns.port}"}
    c.update(conf or {})
    d = mxpeers.relay(sinks, c, start=False)
    base = type(d)

    class DkimRelay(base):
        def config_text(self):
            text = base.config_text(self)
            head, sep, rest = text.partition("\n[listener")
            lines = "".join(f"dkim_key = {k.conf}\n" for k in self.dkim_keys)
            return head.rstrip("\n") + "\n" + lines + sep + rest

    d.__class__ = DkimRelay
    d.dkim_keys = list(key_list)
    d.write_config()
    if start:
        d.start()
    return d


# --------------------------------------------------------------------------
# reading and verifying signatures

def dnsfunc_for(records, asked=None):
    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        n = n.rstrip(".").lower()
        if asked is not None:
            asked.append(n)
        v = records.get(n)
        return v.encode() if v is not None else None
    return dnsfunc


def header_fields(data):
    """[(name, raw field bytes including continuation lines and CRLF)] of the header."""
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    out = []
    for ln in head.split(b"\r\n")[:-1]:
        if ln[:1] in (b" ", b"\t") and out:
            out[-1][1] += ln + b"\r\n"
        else:
            out.append([ln.split(b":", 1)[0].decode("latin-1"), ln + b"\r\n"])
    return [(n, raw) for n, raw in out]


def dkim_fields(data):
    return [raw for n, raw in header_fields(data) if n.lower() == "dkim-signature"]


def sig_tags(raw):
    """The tags of a DKIM-Signature field (whitespace removed from the values)."""
    value = raw.decode("ascii").split(":", 1)[1]
    tags = {}
    for part in value.split(";"):
        if "=" not in part:
            assert not part.strip(), f"not a tag in {raw!r}: {part!r}"
            continue
        k, v = part.split("=", 1)
        k = k.strip()
        assert k not in tags, f"tag {k}= twice in {raw!r}"
        tags[k] = re.sub(r"\s+", "", v)
    return tags


def verify_all(data, records, n):
    """Verify every signature of data (n expected); returns the list of tag dicts."""
    import dkim
    fields = dkim_fields(data)
    assert len(fields) == n, f"{len(fields)} DKIM-Signature fields, expected {n}:\n" + \
        b"".join(fields).decode("latin-1")
    out = []
    for i in range(n):
        asked = []
        try:
            ok = dkim.DKIM(data).verify(idx=i, dnsfunc=dnsfunc_for(records, asked))
        except dkim.DKIMException as e:
            raise AssertionError(f"signature {i} did not verify: {e}\n{fields[i]!r}")
        tags = sig_tags(fields[i])
        assert ok, f"signature {i} (a={tags.get('a')} s={tags.get('s')}) did not verify " \
            f"(python3-dkim asked for {asked})"
        assert asked == [f"{tags['s']}._domainkey.{tags['d']}"], asked
        out.append(tags)
    return out


def mail_dkim(data):
    """Mail::DKIM's result for each signature of data: {selector: (algorithm, result, detail)}.

    Mail::DKIM (libmail-dkim-perl) is the second verifier (dnstest.MAIL_DKIM); it asks the
    test's nsd for the keys."""
    tmp = mxtest.tmpdir()
    path = os.path.join(tmp, "mail-dkim.eml")
    with open(path, "wb") as f:
        f.write(data)
    p = mxtest.run(["perl", "-e", dnstest.MAIL_DKIM, path, str(dkim_nsd().port)], timeout=60,
                   check=0)
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"s=(\S+) a=(\S+) (\S+) \((.*)\)$", line)
        assert m, f"Mail::DKIM printed {line!r}"
        out[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return out


def mail_dkim_rsa_pass(data, key_list, what):
    """Mail::DKIM verifies every RSA signature of data (the keys in key_list that are RSA)."""
    got = mail_dkim(data)
    rsa = [k for k in key_list if k.alg == "rsa"]
    assert rsa, f"{what}: no RSA signature for Mail::DKIM to check"
    for k in rsa:
        assert k.selector in got, f"{what}: Mail::DKIM saw no signature s={k.selector}: {got}"
        alg, result, detail = got[k.selector]
        assert alg == "rsa-sha256" and result == "pass", \
            f"{what}: Mail::DKIM: s={k.selector} a={alg} {result} ({detail})"


def verifies_none(data, records):
    """True when no signature of data verifies (python3-dkim errors count as failures)."""
    import dkim
    for i in range(len(dkim_fields(data))):
        try:
            if dkim.DKIM(data).verify(idx=i, dnsfunc=dnsfunc_for(records)):
                return False
        except dkim.DKIMException:
            pass
    return True


def check_tags(tags, domain, key_list, from_count=1):
    """a=, c=, d=, s=, h= of the signatures of one message, in key order."""
    assert len(tags) == len(key_list)
    for t, k in zip(tags, key_list):
        want_a = "rsa-sha256" if k.alg == "rsa" else "ed25519-sha256"
        assert t["a"] == want_a, f"a={t['a']} for the {k.alg} key {k.selector} (want {want_a})"
        assert t["a"] != "rsa-sha1"
        assert t["v"] == "1", t
        assert t["c"] == "relaxed/relaxed", f"c={t.get('c')} (want relaxed/relaxed)"
        assert t["d"] == domain, f"d={t['d']}, expected the From domain {domain}"
        assert t["s"] == k.selector, f"s={t['s']}, expected {k.selector}"
        h = [x.lower() for x in t["h"].split(":")]
        assert h.count("from") >= from_count + 1, \
            f"From not oversigned: h={t['h']} (From occurs {from_count} time(s))"
        for never in ("received", "return-path", "dkim-signature"):
            assert never not in h, f"{never} signed: h={t['h']}"
        assert "l" not in t and "x" not in t, f"l= or x= present: {t}"
        assert "t" in t and "bh" in t and t["b"], t


def body_of(data):
    return data.split(b"\r\n\r\n", 1)[1]


def tamper_cases(data):
    """(what, tampered copy) for one delivered message."""
    head, body = data.split(b"\r\n\r\n", 1)
    out = []
    m = re.search(rb"[A-Za-z0-9]", body)
    assert m, "no letter in the body to change"
    i = m.start()
    flipped = body[:i] + (b"Z" if body[i:i + 1] != b"Z" else b"Y") + body[i + 1:]
    out.append(("one body byte changed", head + b"\r\n\r\n" + flipped))
    subj = re.sub(rb"(?im)^Subject:", b"Subject: Re:", head, count=1)
    assert subj != head, "no Subject to change"
    out.append(("Subject changed", subj + b"\r\n\r\n" + body))
    fields = header_fields(data)
    top = b"".join(raw for n, raw in fields if n.lower() == "dkim-signature")
    rest = b"".join(raw for n, raw in fields if n.lower() != "dkim-signature")
    evil_from = b"From: <ceo@" + ZONE.encode() + b">\r\n"
    out.append(("extra From on top", top + evil_from + rest + b"\r\n" + body))
    out.append(("extra From at the bottom", top + rest + evil_from + b"\r\n" + body))
    out.append(("extra Subject on top (oversigned)",
                top + b"Subject: pay this invoice\r\n" + rest + b"\r\n" + body))
    return out


# --------------------------------------------------------------------------
# messages

def crlf(*lines):
    return "".join(ln + "\r\n" for ln in lines)


def variants():
    """name -> (recipient, From domain, message bytes, MAIL parameters, keys that sign)."""
    k = keys()
    dual = [k["dual_rsa"], k["dual_ed"]]
    std = ["MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    v = {}

    def msg(frm, to, subject, body, extra=(), date=True, msgid=True):
        return mxtest.message(frm, to, subject, body, headers=list(extra), date=date,
                              msgid=msgid).encode()

    to = f"v-utf8@{SINK}"
    body = crlf("Grüße aus Köln — naïve café, ünïcödé ✓", "日本語のテキスト", "Ω≈ç√∫ µ≤≥÷",
                "plain ascii line") * 3
    v["utf8"] = (to, DUAL, msg(f"alice@{DUAL}", to, "8-bit UTF-8 body", body,
                               ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                                "Content-Transfer-Encoding: 8bit"]),
                 ["BODY=8BITMIME"], dual)

    to = f"v-long@{SINK}"
    line998 = "".join(chr(0x21 + i % 94) for i in range(998))
    xlong = "X-Long: " + "h" * (998 - len("X-Long: "))
    assert len(line998) == 998 and len(xlong) == 998
    v["long"] = (to, DUAL, msg(f"alice@{DUAL}", to, "998-octet lines",
                               crlf("before", line998, line998[:500], line998, "after"),
                               std + [xlong]), [], dual)

    to = f"v-dots@{SINK}"
    v["dots"] = (to, DUAL, msg(f"alice@{DUAL}", to, "leading dots",
                               crlf(".", "..", "...", ".leading dot", "..two dots", " .space dot",
                                    "middle . dot", "", ".", ". ", ".\t", "."), std), [], dual)

    to = f"v-many@{SINK}"
    many = [f"X-Filler-{i:03d}: value number {i} of a long header block" for i in range(150)]
    v["many"] = (to, DUAL, msg(f"alice@{DUAL}", to, "150 header fields", "many headers\r\n",
                               std + many), [], dual)

    to = f"v-folded@{SINK}"
    folded = (crlf('From: "Alice Example,',
                   '\tthe Sender"',
                   f" <alice@{DUAL}>",
                   f"To: <{to}>,",
                   f"  <other@{SINK}>",
                   "Subject: a subject folded",
                   "\tover three",
                   "   lines  with   odd   spacing   ",
                   "Date: Mon, 01 Jan 2024",
                   " 10:00:00 +0000",
                   "Message-ID:",
                   f" <folded.{os.getpid()}@client.test.example>",
                   "MIME-Version: 1.0",
                   "Content-Type: text/plain;",
                   "\tcharset=us-ascii;",
                   "\tformat=flowed",
                   "X-Folded: one",
                   " \t two \t",
                   "\tthree")
              + "\r\n" + crlf("folded headers, body with trailing space   ",
                              "and\ttabs\t\t", "", "", "")).encode()
    v["folded"] = (to, DUAL, folded, [], dual)

    to = f"v-case@{SINK}"
    v["case"] = (to, DUAL, msg("Alice@" + DUAL.title(), to, "mixed-case From domain",
                               "case\r\n", std), [], dual)

    to = f"v-nodate@{SINK}"
    v["nodate"] = (to, DUAL, msg(f"alice@{DUAL}", to, "no Date, no Message-ID",
                                 "the relay adds them\r\n", std, date=False, msgid=False),
                   [], dual)

    to = f"v-rsa@{SINK}"
    v["rsa"] = (to, RSAONLY, msg(f"bob@{RSAONLY}", to, "RSA-only domain", "rsa only\r\n", std),
                [], [k["rsa"]])
    return v


def dual_keys():
    k = keys()
    return [k["dual_rsa"], k["dual_ed"], k["rsa"]]


# --------------------------------------------------------------------------
# tests

def test_signed_variants_verify_at_sink():
    records = published()
    vs = variants()
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = dkim_relay(sinks, dual_keys())
    for name, (to, dom, data, opts, _) in vs.items():
        envelope = f"alice@{dom}"
        submit(d, [to], data, sender=envelope, mail_options=opts)
    got = sinks.wait_messages(len(vs), "mx.sink", timeout=20)
    by_rcpt = {m.rcpts[0]: m for m in got}
    assert len(by_rcpt) == len(vs), f"sink got {[m.rcpts for m in got]}"
    for name, (to, dom, data, opts, klist) in vs.items():
        m = by_rcpt[to]
        mxtest.note(f"# checking {name}: {m}")
        tags = verify_all(m.data, records, len(klist))
        froms = len([1 for n, _ in header_fields(data) if n.lower() == "from"])
        check_tags(tags, dom, klist, froms)
        # the signatures are the top fields, right above the relay's Received
        fields = header_fields(m.data)
        names = [n.lower() for n, _ in fields]
        assert names[:len(klist)] == ["dkim-signature"] * len(klist), names[:4]
        assert names[len(klist)] == "received", f"field after the signatures: {names[len(klist)]}"
        h = [x.lower() for x in tags[0]["h"].split(":")]
        for must in ("from", "to", "subject", "date", "message-id"):
            assert must in h, f"{name}: {must} not signed: h={tags[0]['h']}"
        if name == "nodate":
            dates = [raw for n, raw in fields if n.lower() == "date"]
            ids = [raw for n, raw in fields if n.lower() == "message-id"]
            assert len(dates) == 1 and len(ids) == 1, f"Date/Message-ID added: {dates} {ids}"
            assert mxtest.HOSTNAME.encode() in ids[0], ids[0]
            assert h.count("date") == 2 and h.count("message-id") == 2, \
                f"the added Date/Message-ID are not signed (and oversigned): h={tags[0]['h']}"
            assert body_of(m.data) == body_of(data), "body changed"
        else:
            assert m.data.endswith(data), (
                f"{name}: the delivered message is not the submitted one after the relay's "
                f"fields:\n  delivered tail {m.data[-200:]!r}\n  submitted tail {data[-200:]!r}")
        if name == "utf8":
            assert "BODY=8BITMIME" in [o.upper() for o in m.mail_options], m.mail_options
        if name == "many":
            assert h.count("x-filler-000") == 0, "X- fields are not in the signed list"
        for what, bad in tamper_cases(m.data):
            assert verifies_none(bad, records), f"{name}: a copy with {what} still verifies"
        mail_dkim_rsa_pass(m.data, klist, name)
        bad = tamper_cases(m.data)[0][1]
        assert all(r[1] != "pass" for r in mail_dkim(bad).values()), \
            f"{name}: Mail::DKIM passes a copy with a body byte changed"
    assert not events(d, "dkim_failed") and not events(d, "unsigned"), d.log()


def test_idn_from_signed_with_alabel_key():
    """SMTPUTF8 mail from alice@bücher.dlv.test: the keys configured for the A-label
    xn--bcher-kva.dlv.test sign it, d= is the A-label (RFC 8616 4)."""
    k = keys()
    klist = [k["idn_rsa"], k["idn_ed"]]
    records = published()
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = dkim_relay(sinks, klist + dual_keys(), {"dkim_unsigned": "send"})
    to = f"idn@{SINK}"
    data = mxtest.message(f"alice@{IDN_U}", to, "Grüße from an IDN domain", "ünïcödé body\r\n",
                          headers=["MIME-Version: 1.0",
                                   "Content-Type: text/plain; charset=utf-8",
                                   "Content-Transfer-Encoding: 8bit"]).encode()
    qid = submit(d, [to], data, sender=f"alice@{IDN_U}",
                 mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    (m,) = sinks.wait_messages(1, "mx.sink", timeout=20)
    assert m.data.endswith(data), "the message changed on the way"
    tags = verify_all(m.data, records, 2)
    check_tags(tags, IDN_A, klist)
    mail_dkim_rsa_pass(m.data, klist, "IDN From")
    assert not events(d, "unsigned") and not events(d, "dkim_failed"), d.log()
    mxpeers.wait_gone(d, qid, 15)


def test_retry_sends_identical_signed_message():
    """One message, two destinations: sink2 takes it at once, sink answers 451 the
    first time; the retry must send the bytes signed at intake (and stored)."""
    records = published()
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = dkim_relay(sinks, dual_keys())
    now_rcpt, later_rcpt = f"now@{SINK2}", f"temp1-later@{SINK}"
    data = mxtest.message(f"alice@{DUAL}", now_rcpt, "retried", "sign once, send twice\r\n",
                          headers=["MIME-Version: 1.0"]).encode()
    qid = submit(d, [now_rcpt, later_rcpt], data, sender=f"alice@{DUAL}")
    stored = d.message(qid)["body"]    # the 451 keeps it in the spool for >= retry_min
    stored_sigs = dkim_fields(stored)
    assert len(stored_sigs) == 2, f"spooled body has {len(stored_sigs)} DKIM-Signature fields"
    got = sinks.wait_messages(2, "mx.sink", timeout=20)
    first = [m for m in got if m.rcpts == [now_rcpt]]
    retried = [m for m in got if m.rcpts == [later_rcpt]]
    assert len(first) == 1 and len(retried) == 1, got
    refusals = [e for e in sinks.events("rcpt") if e["addr"] == later_rcpt]
    assert [e["reply"][:3] for e in refusals] == ["451", "250"], refusals
    assert first[0].t < retried[0].t
    a, b = first[0].data, retried[0].data
    assert dkim_fields(a) == dkim_fields(b) == stored_sigs, (
        "DKIM-Signature fields differ between the first delivery, the retry and the spool:\n"
        + "\n".join(repr(x) for x in (dkim_fields(a), dkim_fields(b), stored_sigs)))
    assert a == b, "the retry did not send the same bytes as the first delivery"
    assert a == stored, "the delivered message is not the spooled one"
    check_tags(verify_all(b, records, 2), DUAL, keys_for(DUAL))
    mxpeers.wait_gone(d, qid, 15)


def keys_for(domain):
    return [k for k in dual_keys() if k.domain == domain]


def test_refuse_unsigned():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = dkim_relay(sinks, dual_keys(), {"dkim_unsigned": "refuse", "missing_from": "refuse"})
    c = d.connect()
    c.ehlo()
    # a sender domain without a key: refused before any data is sent
    r = c.cmd(f"MAIL FROM:<carol@{NOKEY}>")
    r.expect(550, "5.7.1")
    c.cmd("RSET", 250)
    # envelope domain with a key, header From without one: refused after DATA
    c.cmd(f"MAIL FROM:<alice@{DUAL}>", 250)
    c.cmd(f"RCPT TO:<x@{SINK}>", 250)
    r = c.data(mxtest.message(f"boss@{NOKEY}", f"x@{SINK}", "spoofed From", "pay\r\n"))
    r.expect(550, "5.7.1")
    # no From at all: nothing to sign with either
    c.cmd(f"MAIL FROM:<alice@{DUAL}>", 250)
    c.cmd(f"RCPT TO:<x@{SINK}>", 250)
    r = c.data(crlf(f"To: <x@{SINK}>", "Subject: no From", "") + "body\r\n")
    r.expect(550, "5.7.1")
    # issue 8: a second From mailbox the relay cannot read is no longer skipped (the
    # keyed first one chose the signature), and two readable ones are refused too
    for frm in (f"<alice@{DUAL}>, <boss@{NOKEY}", f"alice@{DUAL}, boss@{NOKEY}",
                f'<alice@{DUAL}>, <"x@{DUAL}>"@{NOKEY}>'):
        c.cmd(f"MAIL FROM:<alice@{DUAL}>", 250)
        c.cmd(f"RCPT TO:<x@{SINK}>", 250)
        r = c.data(crlf(f"From: {frm}", f"To: <x@{SINK}>", "Subject: half keyed", "") + "b\r\n")
        r.expect(550, "5.7.1")
    # keyed domains pass, the envelope domain compared without regard to case
    c.cmd(f"MAIL FROM:<alice@DUAL.{ZONE.upper()}>", 250)
    c.cmd(f"RCPT TO:<ok@{SINK}>", 250)
    qid = c.data(mxtest.message(f"alice@{DUAL}", f"ok@{SINK}", "signed", "fine\r\n")).qid()
    c.cmd(f"MAIL FROM:<bob@{RSAONLY}>", 250)
    c.cmd(f"RCPT TO:<ok2@{SINK}>", 250)
    qid2 = c.data(mxtest.message(f"bob@{RSAONLY}", f"ok2@{SINK}", "signed", "fine\r\n")).qid()
    c.quit()
    got = sinks.wait_messages(2, "mx.sink", timeout=15)
    assert sorted(m.rcpts[0] for m in got) == [f"ok2@{SINK}", f"ok@{SINK}"], got
    for m in got:
        n = 2 if m.rcpts[0] == f"ok@{SINK}" else 1
        verify_all(m.data, published(), n)
    for q in (qid, qid2):
        mxpeers.wait_gone(d, q, 15)
    accepted = events(d, "accepted")
    assert sorted(e["qid"] for e in accepted) == sorted([qid, qid2]), \
        "refused messages were accepted:\n" + "\n".join(e["_line"] for e in accepted)
    rejected = events(d, "rejected")
    dkim = [e for e in rejected if "DKIM" in e.get("reason", "")]
    assert len(rejected) == 5 and len(dkim) == 1, \
        "expected five end-of-DATA refusals, one for DKIM, in the log:\n" + d.log()
    assert sinks.events("mail", "mx.sink") and all(
        e["addr"] != f"carol@{NOKEY}" for e in sinks.events("mail")), "refused mail went out"


def test_send_unsigned_with_warning():
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = dkim_relay(sinks, dual_keys(), {"dkim_unsigned": "send"})
    to = f"plain@{SINK}"
    data = mxtest.message(f"carol@{NOKEY}", to, "unsigned", "no key for this domain\r\n").encode()
    qid = submit(d, [to], data, sender=f"carol@{NOKEY}")
    (m,) = sinks.wait_messages(1, "mx.sink", timeout=15)
    assert dkim_fields(m.data) == [], "mail from a domain without a key was signed"
    assert m.data.endswith(data)
    ev = wait_event(d, "unsigned", timeout=5)
    assert ev[0].get("domain") == NOKEY and ev[0].get("qid") == qid, ev[0]["_line"]
    assert re.search(r"warn", ev[0]["_line"], re.I), f"not a warning: {ev[0]['_line']}"
    mxpeers.wait_gone(d, qid, 15)


def test_require_published_holds_unmatched_keys():
    k = keys()
    sinks = mxpeers.Sinks({"mx.sink": {}}).start()
    d = dkim_relay(sinks, [k["pub_wrong"], k["pub_good"], k["pub_missing"]],
                   {"dkim_require_published": "yes"})
    held = events(d, "dkim_key_held")
    assert sorted(e.get("selector") for e in held) == ["missing", "wrong"], \
        "expected event=dkim_key_held for selectors wrong and missing:\n" + d.log()
    assert all(e.get("domain") == PUB for e in held), held
    loaded = events(d, "dkim_key")
    assert [e.get("selector") for e in loaded] == ["good"], d.log()
    to = f"pub@{SINK}"
    data = mxtest.message(f"alice@{PUB}", to, "published keys only", "one signature\r\n",
                          headers=["MIME-Version: 1.0"]).encode()
    qid = submit(d, [to], data, sender=f"alice@{PUB}")
    (m,) = sinks.wait_messages(1, "mx.sink", timeout=15)
    tags = verify_all(m.data, published(), 1)
    check_tags(tags, PUB, [k["pub_good"]])
    mxpeers.wait_gone(d, qid, 15)


SANITIZER = re.compile(r"(AddressSanitizer|LeakSanitizer|runtime error:)")


def check_only(conf_text, tmp):
    path = mxtest.write_file(os.path.join(tmp, "relay.conf"), conf_text)
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=30)
    bad = SANITIZER.search(p.stdout + p.stderr)
    assert bad is None, f"sanitizer report from mxrelayd -n:\n{p.stderr[-3000:]}"
    return path, p


def test_bad_key_refused_by_check_and_start():
    tmp = mxtest.tmpdir()
    good = keys()["dual_ed"]
    garbage = mxtest.write_file(os.path.join(tmp, "garbage.pem"),
                                "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
                                "-----END PRIVATE KEY-----\n", 0o600)
    small = os.path.join(tmp, "small.pem")
    mxtest.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
                "-out", small], timeout=30, check=0, quiet=True)
    os.chmod(small, 0o600)
    cases = [
        ("missing file", os.path.join(tmp, "no-such-key.pem")),
        ("a directory", tmp),
        ("not a key", garbage),
        ("RSA-1024", small),
    ]
    base = [f"data_dir = {tmp}/data", "user = nobody", "log = stderr",
            f"dkim_key = {DUAL} {good.selector} {good.path}"]
    for what, keyfile in cases:
        text = "\n".join(base + ["# the bad one", f"dkim_key = {DUAL} bad {keyfile}"]) + "\n"
        path, p = check_only(text, tmp)
        out = p.stdout + p.stderr
        assert p.returncode != 0, f"{what}: mxrelayd -n exited 0:\n{out}"
        want = f"{path}:6: dkim_key: "
        assert want in out, f"{what}: no '{want}...' in:\n{out}"
    # an internationalized domain is configured by its A-label, which the error names
    text = "\n".join(base + ["# the U-label", f"dkim_key = {IDN_U} u {good.path}"]) + "\n"
    path, p = check_only(text, tmp)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"mxrelayd -n accepted a U-label dkim_key domain:\n{out}"
    assert f"{path}:6: dkim_key: write the domain as its A-label: {IDN_A}" in out, out
    # the good key alone passes the check
    path, p = check_only("\n".join(base) + "\n", tmp)
    assert p.returncode == 0, p.stdout + p.stderr
    # and the daemon refuses to start with a missing key (before binding anything)
    text = "\n".join(base + ["# the bad one", f"dkim_key = {DUAL} bad {tmp}/gone.pem",
                             "", "[listener main]",
                             f"address = 127.0.0.1:{mxtest.free_port()}", "tls = none"]) + "\n"
    path = mxtest.write_file(os.path.join(tmp, "start.conf"), text)
    mxtest.note(f"$ {mxtest.MXRELAYD} -c {path}")
    proc = subprocess.Popen([mxtest.MXRELAYD, "-c", path], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    out = out.decode(errors="replace")
    mxtest.note(out)
    assert proc.returncode not in (0, None), f"mxrelayd started with a missing key:\n{out}"
    assert f"{path}:6: dkim_key: " in out, out
    assert SANITIZER.search(out) is None, f"sanitizer report from mxrelayd:\n{out[-3000:]}"


if __name__ == "__main__":
    mxtest.main()
