#!/usr/bin/python3
"""mxrelayctl dkim rotate DOMAIN against a running mxrelayd, nsd and two verifiers.

One domain signs with an RSA and an Ed25519 key (made by `dkim keygen`);
nsd (mxpeers.Nsd on 127.0.0.1:PORT, the daemon's and the tool's
dns_servers) publishes their records; an aiosmtpd sink receives the relayed
mail, and python3-dkim (asking that nsd through dnspython) and Mail::DKIM
(RSA) verify it.

Covered, in order: step 1 makes two new keys (same mode as the old ones),
prints their records and changes nothing in the config: mail is still
signed with the old selectors. Step 2 is refused (exit 1, config untouched,
no .bak) while the new records are missing, and while one is wrong. After
nsd publishes them (zone rewritten, SIGHUP to nsd) step 2 rewrites the
config (old dkim_key lines commented with the dates, new ones after them,
every other byte kept, .bak = the old file, mode and group kept, the config
a symlink edited through the link), SIGHUPs the daemon
it found through INFO on the control socket, and mail is signed with the
new selectors (both verifiers pass). Before the delay the command says how
long is left; with the clock moved past it (MXRELAYCTL_NOW) it retires the
old keys: comments removed, key files moved to .retired, records to
delete printed, state removed. --abort before the switch deletes the new
keys; after it, it is refused. Errors: no dkim_key for the domain (points at
keygen), a rotation already pending, a config that does not parse, a
read-only config (private mount namespace), usage errors (exit 2).

Everything stays on loopback: nsd on 127.0.0.1, the sink on this run's
127.A.B.0/24 (mxpeers)."""

import atexit
import grp
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsns  # noqa: E402
import dnstest  # noqa: E402
import mxtest  # noqa: E402
import mxpeers  # noqa: E402
from mxpeers import ZONE  # noqa: E402

CTL = mxtest.MXRELAYCTL
DOM = f"rot.{ZONE}"
RCPT = f"someone@sink.{ZONE}"
WEEK = 7 * 86400
NOGROUP = grp.getgrnam("nogroup").gr_gid


def printed_records(out):
    """{name: value} of the records a command printed (web-panel fields)."""
    names = re.findall(r"^  Name:  (.*)$", out, re.M)
    values = re.findall(r"^  Value: (.*)$", out, re.M)
    assert names and len(names) == len(values), f"no records printed:\n{out}"
    return dict(zip(names, values))


class World:
    """Keys, nsd, sink and daemon of one rotation."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="mxrotate-")
        os.chmod(self.tmp, 0o755)  # the daemon (nobody) re-reads keys below it on SIGHUP
        atexit.register(shutil.rmtree, self.tmp, True)
        self.keydir = os.path.join(self.tmp, "dkim")
        os.mkdir(self.keydir, 0o755)
        self.records = {}  # name -> value published by nsd
        self.old = {}      # alg -> (selector, path)
        for alg, sel in (("rsa", "old-r"), ("ed25519", "old-e")):
            path = os.path.join(self.keydir, f"{DOM}.{sel}.pem")
            p = mxtest.run([CTL, "dkim", "keygen", DOM, sel, "--type", alg, "--out", path],
                           timeout=60, check=0)
            self.records.update(printed_records(p.stdout))
            self.old[alg] = (sel, path)
            # as deployed: readable by the daemon's group (it runs as nobody:nogroup here)
            shutil.chown(path, group="nogroup")
            os.chmod(path, 0o640)
        self.nsd_dir = tempfile.mkdtemp(prefix="mxrotnsd-")
        atexit.register(shutil.rmtree, self.nsd_dir, True)
        self.nsd = mxpeers.Nsd(self.nsd_dir, {ZONE: self.zone()}).start()
        atexit.register(self.nsd.stop)
        mxpeers._nsd = self.nsd  # relay()'s default: one nsd for everything
        self.sinks = mxpeers.Sinks({"mx.sink": {}}).start()
        self.d = mxpeers.relay(self.sinks, {"dns_servers": f"127.0.0.1:{self.nsd.port}"},
                               start=False)
        self.conf = self.d.conf_path
        self.write_conf()
        self.d.start()

    def zone(self):
        z = mxpeers.delivery_zone()
        for name, value in self.records.items():
            z += f"{name[:-len('.' + ZONE)]} IN TXT {dnsns.txt_strings(value)}\n"
        return z

    def publish(self, records):
        """Serve records too (name -> value; None removes), then wait until nsd answers."""
        for name, value in records.items():
            if value is None:
                self.records.pop(name, None)
            else:
                self.records[name] = value
        path = os.path.join(self.nsd_dir, ZONE + ".zone")
        with open(path, "w") as f:
            f.write(self.zone())
        later = time.time() + 10
        os.utime(path, (later, later))  # nsd reloads a zone file whose mtime changed
        self.nsd.proc.send_signal(signal.SIGHUP)

        def served():
            return all(self.txt(n) == v for n, v in self.records.items())
        mxtest.wait_for(served, 10, what="nsd serving the new records")

    def txt(self, name):
        import dns.resolver
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = ["127.0.0.1"]
        r.port = self.nsd.port
        r.lifetime = 3
        try:
            a = r.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(a[0].strings).decode()

    def write_conf(self):
        """The daemon's config with comments, blank lines and the two dkim_key lines."""
        head, sep, rest = self.d.config_text().partition("\n[listener")
        rsa, ed = self.old["rsa"], self.old["ed25519"]
        text = (head.rstrip("\n") + "\n"
                "\n# DKIM: rotated by mxrelayctl dkim rotate (this comment must survive)\n"
                f"dkim_key = {DOM} {rsa[0]} {rsa[1]}\n"
                "   # an indented comment between the keys\n"
                f"dkim_key = {DOM} {ed[0]} {ed[1]}\n"
                "dkim_unsigned = send   \n"
                + sep + rest)
        # the config is a symlink (as with configuration management): edits go to its target
        self.real = os.path.join(self.tmp, "etc", "mxrelay.conf")
        os.makedirs(os.path.dirname(self.real), 0o755)
        mxtest.write_file(self.real, text, mode=0o640)
        shutil.chown(self.real, group="nogroup")
        os.unlink(self.conf)
        os.symlink(self.real, self.conf)
        self.original = text.encode()

    def conf_bytes(self):
        with open(self.conf, "rb") as f:
            return f.read()

    def rotate(self, *args, code=0, now=None):
        env = dict(os.environ)
        if now is not None:
            env["MXRELAYCTL_NOW"] = str(int(now))
        p = mxtest.run([CTL, "dkim", "rotate", DOM, "-c", self.conf] + list(args), env=env,
                       timeout=60, check=None)
        assert p.returncode == code, \
            f"dkim rotate {args}: exit {p.returncode}, expected {code}\n{p.stdout}{p.stderr}"
        return p

    def send(self, subject):
        """Relay one message from DOM; the signed copy the sink received."""
        n = len(self.sinks.messages("mx.sink"))
        body = mxtest.message(f"alice@{DOM}", RCPT, subject, "rotation test body\r\n")
        mxpeers.submit(self.d, [RCPT], body, sender=f"alice@{DOM}")
        got = self.sinks.wait_messages(n + 1, "mx.sink", timeout=20)
        return got[-1].data

    def dnsfunc(self, name, timeout=5):
        n = (name.decode() if isinstance(name, bytes) else name).rstrip(".")
        v = self.txt(n)
        return v.encode() if v is not None else None

    def verify(self, data, selectors):
        """python3-dkim verifies every signature, asking nsd; their s= are selectors;
        Mail::DKIM passes the RSA one."""
        import dkim
        fields = re.findall(rb"^DKIM-Signature:.*?(?=\r\n\S)", data, re.M | re.S)
        got = [re.search(rb"\bs=([^;\s]+)", f).group(1).decode() for f in fields]
        assert sorted(got) == sorted(selectors), f"signed with {got}, expected {selectors}"
        for i in range(len(fields)):
            assert dkim.DKIM(data).verify(idx=i, dnsfunc=self.dnsfunc), \
                f"python3-dkim: signature s={got[i]} does not verify against nsd"
        path = os.path.join(self.tmp, "msg.eml")
        with open(path, "wb") as f:
            f.write(data)
        p = mxtest.run(["perl", "-e", dnstest.MAIL_DKIM, path, str(self.nsd.port)], timeout=60,
                       check=0)
        rsa_sel = [s for s in selectors if s.endswith("r")]
        assert re.search(rf"^s={re.escape(rsa_sel[0])} a=rsa-sha256 pass ", p.stdout, re.M), \
            f"Mail::DKIM does not pass s={rsa_sel[0]}:\n{p.stdout}"


def test_rotation_end_to_end():
    w = World()
    old_sels = [w.old["rsa"][0], w.old["ed25519"][0]]
    w.verify(w.send("before rotation"), old_sels)

    # step 1: new keys and records, nothing in the config changes
    t0 = time.time()
    p = w.rotate()
    new = printed_records(p.stdout)
    assert len(new) == 2, new
    m = re.search(r"^Wrote (\S+) \(rsa", p.stdout, re.M)
    assert m, p.stdout
    sel = re.match(r".*\.(s\d{6})r\.pem$", m.group(1)).group(1)
    new_sels = [sel + "r", sel + "e"]
    assert sorted(n.split(".")[0] for n in new) == sorted(new_sels), new
    for s in new_sels:
        path = os.path.join(w.keydir, f"{DOM}.{s}.pem")
        st = os.stat(path)  # the old key's owner, group and mode, so the daemon reads it
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == NOGROUP, (oct(st.st_mode), st)
    assert w.conf_bytes() == w.original, "step 1 changed the config"
    assert not os.path.exists(w.real + ".bak")
    assert os.path.exists(f"{w.real}.dkim-rotate.{DOM}")  # beside the config's real file
    assert "keeps signing" in p.stdout, p.stdout
    w.verify(w.send("after step 1"), old_sels)

    # a second start while one is pending is refused
    p = w.rotate("--type", "rsa", code=1)
    assert "already pending" in p.stderr, p.stderr

    # step 2 while the records are missing: refused, nothing changed
    p = w.rotate(code=1)
    assert p.stdout.count("not ready:") == 2, p.stdout
    assert "no TXT record" in p.stdout, p.stdout
    assert w.conf_bytes() == w.original and not os.path.exists(w.real + ".bak")

    # one right, one wrong (the old RSA key's record at the new RSA name)
    rname = f"{new_sels[0]}._domainkey.{DOM}"
    ename = f"{new_sels[1]}._domainkey.{DOM}"
    w.publish({ename: new[ename], rname: w.records[f"{old_sels[0]}._domainkey.{DOM}"]})
    p = w.rotate("--check", code=1)
    assert re.search(rf"^not ready: {re.escape(rname)}: .*different key", p.stdout, re.M), p.stdout
    assert re.search(rf"^published: {re.escape(ename)}", p.stdout, re.M), p.stdout
    p = w.rotate(code=1)
    assert w.conf_bytes() == w.original and not os.path.exists(w.real + ".bak")
    w.verify(w.send("wrong record published"), old_sels)

    # published: --check says ready and changes nothing; the plain run switches
    w.publish({rname: new[rname]})
    p = w.rotate("--check")
    assert "Ready" in p.stdout and w.conf_bytes() == w.original, p.stdout
    mark = w.d._log_size()
    p = w.rotate()
    assert f"SIGHUP sent to pid {w.d.proc.pid}" in p.stdout, p.stdout
    assert os.path.islink(w.conf), "the config symlink was replaced by a file"
    assert f"(the previous version is {w.real}.bak)" in p.stdout, p.stdout
    with open(w.real + ".bak", "rb") as f:
        assert f.read() == w.original, ".bak is not the previous config"
    st = os.stat(w.real)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == NOGROUP, (oct(st.st_mode), st)
    text = w.conf_bytes().decode()
    day, until = time.strftime("%Y-%m-%d", time.gmtime(t0)), \
        time.strftime("%Y-%m-%d", time.gmtime(t0 + WEEK))
    rsa, ed = w.old["rsa"], w.old["ed25519"]
    newr = os.path.join(w.keydir, f"{DOM}.{new_sels[0]}.pem")
    newe = os.path.join(w.keydir, f"{DOM}.{new_sels[1]}.pem")
    mark_line = "# retired by mxrelayctl dkim rotate on {}, its DNS record stays until {}: "
    want = w.original.decode().replace(
        f"dkim_key = {DOM} {rsa[0]} {rsa[1]}\n",
        mark_line.format(day, until) + f"dkim_key = {DOM} {rsa[0]} {rsa[1]}\n").replace(
        f"dkim_key = {DOM} {ed[0]} {ed[1]}\n",
        mark_line.format(day, until) + f"dkim_key = {DOM} {ed[0]} {ed[1]}\n"
        f"dkim_key = {DOM} {new_sels[0]} {newr}\n"
        f"dkim_key = {DOM} {new_sels[1]} {newe}\n")
    assert text == want, f"switched config:\n{text}\nexpected:\n{want}"
    w.d.wait_log(rf"event=dkim_key domain={re.escape(DOM)} selector={new_sels[1]}", 10,
                 since=mark)
    w.d.wait_log(r"event=reloaded", 10, since=mark)
    w.verify(w.send("after the switch"), new_sels)

    p = w.rotate("--abort", code=1)
    assert "has switched" in p.stderr and ".bak" in p.stderr, p.stderr

    # before the delay: how long is left, nothing changes
    p = w.rotate()
    assert re.search(r"in (6 days 23|7 days 0) hours", p.stdout), p.stdout
    assert w.conf_bytes().decode() == want

    # after it: old keys retired
    p = w.rotate(now=time.time() + WEEK + 60)
    final = w.original.decode().replace(
        f"dkim_key = {DOM} {rsa[0]} {rsa[1]}\n", "").replace(
        f"dkim_key = {DOM} {ed[0]} {ed[1]}\n",
        f"dkim_key = {DOM} {new_sels[0]} {newr}\n"
        f"dkim_key = {DOM} {new_sels[1]} {newe}\n")
    assert w.conf_bytes().decode() == final, w.conf_bytes().decode()
    for sel_, path in (rsa, ed):
        assert not os.path.exists(path) and os.path.exists(path + ".retired"), path
        assert f"{sel_}._domainkey.{DOM}. IN TXT" in p.stdout, p.stdout
    assert not os.path.exists(f"{w.real}.dkim-rotate.{DOM}")
    p = w.rotate("--status")
    assert "No key rotation" in p.stdout, p.stdout
    # the daemon still signs with the new keys after a reload of the final config
    mark = w.d._log_size()
    w.d.hup()
    w.d.wait_log(r"event=reloaded", 10, since=mark)
    w.verify(w.send("after retirement"), new_sels)


def test_errors():
    tmp = mxtest.tmpdir()
    key = os.path.join(tmp, "k.pem")
    mxtest.run([CTL, "dkim", "keygen", DOM, "k1", "--type", "ed25519", "--out", key], check=0)
    conf = os.path.join(tmp, "mx.conf")
    mxtest.write_file(conf, f"# test\ndata_dir = {tmp}/data\ndkim_key = {DOM} k1 {key}\n")
    ctl = [CTL, "dkim", "rotate"]

    p = mxtest.run(ctl + [f"other.{ZONE}", "-c", conf], check=1)
    assert f"no dkim_key for other.{ZONE}" in p.stderr and "dkim keygen" in p.stderr, p.stderr
    for args in ([], [DOM, "--type", "dsa"], [DOM, "--retire-after", "x"], [DOM, "--bogus"],
                 [DOM, "--check", "--status"], [DOM, DOM]):
        p = mxtest.run(ctl + args + ["-c", conf], check=2)
        assert "usage:" in p.stderr or p.stderr.count("\n") == 1, p.stderr
    bad = os.path.join(tmp, "bad.conf")
    mxtest.write_file(bad, "# x\nno_such_key = 1\n")
    p = mxtest.run(ctl + [DOM, "-c", bad], check=1)
    assert f"{bad}:2: no_such_key" in p.stderr, p.stderr
    p = mxtest.run(ctl + [DOM, "-c", conf, "--check"], check=1)
    assert "no key rotation" in p.stderr, p.stderr

    # step 1, then a read-only config (a private mount namespace): refused before anything
    p = mxtest.run(ctl + [DOM, "-c", conf, "--selector", "Fixed"], check=0)
    assert os.path.exists(os.path.join(tmp, f"{DOM}.fixed.pem")), p.stdout
    p = mxtest.run(ctl + [DOM, "-c", conf, "--selector", "other"], check=1)
    assert "already pending" in p.stderr, p.stderr
    before = open(conf, "rb").read()
    p = mxtest.run(["unshare", "-m", "sh", "-c",
                    f"mount --bind {tmp} {tmp} && mount -o remount,ro,bind {tmp} && "
                    f"{CTL} dkim rotate {DOM} -c {conf}"], check=None)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"{conf} is not writable (Read-only file system)" in p.stderr, p.stderr
    assert "not ready" not in p.stdout, p.stdout
    assert open(conf, "rb").read() == before

    # the old line gone from the config: refused before any lookup; --abort drops the rotation
    mxtest.write_file(conf, f"# test\ndata_dir = {tmp}/data\n")
    p = mxtest.run(ctl + [DOM, "-c", conf], check=1)
    assert "no longer has the dkim_key line" in p.stderr and "--abort" in p.stderr, p.stderr
    p = mxtest.run(ctl + [DOM, "-c", conf, "--abort"], check=0)
    assert not os.path.exists(os.path.join(tmp, f"{DOM}.fixed.pem"))
    assert not os.path.exists(f"{conf}.dkim-rotate.{DOM}")
    p = mxtest.run(ctl + [DOM, "-c", conf, "--abort"], check=1)
    assert "no key rotation" in p.stderr, p.stderr


def test_selector_names():
    """sYYYYMM for one algorithm, with the next free letter when that selector is in use."""
    tmp = mxtest.tmpdir()
    month = time.strftime("s%Y%m", time.gmtime())
    key = os.path.join(tmp, f"{DOM}.{month}.pem")
    mxtest.run([CTL, "dkim", "keygen", DOM, month, "--type", "ed25519", "--out", key], check=0)
    real = os.path.join(tmp, "real.conf")
    mxtest.write_file(real, f"data_dir = {tmp}/data\ndkim_key = {DOM} {month} {key}\n")
    conf = real
    p = mxtest.run([CTL, "dkim", "rotate", DOM, "-c", conf], check=0)
    assert f"{month}b._domainkey.{DOM}" in printed_records(p.stdout), p.stdout
    assert os.path.exists(os.path.join(tmp, f"{DOM}.{month}b.pem"))
    p = mxtest.run([CTL, "dkim", "rotate", DOM, "-c", conf, "--status"], check=0)
    assert "pending" in p.stdout and f"new: {month}b (ed25519)" in p.stdout, p.stdout


def test_switch_without_daemon():
    """--retire-after 0: the switch with no mxrelayd running (it says the keys apply at the
    next start), two TXT records at the new name refused, retirement right after, the
    retired selector not reused."""
    tmp = mxtest.tmpdir()
    dom = f"solo.{ZONE}"
    key = os.path.join(tmp, f"{dom}.a1.pem")
    p = mxtest.run([CTL, "dkim", "keygen", dom, "a1", "--type", "ed25519", "--out", key], check=0)
    old = printed_records(p.stdout)
    nsd_dir = tempfile.mkdtemp(prefix="mxrotnsd-")
    atexit.register(shutil.rmtree, nsd_dir, True)

    def zone(extra=()):
        z = mxpeers.delivery_zone()
        for name, value in list(old.items()) + list(extra):
            z += f"{name[:-len('.' + ZONE)]} IN TXT {dnsns.txt_strings(value)}\n"
        return z
    nsd = mxpeers.Nsd(nsd_dir, {ZONE: zone()}).start()
    atexit.register(nsd.stop)

    def serve(extra, name):
        path = os.path.join(nsd_dir, ZONE + ".zone")
        with open(path, "w") as f:
            f.write(zone(extra))
        later = time.time() + 10
        os.utime(path, (later, later))
        nsd.proc.send_signal(signal.SIGHUP)
        mxtest.wait_for(lambda: (mxpeers.dns_query(nsd.port, name, 16) or (0, 0))[1] == len(extra),
                        10, what=f"nsd serving {len(extra)} records at {name}")

    conf = os.path.join(tmp, "mx.conf")
    mxtest.write_file(conf, f"data_dir = {tmp}/data\ndns_servers = 127.0.0.1:{nsd.port}\n"
                            f"dkim_key = {dom} a1 {key}\n")
    ctl = [CTL, "dkim", "rotate", dom, "-c", conf]
    p = mxtest.run(ctl + ["--retire-after", "0"], check=0)
    new = printed_records(p.stdout)
    (name, value), = new.items()
    serve([(name, value), (name, list(old.values())[0])], name)
    p = mxtest.run(ctl, check=1)
    assert f"2 TXT records at {name}: publish exactly one" in p.stdout, p.stdout
    serve([(name, value)], name)
    p = mxtest.run(ctl, check=0)
    assert "mxrelayd is not running" in p.stdout and "when it starts" in p.stdout, p.stdout
    p = mxtest.run(ctl, check=0)
    assert "rotation of solo.dlv.test is complete" in p.stdout, p.stdout
    sel = name.split(".")[0]
    with open(conf) as f:
        assert f.read() == (f"data_dir = {tmp}/data\ndns_servers = 127.0.0.1:{nsd.port}\n"
                            f"dkim_key = {dom} {sel} {tmp}/{dom}.{sel}.pem\n")
    assert os.path.exists(key + ".retired") and not os.path.exists(key)
    # review 6: the retired copy is owner-only; the retire step's backup never overwrites
    # the switch's (conf.bak keeps the config from before the switch)
    assert stat.S_IMODE(os.stat(key + ".retired").st_mode) == 0o600
    with open(conf + ".bak") as f:
        bak = f.read()
    assert f"dkim_key = {dom} a1 {key}\n" in bak and "# retired" not in bak, bak
    with open(conf + ".bak.1") as f:
        assert "# retired by mxrelayctl dkim rotate" in f.read()
    # the retired selector is never reused (its record may still be published)
    p = mxtest.run(ctl + ["--selector", "a1"], check=1)
    assert "selector a1 of solo.dlv.test is taken" in p.stderr, p.stderr
    nsd.stop()


def test_switch_by_hand_keeps_the_keys():
    """Review 6, 3: the admin points dkim_key at the new selector by hand: --abort must not
    delete that key (the config names it), and the next run records the switch."""
    tmp = mxtest.tmpdir()
    key = os.path.join(tmp, "k.pem")
    mxtest.run([CTL, "dkim", "keygen", DOM, "k1", "--type", "ed25519", "--out", key], check=0)
    conf = os.path.join(tmp, "m.conf")
    mxtest.write_file(conf, f"data_dir = {tmp}/data\ndkim_key = {DOM} k1 {key}\n")
    ctl = [CTL, "dkim", "rotate", DOM, "-c", conf]
    mxtest.run(ctl + ["--selector", "new1"], check=0)
    new = os.path.join(tmp, f"{DOM}.new1.pem")
    assert os.path.exists(new)
    mxtest.write_file(conf, f"data_dir = {tmp}/data\ndkim_key = {DOM} new1 {new}\n")
    p = mxtest.run(ctl + ["--abort"], check=1)
    assert "the switch happened" in p.stderr and "nothing deleted" in p.stderr, p.stderr
    assert os.path.exists(new), "--abort deleted the key the config names"
    assert os.path.exists(f"{conf}.dkim-rotate.{DOM}")
    p = mxtest.run(ctl, check=0)
    assert "the switch is recorded" in p.stdout, p.stdout
    p = mxtest.run(ctl + ["--status"], check=0)
    assert "switched" in p.stdout, p.stdout
    p = mxtest.run(ctl + ["--abort"], check=1)  # switched now: refused, nothing deleted
    assert os.path.exists(new)
    # retirement after the delay keeps the configured key, moves the old one aside
    p = mxtest.run(ctl, check=0, env=dict(os.environ, MXRELAYCTL_NOW=str(int(time.time()) +
                                                                         8 * 86400)))
    assert "is complete" in p.stdout, p.stdout
    assert os.path.exists(new) and os.path.exists(key + ".retired"), p.stdout


if __name__ == "__main__":
    mxtest.main()
