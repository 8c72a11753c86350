#!/usr/bin/python3
"""Header From, differential: every value of test/data/header_from.tsv (comments,
groups, encoded words, quoted strings, obsolete syntax, unbalanced brackets,
several mailboxes, the issue 8 bypasses) is sent through the real daemon by a
user allowed to send only as scans@example.com, and parsed by Python's
email.headerregistry. The relay may accept only where Python, too, reads
exactly one mailbox, that mailbox is the allowed one, and Python saw no defect
but the few that concern only the display name's spelling (below). Each value
also has its expected verdict in the corpus, so the relay cannot pass by
refusing everything."""

import email.policy
import json
import os
import sys
from email.parser import BytesParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

CORPUS = os.path.join(mxtest.SRC, "test", "data", "header_from.tsv")
ALLOWED = "scans@example.com"
# Python's defects that say nothing about which mailbox it found: a '.' in a
# display name (obs-phrase, RFC 5322 4.1), UTF-8 in a display name (RFC 6532),
# and encoded words it decodes where RFC 2047 says not to.
DISPLAY_NAME_DEFECTS = {
    "period in 'phrase'",
    "Non-ASCII characters found in header token",
    "encoded word inside quoted string",
    "missing trailing whitespace after encoded-word",
}


def corpus():
    out = []
    with open(CORPUS, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            verdict, label, value = line.rstrip("\n").split("\t")
            assert verdict in ("accept", "refuse"), f"{CORPUS}:{n}: bad verdict {verdict!r}"
            out.append((verdict, label, json.loads(value)))
    return out


def message(value):
    return (b"From: " + value.encode("utf-8") + b"\r\nTo: <far@example.net>\r\n"
            b"Subject: header From corpus\r\n\r\nbody\r\n")


def python_reads(value):
    """(addr-specs, defects) as Python's email package reads the From field, or (None, [error])."""
    try:
        msg = BytesParser(policy=email.policy.default).parsebytes(message(value))
        h = msg["From"]
        return [a.addr_spec for a in h.addresses], [str(d) for d in h.defects]
    except Exception as e:  # noqa: BLE001 - a parser crash is a disagreement
        return None, [repr(e)]


def python_one_allowed(value):
    addrs, defects = python_reads(value)
    if addrs is None or len(addrs) != 1 or set(defects) - DISPLAY_NAME_DEFECTS:
        return False
    local, _, dom = addrs[0].rpartition("@")
    return f"{local}@{dom.lower()}" == ALLOWED


def daemon():
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"), [("scanner", "scan-pw", ALLOWED, False)])
    return mxtest.Daemon(tmp=tmp, conf={"credentials": creds, "relay_from": "192.0.2.0/24"},
                         listeners={"main": {"tls": "none", "auth_without_tls": "yes"}}).start()


def test_corpus_relay_and_python_agree():
    cases = corpus()
    assert len(cases) >= 60, f"corpus too small: {len(cases)}"
    d = daemon()
    s = d.connect(src="127.0.0.31")
    s.ehlo()
    s.auth_plain("scanner", "scan-pw").expect(235, "2.7.0")
    unsafe, wrong, accepted = [], [], 0
    for verdict, label, value in cases:
        mark = mxtest.transcript_mark()
        s.cmd(f"MAIL FROM:<{ALLOWED}>", 250)
        s.cmd("RCPT TO:<far@example.net>", 250)
        r = s.data(message(value), stuff=True)
        if r.code == 250:
            accepted += 1
            if not python_one_allowed(value):
                unsafe.append(f"{label}: relay accepted, Python reads {python_reads(value)}")
        elif r.code != 550 or r.enh not in ("5.7.1", "5.6.0"):
            wrong.append(f"{label}: unexpected reply {r}\n" + mxtest.transcript_since(mark))
            continue
        got = "accept" if r.code == 250 else "refuse"
        if got != verdict:
            wrong.append(f"{label}: relay said {r}, corpus expects {verdict}")
        if verdict == "accept" and not python_one_allowed(value):
            wrong.append(f"{label}: marked accept, but Python reads {python_reads(value)}")
    s.quit()
    mxtest.note(f"# {len(cases)} From values, {accepted} accepted")
    assert not unsafe, "the relay accepted a From that receivers read differently:\n" + \
        "\n".join(unsafe)
    assert not wrong, "\n".join(wrong)
    assert d.count(received_only=True) == accepted


if __name__ == "__main__":
    mxtest.main()
