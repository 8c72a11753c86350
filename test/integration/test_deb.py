#!/usr/bin/python3
"""The Debian package (debian/, README "Debian package"), built and installed
the way an admin gets it:

- `dpkg-buildpackage -us -uc -b` on a copy of this checkout (the source tree
  is never written to; what the build leaves is covered by .gitignore) gives
  mxrelay_VERSION_amd64.deb, lintian finds no error in it;
- the .deb installs offline (dpkg -i: a missing dependency fails) into the
  Debian 12 root that tools/install-deps.sh --test made with debootstrap,
  booted under its own systemd (systemd-nspawn, tmpfs overlay: the root is
  never changed): the mxrelay user, the conffile and modes, the unit passes
  `systemd-analyze verify`, the relay stays stopped with the shipped
  loopback-only configuration and starts once a listener is beyond
  loopback; an upgrade restarts a running relay and keeps the admin's
  configuration; `systemctl start` with a port taken and `systemctl reload`
  with a broken configuration fail, with the cause in `journalctl -p err`;
  `dpkg -r` keeps spool, configuration and user, `dpkg --purge` removes them.
- etc/container/Containerfile: built only where docker or podman runs (said
  in the output either way; CI builds it with etc/container/build.sh).
"""

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxtest  # noqa: E402
import nspawn  # noqa: E402

mxtest.TEST_TIMEOUT = 600  # a whole package build on two shared cores
ROOT = "/var/cache/mxrelay-test/bookworm"  # tools/install-deps.sh --test (DEB_ROOT)
CONF = "/etc/mxrelay/mxrelay.conf"
_built = {}


def workdir():
    if "dir" not in _built:
        d = tempfile.mkdtemp(prefix="mxdeb-")
        os.chmod(d, 0o755)
        if not os.environ.get("MXTEST_KEEP"):
            atexit.register(shutil.rmtree, d, True)
        _built["dir"] = d
    return _built["dir"]


def export_checkout(dest):
    """The checkout's files (tracked, and new ones not ignored) copied to dest."""
    p = mxtest.run(["git", "-C", mxtest.SRC, "ls-files", "-z", "--cached", "--others",
                    "--exclude-standard"], check=0, quiet=True)
    names = [n for n in p.stdout.split("\0") if n]
    assert "debian/control" in names, "debian/control is not in the checkout"
    for name in names:
        src = os.path.join(mxtest.SRC, name)
        if not os.path.lexists(src):
            continue  # deleted in the work tree
        os.makedirs(os.path.join(dest, os.path.dirname(name)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, name), follow_symlinks=False)
    return set(names)


def build():
    """dpkg-buildpackage once per run; the path of the .deb."""
    if "deb" in _built:
        return _built["deb"]
    assert "error" not in _built, _built.get("error")
    src = os.path.join(workdir(), "src")
    names = export_checkout(src)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym")
    p = mxtest.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env, timeout=540,
                   quiet=True)
    if p.returncode != 0:
        _built["error"] = "dpkg-buildpackage failed:\n" + "\n".join(
            (p.stdout + p.stderr).splitlines()[-40:])
        raise AssertionError(_built["error"])
    version = mxtest.run(["dpkg-parsechangelog", "-S", "Version"], cwd=src, check=0).stdout.strip()
    debs = sorted(f for f in os.listdir(workdir()) if f.endswith(".deb"))
    assert debs == [f"mxrelay_{version}_amd64.deb"], debs
    _built.update(deb=os.path.join(workdir(), debs[0]), version=version, src=src, names=names)
    return _built["deb"]


def test_build_leaves_only_ignored_files():
    build()
    src, names = _built["src"], _built["names"]
    new = []
    for d, _, files in os.walk(src):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), src)
            if rel not in names:
                new.append(rel)
    assert new, "the build wrote nothing into the copy?"
    p = subprocess.run(["git", "-C", mxtest.SRC, "check-ignore", "--no-index", "--stdin"],
                       input="\n".join(new) + "\n", capture_output=True, text=True)
    ignored = set(p.stdout.split("\n"))
    stray = sorted(set(new) - ignored)
    assert not stray, f"the build writes files .gitignore does not cover: {stray[:10]}"


def test_lintian_no_errors():
    deb = build()
    exe = shutil.which("lintian")
    assert exe, "lintian not installed (tools/install-deps.sh --test)"
    p = mxtest.run([exe, "--fail-on", "error", "--tag-display-limit", "0", deb], timeout=300)
    tags = [ln for ln in p.stdout.splitlines() if re.match(r"^[EWIPX]: ", ln)]
    for t in tags:
        if t.startswith(("E:", "W:")):
            print(f"#   lintian {t}")
    assert p.returncode == 0, "lintian: " + " | ".join(t for t in tags if t.startswith("E:"))


def deb_field(field):
    return mxtest.run(["dpkg-deb", "-f", build(), field], check=0).stdout.strip()


def test_package_contents():
    deb = build()
    listing = mxtest.run(["dpkg-deb", "-c", deb], check=0, quiet=True).stdout
    entries = {}
    for ln in listing.splitlines():
        parts = ln.split()
        path = parts[5].lstrip(".")
        entries[path.rstrip("/")] = (parts[0], parts[1], ln.split(" -> ")[-1] if " -> " in ln else None)
    for f in ("/usr/sbin/mxrelayd", "/usr/sbin/mxrelayctl", "/usr/sbin/mxrelay-sendmail"):
        assert entries.get(f, ("",))[0] == "-rwxr-xr-x", f"{f}: {entries.get(f)}"
    assert "/lib/systemd/system/mxrelayd.service" in entries, "unit not in /lib/systemd/system"
    assert entries.get(CONF, ("",))[0:2] == ("-rw-r-----", "root/root"), entries.get(CONF)
    for link in ("/usr/sbin/sendmail", "/usr/lib/sendmail", "/usr/bin/mailq"):
        assert entries.get(link, ("",))[0].startswith("l"), f"{link}: {entries.get(link)}"
    assert "/usr/share/doc/mxrelay/deployment.md" in entries  # the unit's Documentation=
    man = os.path.join(mxtest.SRC, "docs", "man")
    for page in sorted(os.listdir(man)) if os.path.isdir(man) else []:
        if re.match(r"^[\w.-]+\.[1-8]$", page):
            want = f"/usr/share/man/man{page[-1]}/{page}.gz"
            assert want in entries, f"man page {page} not installed as {want}"
    assert deb_field("Package") == "mxrelay" and deb_field("Architecture") == "amd64"
    depends = deb_field("Depends")
    assert "adduser" in depends and "libc6" in depends, depends
    assert "mail-transport-agent" in deb_field("Provides")
    conffiles = mxtest.run(["dpkg-deb", "-I", deb, "conffiles"], check=0).stdout.split()
    assert sorted(conffiles) == sorted([CONF, "/etc/logrotate.d/mxrelay"]), conffiles
    # as shipped, nothing listens beyond loopback (the postinst then leaves it stopped)
    conf = mxtest.run(["sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | tar -xO .{CONF}"],
                      check=0, quiet=True).stdout
    addrs = re.findall(r"(?m)^address = (\S+)$", conf)
    assert addrs and all(a.startswith(("127.", "[::1]")) for a in addrs), addrs


def boot(debdir):
    assert os.path.isfile(os.path.join(ROOT, ".mxrelay-root")), \
        f"no Debian 12 root at {ROOT}: run tools/install-deps.sh --test as root (it debootstraps it)"
    box = nspawn.Container(ROOT, binds={debdir: "/mnt/deb"})
    box.boot()
    return box


def state(box, path):
    return box.sh(f"stat -c '%U:%G %a' {path}").stdout.strip()


def active(box):
    return box.sh("systemctl is-active mxrelayd", check=None).stdout.strip()


def main_pid(box):
    return box.sh("systemctl show -p MainPID --value mxrelayd").stdout.strip()


def banner(box, port):
    p = box.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port} && timeout 5 head -n1 <&3"],
                check=None)
    return p.stdout.strip()


def install_checks(box, version):
    """A fresh install with the shipped configuration: account, modes, enabled, not started."""
    p = box.sh("dpkg -i /mnt/deb/mxrelay_*_amd64.deb 2>&1", check=None, timeout=120)
    assert p.returncode == 0, "dpkg -i failed (offline: a dependency missing from the root?):\n" \
        + "\n".join(p.stdout.splitlines()[-15:])
    assert "enabled but not started" in p.stdout, p.stdout
    user = box.sh("getent passwd mxrelay").stdout.strip().split(":")
    assert int(user[2]) < 1000 and user[5] == "/var/lib/mxrelay" and user[6].endswith("nologin"), user
    assert box.sh("id -gn mxrelay").stdout.strip() == "mxrelay"
    assert state(box, CONF) == "root:mxrelay 640"
    assert state(box, "/etc/mxrelay/passwd") == "root:mxrelay 640"
    assert state(box, "/var/lib/mxrelay") == "mxrelay:mxrelay 751"
    for d in ("/etc/mxrelay", "/etc/mxrelay/dkim", "/etc/mxrelay/tls"):
        assert state(box, d) == "root:mxrelay 750", d
    assert CONF in box.sh("dpkg-query -W -f='${Conffiles}' mxrelay").stdout
    assert box.sh("systemctl is-enabled mxrelayd", check=None).stdout.strip() == "enabled"
    assert active(box) == "inactive"
    upstream = version.rsplit("-", 1)[0]
    assert box.sh("mxrelayd -V").stdout.strip() == f"mxrelayd {upstream}"
    p = box.sh("systemd-analyze verify /lib/systemd/system/mxrelayd.service 2>&1", check=None)
    complaints = [ln for ln in p.stdout.splitlines() if "mxrelayd" in ln]
    assert p.returncode == 0 and not complaints, "systemd-analyze verify: " + " | ".join(complaints)


def start_checks(box):
    """A listener beyond loopback: starts; an upgrade restarts it and keeps the edit."""
    box.sh(f"sed -i 's/^address = 127\\.0\\.0\\.1:/address = 0.0.0.0:/' {CONF}")
    box.sh("systemctl start mxrelayd")
    assert active(box) == "active"
    assert banner(box, 25).startswith("220 "), "no SMTP banner on port 25"
    pid = main_pid(box)
    box.sh("dpkg -i /mnt/deb/mxrelay_*_amd64.deb", timeout=120)
    assert active(box) == "active" and main_pid(box) != pid, "upgrade did not restart the relay"
    assert "address = 0.0.0.0:25" in box.sh(f"cat {CONF}").stdout, "upgrade lost the admin's edit"
    # the MTA names: cron's sendmail queues through the relay, mailq lists it
    assert box.sh("mailq").stdout.strip() == "Mail queue is empty"
    box.sh("printf 'Subject: package test\\n\\nhello\\n' | sendmail postmaster@example.com")
    q = box.sh("mailq").stdout
    assert "postmaster@example.com" in q and " in 1 Request." in q, q


def failure_checks(box):
    """Port taken: start fails; broken config: reload fails; journalctl -p err has both causes."""
    box.sh("systemctl stop mxrelayd")
    holder = box.popen_netns(["/usr/bin/python3", "-c",
                              "import socket,time; s=socket.socket(); s.bind(('0.0.0.0',587)); "
                              "s.listen(); print('bound', flush=True); time.sleep(120)"])
    try:
        assert holder.stdout.readline().strip() == b"bound"
        p = box.sh("systemctl start mxrelayd", check=None, timeout=90)
        assert p.returncode != 0, "systemctl start succeeded with port 587 taken"
        err = box.sh("journalctl -b -p err -u mxrelayd --no-pager -o cat", check=None).stdout
        assert "587" in err, f"journalctl -p err does not name the taken port:\n{err}"
    finally:
        holder.kill()
        holder.wait()
    box.sh("systemctl reset-failed mxrelayd; systemctl start mxrelayd", timeout=90)
    box.sh(f"cp {CONF} /root/good.conf && echo 'no_such_key = 1' >> {CONF}")
    p = box.sh("systemctl reload mxrelayd", check=None, timeout=90)
    assert p.returncode != 0, "systemctl reload succeeded with a broken configuration"
    err = box.sh("journalctl -b -p err -u mxrelayd --no-pager -o cat", check=None).stdout
    assert "no_such_key" in err, f"journalctl -p err does not name the broken key:\n{err}"
    assert active(box) == "active", "a failed reload stopped the relay"
    box.sh(f"cp /root/good.conf {CONF}")


def remove_checks(box):
    """dpkg -r keeps mail, configuration and account; --purge removes them."""
    box.sh("dpkg -r mxrelay", timeout=120)
    assert active(box) == "inactive"
    box.sh(f"test -f /var/lib/mxrelay/spool.db && test -f {CONF} && getent passwd mxrelay")
    box.sh("dpkg --purge mxrelay", timeout=120)
    box.sh("! test -e /var/lib/mxrelay && ! test -e /etc/mxrelay && ! test -e /var/log/mxrelay "
           "&& ! getent passwd mxrelay && ! getent group mxrelay")


def preseeded_checks(box):
    """Configuration in place before the install (config management): started at once."""
    box.sh(f"mkdir -p /etc/mxrelay && cp /root/good.conf {CONF}")
    p = box.sh("dpkg -i --force-confold /mnt/deb/mxrelay_*_amd64.deb 2>&1", timeout=120)
    assert active(box) == "active", "installed with a listener beyond loopback, not started:\n" \
        + p.stdout
    assert state(box, CONF) == "root:mxrelay 640"
    box.sh("dpkg --purge mxrelay", timeout=120)


def test_installed_under_systemd():
    deb = build()
    box = boot(os.path.dirname(deb))
    install_checks(box, _built["version"])
    start_checks(box)
    failure_checks(box)
    remove_checks(box)
    preseeded_checks(box)
    box.poweroff()


def test_container_file():
    path = os.path.join(mxtest.SRC, "etc", "container", "Containerfile")
    text = open(path).read()
    assert re.search(r"(?m)^FROM debian:bookworm", text), "not a Debian 12 base"
    assert re.search(r"(?m)^VOLUME .*/etc/mxrelay.*/var/lib/mxrelay", text)
    assert re.search(r'(?m)^CMD \["/usr/sbin/mxrelayd", "-c", "/etc/mxrelay/mxrelay.conf"\]', text)
    engines = [e for e in ("podman", "docker") if shutil.which(e) and
               subprocess.run([e, "info"], capture_output=True).returncode == 0]
    # building it downloads the base image and packages: CI does that (etc/container/build.sh)
    print("#   container image NOT built here: " + (
        f"{engines[0]} works, but the build downloads; .ci/run builds it with etc/container/build.sh"
        if engines else "neither `podman info` nor `docker info` works on this machine"))


if __name__ == "__main__":
    mxtest.main()
