#!/usr/bin/python3
"""mxrelayctl passwd --list/--delete, unblock and backup (issue 16) against
the real daemon and real clients.

Covered: --list (table and --json, never a hash, sunset and disabled
shown), --delete (the line gone, comments, other users, mode and group
kept; 20 parallel deletes under the lock all land; unknown user, missing
file and usage errors), a deleted user still logs in until SIGHUP and not
after; real failed AUTHs until the address is blocked (454), unblock --list
shows it, unblock IP clears it and AUTH succeeds at once, a CIDR and --all
clear several, nothing to clear is exit 1; backup while smtplib clients keep
submitting: mode 0600 whatever the umask, owned by the caller, one file,
integrity ok, every message whole and the count between the counts before
and after, an existing file refused unless --force, the copy restored as
another daemon's spool.db loads every message; a user who cannot read the
spool gets a clear error."""

import base64
import json
import os
import re
import shutil
import smtplib
import sqlite3
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402

CTL = mxtest.MXRELAYCTL
USERS = [
    ("alice", "alice-pw", "alice@example.com,@branch.example.com", False),
    ("bob", "bob-pw", "*", True),
    ("carol", "carol-pw", "", False),
]


def ctl(*args, check=None, input=None):
    return mxtest.run([CTL] + [str(a) for a in args], check=check, input=input, timeout=60)


# ---- passwd --list / --delete ----------------------------------------------

def test_passwd_list_and_json():
    tmp = mxtest.tmpdir()
    f = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
    ctl("passwd", "alice", "-f", f, "--no-password", "--sunset", "2027-03-31", check=0)
    ctl("passwd", "carol", "-f", f, "--no-password", "--sunset", "2020-01-01", check=0)
    p = ctl("passwd", "--list", "-f", f, check=0)
    assert "$y$" not in p.stdout and "$6$" not in p.stdout, "a hash was printed"
    rows = {ln.split()[0]: ln for ln in p.stdout.splitlines()[1:]}
    assert p.stdout.splitlines()[0].split() == ["USER", "STATE", "SUNSET", "SENDERS"], p.stdout
    assert "enabled" in rows["alice"] and "2027-03-31" in rows["alice"], rows
    assert "alice@example.com,@branch.example.com" in rows["alice"], rows
    assert "disabled" in rows["bob"] and rows["bob"].rstrip().endswith("*"), rows
    assert "2020-01-01 (passed)" in rows["carol"] and "may send nothing" in rows["carol"], rows
    doc = json.loads(ctl("passwd", "--list", "--json", "-f", f, check=0).stdout)
    assert doc["count"] == 3 and doc["file"] == f, doc
    u = {x["user"]: x for x in doc["users"]}
    assert u["alice"] == {"user": "alice", "state": "enabled", "sunset": "2027-03-31",
                          "sunset_passed": False,
                          "senders": ["alice@example.com", "@branch.example.com"]}, u
    assert u["bob"]["state"] == "disabled" and u["bob"]["sunset"] is None, u
    assert u["carol"]["sunset_passed"] is True and u["carol"]["senders"] == [], u
    # usage errors
    ctl("passwd", "--list", "alice", "-f", f, check=2)
    ctl("passwd", "--list", "--senders", "*", "-f", f, check=2)
    ctl("passwd", "--json", "alice", "-f", f, check=2)
    ctl("passwd", "--list", "--delete", "bob", "-f", f, check=2)
    p = ctl("passwd", "--list", "-f", os.path.join(tmp, "none"), check=1)
    assert "none" in p.stderr, p.stderr


def test_passwd_delete_keeps_the_rest():
    tmp = mxtest.tmpdir()
    f = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS)
    text = open(f).read()
    with open(f, "w") as fh:
        fh.write("# relay users\n" + text + "# end\n")
    os.chown(f, 0, 65534)
    os.chmod(f, 0o640)
    p = ctl("passwd", "--delete", "bob", "-f", f, check=0)
    assert "deleted user bob" in p.stdout and "reload" in p.stdout, p.stdout
    after = open(f).read()
    assert not re.search(r"^bob:", after, re.M), after
    want = [ln for ln in ("# relay users\n" + text + "# end\n").splitlines()
            if not ln.startswith("bob:")]
    assert after.splitlines() == want, after
    st = os.stat(f)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == 65534, oct(st.st_mode)
    p = ctl("passwd", "--delete", "bob", "-f", f, check=1)
    assert "no user 'bob'" in p.stderr, p.stderr
    p = ctl("passwd", "--delete", "x", "-f", os.path.join(tmp, "absent"), check=1)
    assert "absent" in p.stderr and not os.path.exists(os.path.join(tmp, "absent")), p.stderr
    ctl("passwd", "--delete", "alice", "--senders", "*", "-f", f, check=2)
    ctl("passwd", "--delete", "alice", "carol", "-f", f, check=2)


def test_passwd_parallel_deletes_all_land():
    tmp = mxtest.tmpdir()
    f = os.path.join(tmp, "passwd")
    hashed = ctl("passwd", "u0", "-f", f, "--senders", "*", input="pw\n", check=0)
    line = open(f).read().strip()
    h = line.split(":")[1]
    with open(f, "w") as fh:
        for i in range(20):
            fh.write(f"u{i}:{h}:enabled:*\n")
    assert hashed
    procs = [subprocess.Popen([CTL, "passwd", "--delete", f"u{i}", "-f", f],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(20)]
    codes = [p.wait(60) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert codes == [0] * 20, codes
    assert open(f).read() == "", open(f).read()


def auth_plain(user, pw):
    return base64.b64encode(f"\0{user}\0{pw}".encode()).decode()


def test_deleted_user_works_until_reload():
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS[:1] + [("dave", "dave-pw", "*",
                                                                         False)])
    d = mxtest.Daemon(tmp=tmp, conf={"credentials": creds, "relay_from": "192.0.2.0/24"},
                      listeners={"main": {"tls": "none", "auth_without_tls": "yes"}}).start()
    ctl("passwd", "--delete", "dave", "-f", creds, check=0)
    s = d.connect()
    s.ehlo()
    s.auth_plain("dave", "dave-pw").expect(235)
    s.quit()
    mark = d._log_size()
    d.hup()
    d.wait_log(r"event=reloaded", since=mark, timeout=10)
    s = d.connect()
    s.ehlo()
    s.auth_plain("dave", "dave-pw").expect(535, "5.7.8")
    s.quit()
    s = d.connect()
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(235)
    s.quit()


# ---- unblock --------------------------------------------------------------

def blocked_daemon():
    tmp = mxtest.tmpdir()
    creds = mxtest.make_creds(os.path.join(tmp, "passwd"), USERS[:1])
    return mxtest.Daemon(tmp=tmp, conf={"credentials": creds, "relay_from": "192.0.2.0/24",
                                        "auth_max_failures": "3", "auth_block_time": "10m"},
                         listeners={"main": {"tls": "none", "auth_without_tls": "yes"}}).start()


def block(d, ip):
    for i in range(3):
        s = d.connect(src=ip, timeout=30)
        s.ehlo()
        s.auth_plain("alice", f"wrong-{i}").expect(535, "5.7.8")
        s.close()
    s = d.connect(src=ip, timeout=30)
    s.ehlo()
    s.auth_plain("alice", "alice-pw").expect(454, "4.7.0")
    s.close()


def login(d, ip):
    s = d.connect(src=ip, timeout=30)
    s.ehlo()
    r = s.auth_plain("alice", "alice-pw")
    s.close()
    return r


def test_unblock_after_real_failed_auths():
    d = blocked_daemon()
    ip = "127.0.0.31"
    block(d, ip)
    p = ctl("unblock", "-c", d.conf_path, "--list", check=0)
    assert re.search(rf"^{re.escape(ip)}/32: 3 failures, blocked until .*left\)$", p.stdout,
                     re.M), p.stdout
    doc = json.loads(ctl("unblock", "-c", d.conf_path, "--list", "--json", check=0).stdout)
    (b,) = doc["blocks"]
    assert b["address"] == ip and b["failures"] == 3 and b["blocked"] is True, b
    assert b["blocked_until"] > time.time() + 500, b
    p = ctl("unblock", "-c", d.conf_path, ip, check=0)
    assert p.stdout.startswith(f"cleared {ip}/32: 3 failures, blocked until"), p.stdout
    login(d, ip).expect(235, "2.7.0")
    d.wait_log(rf"event=auth_unblocked ip={re.escape(ip)} prefix=32 failures=3 blocked=yes uid=0")
    p = ctl("unblock", "-c", d.conf_path, ip, check=1)
    assert "nothing to clear" in p.stderr and ip in p.stderr, p.stderr
    p = ctl("unblock", "-c", d.conf_path, "--list", check=0)
    assert "no address has failed AUTH attempts" in p.stdout, p.stdout


def test_unblock_cidr_all_and_errors():
    d = blocked_daemon()
    for ip in ("127.0.0.34", "127.0.0.35", "127.0.0.60"):
        block(d, ip)
    p = ctl("unblock", "-c", d.conf_path, "127.0.0.32/28", check=0)
    assert sorted(re.findall(r"cleared (\S+)/32", p.stdout)) == ["127.0.0.34", "127.0.0.35"], \
        p.stdout
    login(d, "127.0.0.34").expect(235)
    login(d, "127.0.0.60").expect(454, "4.7.0")
    p = ctl("unblock", "-c", d.conf_path, "--all", check=0)
    assert "cleared 127.0.0.60/32" in p.stdout, p.stdout
    login(d, "127.0.0.60").expect(235)
    p = ctl("unblock", "-c", d.conf_path, "--all", check=0)
    assert "nothing to clear" in p.stdout, p.stdout
    p = ctl("unblock", "-c", d.conf_path, "not-an-ip", check=1)
    assert "not an address or CIDR" in p.stderr, p.stderr
    ctl("unblock", "-c", d.conf_path, check=2)
    ctl("unblock", "-c", d.conf_path, "--all", "127.0.0.1", check=2)
    d.stop()
    p = ctl("unblock", "-c", d.conf_path, "--list", check=1)
    assert "mxrelayd is not running" in p.stderr, p.stderr


# ---- backup ---------------------------------------------------------------

class Load:
    """Clients submitting messages without pause until stopped."""

    def __init__(self, d, nthreads=2):
        self.d, self.stop_ev, self.sent, self.errors = d, threading.Event(), [], []
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(nthreads)]
        for t in self.threads:
            t.start()
        mxtest.on_cleanup(self.stop)

    def run(self, i):
        n = 0
        while not self.stop_ev.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.d.port(), timeout=20) as s:
                    for _ in range(20):
                        n += 1
                        body = mxtest.message("load@example.com", "far@example.net",
                                              f"load {i}-{n}", ("x" * 70 + "\r\n") * 30)
                        s.sendmail("load@example.com", ["far@example.net", "far2@example.net"],
                                   body)
                        self.sent.append(n)
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
                return

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)


def check_copy(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        n = con.execute("SELECT count(*) FROM messages").fetchone()[0]
        whole = con.execute(
            "SELECT count(*) FROM messages m WHERE"
            " (SELECT count(*) FROM recipients r WHERE r.msg_id = m.id) = 2 AND"
            " (SELECT coalesce(sum(length(data)), 0) FROM bodies b WHERE b.msg_id = m.id) > 2000"
        ).fetchone()[0]
        return n, whole
    finally:
        con.close()


def test_backup_under_load_mode_and_integrity():
    d = mxtest.Daemon(conf={"relay_from": "127.0.0.0/8"}).start()
    out = mxtest.tmpdir()
    load = Load(d)
    mxtest.wait_for(lambda: load.errors or len(load.sent) >= 50, 60, what="50 messages under load")
    assert not load.errors, load.errors
    before = d.count()
    dest = os.path.join(out, "spool-backup.db")
    # a umask that would leave the copy readable by all
    p = mxtest.run(["sh", "-c", f'umask 000; exec "$0" backup -c "$1" "$2"', CTL, d.conf_path,
                    dest], timeout=120, check=0)
    after = d.count()
    load.stop()
    assert not load.errors, load.errors
    assert after > before, "the load did not go on during the backup"
    st = os.stat(dest)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid(), oct(st.st_mode)
    assert sorted(os.listdir(out)) == ["spool-backup.db"], os.listdir(out)
    n, whole = check_copy(dest)
    assert before <= n <= after, (before, n, after)
    assert whole == n, f"{n - whole} messages in the copy are not whole"
    m = re.match(r"backup \S+: (\d+) messages, (\d+) recipients to deliver, \d+ bytes, "
                 r"integrity ok, mode 0600$", p.stdout.strip())
    assert m and int(m.group(1)) == n and int(m.group(2)) == 2 * n, p.stdout

    p = ctl("backup", "-c", d.conf_path, dest, check=1)
    assert "exists" in p.stderr and "--force" in p.stderr, p.stderr
    ctl("backup", "-c", d.conf_path, "--force", dest, check=0)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert check_copy(dest)[0] == d.count()
    assert sorted(os.listdir(out)) == ["spool-backup.db"], os.listdir(out)

    # the restore of the README: the file as spool.db of a stopped daemon
    want = d.count()
    d2 = mxtest.Daemon()
    os.makedirs(d2.data_dir, mode=0o700)
    shutil.copy(dest, os.path.join(d2.data_dir, "spool.db"))
    subprocess.run(["chown", "-R", "nobody", d2.data_dir], check=True)
    mark = d2._log_size()
    d2.start()
    d2.wait_log(rf"event=queue_loaded messages={want} ", since=mark)
    assert d2.count() == want


def test_backup_refused_without_read_access():
    assert shutil.which("setpriv"), "setpriv not installed (package util-linux)"
    d = mxtest.Daemon().start()
    tmp = mxtest.tmpdir()
    os.chmod(tmp, 0o777)
    exe = os.path.join(tmp, "mxrelayctl")
    shutil.copy(CTL, exe)
    p = mxtest.run(["setpriv", "--reuid=23456", "--regid=23456", "--clear-groups", exe,
                    "backup", "-c", d.conf_path, os.path.join(tmp, "b.db")], check=1)
    assert "spool.db" in p.stderr and ("Permission denied" in p.stderr), p.stderr
    assert not [x for x in os.listdir(tmp) if x.startswith("b.db")], os.listdir(tmp)
    ctl("backup", "-c", d.conf_path, check=2)


if __name__ == "__main__":
    mxtest.main()
