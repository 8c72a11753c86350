#!/bin/sh
# Install every Debian 12 package that mxrelay's build, tests and benchmarks need.
# Run as root. Safe to run again. Daemons pulled in by packages (postfix, nsd) are
# kept from starting: the tests start their own copies on loopback.
set -eu

if [ "$(id -u)" != 0 ]; then
	echo "install-deps.sh: run as root" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Keep package postinst scripts from starting daemons (postfix, nsd, haproxy).
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	created_policy=1
fi
cleanup() { [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d; return 0; }
trap cleanup EXIT

# Postfix is only a benchmark peer and the source of smtp-source/smtp-sink.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

BUILD="build-essential cmake pkg-config libssl-dev libc-ares-dev libopendkim-dev
	libspf2-dev libsqlite3-dev libevent-dev libcrypt-dev libcmocka-dev libidn2-dev sqlite3
	libmicrohttpd-dev clang libclang-rt-14-dev llvm"
TEST="swaks libnet-ssleay-perl curl msmtp python3 python3-aiosmtpd python3-dkim
	nsd dnsutils openssl iproute2 procps postfix haproxy systemd"

missing=""
for p in $BUILD $TEST; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi
echo "install-deps.sh: all packages present"
