#!/usr/bin/env bash
# bench-tls.sh: what verified outbound TLS costs, mxrelayd against Postfix doing the same.
#
#   10 x smtp-source --SMTP--> relay (mxrelayd | Postfix) --MX via unbound, STARTTLS--> TLS sink
#
# Everything runs in private network and mount namespaces (only 'lo'). At start the script makes
# a test CA and one server certificate (RSA-2048, a SAN for every MX name), a DNSSEC-signed zone
# bench.test (ldns-keygen/ldns-signzone, ECDSA P-256) served by nsd on 127.0.0.1:5353 and a
# validating unbound on 127.0.0.1:53 whose only trust anchor is that zone's KSK (nsd is its stub).
# Both relays ask that unbound: mxrelayd through dns_servers, Postfix through the system resolver
# (/etc/resolv.conf bind-mounted to "nameserver 127.0.0.1, options trust-ad" in the private mount
# namespace: glibc passes the AD bit on only with trust-ad).
#
# Three modes, each with 10 recipient domains dN.MODE.bench.test (MX 10 mxN.MODE.bench.test,
# address 127.0.0.(10+N), where the sink listens):
#  (a) may:    opportunistic TLS. mxrelayd with its defaults (dane = yes and mta_sts = yes: it
#              looks up TLSA and _mta-sts TXT and finds none, signed NXDOMAIN); Postfix
#              smtp_tls_security_level = may, smtp_dns_support_level = enabled.
#  (b) dane:   a DNSSEC-signed TLSA 3 1 1 for every MX host. mxrelayd dane = yes (the default);
#              Postfix smtp_dns_support_level = dnssec, smtp_tls_security_level = dane.
#  (c) verify: PKIX for the MX name against the test CA. mxrelayd tls_policy = .verify.bench.test
#              verify, tls_ca_file; Postfix smtp_tls_security_level = secure, smtp_tls_CAfile,
#              smtp_tls_secure_cert_match = hostname (the MX name; Postfix's default would match
#              the recipient domain, which the certificate does not name).
#
# The sink: smtp-sink (the receiver of bench-e2e.sh) has no STARTTLS, so the sink is a private
# Postfix smtpd on the 10 MX addresses with smtpd_tls_security_level = encrypt (a plaintext
# session cannot hand over mail: every message counted arrived over TLS) that discards every
# message at end of data (smtpd_end_of_data_restrictions = DISCARD; its queue on a tmpfs). It
# logs each session, each TLS handshake and each message; the script reads that log. Its CPU
# (cgroup) is printed per run: the sink alone, plaintext smtp-source against it at concurrency 50,
# is measured first and printed as its ceiling.
#
# Each run: a fresh relay, warm-up (20 messages per domain, delivered, queue empty), then N 1 KB
# messages from 10 smtp-source processes at once (one per domain, concurrency 5 each: 50 in all,
# one session per message, one recipient). The clock runs from the first submission to the
# sink's last message; the relay's CPU (cgroup: all its processes) over the same window extended
# until its queue is empty. A run counts only when the sink discarded exactly warm-up + N
# messages, every session it saw was TLS, the relay logged that many deliveries and no
# deferral/bounce/warning, and the relay says the mode's verification for every delivery:
# mxrelayd's delivery lines tls_policy=opportunistic | dane | verify (tls_verified=yes for the
# last two); Postfix's handshake lines "Untrusted TLS connection" (may: no CA file) or "Verified
# TLS connection" (dane, verify), and no other kind. Sessions: the sink's "connect from" lines in
# the measured window (connection reuse shows here). The DNS column is unbound's CPU per 1000
# messages: Postfix has no DNS cache of its own and asks unbound for every delivery; mxrelayd
# caches by TTL. It is counted for neither relay.
#
# Postfix at its best: smtp_tls_connection_reuse = yes (TLS connections go through tlsproxy, so
# the connection cache can keep them; without it Postfix's cache never holds a TLS session) and
# smtp_tls_session_cache_database = btree (tlsmgr; resumption; Postfix's default is no cache).
# --pf-set 'smtp_tls_connection_reuse = no' shows the other way. Delivery settings as in
# bench-e2e.sh (5 -> 20 sessions per destination, 100 in total, both relays' defaults).
#
# --baseline BIN adds another mxrelayd binary (e.g. the code before issue 13) in mode may only
# (the only mode the older code can do), alternating with the others.
#
# Usage: test/bench/bench-tls.sh [--quick] [--modes may,dane,verify] [--msgs N] [--repeat N]
set -euo pipefail
export LC_ALL=C

PROG=${0##*/}
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=test/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=test/bench/relays.sh
. "$(dirname "${BASH_SOURCE[0]}")/relays.sh"

MODES="may,dane,verify"
MSGS=2000
REPEAT=3
NDOM=10
CONC=50
KB=1
ONLY=both
MXRELAYD="${MXRELAYD:-$SRC_DIR/build/mta/mxrelayd}"
BASELINE=""
WORK_PARENT="${TMPDIR:-/var/tmp}"
KEEP=0
STALL=30
# shellcheck disable=SC2034 # read by lib.sh
CPU_FROM=auto
MX_EXTRA=()
PF_EXTRA=()
PF_USER_SET=()
# shellcheck disable=SC2034 # read by relays.sh
ROUTE=mx                  # relays.sh: MX lookups (through unbound on port 53)
# shellcheck disable=SC2034 # read by relays.sh
DNS_PORT=53
NSD_PORT=5353

usage() {
	cat <<USAGE
Usage: $PROG [options]

Outbound TLS cost: smtp-source -> relay -> MX found through a validating unbound -> a Postfix
smtpd sink that requires STARTTLS, for mxrelayd and Postfix, in modes may (opportunistic), dane
(signed TLSA 3 1 1) and verify (PKIX for the MX name). Prints delivered msgs/s, relay CPU s per
1000 messages and sessions opened, medians of --repeat runs. Run as root.

  --quick            300 messages per run, 2 runs
  --modes LIST       may, dane, verify, comma-separated (default $MODES)
  --msgs N           messages per measured run (default $MSGS)
  --repeat N         runs per mode and relay, relays alternating (default $REPEAT)
  --only WHICH       mxrelayd | postfix | both (default both)
  --mxrelayd PATH    daemon binary (default \$MXRELAYD or build/mta/mxrelayd)
  --baseline PATH    also run this mxrelayd binary in mode may (e.g. the code before issue 13)
  --workdir DIR      parent of the work directory (default \$TMPDIR or /var/tmp; on disk)
  --pf-set 'K = V'   extra main.cf line for the Postfix relay (repeatable)
  --mx-set 'K = V'   extra global line for mxrelayd (repeatable)
  --stall SECS       a run with no delivery for SECS is stuck (default $STALL)
  --keep             keep the work directory
  -h, --help         this text
USAGE
}

ARGS=("$@")
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) MSGS=300; REPEAT=2 ;;
	--modes) MODES="${2:?}"; shift ;;
	--msgs) MSGS="${2:?}"; shift ;;
	--repeat) REPEAT="${2:?}"; shift ;;
	--only) ONLY="${2:?}"; shift ;;
	--mxrelayd) MXRELAYD="${2:?}"; shift ;;
	--baseline) BASELINE="${2:?}"; shift ;;
	--workdir) WORK_PARENT="${2:?}"; shift ;;
	--pf-set) PF_USER_SET+=("${2:?}"); shift ;;
	--mx-set) MX_EXTRA+=("${2:?}"); shift ;;
	--stall) STALL="${2:?}"; shift ;;
	--keep) KEEP=1 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
case "$ONLY" in mxrelayd|postfix|both) ;; *) die "--only: mxrelayd, postfix or both" ;; esac
for m in ${MODES//,/ }; do
	case "$m" in may|dane|verify) ;; *) die "--modes: may, dane, verify, not '$m'" ;; esac
done
for v in $MSGS $REPEAT $STALL; do [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: $v"; done
[ $((MSGS % NDOM)) = 0 ] || die "--msgs must be a multiple of $NDOM (one smtp-source per domain)"
want_mx() { [ "$ONLY" != postfix ]; }
want_pf() { [ "$ONLY" != mxrelayd ]; }
[ "$(id -u)" = 0 ] || die "run as root"

# ---- private network and mount namespaces ------------------------------------------------------
if [ -z "${MXBENCH_TLS_NS:-}" ]; then
	unshare --net --mount true 2>/dev/null || die "needs 'unshare --net --mount' (util-linux, root)"
	export MXBENCH_TLS_NS=1
	exec unshare --net --mount --propagation private -- "$BASH" "$0" "${ARGS[@]}"
fi
ip link set lo up || die "cannot bring up lo in the private network namespace"
[ "$(ip -o link show | grep -vc ': lo:')" = 0 ] || die "the network namespace has more than 'lo'"
# the sink's addresses, on lo (Postfix's inet_interfaces wants addresses an interface has)
for a in $(seq 11 $((10 + NDOM))) 30; do ip addr add "127.0.0.$a/32" dev lo || die "cannot add 127.0.0.$a to lo"; done

SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
POSTCONF=$(command -v postconf || echo /usr/sbin/postconf)
for t in "$SMTP_SOURCE" "$POSTFIX" "$POSTCONF"; do [ -x "$t" ] || die "$t not found (apt-get install postfix)"; done
for t in nsd unbound ldns-keygen ldns-signzone dig openssl sqlite3; do
	command -v "$t" >/dev/null || die "$t not found (apt-get install nsd unbound ldnsutils dnsutils openssl sqlite3)"
done
if want_mx; then
	[ -x "$MXRELAYD" ] || die "mxrelayd not found at $MXRELAYD (build it, or --only postfix)"
	[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || die "--baseline: no executable at $BASELINE"
fi
# shellcheck disable=SC2034 # read by lib.sh
HAVE_SQLITE=1 CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$WORK_PARENT"
FSTYPE=$(stat -f -c %T "$WORK_PARENT")
case "$FSTYPE" in tmpfs|ramfs) die "$WORK_PARENT is $FSTYPE: the relays' fsync would be free; --workdir on disk" ;; esac

WORK="" TICK_FD=""
nap() { read -r -t "$1" -u "$TICK_FD" _ 2>/dev/null || true; }

# ---- PKI: a test CA and one server certificate for every MX name ---------------------------------
pki_make() {
	local d="$WORK/pki" san="" m i
	mkdir -p "$d"
	for m in may dane verify; do
		for i in $(seq "$NDOM"); do san+="${san:+,}DNS:mx$i.$m.bench.test"; done
	done
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench-tls test CA" \
		-keyout "$d/ca.key" -out "$d/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign" 2>/dev/null || die "openssl: CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=mx1.may.bench.test" -keyout "$d/mx.key" \
		-out "$d/mx.csr" 2>/dev/null || die "openssl: CSR"
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" >"$d/ext"
	openssl x509 -req -in "$d/mx.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/ext" -out "$d/mx.pem" 2>/dev/null || die "openssl: server certificate"
	chmod 644 "$d/ca.pem" "$d/mx.pem"
	chmod 600 "$d/mx.key" "$d/ca.key"
	# RFC 6698 2.1: usage 3 (DANE-EE), selector 1 (SPKI), matching type 1 (SHA-256)
	TLSA_HASH=$(openssl x509 -in "$d/mx.pem" -noout -pubkey | openssl pkey -pubin -outform DER |
		openssl dgst -sha256 -r | cut -d' ' -f1)
}

# ---- DNS: signed bench.test on nsd (5353), validating unbound (53) -------------------------------
NSD_PID="" UB_PID="" DNS_CG=""
dns_start() {
	local d="$WORK/dns" m i z="$WORK/dns/bench.test.zone" incep ksk zsk ok=0
	mkdir -p "$d"
	{
		printf '$ORIGIN bench.test.\n$TTL 3600\n'
		printf '@ IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 3600\n'
		printf '@ IN NS ns.bench.test.\nns IN A 127.0.0.1\n'
		for m in may dane verify; do
			for i in $(seq "$NDOM"); do
				printf 'd%s.%s IN MX 10 mx%s.%s\nmx%s.%s IN A 127.0.0.%s\n' "$i" "$m" "$i" "$m" "$i" "$m" $((10 + i))
				[ "$m" = dane ] && printf '_25._tcp.mx%s.dane IN TLSA 3 1 1 %s\n' "$i" "$TLSA_HASH"
			done
		done
	} >"$z"
	( cd "$d" &&
		ksk=$(ldns-keygen -a ECDSAP256SHA256 -k bench.test) && zsk=$(ldns-keygen -a ECDSAP256SHA256 bench.test) &&
		cp "$ksk.key" anchor.key &&
		incep=$(date -u -d '-1 hour' +%Y%m%d%H%M%S) &&
		ldns-signzone -i "$incep" -o bench.test "$z" "$ksk" "$zsk" ) >"$d/sign.log" 2>&1 ||
		{ cat "$d/sign.log" >&2; die "ldns-keygen/ldns-signzone failed"; }
	nsd_conf "$d/nsd.conf" "$d" "$NSD_PORT" bench.test "$z.signed"
	cat >"$d/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: 53
	username: ""
	chroot: ""
	directory: "$d"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 0
	num-threads: 1
	do-not-query-localhost: no
	do-ip6: no
	access-control: 127.0.0.0/8 allow
	trust-anchor-file: "$d/anchor.key"
	module-config: "validator iterator"
	# unbound answers NXDOMAIN for all of .test (RFC 6761) unless told not to
	local-zone: "test." nodefault
	# no answers per second limit: Postfix asks for every delivery
	ratelimit: 0
	ip-ratelimit: 0
remote-control:
	control-enable: no
stub-zone:
	name: "bench.test"
	stub-addr: 127.0.0.1@$NSD_PORT
EOF
	DNS_CG=$(cg_make dns)
	(cg_enter "$DNS_CG" && exec nsd -d -c "$d/nsd.conf") >"$d/nsd.out" 2>&1 &
	NSD_PID=$!
	(cg_enter "$DNS_CG" && exec unbound -d -p -c "$d/unbound.conf") >"$d/unbound.out" 2>&1 &
	UB_PID=$!
	for _ in $(seq 100); do
		if dig +dnssec +time=1 +tries=1 @127.0.0.1 TLSA _25._tcp.mx1.dane.bench.test 2>/dev/null |
			grep -q 'flags:.* ad[ ;]'; then ok=1; break; fi
		sleep 0.1
	done
	[ "$ok" = 1 ] || { cat "$d/nsd.out" "$d/unbound.out" >&2; die "unbound gives no validated (AD) TLSA answer"; }
	printf 'nameserver 127.0.0.1\noptions trust-ad timeout:2 attempts:2\n' >"$WORK/resolv.conf"
	chmod 644 "$WORK/resolv.conf"
	mount --bind "$WORK/resolv.conf" /etc/resolv.conf || die "cannot bind-mount resolv.conf"
	RESOLV_BOUND=1
	[ "$(getent hosts mx3.verify.bench.test | awk '{ print $1; exit }')" = 127.0.0.13 ] ||
		die "the system resolver does not see unbound"
}
RESOLV_BOUND=0

# ---- the sink: a Postfix smtpd requiring STARTTLS, discarding at end of data -----------------------
SK_DIR="" SK_CG="" SK_FD="" SK_PART=""
SK_MSGS=0 SK_CONN=0 SK_TLS=0
sink_start() {
	local ifs="" i daemon_dir meta_dir shlib_dir
	SK_DIR="$WORK/sink"
	mkdir -p "$SK_DIR/conf" "$SK_DIR/q" "$SK_DIR/data"
	# the sink's queue and log on tmpfs: its durability is not what is measured
	mount -t tmpfs -o size=256m tmpfs "$SK_DIR/q" || die "cannot mount a tmpfs for the sink"
	mkdir -p "$SK_DIR/q/queue"
	chmod 755 "$SK_DIR" "$SK_DIR/conf" "$SK_DIR/q"
	[ -n "$PF_OWNER" ] && chown "$PF_OWNER" "$SK_DIR/data"
	for i in $(seq "$NDOM"); do ifs+="${ifs:+, }127.0.0.$((10 + i))"; done
	daemon_dir=$("$POSTCONF" -d -h daemon_directory)
	meta_dir=$("$POSTCONF" -d -h meta_directory)
	shlib_dir=$("$POSTCONF" -d -h shlib_directory)
	cat >"$SK_DIR/conf/main.cf" <<EOF
# bench-tls.sh: the receiving MX for every test domain; requires STARTTLS, discards all mail
compatibility_level = 3.6
queue_directory = $SK_DIR/q/queue
data_directory = $SK_DIR/data
daemon_directory = $daemon_dir
meta_directory = $meta_dir
shlib_directory = $shlib_dir
myhostname = mxsink.bench.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = $ifs
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_end_of_data_restrictions = check_client_access static:DISCARD
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 300
# in_flow_delay waits for qmgr's tokens, and discarded mail never reaches qmgr: 1 s per message
in_flow_delay = 0
smtpd_tls_security_level = encrypt
smtpd_tls_cert_file = $WORK/pki/mx.pem
smtpd_tls_key_file = $WORK/pki/mx.key
smtpd_tls_loglevel = 1
maillog_file_prefixes = $SK_DIR
maillog_file = $SK_DIR/q/maillog
biff = no
EOF
	cat >"$SK_DIR/conf/master.cf" <<EOF
smtp      inet  n       -       n       -       -       smtpd
127.0.0.30:25 inet n    -       n       -       -       smtpd -o smtpd_tls_security_level=none
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	SK_CG=$(cg_make sink)
	(cg_enter "$SK_CG" && pf_run_quiet "$POSTFIX" -c "$SK_DIR/conf" start) >"$SK_DIR/start.log" 2>&1 ||
		{ cat "$SK_DIR/start.log" >&2; die "the sink Postfix does not start"; }
	for i in $(seq "$NDOM") 20; do
		wait_banner 25 15 "127.0.0.$((10 + i))" || die "the sink does not answer on 127.0.0.$((10 + i)):25"
	done
	: >>"$SK_DIR/q/maillog"
	exec {SK_FD}<"$SK_DIR/q/maillog"
	sink_poll
}

# sink_poll: read the sink's new log lines (no fork); counts messages, sessions, TLS handshakes
sink_poll() {
	local l
	while IFS= read -r -u "$SK_FD" l; do
		l="$SK_PART$l"; SK_PART=""
		case "$l" in
		*"discard: END-OF-MESSAGE"*) SK_MSGS=$((SK_MSGS + 1)) ;;
		*"smtpd"*"]: connect from "*) SK_CONN=$((SK_CONN + 1)) ;;
		*"TLS connection established from"*) SK_TLS=$((SK_TLS + 1)) ;;
		esac
	done
	SK_PART+=$l
}

sink_stop() {
	[ -n "$SK_FD" ] && { exec {SK_FD}<&-; SK_FD=""; }
	[ -n "$SK_CG" ] || return 0
	"$POSTFIX" -c "$SK_DIR/conf" stop >/dev/null 2>&1 || true
	cg_drain "$SK_CG"
	SK_CG=""
	umount "$SK_DIR/q" 2>/dev/null || true
}

# ---- relays ------------------------------------------------------------------------------------
# relay_start WHO MODE: the relay configured for MODE (see the header)
relay_start() {
	local who=$1 mode=$2
	if [ "$who" = postfix ]; then
		PF_EXTRA=("smtp_tls_loglevel = 1"
			"smtp_tls_connection_reuse = yes"
			"smtp_tls_session_cache_database = btree:\$data_directory/smtp_scache")
		case "$mode" in
		dane) PF_EXTRA+=("smtp_dns_support_level = dnssec" "smtp_tls_security_level = dane") ;;
		verify) PF_EXTRA+=("smtp_tls_security_level = secure" "smtp_tls_CAfile = $WORK/pki/ca.pem"
			"smtp_tls_secure_cert_match = hostname") ;;
		esac
		PF_EXTRA+=(${PF_USER_SET[@]+"${PF_USER_SET[@]}"})
		# (a server certificate only to keep tlsproxy from warning that its server role is off)
		# shellcheck disable=SC2034 # read by relays.sh
		PF_MASTER_EXTRA=("tlsproxy  unix  -       -       n       -       0       tlsproxy
  -o tlsproxy_tls_security_level=may -o tlsproxy_tls_cert_file=$WORK/pki/mx.pem
  -o tlsproxy_tls_key_file=$WORK/pki/mx.key")
		pf_start none
		return
	fi
	local keep=(${MX_EXTRA[@]+"${MX_EXTRA[@]}"}) lines=() l u set
	case "$mode" in
	dane) lines=("dane = yes") ;;
	verify) lines=("tls_policy = .verify.bench.test verify" "tls_ca_file = $WORK/pki/ca.pem") ;;
	esac
	# a --mx-set line replaces the mode's line for the same key
	MX_EXTRA=()
	for l in ${lines[@]+"${lines[@]}"}; do
		set=0
		for u in ${keep[@]+"${keep[@]}"}; do [ "${u%%[ =]*}" = "${l%%[ =]*}" ] && set=1; done
		[ "$set" = 1 ] || MX_EXTRA+=("$l")
	done
	MX_EXTRA+=(${keep[@]+"${keep[@]}"})
	if [ "$who" = baseline ]; then mx_start "$BASELINE" none; else mx_start "$MXRELAYD" none; fi
	MX_EXTRA=(${keep[@]+"${keep[@]}"})
}
is_mx() { [ "$1" != postfix ]; }
relay_stop() { if is_mx "$1"; then mx_stop; else pf_stop; fi; }
relay_port() { if is_mx "$1"; then echo "$MX_PORT"; else echo "$PF_PORT"; fi; }
relay_cg() { if is_mx "$1"; then echo "$MX_CG"; else echo "$PF_CG"; fi; }
relay_pid() { if is_mx "$1"; then echo "$MX_PID"; else pf_master_pid; fi; }
relay_queued() { if is_mx "$1"; then mx_queued; else pf_queued; fi; }
# (Postfix's cleanup warns when the disk's clock is a second ahead: noise, not a problem)
relay_problems() {
	if is_mx "$1"; then mx_problems
	else pf_problems | grep -vE 'warning: (file system clock is|resetting file time stamps)' || true; fi
}
relay_log() { if is_mx "$1"; then echo "$MX_DIR/mxrelayd.log"; else echo "$PF_DIR/maillog"; fi; }
relay_sent() {
	if is_mx "$1"; then mx_log_count 'event=delivery .*status=sent'
	else pf_log_count 'postfix/smtp\[[0-9]+\]: .*status=sent'; fi
}

# relay_tls_problem WHO MODE EXPECT: the relay's log does not show MODE's verification for every
# delivery (prints why; nothing when it does)
relay_tls_problem() {
	local who=$1 mode=$2 expect=$3 n want bad
	if is_mx "$who"; then
		case "$mode" in
		may) want='tls=TLSv1\.[23] tls_policy=opportunistic tls_verified=no' ;;
		dane) want='tls=TLSv1\.[23] tls_policy=dane tls_verified=yes' ;;
		verify) want='tls=TLSv1\.[23] tls_policy=verify tls_verified=yes' ;;
		esac
		[ "$who" = baseline ] && want='tls=TLSv1\.[23] '
		n=$(mx_log_count "event=delivery .*status=sent $want")
		[ "$n" = "$expect" ] || echo "$n of $expect deliveries logged '$want'"
		return
	fi
	n=$(pf_log_count 'TLS connection established to')
	case "$mode" in may) want=Untrusted ;; *) want=Verified ;; esac
	bad=$((n - $(pf_log_count "$want TLS connection established to")))
	[ "$n" -gt 0 ] && [ "$bad" = 0 ] || echo "Postfix logged $n TLS handshakes, $bad of them not '$want'"
}

# ---- load ------------------------------------------------------------------------------------
# load_start PORT MSGS MODE OUT: one smtp-source per domain, concurrency CONC/NDOM each, in the
# background (LOAD_PID waits for all; OUT.end gets the time the last one finished)
LOAD_PID=""
load_start() {
	local port=$1 mode=$3 out=$4 per=$(($2 / NDOM)) c=$((CONC / NDOM)) i
	rm -f "$out".*.rc "$out.end"
	( for i in $(seq "$NDOM"); do
		( rc=0
		  "$SMTP_SOURCE" -c -s "$c" -m "$per" -l $((KB * 1024)) -M bench.localdomain \
			-f sender@example.com -t "rcpt@d$i.$mode.bench.test" "127.0.0.1:$port" \
			>"$out.$i.out" 2>"$out.$i.err" || rc=$?
		  echo "$rc" >"$out.$i.rc" ) &
	  done
	  wait
	  echo "$EPOCHREALTIME" >"$out.end" ) &
	LOAD_PID=$!
}

load_kill() {
	[ -n "$LOAD_PID" ] || return 0
	pkill -P "$LOAD_PID" 2>/dev/null || true
	kill "$LOAD_PID" 2>/dev/null || true
	wait "$LOAD_PID" 2>/dev/null || true
	LOAD_PID=""
}

load_problem() {
	local out=$1 per=$(($2 / NDOM)) i rc counted
	for i in $(seq "$NDOM"); do
		rc=$(cat "$out.$i.rc" 2>/dev/null || echo "?")
		counted=$(tr '\r' '\n' <"$out.$i.out" | grep -E '^[0-9]+$' | tail -1 || true)
		if [ "$rc" != 0 ] || [ -s "$out.$i.err" ]; then
			echo "smtp-source $i exit $rc: $(head -c 200 "$out.$i.err" | tr '\n' ' ')"; return
		elif [ "${counted:-0}" != "$per" ]; then
			echo "smtp-source $i completed ${counted:-0} of $per"; return
		fi
	done
}

# wait_sink TOTAL: until the sink has discarded TOTAL messages (T_DONE: when); 1 after STALL s
# without progress
T_DONE=""
wait_sink() {
	local total=$1 last=-1 since t
	while :; do
		sink_poll
		t=$EPOCHREALTIME
		[ "$SK_MSGS" -ge "$total" ] && { T_DONE=$t; return 0; }
		t=${t/./}
		if [ "$SK_MSGS" != "$last" ]; then last=$SK_MSGS since=$t
		elif [ $((t - since)) -gt $((STALL * 1000000)) ]; then return 1; fi
		nap 0.05
	done
}

wait_drained() {
	local who=$1 secs=$2 q
	for _ in $(seq $((secs * 10))); do
		q=$(relay_queued "$who")
		[ "$q" = 0 ] && { echo 0; return; }
		nap 0.1
	done
	echo "$q"
}

# cg_cpu CG: CPU microseconds of cgroup CG so far ("-" without cgroups)
cg_cpu() { if [ "$CG_MODE" = proc ]; then echo "-"; else cpu_usec "$1" 0; fi; }
per1000() {   # per1000 USEC0 USEC1 MSGS: CPU s per 1000 messages, or "-"
	awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.3f", (b - a) / 1e6 / m * 1000 }'
}

# measure WHO MODE REP: one run; sets R_RATE R_CPU R_SESS R_SINK R_DNS R_BUSY R_NOTE
measure() {
	local who=$1 mode=$2 rep=$3 warm=$((NDOM * 20)) out port cg pid p n m0 k0 ka c0 c1 s0 s1 d0 d1 t0 t1 b0 b1 left sent
	out="$WORK/$who-$mode-r$rep"
	R_RATE="-" R_CPU="-" R_SESS="-" R_SALL="-" R_SINK="-" R_DNS="-" R_BUSY="-" R_NOTE=""
	sync
	relay_start "$who" "$mode"
	port=$(relay_port "$who") cg=$(relay_cg "$who") pid=$(relay_pid "$who")
	sink_poll
	m0=$SK_MSGS ka=$SK_CONN
	load_start "$port" "$warm" "$mode" "$out.warm"
	wait "$LOAD_PID" || true
	LOAD_PID=""
	p=$(load_problem "$out.warm" "$warm")
	if [ -n "$p" ]; then R_NOTE="warm-up: $p"
	elif ! wait_sink $((m0 + warm)); then R_NOTE="warm-up: the sink got $((SK_MSGS - m0)) of $warm"
	elif [ "$(wait_drained "$who" 10)" != 0 ]; then R_NOTE="warm-up: the relay's queue did not drain"
	fi
	if [ -z "$R_NOTE" ]; then
		sync; nap 0.5
		sink_poll
		m0=$SK_MSGS k0=$SK_CONN n=$SK_TLS
		c0=$(cpu_usec "$cg" "$pid") s0=$(cg_cpu "$SK_CG") d0=$(cg_cpu "$DNS_CG")
		read -r b0 </proc/stat
		t0=$EPOCHREALTIME
		load_start "$port" "$MSGS" "$mode" "$out"
		if wait_sink $((m0 + MSGS)); then
			t1=$T_DONE
			read -r b1 </proc/stat
			wait "$LOAD_PID" || true
			LOAD_PID=""
			left=$(wait_drained "$who" 20)
			nap 0.3
			c1=$(cpu_usec "$cg" "$pid") s1=$(cg_cpu "$SK_CG") d1=$(cg_cpu "$DNS_CG")
			R_RATE=$(awk -v m="$MSGS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", m / (b - a) }')
			R_CPU=$(per1000 "$c0" "$c1" "$MSGS") R_SINK=$(per1000 "$s0" "$s1" "$MSGS") R_DNS=$(per1000 "$d0" "$d1" "$MSGS")
			R_BUSY=$(busy_pct "$b0" "$b1")
			p=$(load_problem "$out" "$MSGS")
			[ -n "$p" ] && R_NOTE="$p"
			[ "$left" != 0 ] && R_NOTE="${R_NOTE:+$R_NOTE; }the relay still holds $left messages"
		else
			load_kill
			R_NOTE="stuck: the sink got $((SK_MSGS - m0)) of $MSGS, none for $STALL s; the relay holds $(relay_queued "$who")"
		fi
		nap 0.5   # a duplicate would show up now
		sink_poll
		R_SESS=$((SK_CONN - k0)) R_SALL=$((SK_CONN - ka))
		[ -z "$R_NOTE" ] && [ "$SK_MSGS" != $((m0 + MSGS)) ] && R_NOTE="the sink counted $((SK_MSGS - m0)) messages, expected $MSGS"
		[ -z "$R_NOTE" ] && [ $((SK_TLS - n)) != "$R_SESS" ] && R_NOTE="the sink saw $R_SESS sessions but $((SK_TLS - n)) TLS handshakes"
		for _ in $(seq 50); do
			sent=$(relay_sent "$who")
			[ "$sent" -ge $((warm + MSGS)) ] && break
			nap 0.1
		done
		[ -z "$R_NOTE" ] && [ "$sent" != $((warm + MSGS)) ] && R_NOTE="the relay logged $sent deliveries, expected $((warm + MSGS))"
		[ -z "$R_NOTE" ] && R_NOTE=$(relay_tls_problem "$who" "$mode" $((warm + MSGS)))
	fi
	relay_problems "$who" >"$out.problems"
	if [ -s "$out.problems" ]; then
		R_NOTE="${R_NOTE:+$R_NOTE; }$(wc -l <"$out.problems") problem line(s) in the relay's log: $(head -1 "$out.problems" | cut -c1-200)"
	fi
	[ -n "$R_NOTE" ] && cp "$(relay_log "$who")" "$out.relay.log" 2>/dev/null || true
	relay_stop "$who"
}

# sink_ceiling: plaintext smtp-source at concurrency 50 straight into the sink (its door on
# 127.0.0.30, no TLS): what the sink alone takes, and its CPU per 1000 messages
sink_ceiling() {
	local n=3000 m0 s0 s1 t0 out="$WORK/ceiling"
	sink_poll; m0=$SK_MSGS
	s0=$(cg_cpu "$SK_CG"); t0=$EPOCHREALTIME
	"$SMTP_SOURCE" -c -s "$CONC" -m "$n" -l $((KB * 1024)) -M bench.localdomain -f sender@example.com \
		-t rcpt@d1.may.bench.test 127.0.0.30:25 >"$out.out" 2>"$out.err" || die "smtp-source into the sink failed: $(head -c 200 "$out.err")"
	wait_sink $((m0 + n)) || die "the sink took $((SK_MSGS - m0)) of $n messages"
	s1=$(cg_cpu "$SK_CG")
	CEIL_RATE=$(awk -v m="$n" -v a="$t0" -v b="$T_DONE" 'BEGIN { printf "%.0f", m / (b - a) }')
	CEIL_CPU=$(per1000 "$s0" "$s1" "$n")
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	load_kill
	mx_stop
	pf_stop
	sink_stop
	for p in $UB_PID $NSD_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	cg_drain "$DNS_CG"
	[ "$RESOLV_BOUND" = 1 ] && { umount /etc/resolv.conf 2>/dev/null || true; }
	[ -n "$TICK_FD" ] && exec {TICK_FD}<&-
	[ -n "$CG_ROOT" ] && rmdir "$CG_ROOT" 2>/dev/null || true
	if [ -n "$WORK" ]; then
		if [ "$KEEP" = 1 ]; then note "work directory kept: $WORK"; else rm -rf "$WORK"; fi
	fi
	exit "$rc"
}

# ---- main ------------------------------------------------------------------------------------
WORK=$(mktemp -d "$WORK_PARENT/mxrelay-tls.XXXXXX")
chmod 755 "$WORK"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkfifo "$WORK/tick"
exec {TICK_FD}<>"$WORK/tick"
snapshot() {
	mkdir -p "$WORK/bin"
	cp "$1" "$WORK/bin/$2"
	echo "$WORK/bin/$2"
}
if want_mx; then
	MXRELAYD_ORIG=$MXRELAYD MXRELAYD=$(snapshot "$MXRELAYD" mxrelayd)
	[ -n "$BASELINE" ] && BASELINE_ORIG=$BASELINE BASELINE=$(snapshot "$BASELINE" baseline)
fi
cg_init
pki_make
dns_start
sink_start
sink_ceiling

WHO=()
want_mx && WHO+=(mxrelayd)
want_mx && [ -n "$BASELINE" ] && WHO+=(baseline)
want_pf && WHO+=(postfix)
echo "mxrelay outbound TLS benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "machine: $(nproc) CPUs, $(uname -sr), work dir on $FSTYPE; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
want_mx && echo "mxrelayd: $MXRELAYD_ORIG (sha256 $(sha256sum "$MXRELAYD" | cut -c1-12))"
[ -n "$BASELINE" ] && echo "baseline: $BASELINE_ORIG (sha256 $(sha256sum "$BASELINE" | cut -c1-12)), mode may only"
want_pf && echo "postfix:  $("$POSTCONF" -d -h mail_version) (private instance; TLS connection reuse via tlsproxy, TLS session cache)"
echo "path:     10 x smtp-source (c$((CONC / NDOM)) each, $KB KB, 1 rcpt) -> relay -> MX of dN.MODE.bench.test via unbound (DNSSEC) -> Postfix smtpd sink (STARTTLS required, discards)"
echo "sink alone (plaintext, smtp-source c$CONC): $CEIL_RATE msgs/s, sink CPU $CEIL_CPU s/1000"
echo "runs:     $MSGS messages each (after a warm-up of $((NDOM * 20))), $REPEAT per mode and relay, relays alternating; medians"
echo

declare -A RATES CPUS SESSS SALLS SINKS DNSS NOTE
STAT0=$(head -1 /proc/stat)
for mode in ${MODES//,/ }; do
	for rep in $(seq "$REPEAT"); do
		order=()
		for who in "${WHO[@]}"; do [ "$who" = baseline ] && [ "$mode" != may ] || order+=("$who"); done
		for _ in $(seq $(((rep - 1) % ${#order[@]}))); do order=("${order[@]:1}" "${order[0]}"); done
		for who in "${order[@]}"; do
			k="$who,$mode"
			printf '  %-8s %-6s run %s/%s: ' "$who" "$mode" "$rep" "$REPEAT" >&2
			measure "$who" "$mode" "$rep"
			printf '%5s msgs/s %6s CPU s/1000 %5s sessions (%s with warm-up)  sink %s dns %s s/1000  (CPUs %s%% busy)%s\n' \
				"$R_RATE" "$R_CPU" "$R_SESS" "$R_SALL" "$R_SINK" "$R_DNS" "$R_BUSY" "${R_NOTE:+  !! $R_NOTE}" >&2
			if [ -n "$R_NOTE" ] || [ "$R_RATE" = "-" ]; then
				NOTE[$k]="${NOTE[$k]:-}${NOTE[$k]:+; }${R_NOTE:-no figure}"
				continue
			fi
			RATES[$k]="${RATES[$k]:-} $R_RATE" CPUS[$k]="${CPUS[$k]:-} $R_CPU" SESSS[$k]="${SESSS[$k]:-} $R_SESS" SALLS[$k]="${SALLS[$k]:-} $R_SALL"
			SINKS[$k]="${SINKS[$k]:-} $R_SINK" DNSS[$k]="${DNSS[$k]:-} $R_DNS"
		done
	done
done

echo
fmt='%-7s %-9s %8s %11s %9s %9s %10s %9s %5s\n'
# shellcheck disable=SC2059
printf "$fmt" mode relay msgs/s "CPU s/1000" sessions "+warm-up" "sink s/1k" "dns s/1k" runs
printf -- '-%.0s' $(seq 86); echo
FAILED=0
declare -A RATE CPU
for mode in ${MODES//,/ }; do
	for who in "${WHO[@]}"; do
		[ "$who" = baseline ] && [ "$mode" != may ] && continue
		k="$who,$mode"
		# shellcheck disable=SC2086
		RATE[$k]=$(median %.0f ${RATES[$k]:-}) CPU[$k]=$(median %.3f ${CPUS[$k]:-})
		n=$(echo ${RATES[$k]:-} | wc -w)
		[ -n "${NOTE[$k]:-}" ] && FAILED=1
		# shellcheck disable=SC2059,SC2086
		printf "$fmt" "$mode" "$who" "${RATE[$k]}${NOTE[$k]:+ !}" "${CPU[$k]}" "$(median %.0f ${SESSS[$k]:-})" "$(median %.0f ${SALLS[$k]:-})" \
			"$(median %.3f ${SINKS[$k]:-})" "$(median %.3f ${DNSS[$k]:-})" "$n/$REPEAT"
	done
	if want_mx && want_pf; then
		echo "        mxrelayd/Postfix: $(ratio "${RATE[mxrelayd,$mode]}" "${RATE[postfix,$mode]}")x msgs/s, Postfix CPU per message $(ratio "${CPU[postfix,$mode]}" "${CPU[mxrelayd,$mode]}")x mxrelayd's"
	fi
done
echo
echo "msgs/s: first submission to the sink's last message. CPU s/1000: the relay's CPU (all its"
echo "processes) per 1000 messages until its queue was empty. sessions: SMTP sessions the sink saw in"
echo "the measured window (every one TLS; +warm-up: from the relay's start). sink/dns s/1k: the sink's and unbound+nsd's CPU per 1000"
echo "messages (counted for neither relay). '!': a run failed (below); failed runs are not in the medians."
echo "CPU steal: $(steal_pct "$STAT0" "$(head -1 /proc/stat)")%; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for k in "${!NOTE[@]}"; do echo "  failed: $k: ${NOTE[$k]}"; done
[ "$FAILED" = 1 ] && [ "$KEEP" = 0 ] && echo "  (--keep keeps the logs)"
[ "$FAILED" = 1 ] && exit 1
exit 0
