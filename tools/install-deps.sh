#!/bin/sh
# Install the Debian 12 packages mxrelay needs. Safe to run again.
#   tools/install-deps.sh          what building and running the relay needs
#                                  (README command 1; nothing a production box
#                                  does not need: no test peers, no daemons)
#   tools/install-deps.sh --test   that plus the tests' and benchmarks' peers
#                                  (tools/run-tests.sh calls this)
# Installing needs root; as another user it only checks and names what is
# missing. Daemons pulled in by test packages (postfix, nsd, haproxy) are kept
# from starting: the tests start their own copies on loopback.
set -eu

# One package per line (easy to merge); a comment says who needs it when not obvious.
BUILD_AND_RUN="
build-essential
cmake
pkg-config
libssl-dev
libc-ares-dev
libopendkim-dev
libspf2-dev
libsqlite3-dev
libevent-dev
libcrypt-dev
libidn2-dev
libmicrohttpd-dev
libcmocka-dev
libcurl4-openssl-dev
zlib1g-dev
libpsl-dev
publicsuffix
libsystemd-dev
"
# libpsl-dev, publicsuffix: DMARC's organisational domain (tools/orgdomain.c)
# libcmocka-dev: `cmake -B build` configures the unit tests too (BUILD_TESTING)
# libsystemd-dev: sd_notify, the unit's Type=notify readiness and reload (mta/notify.c)

TEST="
git
clang
libclang-rt-14-dev
llvm
swaks
libnet-ssleay-perl
curl
msmtp
python3
python3-aiosmtpd
python3-dkim
nsd
dnsutils
openssl
iproute2
procps
sqlite3
postfix
haproxy
systemd
debhelper
lintian
debootstrap
systemd-container
ldnsutils
unbound
python3-jsonschema
python3-cryptography
python3-spf
python3-dnspython
python3-yaml
libmail-spf-perl
libmail-dkim-perl
logrotate
prometheus
fail2ban
time
mandoc
groff-base
man-db
"
# prometheus: promtool check metrics on /metrics (queue engineer, test_queue_bulk)
# mandoc, groff-base, man-db: it.test_manpages lints docs/man with mandoc -Tlint,
# groff -ww and man --warnings
# libmail-dkim-perl: Mail::DKIM, second DKIM verifier of test_dns_records
# logrotate: test_logfile runs etc/logrotate.d/mxrelay for real (systemd engineer, issue 16)
# git: test_newcomer clones the checkout; clang, libclang-rt-14-dev, llvm: the
# libFuzzer targets (test/fuzz); postfix: smtp-source/smtp-sink and the
# benchmarks' reference relay; systemd: systemd-analyze for test_systemd;
# ldnsutils (ldns-signzone) and unbound: the DNSSEC-signed zone and the
# validating resolver of the DANE tests; python3-jsonschema: TLS-RPT schema;
# python3-cryptography: the TLS tests' CA and certificates (test/integration/tlspeers.py)
# python3-spf (pyspf; its resolver python3-dnspython), python3-yaml, libmail-spf-perl
# (Mail::SPF, second opinion): the RFC 7208 suite test (test/integration/spfsuite.py)
# fail2ban: fail2ban-regex checks etc/fail2ban/filter.d/mxrelay.conf on a real log (test_logs)
# time: GNU time, the peak memory of mxrelayctl report (test_logs)

# debhelper, lintian: test_deb builds the .deb (dpkg-buildpackage) and lints it;
# debootstrap, systemd-container: the Debian 12 root below, which it installs
# the .deb into and boots with systemd-nspawn.
# test_deb's Debian 12 root (test/integration/test_deb.py): minbase, a systemd
# to boot, adduser (the package's Depends) and the runtime libraries the .deb
# depends on (ldd build/mta/mxrelayd), so the .deb installs offline. Made once
# with debootstrap, outside any checkout; the only download a test relies on.
DEB_ROOT=/var/cache/mxrelay-test/bookworm
DEB_ROOT_MIRROR=${MXRELAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEB_ROOT_PKGS="
systemd
systemd-sysv
dbus
adduser
libevent-core-2.1-7
libevent-pthreads-2.1-7
libevent-openssl-2.1-7
libssl3
libc-ares2
libopendkim11
libspf2-2
libsqlite3-0
libidn2-0
libmicrohttpd12
libcurl4
libpsl5
zlib1g
libcrypt1
libsystemd0
"

# the list on one line, as the root's stamp file keeps it (a changed list remakes the root)
# shellcheck disable=SC2086
deb_root_list() { echo $DEB_ROOT_PKGS; }

deb_root_ok() {
	[ -f "$DEB_ROOT/.mxrelay-root" ] &&
		[ "$(cat "$DEB_ROOT/.mxrelay-root")" = "$(deb_root_list)" ]
}

# Made in DIR.new and renamed when complete: a broken run leaves no half root.
make_deb_root() {
	deb_root_ok && return 0
	echo "install-deps.sh: debootstrap of $DEB_ROOT (test_deb's Debian 12 root)"
	rm -rf "$DEB_ROOT.new"
	mkdir -p "$(dirname "$DEB_ROOT")"
	debootstrap --variant=minbase --include="$(deb_root_list | tr ' ' ,)" \
		bookworm "$DEB_ROOT.new" "$DEB_ROOT_MIRROR"
	chroot "$DEB_ROOT.new" apt-get clean
	deb_root_list >"$DEB_ROOT.new/.mxrelay-root"
	rm -rf "$DEB_ROOT"
	mv "$DEB_ROOT.new" "$DEB_ROOT"
}

usage() {
	echo "usage: install-deps.sh [--test]" >&2
	exit 2
}

want="$BUILD_AND_RUN"
test_peers=0
case "${1:-}" in
"") ;;
--test) want="$BUILD_AND_RUN $TEST"; test_peers=1 ;;
-h | --help)
	sed -n '2,10s/^# \{0,1\}//p' "$0"
	exit 0
	;;
*) usage ;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ] && { [ "$test_peers" = 0 ] || deb_root_ok; }; then
	echo "install-deps.sh: all packages present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	[ -n "$missing" ] && echo "install-deps.sh: missing packages:$missing" >&2
	[ "$test_peers" = 1 ] && ! deb_root_ok && echo "install-deps.sh: missing $DEB_ROOT (test_deb)" >&2
	echo "install-deps.sh: run it as root (or: sudo apt-get install$missing)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
created_policy=0
cleanup() { [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d; return 0; }
trap cleanup EXIT
if [ "$test_peers" = 1 ]; then
	# Keep package postinst scripts from starting daemons (postfix, nsd, haproxy, unbound).
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		created_policy=1
	fi
	# Postfix is only a benchmark peer and the source of smtp-source/smtp-sink.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
fi
if [ -n "$missing" ]; then
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi
[ "$test_peers" = 1 ] && make_deb_root
echo "install-deps.sh: all packages present"
