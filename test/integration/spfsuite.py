"""spfsuite: the RFC 7208 test suite (test/data/spf/rfc7208-tests.yml) served
by nsd in a network namespace, evaluated by pyspf and by
`mxrelayctl dns spf-eval`, compared case by case.

The suite is a YAML stream of scenarios; each has `zonedata` (name -> list
of records) and `tests` (name -> host, mailfrom, helo, result, explanation).
Scenarios reuse names (example.com is in most), so one scenario is served
at a time: nsd is restarted in the same namespace with the next
scenario's zones.

How zonedata becomes DNS (zones_for):
- Everything lives in one root zone ("."), so any name the suite uses can
  be published and every other name is NXDOMAIN.
- TXT and SPF (type 99) records: a string is one character-string (split
  at 255 bytes), a list is several character-strings of one record, an
  empty list (no string at all, test "null text") cannot be published (nsd
  refuses it) and is reported. Characters are published as the bytes the
  YAML escapes name (latin-1), else UTF-8, zone-file escaped as \\DDD.
- The suite's header says drivers copy SPF records to TXT: a name with
  SPF records and no TXT entry (not even "NONE") gets each as a TXT record
  too. "NONE" means no record of that type.
- TIMEOUT: the name answers SERVFAIL (a DNS error, never an answer), by
  making it an nsd zone whose zone file is missing. Names of the scenario
  below it become zones of their own so they keep answering. When the
  TIMEOUT name also has TXT records, those are served and only the other
  types would time out: nsd cannot fail one type of a name, so that part is
  reported (served_as) and not reproduced; it only concerns type SPF, which
  no RFC 7208 evaluator queries. Names below a TIMEOUT name that the
  scenario does not list answer SERVFAIL too, not NXDOMAIN (reported).
- What DNS cannot carry (a label over 63 bytes, a name over 255, an empty
  label) is reported in Scenario.unservable, never dropped silently.

pyspf_eval(ip, sender, helo, netns=None) is the independent evaluator for
any test: with netns (a dnsns.NetnsDns, privns.Netns or a namespace name)
it runs pyspf inside that namespace (its resolver is the test DNS there).
"""

import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dnsns  # noqa: E402
import mxtest  # noqa: E402

SUITE = os.path.join(mxtest.SRC, "test", "data", "spf", "rfc7208-tests.yml")
PYTHON = "/usr/bin/python3"
RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")


# --------------------------------------------------------------------------
# the suite

class Case:
    def __init__(self, scenario, name, t):
        self.scenario = scenario
        self.name = name
        self.host = str(t["host"])
        self.mailfrom = str(t.get("mailfrom", ""))
        self.helo = str(t.get("helo", ""))
        r = t["result"]
        self.allowed = [r] if isinstance(r, str) else list(r)
        self.explanation = t.get("explanation")
        self.spec = str(t.get("spec", ""))


class Scenario:
    def __init__(self, index, doc):
        self.index = index
        self.description = doc.get("description", f"scenario {index}")
        self.zonedata = doc.get("zonedata") or {}
        self.cases = [Case(self, n, t) for n, t in (doc.get("tests") or {}).items()]
        self.unservable = []   # (name, what, why): zonedata DNS cannot carry
        self.served_as = []    # (name, what): published differently from the suite's intent


def load(path=SUITE):
    """The scenarios of the YAML suite, in order."""
    import yaml
    with open(path, "rb") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return [Scenario(i, d) for i, d in enumerate(docs)]


# --------------------------------------------------------------------------
# zonedata -> zone files

def wire(text):
    """The bytes a suite string stands for: YAML \\xNN escapes are those bytes."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _esc_byte(b, keep):
    c = chr(b)
    return c if (0x21 <= b <= 0x7e and c in keep) or c.isalnum() and b < 0x80 else f"\\{b:03d}"


def name_labels(name):
    """The labels of a suite name (no trailing dot), or raise ValueError (why DNS can't)."""
    raw = wire(name.rstrip("."))
    labels = raw.split(b".")
    if any(len(lb) == 0 for lb in labels):
        raise ValueError("empty label")
    if any(len(lb) > 63 for lb in labels):
        raise ValueError("label longer than 63 bytes (RFC 1035 2.3.4)")
    if sum(len(lb) + 1 for lb in labels) + 1 > 255:
        raise ValueError("name longer than 255 bytes (RFC 1035 2.3.4)")
    return labels


def zone_name(name):
    """An absolute zone-file name, every unusual byte escaped."""
    if name in (".", ""):
        return "."
    return ".".join("".join(_esc_byte(b, "-_") for b in lb) for lb in name_labels(name)) + "."


def char_strings(value):
    """Zone-file rdata of a TXT/SPF record: a string or a list of strings."""
    parts = [value] if isinstance(value, str) else [str(v) for v in value]
    if not parts:
        # RFC 1035 3.3.14 requires one string at least; nsd refuses even the
        # RFC 3597 form (\# 0) of an empty TXT, so the suite's "null text"
        # record cannot be published
        raise ValueError("a TXT/SPF record with no character-string (RFC 1035 3.3.14 needs one; "
                         "nsd refuses it)")
    out = []
    for p in parts:
        raw = wire(p)
        chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        for ch in chunks:
            out.append('"' + "".join(_esc_byte(b, "-_.:/=+~!#$%&'*,<>?@[]^`{|}()")
                                     for b in ch) + '"')
    return " ".join(out)


def _under(name, apex):
    n, a = name.lower().rstrip("."), apex.lower().rstrip(".")
    return a == "" or n == a or n.endswith("." + a)


def _records(sc, name, recs):
    """[(type, value)] of one name, with the suite's SPF -> TXT copy; TIMEOUT flag."""
    out, timeout = [], False
    has_txt = any(isinstance(r, dict) and "TXT" in r for r in recs)
    for r in recs:
        if r == "TIMEOUT":
            timeout = True
            continue
        if not isinstance(r, dict) or len(r) != 1:
            sc.unservable.append((name, repr(r), "not a record the suite's schema knows"))
            continue
        (rtype, value), = r.items()
        if value == "NONE":
            continue
        out.append((rtype, value))
        if rtype == "SPF" and not has_txt:
            out.append(("TXT", value))
    return out, timeout


def _rr_line(owner, rtype, value):
    if rtype in ("TXT", "SPF"):
        return f"{owner} IN {rtype} {char_strings(value)}"
    if rtype == "MX":
        pref, host = value
        return f"{owner} IN MX {int(pref)} {zone_name(str(host))}"
    if rtype in ("PTR", "CNAME"):
        return f"{owner} IN {rtype} {zone_name(str(value))}"
    if rtype in ("A", "AAAA"):
        return f"{owner} IN {rtype} {value}"
    raise ValueError(f"record type {rtype} unknown to the suite driver")


def zones_for(sc):
    """{apex: zone text or None (None: zone file missing, nsd answers SERVFAIL)}.

    Fills sc.unservable and sc.served_as."""
    sc.unservable, sc.served_as = [], []
    byname, failing = {}, []
    for name, recs in sc.zonedata.items():
        try:
            name_labels(name)
        except ValueError as e:
            sc.unservable.append((name, "all records", str(e)))
            continue
        rrs, timeout = _records(sc, name, recs or [])
        byname[name] = rrs
        if timeout:
            if any(t == "TXT" for t, _ in rrs):
                sc.served_as.append((name, "TIMEOUT for its types other than TXT not reproduced: "
                                     "nsd cannot fail one type of a name"))
            else:
                failing.append(name)
                lost = "".join(f"; its {t} record is not served" for t, _ in rrs)
                sc.served_as.append((name, "TIMEOUT: SERVFAIL for every type, and for names "
                                     "below it the scenario does not list (not NXDOMAIN)" + lost))
    apexes = ["."] + failing + [n for n in byname if n not in failing
                                and any(_under(n, f) for f in failing)]
    zones = {a: ([] if a not in failing else None) for a in apexes}
    for name, rrs in byname.items():
        if name in failing:
            continue
        apex = max((a for a in apexes if a not in failing and _under(name, a)),
                   key=lambda a: len(a.rstrip(".")))
        for rtype, value in rrs:
            try:
                zones[apex].append(_rr_line(zone_name(name), rtype, value))
            except ValueError as e:
                sc.unservable.append((name, f"{rtype} {value!r}", str(e)))
    return {a: (None if lines is None else _zone_text(a, lines)) for a, lines in zones.items()}


def _zone_text(apex, lines):
    origin = zone_name(apex)
    head = ["$TTL 60",
            f"{origin} IN SOA ns.spf-suite.invalid. hostmaster.spf-suite.invalid. "
            "1 3600 600 86400 60",
            f"{origin} IN NS ns.spf-suite.invalid."]
    return "\n".join(head + lines) + "\n"


# --------------------------------------------------------------------------
# nsd serving one scenario at a time

class SuiteDns(dnsns.NetnsDns):
    """dnsns.NetnsDns whose zones may lack a file (SERVFAIL), re-served per scenario."""

    def __init__(self):
        super().__init__({".": _zone_text(".", [])})

    def _write_conf(self):
        d = self.dir
        conf = dnsns.nsd_conf(d)
        for i, (apex, text) in enumerate(self.zones.items()):
            fn = os.path.join(d, f"zone{i}.zone")
            if text is not None:
                with open(fn, "wb") as f:
                    f.write(text.encode("ascii"))
            else:
                fn = os.path.join(d, f"zone{i}.missing")  # never written: SERVFAIL
            conf += ["zone:", f'    name: "{zone_name(apex)}"', f'    zonefile: "{fn}"']
        with open(os.path.join(d, "nsd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")

    def serve(self, zones):
        """Restart nsd with zones (root zone first: its SOA is the readiness probe)."""
        assert next(iter(zones)) == "."
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(10)
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.zones = zones
        self._start_nsd()
        bad = re.findall(r"^.*(?:error|syntax).*$", self.output(), re.M | re.I)
        bad = [b for b in bad if ".missing" not in b]
        if bad:
            raise AssertionError("nsd rejected a zone of the scenario:\n" + "\n".join(bad[:20]))


# --------------------------------------------------------------------------
# pyspf

def _netns_name(netns):
    return netns if isinstance(netns, str) else netns.name


def pyspf_eval(ip, sender, helo, netns=None, timeout=20):
    """(result, explanation) from pyspf for client ip, MAIL FROM sender, HELO helo.

    netns None: in this process (its resolver must be the test DNS already);
    else inside that namespace (a NetnsDns, privns.Netns or a name). The
    explanation is pyspf's exp text ("" when it gives none)."""
    if netns is None:
        import spf
        try:
            res, _code, exp = spf.query(i=ip, s=sender, h=helo, timeout=timeout).check()
        except Exception as e:  # noqa: BLE001 - a crash is reported as such
            return "crash", f"{type(e).__name__}: {e}"
        return res, exp or ""
    p = subprocess.run(["ip", "netns", "exec", _netns_name(netns), PYTHON, os.path.abspath(__file__),
                        "pyspf", ip, sender, helo], capture_output=True, text=True,
                       timeout=timeout + 10)
    if p.returncode != 0:
        raise AssertionError(f"pyspf in {_netns_name(netns)} failed: {p.stderr.strip()}")
    r = json.loads(p.stdout)
    mxtest.note(f"# pyspf ip={ip} sender={sender!r} helo={helo!r}: {r['result']} "
                f"{r['explanation']!r}")
    return r["result"], r["explanation"]


def pyspf_default_exp(result):
    """pyspf's own explanation for result (what it says when no exp= applies)."""
    import spf
    return spf.EXPLANATIONS.get(result, "")


class JsonWorker:
    """One evaluator process inside a namespace answering many cases: a JSON
    line [ip, sender, helo] in, a JSON line {"result", "explanation"} out."""

    def __init__(self, netns, argv):
        self.proc = subprocess.Popen(["ip", "netns", "exec", _netns_name(netns)] + argv,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)

    def eval(self, ip, sender, helo):
        self.proc.stdin.write(json.dumps([ip, sender, helo]) + "\n")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the evaluator {self.proc.args[4:]} exited")
        r = json.loads(line)
        return r["result"], r["explanation"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def pyspf_worker(netns):
    return JsonWorker(netns, [PYTHON, os.path.abspath(__file__), "worker"])


def mailspf_worker(netns):
    """Mail::SPF (libmail-spf-perl), the second opinion (mailspf_worker.pl)."""
    return JsonWorker(netns, ["perl", os.path.join(HERE, "mailspf_worker.pl")])


# --------------------------------------------------------------------------
# mxrelayctl dns spf-eval

def ours_eval(netns, ip, sender, helo, ctl=None):
    """(result, explanation, output) from `mxrelayctl dns spf-eval` inside netns.

    Contract (tools/ctl_spfeval.c): line 1 is the result word; a fail with
    an exp= explanation has a line "explanation: TEXT". A result that is not
    a result word (the command failed) comes back as "error"."""
    ctl = ctl or mxtest.MXRELAYCTL
    cmd = ["ip", "netns", "exec", _netns_name(netns), ctl, "dns", "spf-eval", "--helo", helo,
           ip, sender]
    p = subprocess.run(cmd, capture_output=True, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    lines = out.splitlines()
    res = lines[0].strip() if lines else ""
    if p.returncode != 0 or res not in RESULTS:
        return "error", "", f"exit {p.returncode}: {(out + err).strip()[:300]}"
    exp = ""
    for ln in lines[1:]:
        if ln.startswith("explanation: "):
            exp = ln[len("explanation: "):]
    if re.search(r"(AddressSanitizer|LeakSanitizer|runtime error:)", err):
        return "error", exp, "sanitizer report: " + err[-1500:]
    return res, exp, out.strip()


# --------------------------------------------------------------------------
# the whole run

class Outcome:
    def __init__(self, case, pyspf, ours, mailspf):
        self.case = case
        self.pyspf = pyspf          # (result, explanation)
        self.ours = ours            # (result, explanation, output) or None
        self.mailspf = mailspf      # (result, explanation) or None

    def pyspf_problem(self):
        """Why pyspf is outside the suite for this case, or None."""
        c, (res, exp) = self.case, self.pyspf
        if res not in c.allowed:
            return f"pyspf {res}, suite allows {'/'.join(c.allowed)}"
        want = pyspf_default_exp(res) if c.explanation == "DEFAULT" else c.explanation
        if c.explanation is not None and exp != want:
            return f"pyspf explanation {exp!r}, suite {c.explanation!r}"
        return None

    def mailspf_problem(self):
        """Why Mail::SPF is outside the suite for this case, or None (its
        default explanation is its own text: only exp= ones are compared)."""
        c, (res, exp) = self.case, self.mailspf
        if res not in c.allowed:
            return f"Mail::SPF {res}, suite allows {'/'.join(c.allowed)}"
        if c.explanation not in (None, "DEFAULT") and exp != c.explanation:
            return f"Mail::SPF explanation {exp!r}, suite {c.explanation!r}"
        return None

    def ours_problem(self):
        """Why ours disagrees (with the suite or with pyspf), or None."""
        c, (res, exp, out) = self.case, self.ours
        why = next((ln for ln in out.splitlines() if ln.startswith("why: ")), out[-200:])
        if res not in c.allowed:
            return f"ours {res}, suite allows {'/'.join(c.allowed)} ({why})"
        if self.pyspf[0] != res and self.pyspf_problem() is None:
            return f"ours {res}, pyspf {self.pyspf[0]} ({why})"
        # the suite's "DEFAULT": the implementation's own text, i.e. no exp= one
        want = "" if c.explanation == "DEFAULT" else c.explanation
        if c.explanation is not None and exp != want:
            return f"ours explanation {exp!r}, suite {c.explanation!r}"
        return None


def run_suite(ours=True, mailspf=True, only=None):
    """Serve every scenario, evaluate every case; ([Scenario], [Outcome]).

    only: case names to run (None: all)."""
    scenarios = load()
    ns = SuiteDns().start()
    py = pyspf_worker(ns)
    perl = mailspf_worker(ns) if mailspf else None
    outcomes = []
    try:
        for sc in scenarios:
            cases = [c for c in sc.cases if only is None or c.name in only]
            if not cases:
                continue
            ns.serve(zones_for(sc))
            for c in cases:
                args = (c.host, c.mailfrom, c.helo)
                outcomes.append(Outcome(c, py.eval(*args),
                                        ours_eval(ns, *args) if ours else None,
                                        perl.eval(*args) if perl else None))
    finally:
        py.close()
        if perl:
            perl.close()
        ns.stop()
    return scenarios, outcomes


def _worker():
    for line in sys.stdin:
        ip, sender, helo = json.loads(line)
        res, exp = pyspf_eval(ip, sender, helo)
        sys.stdout.write(json.dumps({"result": res, "explanation": exp}) + "\n")
        sys.stdout.flush()


def _table(only):
    """One line per case: name, suite, pyspf, Mail::SPF, ours (a debugging aid)."""
    _scenarios, outcomes = run_suite(only=only or None)
    for o in outcomes:
        verdict = o.ours_problem() or "ok"
        print(f"{o.case.name:32} suite={'/'.join(o.case.allowed):18} pyspf={o.pyspf[0]:10} "
              f"mailspf={o.mailspf[0]:10} ours={o.ours[0]:10} {verdict}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "pyspf":
        r, e = pyspf_eval(*sys.argv[2:5])
        print(json.dumps({"result": r, "explanation": e}))
    elif len(sys.argv) == 2 and sys.argv[1] == "worker":
        _worker()
    elif len(sys.argv) >= 2 and sys.argv[1] == "table":
        _table(sys.argv[2:])
    else:
        sys.stderr.write("usage: spfsuite.py table [CASE...] | pyspf IP SENDER HELO | worker\n")
        sys.exit(2)
