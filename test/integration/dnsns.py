"""dnsns: a network namespace whose system resolver is our own nsd.

Tools that use the system resolver (libspf2, glibc's res_query, dkimpy)
cannot be pointed at a test DNS server on another port. Inside a network
namespace they can: nsd listens on 127.0.0.1:53 of the namespace, and
`ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf (`nameserver
127.0.0.1`) over /etc/resolv.conf for the commands it runs.

The namespace has only its loopback interface, so nothing run in it can
reach anything outside: every query goes to that nsd (which never recurses
and answers REFUSED for names outside its zones).

Usage:
    ns = dnsns.NetnsDns({"example.test": "...records..."}).start()
    ns.run([MXRELAYCTL, "dns", "check", "example.test"])
    ns.stop()          # kills nsd, deletes the namespace and /etc/netns/NAME

start() raises mxtest.Skip only when `ip netns add` fails with EPERM (no
CAP_SYS_ADMIN / CAP_NET_ADMIN here). Every namespace ever started is also
stopped at exit (cleanup_all), so a failing test leaves nothing behind.
"""

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

import mxtest

_live = []


def zone_text(origin, records, ttl=300):
    """A zone file for origin: SOA and NS, then records (lines relative to origin or absolute)."""
    head = [
        f"$ORIGIN {origin}.",
        f"$TTL {ttl}",
        f"@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60",
        f"@ IN NS ns.{origin}.",
        "ns IN A 127.0.0.1",
    ]
    return "\n".join(head + list(records)) + "\n"


def txt_strings(value):
    """value as zone-file character-strings of at most 255 bytes."""
    value = value.replace("\\", "\\\\").replace('"', '\\"')
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join(f'"{c}"' for c in chunks)


def nsd_conf(d, listen=("127.0.0.1",), port=53, hide_version=True):
    """The server: and remote-control: clauses of an nsd.conf keeping its files in d, as lines;
    listen: nsd's ip-address values (ADDRESS or ADDRESS@PORT). The zone: clauses follow."""
    return (["server:"] + [f"    ip-address: {a}" for a in listen] + [
        f"    port: {port}",
        '    username: ""', '    chroot: ""', '    database: ""',
        f'    zonesdir: "{d}"',
        f'    zonelistfile: "{d}/zone.list"',
        f'    xfrdfile: "{d}/xfrd.state"',
        f'    xfrdir: "{d}"',
        f'    pidfile: "{d}/nsd.pid"',
        f'    logfile: "{d}/nsd.log"',
        "    server-count: 1",
        "    verbosity: 1",
    ] + (["    hide-version: yes"] if hide_version else []) + [
        "remote-control:",
        "    control-enable: no",
    ])


class NetnsDns:
    def __init__(self, zones):
        """zones: {origin: zone file text} (see zone_text)."""
        self.zones = zones
        self.name = None
        self.dir = None
        self.proc = None
        self.netns_created = False
        self.etc_dir = None

    # -- life cycle --

    def start(self):
        self.name = "mxdns-" + secrets.token_hex(4)
        p = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if p.returncode != 0:
            if "Operation not permitted" in p.stderr:
                raise mxtest.Skip(f"ip netns add: {p.stderr.strip()} (needs CAP_SYS_ADMIN)")
            raise AssertionError(f"ip netns add {self.name} failed: {p.stderr.strip()}")
        self.netns_created = True
        _live.append(self)
        try:
            self._exec(["ip", "link", "set", "lo", "up"], check=True)
            self.etc_dir = os.path.join("/etc/netns", self.name)
            os.makedirs(self.etc_dir, exist_ok=True)
            with open(os.path.join(self.etc_dir, "resolv.conf"), "w") as f:
                f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:2\n")
            self._start_nsd()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_conf(self):
        d = self.dir
        conf = nsd_conf(d)
        for origin, text in self.zones.items():
            fn = os.path.join(d, origin + ".zone")
            with open(fn, "w") as f:
                f.write(text)
            conf += ["zone:", f"    name: {origin}", f'    zonefile: "{fn}"']
        with open(os.path.join(d, "nsd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")

    def _start_nsd(self):
        self.dir = tempfile.mkdtemp(prefix="mxdnsns-")
        self._write_conf()
        check = subprocess.run(["nsd-checkconf", os.path.join(self.dir, "nsd.conf")],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError("nsd.conf: " + check.stderr.strip())
        log = open(os.path.join(self.dir, "nsd.out"), "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.name, "nsd", "-d", "-c", os.path.join(self.dir, "nsd.conf")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        first = next(iter(self.zones))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            p = self._exec(["dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "SOA", first])
            if p.returncode == 0 and p.stdout.strip():
                mxtest.note(f"# nsd in netns {self.name} on 127.0.0.1:53, {len(self.zones)} zones")
                return
            time.sleep(0.1)
        raise AssertionError("nsd did not start in the namespace; its output:\n" + self.output())

    def output(self):
        out = ""
        for f in ("nsd.out", "nsd.log"):
            try:
                out += open(os.path.join(self.dir, f), errors="replace").read()
            except (OSError, TypeError):
                pass
        return out

    def stop(self):
        """Kill nsd, delete the namespace and /etc/netns/NAME. Safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        self.proc = None
        if self.netns_created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self.netns_created = False
        if self.etc_dir is not None:
            shutil.rmtree(self.etc_dir, ignore_errors=True)
            self.etc_dir = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if self in _live:
            _live.remove(self)

    # -- running commands inside --

    def _exec(self, cmd, check=False):
        return subprocess.run(["ip", "netns", "exec", self.name] + [str(c) for c in cmd],
                              capture_output=True, text=True, timeout=30, check=check)

    def run(self, cmd, **kw):
        """mxtest.run of cmd inside the namespace (its output goes to the transcript)."""
        return mxtest.run(["ip", "netns", "exec", self.name] + list(cmd), **kw)

    def dig(self, qtype, name):
        return self._exec(["dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", qtype, name]).stdout


def cleanup_all():
    for ns in list(_live):
        ns.stop()


atexit.register(cleanup_all)
