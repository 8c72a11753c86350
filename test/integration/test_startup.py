#!/usr/bin/python3
"""Start-up as a new user meets it: which account mxrelayd runs as, and one
clear line when that account cannot reach a path.

- Root, no arguments, in a private folder (mode 0700, like /root or mktemp -d):
  the drop user cannot reach ./var/mxrelay, so mxrelayd stays root with one
  warning line, accepts mail (swaks, 250) and keeps it; once the folder is
  reachable it drops again and takes over the spool it left.
- Root in a folder everyone can search (/opt): it drops to the automatic user.
- `user` set, or not started as root: every unreachable path (data_dir, a
  socket folder, the configuration and credentials re-read on SIGHUP; keys and
  certificates when not root) fails start-up and `-n` with one line naming the
  path, the user, the blocking folder or mode, and a fix that works when
  followed; a `user` that does not exist fails `-n`.
- DKIM key modes: one rule (owner and the daemon's group only), the warning
  only when it is broken, and its fix right for the deployment: applying it
  never makes the key unreadable for the account that reads it.

mxrelayd runs in a private network namespace (its default 127.0.0.1:2525 is
then free and nothing can leave the machine).
"""

import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import privns  # noqa: E402

AUTO_USER = "mxrelay" if any(p.pw_name == "mxrelay" for p in pwd.getpwall()) else "nobody"
NOBODY = pwd.getpwnam("nobody")
NOGROUP = grp.getgrgid(NOBODY.pw_gid).gr_name


def private_dir():
    """A fresh mode 0700 folder, as mkdtemp makes it (removed after the test)."""
    d = tempfile.mkdtemp(prefix="mxpriv-")
    mxtest.on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def run_default(ns, cwd, log, swaks_count=1):
    """mxrelayd with no arguments in cwd: ready, swaks accepted, stopped with 0; the log."""
    proc = ns.popen([mxtest.MXRELAYD], cwd=cwd, log=log)
    privns.wait_ready(proc, log)
    for _ in range(swaks_count):
        p = ns.run(["swaks", "--server", "127.0.0.1:2525", "--to", "someone@example.com",
                    "--from", "newcomer@example.com", "--tls", "--timeout", "20"], timeout=40,
                   check=0)
        mxtest.swaks_qid(p)
    assert privns.stop(proc) == 0, open(log).read()[-2000:]
    return open(log, errors="replace").read()


def spool_count(data_dir):
    import sqlite3
    con = sqlite3.connect(f"file:{data_dir}/spool.db?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM messages WHERE client_ip IS NOT NULL").fetchone()[0]
    finally:
        con.close()


def warnings(log):
    return [ln for ln in log.splitlines() if "level=warn" in ln or "level=err" in ln]


def test_root_in_private_folder_stays_root_then_drops():
    ns = privns.Netns()
    top = private_dir()
    cwd = os.path.join(top, "checkout")
    os.mkdir(cwd)
    log = os.path.join(top, "mxrelayd.log")
    text = run_default(ns, cwd, log)
    warn = warnings(text)
    want = (f'event=privileges user=root note="data_dir ./var/mxrelay: not reachable by user '
            f'{AUTO_USER} (parent {top} is mode 0700, owner root:root): running as root instead; '
            f'to drop privileges, set data_dir under /var/lib"')
    assert len(warn) == 1 and warn[0].endswith(want), "\n".join(warn)
    assert "event=startup_failed" not in text
    data = os.path.join(cwd, "var", "mxrelay")
    assert spool_count(data) == 1
    assert os.stat(os.path.join(data, "spool.db")).st_uid == 0

    # reachable now: it drops, and the spool made as root is handed over with its mail
    os.chmod(top, 0o755)
    os.truncate(log, 0)
    text = run_default(ns, cwd, log)
    assert not warnings(text), "\n".join(warnings(text))
    assert re.search(rf"event=privileges user={AUTO_USER} uid=\d+", text), text
    uid = pwd.getpwnam(AUTO_USER).pw_uid
    for f in ("spool.db", "tls-key.pem", "tls-cert.pem"):
        assert os.stat(os.path.join(data, f)).st_uid == uid, f
    assert spool_count(data) == 2


def test_root_in_opt_drops():
    ns = privns.Netns()
    os.makedirs("/opt", exist_ok=True)
    top = tempfile.mkdtemp(prefix="mxrelay-test-", dir="/opt")
    mxtest.on_cleanup(lambda: shutil.rmtree(top, ignore_errors=True))
    os.chmod(top, 0o755)
    log = os.path.join(mxtest.tmpdir(), "mxrelayd.log")
    text = run_default(ns, top, log)
    assert not warnings(text), "\n".join(warnings(text))
    assert re.search(rf"event=privileges user={AUTO_USER} uid=\d+", text), text
    assert spool_count(os.path.join(top, "var", "mxrelay")) == 1


def conf_file(directory, lines):
    return mxtest.write_file(os.path.join(directory, "mxrelay.conf"),
                             "\n".join(lines) + "\n")


def check(conf, expect, env=None, user=None, exe=None):
    """mxrelayd -n -c conf (as user, a (uid, gid) pair, if given); expect: exit status."""
    argv = [exe or mxtest.MXRELAYD, "-n", "-c", conf]
    if user:
        argv = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups"] + argv
    return mxtest.run(argv, timeout=20, check=expect, env=env)


def only_line(p):
    """The one line -n printed for a failure (stderr, no log lines)."""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_user_set_data_dir_unreachable():
    top = private_dir()
    d = mxtest.tmpdir()
    data = os.path.join(top, "data")
    conf = conf_file(d, ["user = nobody", f"data_dir = {data}",
                         f"[listener main]", f"address = 127.0.0.1:{mxtest.free_port()}"])
    want = (f"{conf}:2: data_dir {data}: not reachable by user nobody (parent {top} is mode "
            f"0700, owner root:root): set data_dir under /var/lib or run without dropping "
            f"privileges (user = root)")
    assert only_line(check(conf, 1)) == want
    p = mxtest.run([mxtest.MXRELAYD, "-c", conf], timeout=20, check=78)
    assert p.stderr.splitlines()[-1] == "mxrelayd: " + want, p.stderr
    assert not os.path.exists(data), "nothing is created before the check"


def test_config_file_without_user_never_stays_root():
    """Only the embedded default falls back to root: a configuration file
    without a `user` line fails like one with it."""
    top = private_dir()
    d = mxtest.tmpdir()
    data = os.path.join(top, "data")
    conf = conf_file(d, [f"data_dir = {data}",
                         f"[listener main]", f"address = 127.0.0.1:{mxtest.free_port()}"])
    want = (f"{conf}:1: data_dir {data}: not reachable by user {AUTO_USER} (parent {top} is "
            f"mode 0700, owner root:root): set data_dir under /var/lib or run without "
            f"dropping privileges (user = root)")
    assert only_line(check(conf, 1)) == want
    p = mxtest.run([mxtest.MXRELAYD, "-c", conf], timeout=20, check=78)
    assert p.stderr.splitlines()[-1] == "mxrelayd: " + want, p.stderr


def test_user_that_does_not_exist():
    d = mxtest.tmpdir()
    conf = conf_file(d, ["# the account", "user = mxrelay-no-such-user"])
    assert only_line(check(conf, 1)) == (
        f'{conf}:2: user: "mxrelay-no-such-user" does not exist: create it (useradd --system '
        f'--home-dir /var/lib/mxrelay --shell /usr/sbin/nologin mxrelay-no-such-user) or set '
        f'user to an existing account')
    # as any account, not only as root
    exe = os.path.join(d, "mxrelayd")
    shutil.copy(mxtest.MXRELAYD, exe)
    p = check(conf, 1, env=privns.other_user_env(d), user=(NOBODY.pw_uid, NOBODY.pw_gid),
              exe=exe)
    assert 'user: "mxrelay-no-such-user" does not exist' in p.stderr, p.stderr


def test_credentials_unreadable_fix_works():
    d = mxtest.tmpdir()
    creds = mxtest.write_file(os.path.join(d, "passwd"), "# none yet\n", mode=0o600)
    conf = conf_file(d, ["user = nobody", f"data_dir = {d}/data", "", f"credentials = {creds}"])
    line = only_line(check(conf, 1))
    want = (f"{conf}:4: credentials {creds}: not readable by user nobody (mode 0600, owner "
            f"root:root; re-read on SIGHUP): chgrp {NOGROUP} {creds} && chmod 0640 {creds}")
    assert line == want, line
    mxtest.run(["sh", "-c", line.rsplit("): ", 1)[1]], check=0)
    check(conf, 0)


def test_socket_folder_not_writable():
    d = mxtest.tmpdir()
    sockdir = os.path.join(d, "run")
    os.mkdir(sockdir, 0o755)
    conf = conf_file(d, ["user = nobody", f"data_dir = {d}/data",
                         f"control_socket = {sockdir}/control.sock"])
    assert only_line(check(conf, 1)) == (
        f"{conf}:3: control_socket {sockdir}/control.sock: folder {sockdir} not writable by "
        f"user nobody (mode 0755, owner root:root): put control_socket in data_dir or in a "
        f"folder user nobody can write")


def test_not_root_every_file_checked():
    """Started as an unprivileged account (as the systemd unit does): it reads keys and
    certificates itself, so -n names any it cannot read, and a data_dir it cannot make."""
    d = mxtest.tmpdir()
    exe = os.path.join(d, "mxrelayd")
    shutil.copy(mxtest.MXRELAYD, exe)
    env = privns.other_user_env(d)
    nobody = (NOBODY.pw_uid, NOBODY.pw_gid)
    cert, key = mxtest.make_cert(d)
    conf = conf_file(d, [f"data_dir = {d}/data", "[listener main]",
                         f"address = 127.0.0.1:{mxtest.free_port()}", f"cert = {cert}",
                         f"key = {key}"])
    assert only_line(check(conf, 1, env, nobody, exe)) == (
        f"{conf}:1: data_dir {d}/data: cannot be created by user nobody ({d} is mode 0755, "
        f"owner root:root): set data_dir to a folder user nobody can write")
    os.mkdir(os.path.join(d, "data"), 0o700)
    os.chown(os.path.join(d, "data"), NOBODY.pw_uid, NOBODY.pw_gid)
    os.chmod(key, 0o600)
    assert only_line(check(conf, 1, env, nobody, exe)) == (
        f"{conf}:2: key {key}: not readable by user nobody (mode 0600, owner root:root): "
        f"chgrp {NOGROUP} {key} && chmod 0640 {key}")
    os.chmod(key, 0o644)
    check(conf, 0, env, nobody, exe)


def keyfile(directory, mode, group=0):
    path = os.path.join(directory, "example.com.s1.pem")
    if not os.path.exists(path):
        mxtest.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", path], check=0,
                   quiet=True)
    os.chown(path, 0, group)
    os.chmod(path, mode)
    return path


def exposed(p):
    return [ln for ln in p.stderr.splitlines() if "event=dkim_key_exposed" in ln]


def fix_of(line):
    m = re.search(r'fix="([^"]+)"', line)
    assert m, line
    return m.group(1)


def test_dkim_key_group_of_the_daemon_is_quiet():
    """A key as `mxrelayctl dkim keygen` leaves it for the systemd unit (0640, the daemon's
    group) gave "chmod 0600 it" at every start, advice that broke the unit's next start."""
    d = mxtest.tmpdir()
    key = keyfile(d, 0o640, NOBODY.pw_gid)
    conf = conf_file(d, ["user = nobody", f"data_dir = {d}/data",
                         f"dkim_key = example.com s1 {key}"])
    p = check(conf, 0)
    assert not exposed(p) and "note:" not in p.stderr, p.stderr
    # the same key read by the daemon account itself, as under the unit (User=nobody here)
    exe = os.path.join(d, "mxrelayd")
    shutil.copy(mxtest.MXRELAYD, exe)
    os.mkdir(os.path.join(d, "data"), 0o700)
    os.chown(os.path.join(d, "data"), NOBODY.pw_uid, NOBODY.pw_gid)
    p = check(conf, 0, privns.other_user_env(d), (NOBODY.pw_uid, NOBODY.pw_gid), exe)
    assert not exposed(p), p.stderr
    # root's own group is not the daemon's: that is a warning
    keyfile(d, 0o640, 0)
    p = check(conf, 0)
    assert len(exposed(p)) == 1 and "readable by its group, which is not the daemon's" in \
        exposed(p)[0], p.stderr


def test_dkim_key_fix_right_for_each_deployment():
    d = mxtest.tmpdir()
    exe = os.path.join(d, "mxrelayd")
    shutil.copy(mxtest.MXRELAYD, exe)
    env = privns.other_user_env(d)
    nobody = (NOBODY.pw_uid, NOBODY.pw_gid)
    data = os.path.join(d, "data")
    os.mkdir(data, 0o700)
    os.chown(data, *nobody)

    # root start without a user line: root reads the key, so the fix is a chmod
    key = keyfile(d, 0o644)
    conf = conf_file(d, [f"data_dir = {data}", f"dkim_key = example.com s1 {key}"])
    w = exposed(check(conf, 0))
    assert len(w) == 1 and 'reason="readable by every user (mode 0644, group root)"' in w[0], w
    assert fix_of(w[0]) == f"chmod 0600 {key}"
    mxtest.run(["sh", "-c", fix_of(w[0])], check=0)
    assert not exposed(check(conf, 0))

    # started as the daemon account (the systemd unit): the fix keeps it readable for it
    key = keyfile(d, 0o644)
    w = exposed(check(conf, 0, env, nobody, exe))
    assert len(w) == 1 and fix_of(w[0]) == f"chgrp {NOGROUP} {key} && chmod 0640 {key}", w
    mxtest.run(["sh", "-c", fix_of(w[0])], check=0)
    p = check(conf, 0, env, nobody, exe)
    assert not exposed(p), p.stderr
    # the old advice (chmod 0600 a root-owned key) now fails -n there, saying what to do
    os.chmod(key, 0o600)
    assert only_line(check(conf, 1, env, nobody, exe)) == (
        f"{conf}:2: dkim_key {key}: not readable by user nobody (mode 0600, owner "
        f"root:{NOGROUP}): chgrp {NOGROUP} {key} && chmod 0640 {key}")


def test_root_check_notes_what_the_unit_could_not_read():
    """-n as root with `user` set: a root start reads keys as root (fine), but the systemd
    unit starts as that user: -n says so in a note and still passes."""
    d = mxtest.tmpdir()
    key = keyfile(d, 0o600)
    conf = conf_file(d, ["user = nobody", f"data_dir = {d}/data",
                         f"dkim_key = example.com s1 {key}"])
    p = check(conf, 0)
    notes = [ln for ln in p.stderr.splitlines() if ln.startswith("mxrelayd: note: ")]
    assert notes == [
        f"mxrelayd: note: {conf}:3: dkim_key {key}: not readable by user nobody (mode 0600, "
        f"owner root:root): chgrp {NOGROUP} {key} && chmod 0640 {key} (needed where mxrelayd "
        f"starts as nobody, as under the systemd unit; a root start reads it as root)"], p.stderr
    assert not exposed(p), p.stderr


def test_help_and_version():
    """--help lists every option on stdout (exit 0), --version prints the version, a bad
    option prints the usage on stderr and exits 2 (64, EX_USAGE, for the sendmail command)."""
    ctl = mxtest.MXRELAYCTL
    sendmail = os.path.join(os.path.dirname(ctl), "mxrelay-sendmail")
    version = re.search(r"project\(mxrelay VERSION ([0-9.]+)",
                        open(os.path.join(mxtest.SRC, "CMakeLists.txt")).read()).group(1)
    progs = {
        "mxrelayd": (mxtest.MXRELAYD, ["-c, --config FILE", "-n, --check", "-d, --debug",
                                       "-V, --version", "-h, --help"], 2),
        "mxrelayctl": (ctl, ["-h | --help", "-V | --version", "passwd USER", "dkim keygen",
                             "dns spf", "dns dmarc", "dns dkim", "dns check", "audit", "stats",
                             "queue"], 2),
        "mxrelay-sendmail": (sendmail, ["-t ", "-i, -oi", "-f SENDER", "-F NAME", "-C FILE",
                                        "-v ", "-bm", "-h N", "-V X", "--help", "--version"], 64),
    }
    for name, (exe, options, bad_status) in progs.items():
        helps = ["-h", "--help"]
        for h in helps:
            p = mxtest.run([exe, h], timeout=10, check=0)
            assert p.stdout.startswith(f"usage: {name} ") and not p.stderr, (h, p.stdout)
            missing = [o for o in options if o not in p.stdout]
            assert not missing, f"{name} {h} does not list {missing}"
        for v in ["--version"] + (["-V"] if name != "mxrelay-sendmail" else []):
            p = mxtest.run([exe, v], timeout=10, check=0)
            assert p.stdout == f"{name} {version}\n", (v, p.stdout)
        p = mxtest.run([exe, "--no-such-option"], timeout=10, check=bad_status)
        assert not p.stdout and "usage:" in p.stderr, p.stderr


if __name__ == "__main__":
    mxtest.main()
