#!/usr/bin/python3
"""Configuration: `mxrelayd -n -c FILE` accepts valid files and reports every
kind of error as `FILE:LINE: KEY: reason` with a non-zero exit; values given
in the file (hostname, sizes with suffixes, several listeners) take effect."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

VALID = """\
# every documented key, with suffixes
hostname = relay.test.example
data_dir = {tmp}/data
user = nobody
relay_from = 127.0.0.1/32 10.0.0.0/8 ::1/128 2001:db8::/32
credentials = {tmp}/passwd
max_message_size = 10M
max_recipients = 50
max_header_size = 64K
max_connections = 100
max_connections_per_ip = 10
auth_max_failures = 3
auth_block_time = 10m
session_timeout = 300s
shutdown_timeout = 1m
log = stderr

[listener submission]
address = 127.0.0.1:{p1}
tls = required
tls_min_version = 1.2
auth_without_tls = no

[listener smtps]
address = 127.0.0.1:{p2}
tls = implicit
tls_min_version = 1.3

[listener copiers]
address = [::1]:{p3}
tls = starttls
legacy_tls = no
legacy_tls_from = 192.168.0.0/16 10.1.2.3/32
legacy_tls_until = 2030-06-30
auth_without_tls = yes

[listener plain]
address = 127.0.0.1:{p4}
tls = none
"""


def check(text, name="mxrelay.conf"):
    tmp = mxtest.tmpdir()
    path = mxtest.write_file(os.path.join(tmp, name), text.format(tmp=tmp, p1=2601, p2=2602, p3=2603, p4=2604))
    # from tmp: the default data_dir (./var/mxrelay) must be reachable by the drop user, and
    # the checkout itself may sit in a private folder
    return path, mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15, cwd=tmp)


def test_valid_config_ok():
    tmp = mxtest.tmpdir()
    mxtest.write_file(os.path.join(tmp, "passwd"), "# no users yet\n")
    path = mxtest.write_file(os.path.join(tmp, "ok.conf"),
                             VALID.format(tmp=tmp, p1=2601, p2=2602, p3=2603, p4=2604))
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", path], timeout=15)
    assert p.returncode == 0, f"valid config refused: {p.stderr.strip()}"
    assert not os.path.exists(os.path.join(tmp, "data", "spool.db")), "-n created the spool"


def test_minimal_config_ok():
    path, p = check("# nothing but a comment\n\n")
    assert p.returncode == 0, p.stderr
    path, p = check("hostname = x.example\n[listener a]\naddress = 127.0.0.1:2999\n")
    assert p.returncode == 0, p.stderr


BAD = [
    # (label, file text, line, key)
    ("unknown global key", "hostname = a.example\nbogus_key = 1\n", 2, "bogus_key"),
    ("bad CIDR prefix", "relay_from = 127.0.0.1/33\n", 1, "relay_from"),
    ("bad CIDR text", "\n\nrelay_from = 127.0.0.1/32 not-a-cidr\n", 3, "relay_from"),
    ("bad IPv6 CIDR", "relay_from = ::1/129\n", 1, "relay_from"),
    ("bad size", "max_message_size = 10Q\n", 1, "max_message_size"),
    ("negative size", "max_header_size = -5\n", 1, "max_header_size"),
    ("bad number", "max_recipients = lots\n", 1, "max_recipients"),
    ("bad duration", "auth_block_time = 5 fortnights\n", 1, "auth_block_time"),
    ("bad log", "log = mx.log\n", 1, "log"),
    ("bad port", "[listener a]\naddress = 127.0.0.1:70000\n", 2, "address"),
    ("port zero", "[listener a]\naddress = 127.0.0.1:0\n", 2, "address"),
    ("bad address", "[listener a]\naddress = 999.1.1.1:25\n", 2, "address"),
    ("address without port", "[listener a]\naddress = 127.0.0.1\n", 2, "address"),
    ("bad tls mode", "[listener a]\naddress = 127.0.0.1:2525\ntls = sometimes\n", 3, "tls"),
    ("bad bool", "[listener a]\naddress = 127.0.0.1:2525\nauth_without_tls = maybe\n", 3, "auth_without_tls"),
    ("bad bool legacy", "[listener a]\naddress = 127.0.0.1:2525\nlegacy_tls = 1\n", 3, "legacy_tls"),
    ("bad tls_min_version", "[listener a]\naddress = 127.0.0.1:2525\ntls_min_version = 1.4\n", 3,
     "tls_min_version"),
    ("bad legacy date", "[listener a]\naddress = 127.0.0.1:2525\nlegacy_tls_until = 2024-13-45\n", 3,
     "legacy_tls_until"),
    ("bad legacy cidr", "[listener a]\naddress = 127.0.0.1:2525\nlegacy_tls_from = 10.0.0.0/40\n", 3,
     "legacy_tls_from"),
    ("unknown listener key", "[listener a]\naddress = 127.0.0.1:2525\nport = 25\n", 3, "port"),
    ("global key in a listener", "[listener a]\naddress = 127.0.0.1:2525\nhostname = x\n", 3, "hostname"),
    ("listener key at top level", "tls = none\n", 1, "tls"),
    ("missing value", "hostname =\n", 1, "hostname"),
]


def _expect_error(label, text, line, key):
    path, p = check(text)
    assert p.returncode != 0, f"{label}: accepted (exit 0)"
    pat = re.escape(path) + rf":{line}: {re.escape(key)}: \S"
    assert re.search(pat, p.stderr), f"{label}: stderr lacks '{path}:{line}: {key}: reason': {p.stderr.strip()!r}"


def test_bad_values():
    failures = []
    for label, text, line, key in BAD:
        try:
            _expect_error(label, text, line, key)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, f"{len(failures)} of {len(BAD)} cases wrong:\n" + "\n".join(failures)


def test_missing_listener_address():
    path, p = check("hostname = a.example\n\n[listener a]\ntls = none\n\n[listener b]\naddress = 127.0.0.1:2600\n")
    assert p.returncode != 0, "a listener without address was accepted"
    m = re.search(re.escape(path) + r":(\d+): address: \S", p.stderr)
    assert m, f"stderr lacks '{path}:LINE: address: reason': {p.stderr.strip()!r}"
    assert 3 <= int(m.group(1)) <= 5, f"line {m.group(1)} is not in listener a's section (lines 3-5)"


def test_missing_credentials_file():
    path, p = check("hostname = a.example\ncredentials = {tmp}/no-such-passwd\n")
    assert p.returncode != 0, "a missing credentials file was accepted"
    assert re.search(re.escape(path) + r":2: credentials: \S", p.stderr), \
        f"stderr lacks '{path}:2: credentials: reason': {p.stderr.strip()!r}"


def test_unknown_section():
    path, p = check("hostname = a.example\n[relay foo]\nx = 1\n")
    assert p.returncode != 0, "an unknown section was accepted"
    assert re.search(re.escape(path) + r":2: \S+: \S", p.stderr), \
        f"stderr lacks '{path}:2: KEY: reason': {p.stderr.strip()!r}"


def test_duplicate_listener_and_garbage_line():
    path, p = check("[listener a]\naddress = 127.0.0.1:2525\n[listener a]\naddress = 127.0.0.1:2526\n")
    assert p.returncode != 0, "two listeners with the same name were accepted"
    assert re.search(re.escape(path) + r":3: ", p.stderr), p.stderr
    path, p = check("hostname = a.example\nthis line has no equals sign\n")
    assert p.returncode != 0, "a line without '=' was accepted"
    assert re.search(re.escape(path) + r":2: ", p.stderr), p.stderr


def test_bad_config_without_n_does_not_start():
    tmp = mxtest.tmpdir()
    path = mxtest.write_file(os.path.join(tmp, "bad.conf"), "hostname = a.example\nmax_recipients = many\n")
    p = mxtest.run([mxtest.MXRELAYD, "-c", path], timeout=15)
    assert p.returncode != 0
    assert re.search(re.escape(path) + r":2: max_recipients: \S", p.stderr), p.stderr


def test_missing_config_file():
    tmp = mxtest.tmpdir()
    p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", os.path.join(tmp, "nope.conf")], timeout=15)
    assert p.returncode != 0, "a missing config file was accepted"
    assert "nope.conf" in p.stderr, p.stderr


def test_values_take_effect():
    d = mxtest.Daemon(conf={"hostname": "effect.test.example", "max_message_size": "2M"},
                      listeners={"one": {"tls": "none"}, "two": {"tls": "starttls"}}).start()
    s = d.connect("one")
    assert s.banner.lines[0].startswith("220 effect.test.example ESMTP mxrelay"), s.banner
    s.ehlo()
    assert s.ext.get("SIZE") == "2097152", f"SIZE for 2M: {s.ext.get('SIZE')}"
    assert "STARTTLS" not in s.ext
    s.quit()
    s = d.connect("two")
    s.ehlo()
    assert "STARTTLS" in s.ext
    s.quit()
    d.stop()
    d.configure(conf={"max_message_size": "512K"})
    d.start()
    s = d.connect("one")
    s.ehlo()
    assert s.ext.get("SIZE") == "524288", f"SIZE for 512K: {s.ext.get('SIZE')}"
    s.quit()


def test_port_in_use_fails_cleanly():
    import socket
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        port = blocker.getsockname()[1]
        d = mxtest.Daemon(listeners={"main": {"address": f"127.0.0.1:{port}"}})
        d.start(wait=False)
        rc = d.wait_exit(10)
        d.stopping = True
        assert rc is not None and rc != 0, f"daemon with a busy port: exit {rc}"
        assert d.log().strip(), "no error message for a busy port"
    finally:
        blocker.close()


if __name__ == "__main__":
    mxtest.main()
