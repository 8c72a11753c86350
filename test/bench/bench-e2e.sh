#!/usr/bin/env bash
# bench-e2e.sh: end-to-end delivery benchmark, mxrelayd against a Postfix relay on the same machine.
#
#   smtp-source --SMTP--> relay (mxrelayd | Postfix) --MX lookup (nsd)--> smtp-sink on 127.0.0.2:25
#
# For every (message size, concurrency) pair, each relay is started fresh in a temporary directory
# on disk together with a fresh smtp-sink, warmed up (warm-up mail delivered and the queue empty),
# then fed MSGS messages by Postfix's smtp-source (one SMTP session per message, one recipient
# rcpt@bench.test). The clock runs from the start of the submission until the sink has received all
# MSGS messages (we poll its counter); the relay's CPU (all its processes and threads, from a
# cgroup) is taken over the same window, extended until the relay's queue is empty (its last
# bookkeeping: removing the delivered messages). We print end-to-end messages/s and relay CPU
# seconds per 1000 messages for both, medians of --repeat runs (the relays alternate who goes first).
#
# A run only counts when everything arrived: the sink received exactly warm-up + MSGS messages (no
# loss, no duplicate), smtp-source had no error, the relay's queue ended empty, the relay logged
# exactly that many successful deliveries and no deferral, bounce or error, and one check message
# sent through the relay after the measured window (at the run's size, with dot-stuffed lines,
# an empty line and a 900-octet line) arrived once at a second sink (check.bench.test, MX on
# 127.0.0.3:25, which writes it to a file) with its envelope and its body octet for octet.
#
# What is compared, and why it is fair:
#  - Same path and same peers for both: the same smtp-source load, the same nsd zone, the same kind
#    of sink. Intake is durable on both (Postfix fsyncs each queue file; mxrelayd commits to SQLite
#    with synchronous=FULL, group commit) and both data directories are on disk (tmpfs refused).
#  - Postfix is a private instance (own config and queue in the work directory, no chroot) with the
#    queue manager ON, delivering with its smtp client by normal MX lookup (relayhost empty,
#    smtp_host_lookup = dns, DNS enabled). Everything else is Postfix's default, in particular
#    in_flow_delay = 1s (its intake/delivery flow control) and the on-demand connection cache
#    (smtp_connection_cache_on_demand = yes: a session to a destination with a backlog is kept for
#    the next message, 2 s idle). mxrelayd keeps an idle connection 5 s and reuses it (its default).
#  - Concurrency towards the destination: 20 for both, starting at 5 and growing on success: these
#    are both relays' defaults (Postfix initial_destination_concurrency 5,
#    default_destination_concurrency_limit 20; mxrelayd domain_concurrency_start 5,
#    domain_concurrency 20), stated explicitly. Total outgoing connections: 100 for both (Postfix
#    smtp maxproc 100, mxrelayd delivery_concurrency 100). Recipients per transaction: 50 for both
#    (default_destination_recipient_limit, rcpts_per_transaction; with one recipient per message it
#    does not come into play). Defaults for both, because the issue asks how they compare as shipped.
#  - TLS: opportunistic on both (Postfix smtp_tls_security_level = may with its tlsmgr; mxrelayd
#    always tries STARTTLS when offered). smtp-sink offers no STARTTLS, so both send in plaintext.
#  - DNS: IPv4 only on both (Postfix inet_protocols = ipv4, mxrelayd address_family = ipv4), so
#    neither asks for AAAA. mxrelayd asks nsd through dns_servers = 127.0.0.1:53; Postfix through
#    the system resolver: /etc/resolv.conf is bind-mounted to "nameserver 127.0.0.1" inside a
#    private mount namespace (the host's file is untouched). nsd's CPU counts for neither; Postfix
#    has no DNS cache and asks more often (mxrelayd caches by TTL): in production a local caching
#    resolver, whose CPU would not count either, absorbs that.
#  - Both log every session and delivery to a file in the work directory (Postfix through postlogd,
#    mxrelayd on stderr); that CPU counts on both sides.
#  - Isolation: the whole benchmark runs in a private network namespace (only 'lo') and mount
#    namespace: no packet can leave the machine, whatever a component resolves or connects to.
#  - Load generator, sinks and nsd run on the same 2 CPUs and are not counted for either relay;
#    they compete with the relay equally for both. smtp-sink is one process: were it the limit, the
#    ratio would understate the faster relay.
#  - Each run's line also shows the submission rate (smtp-source's own clock): when it equals the
#    delivered rate, delivery kept up and the relay's intake was the limit; when it is higher, the
#    relay queued mail faster than it delivered it.
#
# Usage: test/bench/bench-e2e.sh [--quick] [--sizes 1,10,100] [--conc 1,10,50] [options]
set -euo pipefail
export LC_ALL=C           # '.' in $EPOCHREALTIME and in awk's numbers

PROG=${0##*/}
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=test/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES="1,10,100"          # KB of message payload (smtp-source -l)
CONCS="1,10,50"           # parallel submission sessions (smtp-source -s)
MSGS_OVERRIDE=""
REPEAT=""                 # runs per cell (default: 3 for the target cell, 1 for the others)
MX_EXTRA=()               # --mx-set 'key = value': extra global lines for mxrelayd's config
PF_EXTRA=()               # --pf-set 'key = value': extra main.cf lines for Postfix
CPU_FROM=auto
ONLY="both"
MXRELAYD="${MXRELAYD:-$SRC_DIR/build/mta/mxrelayd}"
WORK_PARENT="${TMPDIR:-/var/tmp}"
KEEP=0
STRICT=0
CSV=""
ALLOW_TMPFS=0
STALL=30                  # seconds without progress before a run is declared stuck
DNS_PORT=53
SINK_ADDR=127.0.0.2       # mx.bench.test: the measured sink
CHECK_ADDR=127.0.0.3      # mxcheck.bench.test: the content-check sink

usage() {
	cat <<EOF
Usage: $PROG [options]

End to end: smtp-source -> relay -> MX (resolved through a local nsd) -> smtp-sink, for mxrelayd
and for a private Postfix relay. Prints delivered messages/s and relay CPU seconds per 1000
messages for both. Run as root; everything runs in private network and mount namespaces.

  --quick             only 1 KB at concurrency 50 (the target cell), both relays
  --sizes LIST        message payload sizes in KB, comma-separated (default $SIZES)
  --conc LIST         submission concurrencies, comma-separated (default $CONCS)
  --msgs N            messages per measured run (default: by size and concurrency)
  --repeat N          runs per cell and relay, alternating the relays; the table shows medians
                      (default: 3 for 1 KB c50, the target cell, and 1 for the other cells)
  --only WHICH        mxrelayd | postfix | both (default both)
  --mxrelayd PATH     daemon binary (default \$MXRELAYD or build/mta/mxrelayd)
  --workdir DIR       parent of the temporary work directory (default \$TMPDIR or /var/tmp);
                      must be a disk filesystem: durability has to be real
  --csv FILE          also write the results as CSV
  --strict            exit 1 unless, at 1 KB and concurrency 50, mxrelayd delivers >= 3x Postfix's
                      messages/s with <= 1/3 of its CPU per message
  --stall SECS        declare a run stuck after SECS without a delivery (default $STALL)
  --mx-set 'K = V'    add a global line to mxrelayd's configuration (repeatable)
  --pf-set 'K = V'    add a line to Postfix's main.cf (repeatable)
  --cpu-from WHERE    auto (cgroup v2, else v1 cpuacct, else /proc) or proc (/proc only)
  --keep              keep the work directory (configs, logs, queues, dumps) for inspection
  --allow-tmpfs       allow a tmpfs work directory (numbers then say nothing about fsync)
  -h, --help          this text
EOF
}

ARGS=("$@")
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) SIZES="1"; CONCS="50" ;;
	--sizes) SIZES="${2:?--sizes needs a value}"; shift ;;
	--conc) CONCS="${2:?--conc needs a value}"; shift ;;
	--msgs) MSGS_OVERRIDE="${2:?--msgs needs a value}"; shift ;;
	--repeat) REPEAT="${2:?--repeat needs a value}"; shift ;;
	--only) ONLY="${2:?--only needs a value}"; shift ;;
	--mxrelayd) MXRELAYD="${2:?--mxrelayd needs a value}"; shift ;;
	--workdir) WORK_PARENT="${2:?--workdir needs a value}"; shift ;;
	--csv) CSV="${2:?--csv needs a value}"; shift ;;
	--strict) STRICT=1 ;;
	--stall) STALL="${2:?--stall needs a value}"; shift ;;
	--keep) KEEP=1 ;;
	--mx-set) MX_EXTRA+=("${2:?--mx-set needs a value}"); shift ;;
	--pf-set) PF_EXTRA+=("${2:?--pf-set needs a value}"); shift ;;
	--cpu-from) CPU_FROM="${2:?--cpu-from needs a value}"; shift ;;
	--allow-tmpfs) ALLOW_TMPFS=1 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

case "$ONLY" in mxrelayd|postfix|both) ;; *) die "--only: mxrelayd, postfix or both" ;; esac
case "$CPU_FROM" in auto|proc) ;; *) die "--cpu-from: auto or proc" ;; esac
for v in ${SIZES//,/ } ${CONCS//,/ } $MSGS_OVERRIDE $REPEAT $STALL; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: $v"
done
want_mx() { [ "$ONLY" != postfix ]; }
want_pf() { [ "$ONLY" != mxrelayd ]; }

[ "$(id -u)" = 0 ] || die "run as root (Postfix, nsd on port 53, the sinks on port 25 and the cgroups need it)"

# ---- private network and mount namespaces ------------------------------------------------------
# Network: only 'lo' exists inside, so nothing can leave the machine. Mount: /etc/resolv.conf is
# replaced (bind mount) for Postfix's resolver without touching the host's file. Both are required.
if [ -z "${MXBENCH_E2E_NS:-}" ]; then
	command -v unshare >/dev/null && unshare --net --mount true 2>/dev/null ||
		die "needs 'unshare --net --mount' (util-linux, root): the benchmark runs nsd on port 53 and sinks on port 25 in a private namespace"
	export MXBENCH_E2E_NS=1
	exec unshare --net --mount --propagation private -- "$BASH" "$0" "${ARGS[@]}"
fi
ip link set lo up || die "cannot bring up lo in the private network namespace"
[ "$(ip -o link show | grep -vc ': lo:')" = 0 ] || die "the network namespace has more than 'lo'"

# ---- tools -----------------------------------------------------------------------------------
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
POSTCONF=$(command -v postconf || echo /usr/sbin/postconf)
NSD=$(command -v nsd || echo /usr/sbin/nsd)
NSD_CHECKCONF=$(command -v nsd-checkconf || echo /usr/sbin/nsd-checkconf)
[ -x "$SMTP_SOURCE" ] && [ -x "$SMTP_SINK" ] || die "smtp-source/smtp-sink not found (apt-get install postfix)"
[ -x "$NSD" ] || die "nsd not found (apt-get install nsd)"
command -v dig >/dev/null || die "dig not found (apt-get install dnsutils)"
if want_pf; then
	[ -x "$POSTFIX" ] && [ -x "$POSTCONF" ] || die "postfix not found (apt-get install postfix)"
fi
if want_mx; then
	[ -x "$MXRELAYD" ] || die "mxrelayd not found at $MXRELAYD (build it: cmake -B build && cmake --build build -j2; or --only postfix)"
fi
HAVE_SQLITE=0; command -v sqlite3 >/dev/null && HAVE_SQLITE=1
if want_mx && [ "$HAVE_SQLITE" = 0 ]; then
	die "sqlite3 not found (apt-get install sqlite3): needed to see mxrelayd's queue drain"
fi
CLK_TCK=$(getconf CLK_TCK)
SINK_USER=nobody

# ---- work directory: on disk, durability has to be real ------------------------------------------
mkdir -p "$WORK_PARENT"
FSTYPE=$(stat -f -c %T "$WORK_PARENT")
if [ "$FSTYPE" = tmpfs ] || [ "$FSTYPE" = ramfs ]; then
	[ "$ALLOW_TMPFS" = 1 ] || die "$WORK_PARENT is $FSTYPE: fsync would be free; use --workdir on disk"
fi
WORK=""

# fork-free sleep: read with a timeout on a FIFO nobody writes to (the poll loops run ~20 times a
# second; a 'sleep' process each time would be CPU the relays compete with)
TICK_FD=""
nap() { read -r -t "$1" -u "$TICK_FD" _ 2>/dev/null || true; }

# ---- nsd: the zone bench.test on 127.0.0.1:53 --------------------------------------------------
NSD_PID="" NSD_CG=""
nsd_start() {
	local d="$WORK/nsd"
	mkdir -p "$d"
	cat >"$d/bench.test.zone" <<'EOF'
$ORIGIN bench.test.
$TTL 3600
@        IN SOA ns.bench.test. hostmaster.bench.test. ( 1 3600 600 86400 3600 )
@        IN NS  ns.bench.test.
@        IN MX  10 mx.bench.test.
ns       IN A   127.0.0.1
mx       IN A   127.0.0.2
check    IN MX  10 mxcheck.bench.test.
mxcheck  IN A   127.0.0.3
EOF
	cat >"$d/nsd.conf" <<EOF
server:
	ip-address: 127.0.0.1@$DNS_PORT
	port: $DNS_PORT
	do-ip6: no
	server-count: 1
	username: ""
	chroot: ""
	database: ""
	zonesdir: "$d"
	zonelistfile: "$d/zone.list"
	xfrdfile: "$d/xfrd.state"
	pidfile: "$d/nsd.pid"
	logfile: "$d/nsd.log"
	hide-version: yes
	verbosity: 0
remote-control:
	control-enable: no
zone:
	name: bench.test
	zonefile: "$d/bench.test.zone"
EOF
	if [ -x "$NSD_CHECKCONF" ] && ! "$NSD_CHECKCONF" "$d/nsd.conf" >"$d/check.log" 2>&1; then
		cat "$d/check.log" >&2
		die "nsd-checkconf rejects the benchmark's nsd.conf"
	fi
	NSD_CG=$(cg_make nsd)
	(cg_enter "$NSD_CG" && exec "$NSD" -d -c "$d/nsd.conf") >"$d/nsd.out" 2>&1 &
	NSD_PID=$!
	local ok=0
	for _ in $(seq 100); do
		if [ "$(dig +short +time=1 +tries=1 -p "$DNS_PORT" @127.0.0.1 MX bench.test 2>/dev/null)" = "10 mx.bench.test." ]; then
			ok=1; break
		fi
		kill -0 "$NSD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ "$ok" = 0 ]; then
		cat "$d/nsd.out" "$d/nsd.log" >&2 2>/dev/null || true
		die "nsd does not answer MX bench.test on 127.0.0.1:$DNS_PORT"
	fi
}

nsd_stop() {
	[ -n "$NSD_PID" ] || return 0
	kill -TERM "$NSD_PID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$NSD_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$NSD_PID" 2>/dev/null || true
	wait "$NSD_PID" 2>/dev/null || true
	NSD_PID=""
	cg_drain "$NSD_CG"
	NSD_CG=""
}

# The system resolver (Postfix's) asks the same nsd: resolv.conf replaced in our mount namespace.
RESOLV_BOUND=0
resolver_setup() {
	printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' >"$WORK/resolv.conf"
	chmod 644 "$WORK/resolv.conf"
	mount --bind "$WORK/resolv.conf" /etc/resolv.conf || die "cannot bind-mount a resolv.conf in the private mount namespace"
	RESOLV_BOUND=1
	local a
	a=$(getent hosts mx.bench.test 2>/dev/null | awk 'NR == 1 { print $1 }' || true)
	[ "$a" = "$SINK_ADDR" ] || die "the system resolver does not see nsd (mx.bench.test -> '${a}', want $SINK_ADDR)"
}

# ---- sinks -----------------------------------------------------------------------------------
# The measured sink counts messages ('-c' writes "sess=.. quit=.. mesg=N\r" on every change, unbuffered);
# it is started fresh for every run. AUTH, XCLIENT and XFORWARD are not announced: a plain MX.
SINK_PID="" SINK_OUT="" SINK_N=0 SINK_PART="" SINK_FD=""
sink_start() {
	SINK_OUT="$1"
	: >"$SINK_OUT"
	"$SMTP_SINK" -c -a -C -F -h mx.bench.test -u "$SINK_USER" -m 512 "$SINK_ADDR:25" 1024 >"$SINK_OUT" 2>"$SINK_OUT.err" &
	SINK_PID=$!
	wait_banner 25 5 "$SINK_ADDR" || die "smtp-sink does not answer on $SINK_ADDR:25: $(head -c 300 "$SINK_OUT.err")"
	exec {SINK_FD}<"$SINK_OUT"
	SINK_N=0 SINK_PART=""
	sink_poll
	[ "$SINK_N" = 0 ] || die "smtp-sink counted $SINK_N messages before any was sent"
}

# sink_poll: read the counter records written since the last call (no fork); sets SINK_N
sink_poll() {
	local rec
	while IFS= read -r -d $'\r' -u "$SINK_FD" rec; do
		rec="$SINK_PART$rec"; SINK_PART=""
		[[ "$rec" =~ mesg=([0-9]+) ]] && SINK_N=${BASH_REMATCH[1]}
	done
	SINK_PART+=$rec   # a record not complete yet
}

sink_stop() {
	[ -n "$SINK_FD" ] && { exec {SINK_FD}<&-; SINK_FD=""; }
	[ -n "$SINK_PID" ] || return 0
	kill -TERM "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	SINK_PID=""
}

# The check sink writes every transaction to its own file in $CHECK_DIR; it runs all along.
CHECK_PID="" CHECK_DIR=""
check_sink_start() {
	CHECK_DIR="$WORK/check-dumps"
	mkdir -p "$CHECK_DIR"
	chown "$SINK_USER" "$CHECK_DIR"
	"$SMTP_SINK" -a -C -F -h mxcheck.bench.test -u "$SINK_USER" -d "$CHECK_DIR/m." "$CHECK_ADDR:25" 64 \
		>"$WORK/check-sink.log" 2>&1 &
	CHECK_PID=$!
	wait_banner 25 5 "$CHECK_ADDR" || die "check smtp-sink does not answer on $CHECK_ADDR:25"
}

# ---- Postfix: a private instance, delivering ---------------------------------------------------
PF_DIR="" PF_CG="" PF_PORT="" PF_RUNNING=0
PF_OWNER=$(getent passwd postfix >/dev/null && echo postfix || echo "")

pf_start() {
	pf_prepare "bench-e2e.sh: an outbound relay for 127.0.0.0/8 delivering to MX."
	cat >>"$PF_DIR/conf/main.cf" <<EOF
# Enough smtpd and cleanup processes for concurrency 50; smtp has its own maxproc (master.cf).
default_process_limit = 200
# Delivery: direct to the recipient domain's MX, found in DNS (the private nsd).
relayhost =
default_transport = smtp
smtp_host_lookup = dns
smtp_dns_support_level = enabled
smtp_tls_security_level = may
# Postfix's defaults, stated: 5 sessions per destination at first, up to 20; on-demand cache.
initial_destination_concurrency = 5
default_destination_concurrency_limit = 20
default_destination_recipient_limit = 50
smtp_connection_cache_on_demand = yes
# Log to a file in the work directory (postlogd's CPU counts, like mxrelayd's own logging).
maillog_file_prefixes = $PF_DIR
maillog_file = $PF_DIR/maillog
EOF
	# --pf-set: edit in place (a repeated main.cf entry would make every daemon log a warning)
	local line
	for line in "${PF_EXTRA[@]}"; do
		"$POSTCONF" -c "$PF_DIR/conf" -e "$line" || die "--pf-set '$line': postconf -e failed"
	done
	cat >"$PF_DIR/conf/master.cf" <<EOF
# No chroot (Debian's default master.cf chroots smtpd, smtp and friends): a chroot would need
# copies of /etc files inside the queue directory and does not change the work done per message.
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_PORT inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
# 100 outgoing sessions at most, like mxrelayd's delivery_concurrency default.
smtp      unix  -       -       n       -       100     smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	PF_CG=$(cg_make "postfix")
	PF_RUNNING=1
	if ! (cg_enter "$PF_CG" && pf_run_quiet "$POSTFIX" -c "$PF_DIR/conf" start) >"$PF_DIR/start.log" 2>&1; then
		cat "$PF_DIR/start.log" >&2
		die "postfix -c $PF_DIR/conf start failed"
	fi
	wait_banner "$PF_PORT" 15 || { tail -20 "$PF_DIR/maillog" >&2 || true; die "Postfix does not answer on 127.0.0.1:$PF_PORT"; }
}

pf_stop() {
	[ "$PF_RUNNING" = 1 ] || return 0
	local m; m=$(pf_master_pid)
	"$POSTFIX" -c "$PF_DIR/conf" stop >/dev/null 2>&1 || true
	cg_drain "$PF_CG"
	if [ -z "$PF_CG" ] && [ -n "$m" ]; then   # no cgroup: wait for our master, then insist
		for _ in $(seq 100); do kill -0 "$m" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$m" 2>/dev/null || true
	fi
	PF_CG="" PF_RUNNING=0
}

# pf_log_count REGEX: matching lines in Postfix's log
pf_log_count() { grep -cE "$1" "$PF_DIR/maillog" 2>/dev/null || true; }
# pf_problems: log lines that mean something went wrong (deferral, bounce, warning, error)
pf_problems() {
	grep -E 'status=(deferred|bounced|expired)|: (warning|error|fatal|panic): ' "$PF_DIR/maillog" 2>/dev/null || true
}

# ---- mxrelayd ------------------------------------------------------------------------------------
MX_DIR="" MX_CG="" MX_PID="" MX_PORT=""
MX_USER=$(getent passwd mxrelay >/dev/null && echo mxrelay || echo nobody)

# mx_override: drop the lines of stdin whose key a --mx-set line sets (that line is appended)
mx_override() {
	local keys="" line
	for line in "${MX_EXTRA[@]}"; do
		line=${line%%=*}; line=${line//[[:space:]]/}
		keys+=" $line"
	done
	awk -v keys="$keys" 'BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) drop[k[i]] = 1 }
		{ key = $0; sub(/[ \t]*=.*/, "", key); sub(/^[ \t]+/, "", key) }
		!(key in drop) || /^[ \t]*#/ { print }'
}

mx_start() {
	MX_DIR="$WORK/mxrelayd"
	rm -rf "$MX_DIR"
	mkdir -p "$MX_DIR/data"
	chmod 755 "$MX_DIR"
	chmod 700 "$MX_DIR/data"
	chown "$MX_USER" "$MX_DIR/data"
	MX_PORT=$(pick_port)
	{ cat <<EOF
# mxrelayd for bench-e2e.sh: relay for 127.0.0.0/8, plain SMTP, durable spool on disk, delivering
# to MX hosts found through the private nsd (on loopback, hence allow_private_mx).
hostname = mxbench.localdomain
data_dir = $MX_DIR/data
user = $MX_USER
relay_from = 127.0.0.0/8
max_connections = 1000
max_connections_per_ip = 200
log = stderr
dns_servers = 127.0.0.1:$DNS_PORT
allow_private_mx = yes
smtp_port = 25
address_family = ipv4
# mxrelayd's defaults, stated (see the header for Postfix's equivalents).
domain_concurrency_start = 5
domain_concurrency = 20
delivery_concurrency = 100
rcpts_per_transaction = 50
max_inflight = 200
EOF
	} | mx_override >"$MX_DIR/mxrelay.conf"
	printf '%s\n' "${MX_EXTRA[@]}" >>"$MX_DIR/mxrelay.conf"
	printf '\n[listener bench]\naddress = 127.0.0.1:%s\ntls = none\n' "$MX_PORT" >>"$MX_DIR/mxrelay.conf"
	if ! "$MXRELAYD" -n -c "$MX_DIR/mxrelay.conf" >"$MX_DIR/check.log" 2>&1; then
		cat "$MX_DIR/check.log" >&2
		die "mxrelayd -n rejects the benchmark configuration"
	fi
	MX_CG=$(cg_make "mxrelayd")
	(cg_enter "$MX_CG" && exec "$MXRELAYD" -c "$MX_DIR/mxrelay.conf") >"$MX_DIR/mxrelayd.log" 2>&1 &
	MX_PID=$!
	if ! wait_banner "$MX_PORT" 15; then
		tail -20 "$MX_DIR/mxrelayd.log" >&2 || true
		die "mxrelayd does not answer on 127.0.0.1:$MX_PORT"
	fi
}

mx_stop() {
	[ -n "$MX_PID" ] || return 0
	if kill -0 "$MX_PID" 2>/dev/null; then
		kill -TERM "$MX_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$MX_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$MX_PID" 2>/dev/null && { note "mxrelayd ignored SIGTERM for 10 s; killing it"; kill -KILL "$MX_PID" 2>/dev/null || true; }
	fi
	wait "$MX_PID" 2>/dev/null || true
	MX_PID=""
	cg_drain "$MX_CG"
	MX_CG=""
}

mx_log_count() { grep -cE "$1" "$MX_DIR/mxrelayd.log" 2>/dev/null || true; }
mx_problems() {
	grep -E 'level=(err|warn) |status=(deferred|bounced)|event=(connect_failed|bounce|load_failed|spool_error)' \
		"$MX_DIR/mxrelayd.log" 2>/dev/null || true
}

# ---- per-relay dispatch ------------------------------------------------------------------------
relay_start() { case "$1" in mxrelayd) mx_start ;; postfix) pf_start ;; esac; }
relay_stop() { case "$1" in mxrelayd) mx_stop ;; postfix) pf_stop ;; esac; }
relay_port() { case "$1" in mxrelayd) echo "$MX_PORT" ;; postfix) echo "$PF_PORT" ;; esac; }
relay_cg() { case "$1" in mxrelayd) echo "$MX_CG" ;; postfix) echo "$PF_CG" ;; esac; }
relay_pid() { case "$1" in mxrelayd) echo "$MX_PID" ;; postfix) pf_master_pid ;; esac; }
relay_queued() { case "$1" in mxrelayd) mx_queued ;; postfix) pf_queued ;; esac; }
relay_problems() { case "$1" in mxrelayd) mx_problems ;; postfix) pf_problems ;; esac; }
relay_log() { case "$1" in mxrelayd) echo "$MX_DIR/mxrelayd.log" ;; postfix) echo "$PF_DIR/maillog" ;; esac; }
# successful deliveries the relay logged (to any destination)
relay_sent() {
	case "$1" in
	mxrelayd) mx_log_count 'event=delivery .*status=sent' ;;
	postfix) pf_log_count 'postfix/smtp\[[0-9]+\]: .*status=sent' ;;
	esac
}

# ---- teardown --------------------------------------------------------------------------------
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	load_kill
	mx_stop
	pf_stop
	sink_stop
	[ -n "$CHECK_PID" ] && { kill "$CHECK_PID" 2>/dev/null || true; wait "$CHECK_PID" 2>/dev/null || true; }
	nsd_stop
	[ "$RESOLV_BOUND" = 1 ] && { umount /etc/resolv.conf 2>/dev/null || true; }
	[ -n "$TICK_FD" ] && exec {TICK_FD}<&-
	[ -n "$CG_ROOT" ] && rmdir "$CG_ROOT" 2>/dev/null || true
	if [ -z "$WORK" ]; then
		:
	elif [ "$KEEP" = 1 ]; then
		note "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}

# ---- one measured run ------------------------------------------------------------------------
# messages per measured run: long enough that the ramp-up and the last stragglers are small next
# to it (Postfix, the slower, takes ~4-15 s per run on 2 CPUs), short enough for the default run
# to stay well under 10 minutes
msgs_for() {
	local kb=$1 conc=$2
	if [ -n "$MSGS_OVERRIDE" ]; then echo "$MSGS_OVERRIDE"; return; fi
	if [ "$kb" -ge 100 ]; then
		[ "$conc" -le 1 ] && echo 500 || echo 1000
	elif [ "$kb" -ge 10 ]; then
		[ "$conc" -le 1 ] && echo 1000 || echo 1500
	else
		[ "$conc" -le 1 ] && echo 1000 || echo 2000
	fi
}

# runs per cell: --repeat, else 3 for the target cell (1 KB, c50) and 1 for the others
repeat_for() {
	if [ -n "$REPEAT" ]; then echo "$REPEAT"; return; fi
	[ "$1" = 1 ] && [ "$2" = 50 ] && echo 3 || echo 1
}

# load_start PORT CONC MSGS BYTES OUTPREFIX: smtp-source in the background (LOAD_PID, a subshell
# waiting for it; smtp-source's own pid in OUTPREFIX.pid); its exit code goes to OUTPREFIX.rc and
# the time it finished to OUTPREFIX.end
LOAD_PID="" LOAD_OUT=""
load_start() {
	local port=$1 conc=$2 msgs=$3 bytes=$4 out=$5
	rm -f "$out.rc" "$out.end" "$out.pid"
	LOAD_OUT=$out
	( rc=0
	  "$SMTP_SOURCE" -c -s "$conc" -m "$msgs" -l "$bytes" -M bench.localdomain \
		-f sender@example.com -t rcpt@bench.test "127.0.0.1:$port" >"$out.out" 2>"$out.err" &
	  echo $! >"$out.pid"
	  wait $! || rc=$?
	  echo "$EPOCHREALTIME" >"$out.end"
	  echo "$rc" >"$out.rc" ) &
	LOAD_PID=$!
}

# load_kill: stop a running smtp-source (stuck run, teardown)
load_kill() {
	[ -n "$LOAD_PID" ] || return 0
	[ -s "$LOAD_OUT.pid" ] && { kill "$(cat "$LOAD_OUT.pid")" 2>/dev/null || true; }
	kill "$LOAD_PID" 2>/dev/null || true
	wait "$LOAD_PID" 2>/dev/null || true
	LOAD_PID=""
}

# load_problem OUTPREFIX MSGS: why smtp-source did not submit MSGS messages cleanly (empty: it did)
load_problem() {
	local out=$1 msgs=$2 counted rc
	rc=$(cat "$out.rc" 2>/dev/null || echo "?")
	counted=$(tr '\r' '\n' <"$out.out" | grep -E '^[0-9]+$' | tail -1 || true)
	if [ "$rc" != 0 ] || [ -s "$out.err" ]; then
		echo "smtp-source exit $rc: $(head -c 200 "$out.err" | tr '\n' ' ')"
	elif [ "${counted:-0}" != "$msgs" ]; then
		echo "smtp-source completed ${counted:-0} of $msgs DATA commands"
	fi
}

# wait_delivered TOTAL: wait until the sink has counted TOTAL messages; sets T_DONE (the time,
# $EPOCHREALTIME) when it has. Gives up after $STALL s without a new message at the sink (whether
# or not the submission is still running). Returns 0 when TOTAL was reached. No fork in the loop.
T_DONE=""
wait_delivered() {
	local total=$1 last=-1 since t
	while :; do
		sink_poll
		t=$EPOCHREALTIME
		if [ "$SINK_N" -ge "$total" ]; then
			T_DONE=$t
			return 0
		fi
		t=${t/./}
		if [ "$SINK_N" != "$last" ]; then
			last=$SINK_N since=$t
		elif [ $((t - since)) -gt $((STALL * 1000000)) ]; then
			return 1
		fi
		nap 0.05
	done
}

# wait_drained WHO SECS: wait until the relay's queue is empty; prints what is left
wait_drained() {
	local who=$1 secs=$2 q
	for _ in $(seq $((secs * 10))); do
		q=$(relay_queued "$who")
		[ "$q" = 0 ] && { echo 0; return; }
		nap 0.1
	done
	echo "$q"
}

# make_check_msg FILE TOKEN KB: a message of about KB KB with lines that test SMTP transparency
make_check_msg() {
	local f=$1 token=$2 kb=$3
	{
		printf 'From: <sender@example.com>\n'
		printf 'To: <check@check.bench.test>\n'
		printf 'Subject: bench-e2e content check %s\n' "$token"
		printf 'Message-ID: <%s@bench.localdomain>\n' "$token"
		printf 'Date: %s\n' "$(date -R)"
		printf '\n'
		awk -v t="$token" -v n=$((kb * 1024 / 76 + 1)) 'BEGIN {
			print "first body line of " t
			print "."
			print ".. two dots"
			print ".leading dot"
			print ""
			s = ""; for (i = 0; i < 900; i++) s = s sprintf("%c", 33 + i % 94); print s
			for (i = 0; i < n; i++) printf "%s line %06d ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx\n", t, i
			print "."
			print "last body line"
		}'
	} >"$f"
}

# strip_trailing_blank: drop empty lines at the end of the input
strip_trailing_blank() { awk 'NF == 0 && $0 == "" { b++; next } { while (b > 0) { print ""; b-- } print }'; }

# content_check WHO KB TOKENPREFIX: send one check message through the relay; prints a problem
# (empty when the message arrived once, with the right envelope and an identical body)
content_check() {
	local who=$1 kb=$2 token=$3 port f dumps d
	port=$(relay_port "$who")
	f="$WORK/check-$token.msg"
	make_check_msg "$f" "$token" "$kb"
	if ! "$SMTP_SOURCE" -m 1 -F "$f" -M bench.localdomain -f sender@example.com \
		-t check@check.bench.test "127.0.0.1:$port" >"$f.out" 2>&1; then
		echo "check message not accepted: $(head -c 200 "$f.out" | tr '\n' ' ')"
		return
	fi
	dumps=()
	for _ in $(seq 300); do   # 30 s
		mapfile -t dumps < <(grep -l -F "Subject: bench-e2e content check $token" "$CHECK_DIR"/m.* 2>/dev/null || true)
		[ "${#dumps[@]}" -gt 0 ] && break
		nap 0.1
	done
	[ "${#dumps[@]}" -gt 0 ] || { echo "check message did not reach the check sink within 30 s"; return; }
	nap 0.5   # a duplicate would show up now
	mapfile -t dumps < <(grep -l -F "Subject: bench-e2e content check $token" "$CHECK_DIR"/m.* 2>/dev/null || true)
	[ "${#dumps[@]}" = 1 ] || { echo "check message arrived ${#dumps[@]} times"; return; }
	d=${dumps[0]}
	# (ESMTP parameters may follow the address: SIZE=, BODY=, ORCPT=...)
	grep -qE '^X-Mail-Args: <sender@example\.com>( |$)' "$d" || { echo "check message: wrong envelope sender: $(grep '^X-Mail-Args' "$d")"; return; }
	[ "$(grep -c '^X-Rcpt-Args: ' "$d")" = 1 ] && grep -qE '^X-Rcpt-Args: <check@check\.bench\.test>( |$)' "$d" ||
		{ echo "check message: wrong envelope recipients: $(grep '^X-Rcpt-Args' "$d" | tr '\n' ' ')"; return; }
	grep -qx "Message-ID: <$token@bench.localdomain>" "$d" || { echo "check message: Message-ID header lost"; return; }
	# body: after the first empty line (the sink's own headers run straight into the message's)
	awk 'b { print } !b && $0 == "" { b = 1 }' "$d" | strip_trailing_blank >"$f.got"
	awk 'b { print } !b && $0 == "" { b = 1 }' "$f" | strip_trailing_blank >"$f.want"
	if ! cmp -s "$f.want" "$f.got"; then
		echo "check message body differs: $(diff "$f.want" "$f.got" | head -3 | cut -c1-100 | tr '\n' ' ')"
		return
	fi
	rm -f "$f" "$f.out" "$f.got" "$f.want"
}

# measure WHO KB CONC MSGS REP: sets R_RATE (delivered msgs/s), R_CPU (CPU s/1000), R_SUB
# (submitted msgs/s, smtp-source's own wall clock), R_NOTE (why the run does not count), R_PROBS
# (file with the relay's log lines about trouble)
measure() {
	local who=$1 kb=$2 conc=$3 msgs=$4 rep=$5
	local bytes=$((kb * 1024)) port cg pid warm out t0 t1 tend c0 c1 left expect sent p n
	warm=$((conc * 4)); [ "$warm" -lt 100 ] && warm=100
	expect=$((warm + msgs))
	R_RATE="-" R_CPU="-" R_SUB="-" R_NOTE="" R_PROBS=""
	out="$WORK/$who-${kb}k-c$conc-r$rep"
	sync
	sink_start "$out.sink"
	relay_start "$who"
	port=$(relay_port "$who") cg=$(relay_cg "$who") pid=$(relay_pid "$who")

	# warm-up: same size and concurrency, delivered completely, queue empty
	load_start "$port" "$conc" "$warm" "$bytes" "$out.warmup"
	wait "$LOAD_PID" || true
	p=$(load_problem "$out.warmup" "$warm")
	if [ -n "$p" ]; then
		R_NOTE="warm-up: $p"
	elif ! wait_delivered "$warm"; then
		R_NOTE="warm-up: the sink got $SINK_N of $warm messages (no progress for $STALL s)"
	elif [ "$(wait_drained "$who" 10)" != 0 ]; then
		R_NOTE="warm-up: the relay's queue did not drain"
	fi
	LOAD_PID=""

	if [ -z "$R_NOTE" ]; then
		sync; nap 0.5
		c0=$(cpu_usec "$cg" "$pid")
		t0=$EPOCHREALTIME
		load_start "$port" "$conc" "$msgs" "$bytes" "$out"
		if wait_delivered "$expect"; then
			t1=$T_DONE
			wait "$LOAD_PID" || true
			LOAD_PID=""
			left=$(wait_drained "$who" 20)
			nap 0.3   # the relay's last bookkeeping and log lines
			c1=$(cpu_usec "$cg" "$pid")
			tend=$(cat "$out.end")
			R_RATE=$(awk -v m="$msgs" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", m / (b - a) }')
			R_SUB=$(awk -v m="$msgs" -v a="$t0" -v b="$tend" 'BEGIN { printf "%.0f", m / (b - a) }')
			R_CPU=$(awk -v a="$c0" -v b="$c1" -v m="$msgs" 'BEGIN { printf "%.3f", (b - a) / 1e6 / m * 1000 }')
			p=$(load_problem "$out" "$msgs")
			[ -n "$p" ] && R_NOTE="$p"
			[ "$left" != 0 ] && R_NOTE="${R_NOTE:+$R_NOTE; }the relay still holds $left messages after delivery"
		else
			load_kill
			p=$(load_problem "$out" "$msgs")
			R_NOTE="${p:+$p; }stuck: the sink got $((SINK_N - warm)) of $msgs messages, none for $STALL s; the relay holds $(relay_queued "$who")"
		fi
		# exactly the expected number at the sink (a duplicate would push it over)
		sink_poll
		[ -z "$R_NOTE" ] && [ "$SINK_N" != "$expect" ] && R_NOTE="the sink counted $SINK_N messages, expected $expect"
		# the relay's log agrees (Postfix logs through postlogd, which may lag a little)
		for _ in $(seq 50); do
			sent=$(relay_sent "$who")
			{ [ -n "$R_NOTE" ] || [ "$sent" -ge "$expect" ]; } && break
			nap 0.1
		done
		[ -z "$R_NOTE" ] && [ "$sent" != "$expect" ] && R_NOTE="the relay logged $sent successful deliveries, expected $expect"
		if [ -z "$R_NOTE" ]; then
			p=$(content_check "$who" "$kb" "$who-${kb}k-c$conc-r$rep-$RANDOM$RANDOM")
			[ -n "$p" ] && R_NOTE="$p"
		fi
	fi
	relay_problems "$who" >"$out.problems"
	if [ -s "$out.problems" ]; then
		n=$(wc -l <"$out.problems")
		R_PROBS="$out.problems"
		R_NOTE="${R_NOTE:+$R_NOTE; }$n problem line(s) in the relay's log"
	fi
	# keep the relay's log of a failed run for the report (the relay's directory is reused)
	[ -n "$R_NOTE" ] && cp "$(relay_log "$who")" "$out.relay.log" 2>/dev/null || true
	relay_stop "$who"
	sink_stop
}

STAT0=$(head -1 /proc/stat)

# ---- set up: work directory, cgroups, DNS, sinks, teardown on any exit --------------------------
WORK=$(mktemp -d "$WORK_PARENT/mxrelay-e2e.XXXXXX")
chmod 755 "$WORK"       # Postfix daemons run as 'postfix', mxrelayd and the sinks as other users
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkfifo "$WORK/tick"
exec {TICK_FD}<>"$WORK/tick"
if want_mx; then
	# Measure a snapshot: a rebuild of build/ during the benchmark must not swap the binary.
	mkdir -p "$WORK/bin"
	cp "$MXRELAYD" "$WORK/bin/mxrelayd"
	MXRELAYD_ORIG=$MXRELAYD MXRELAYD="$WORK/bin/mxrelayd"
	if ldd "$MXRELAYD" 2>/dev/null | grep -Eq 'lib(a|ub|t)san'; then
		note "warning: $MXRELAYD_ORIG is built with sanitizers; its figures mean little"
	fi
fi
cg_init
nsd_start
resolver_setup
check_sink_start

# ---- main ------------------------------------------------------------------------------------
RELAYS=""
want_mx && RELAYS="mxrelayd ($MXRELAYD_ORIG, sha256 $(sha256sum "$MXRELAYD" | cut -c1-12))"
if want_pf; then
	PF_VERSION=$("$POSTCONF" -c "$WORK" -d -h mail_version 2>/dev/null || echo "?")
	RELAYS="${RELAYS:+$RELAYS, }postfix $PF_VERSION (private instance, qmgr on, smtp client)"
fi
case "$CG_MODE" in
v2|v1) CPU_HOW="cgroup $CG_MODE" ;;
*) CPU_HOW="/proc process trees ($([ "$CPU_FROM" = proc ] && echo "--cpu-from proc" || echo "no writable cgroup"))" ;;
esac

echo "mxrelay end-to-end benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "machine: $(nproc) CPUs, $(uname -sr), work dir on $FSTYPE ($WORK_PARENT)"
echo "relays:  $RELAYS"
echo "path:    smtp-source -> relay -> MX bench.test via nsd (127.0.0.1:$DNS_PORT) -> smtp-sink $SINK_ADDR:25"
echo "load:    one session per message, 1 recipient; fresh relay and sink per run, warm-up delivered"
echo "         first; per destination 5 -> 20 sessions for both; relays alternate; medians"
echo "CPU:     $CPU_HOW; network: private namespace, loopback only"
echo

WHO=()
want_mx && WHO+=(mxrelayd)
want_pf && WHO+=(postfix)

declare -A RATES CPUS SUBS NOTE RATE CPU SUB
ROWS=()
PROBLEM_FILES=()
for kb in ${SIZES//,/ }; do
	for conc in ${CONCS//,/ }; do
		msgs=$(msgs_for "$kb" "$conc")
		reps=$(repeat_for "$kb" "$conc")
		ROWS+=("$kb $conc $msgs")
		for rep in $(seq "$reps"); do
			# alternate who goes first, so slow drifts of the machine hit both relays alike
			order=("${WHO[@]}")
			[ $((rep % 2)) = 0 ] && [ "${#WHO[@]}" = 2 ] && order=("${WHO[1]}" "${WHO[0]}")
			for who in "${order[@]}"; do
				printf '  %-9s %3s KB  c%-3s %5s msgs  run %s/%s: ' "$who" "$kb" "$conc" "$msgs" "$rep" "$reps" >&2
				measure "$who" "$kb" "$conc" "$msgs" "$rep"
				printf '%6s msgs/s delivered %7s CPU s/1000  (submitted %s msgs/s)%s\n' "$R_RATE" "$R_CPU" \
					"$R_SUB" "${R_NOTE:+  !! $R_NOTE}" >&2
				if [ -n "$R_NOTE" ]; then
					NOTE[$who,$kb,$conc]="${NOTE[$who,$kb,$conc]:-}${NOTE[$who,$kb,$conc]:+; }$R_NOTE"
					PROBLEM_FILES+=("$who $kb $conc $rep ${R_PROBS:--} $WORK/$who-${kb}k-c$conc-r$rep.relay.log")
				fi
				# a run with any error does not count
				{ [ "$R_RATE" = "-" ] || [ -n "$R_NOTE" ]; } && continue
				RATES[$who,$kb,$conc]="${RATES[$who,$kb,$conc]:-} $R_RATE"
				CPUS[$who,$kb,$conc]="${CPUS[$who,$kb,$conc]:-} $R_CPU"
				SUBS[$who,$kb,$conc]="${SUBS[$who,$kb,$conc]:-} $R_SUB"
			done
		done
		for who in "${WHO[@]}"; do
			# shellcheck disable=SC2086 # word splitting of the lists is wanted
			RATE[$who,$kb,$conc]=$(median %.0f ${RATES[$who,$kb,$conc]:-})
			# shellcheck disable=SC2086
			CPU[$who,$kb,$conc]=$(median %.3f ${CPUS[$who,$kb,$conc]:-})
			# shellcheck disable=SC2086
			SUB[$who,$kb,$conc]=$(median %.0f ${SUBS[$who,$kb,$conc]:-})
		done
	done
done

echo
fmt='%6s %5s %6s %5s   %9s %11s   %9s %11s   %7s %7s\n'
# shellcheck disable=SC2059 # the format is ours
printf "$fmt" "" "" "" "" "mxrelayd" "" "postfix" "" "mx/pf" "pf/mx"
# shellcheck disable=SC2059
printf "$fmt" "size" "conc" "msgs" "runs" "msgs/s" "CPU s/1000" "msgs/s" "CPU s/1000" "msgs/s" "CPU"
printf -- '-%.0s' $(seq 91); echo
[ -n "$CSV" ] && echo "size_kb,concurrency,msgs,runs,mxrelayd_msgs_per_s,mxrelayd_cpu_s_per_1000,mxrelayd_submitted_msgs_per_s,postfix_msgs_per_s,postfix_cpu_s_per_1000,postfix_submitted_msgs_per_s,notes" >"$CSV"
FAILED=0
for row in "${ROWS[@]}"; do
	read -r kb conc msgs <<<"$row"
	mr=${RATE[mxrelayd,$kb,$conc]:--} mc=${CPU[mxrelayd,$kb,$conc]:--} ms=${SUB[mxrelayd,$kb,$conc]:--}
	pr=${RATE[postfix,$kb,$conc]:--} pc=${CPU[postfix,$kb,$conc]:--} ps=${SUB[postfix,$kb,$conc]:--}
	mn=${NOTE[mxrelayd,$kb,$conc]:-} pn=${NOTE[postfix,$kb,$conc]:-}
	[ -n "$mn$pn" ] && FAILED=1
	runs=$(repeat_for "$kb" "$conc")
	# shellcheck disable=SC2059
	printf "$fmt" "$kb KB" "$conc" "$msgs" "$runs" "$mr${mn:+ !}" "$mc" "$pr${pn:+ !}" "$pc" \
		"$(ratio "$mr" "$pr")" "$(ratio "$pc" "$mc")"
	[ -n "$CSV" ] && echo "$kb,$conc,$msgs,$runs,$mr,$mc,$ms,$pr,$pc,$ps,\"${mn:+mxrelayd: $mn }${pn:+postfix: $pn}\"" >>"$CSV"
done
echo
echo "msgs/s: messages delivered end to end per second (first submission to the sink's last receipt)."
echo "CPU s/1000: relay user+system CPU seconds per 1000 messages, all its processes and threads, over"
echo "the same window until its queue was empty. mx/pf: mxrelayd throughput over Postfix's. pf/mx:"
echo "Postfix CPU per message over mxrelayd's. runs: per relay (medians shown). '!': a run failed (see"
echo "above and below); failed runs are not in the medians. Every counted run delivered all messages"
echo "exactly once and passed the content check. 'submitted' in the run lines: smtp-source's own rate."
STEAL=$(steal_pct "$STAT0" "$(head -1 /proc/stat)")
echo "CPU steal time during the benchmark: $STEAL% of all CPU time (a busy host makes every figure noisy:"
echo "compare the two relays within one run; --repeat 5 steadies the medians)."

if [ "${#PROBLEM_FILES[@]}" -gt 0 ]; then
	echo
	echo "problems (first relay log lines of each failed run):"
	for pf in "${PROBLEM_FILES[@]}"; do
		read -r who kb conc rep probs relaylog <<<"$pf"
		echo "  $who $kb KB c$conc run $rep: ${NOTE[$who,$kb,$conc]}"
		if [ "$probs" != "-" ] && [ -s "$probs" ]; then
			head -5 "$probs" | cut -c1-300 | sed 's/^/    /'
		elif [ -s "$relaylog" ]; then
			tail -5 "$relaylog" | cut -c1-300 | sed 's/^/    /'
		fi
	done
	[ "$KEEP" = 1 ] || echo "  (use --keep to keep the full logs: $WORK is removed on exit)"
fi

TARGET_RC=0
if want_mx && want_pf; then
	mr=${RATE[mxrelayd,1,50]:--} pr=${RATE[postfix,1,50]:--}
	mc=${CPU[mxrelayd,1,50]:--} pc=${CPU[postfix,1,50]:--}
	if [ "$mr" != "-" ] && [ "$pr" != "-" ]; then
		r=$(ratio "$mr" "$pr") c=$(ratio "$pc" "$mc")
		verdict=PASS
		awk -v r="$r" -v c="$c" 'BEGIN { exit !(r >= 3 && c >= 3) }' || { verdict=FAIL; TARGET_RC=1; }
		echo
		echo "target at 1 KB, concurrency 50: end to end >= 3x Postfix and CPU per message <= 1/3 of Postfix's:"
		echo "  msgs/s $mr / $pr = ${r}x; CPU s/1000 $mc vs $pc = 1/${c} -> $verdict"
	elif [[ ",$SIZES," == *,1,* ]] && [[ ",$CONCS," == *,50,* ]]; then
		echo
		echo "target at 1 KB, concurrency 50: no valid runs for both relays -> FAIL"
		TARGET_RC=1
	fi
fi

[ "$FAILED" = 1 ] && exit 1
[ "$STRICT" = 1 ] && [ "$TARGET_RC" = 1 ] && exit 1
exit 0
