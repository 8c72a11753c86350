#!/usr/bin/env bash
# bench-e2e.sh: end-to-end delivery benchmark, mxrelayd against Postfix (+ OpenDKIM when signing)
# on the same machine.
#
#   smtp-source --SMTP--> relay (mxrelayd | Postfix [+ OpenDKIM milter]) --static route--> smtp-sink
#
# The main table: a static route to one smtp-sink on 127.0.0.2:25 (mxrelayd: route; Postfix:
# transport_maps to [127.0.0.2]:25), so DNS plays no part. For every message size, concurrency and
# DKIM mode (none, ed25519, rsa) each relay is started fresh in a temporary directory on disk
# together with a fresh smtp-sink, warmed up (warm-up mail delivered and the queue empty), then fed
# MSGS messages by Postfix's smtp-source (one SMTP session per message, one recipient
# rcpt@bench.test, From sender@example.com). The clock runs from the start of the submission until
# the sink has received all MSGS messages (we poll its counter); the relay's CPU (all its processes
# and threads, from a cgroup; for Postfix that includes OpenDKIM) is taken over the same window,
# extended until the relay's queue is empty (its last bookkeeping: removing the delivered
# messages). We print end-to-end messages/s and relay CPU seconds per 1000 messages for both,
# medians of --repeat runs (the relays alternate who goes first).
#
# A run only counts when everything arrived: the sink received exactly warm-up + MSGS messages (no
# loss, no duplicate), smtp-source had no error, the relay's queue ended empty, the relay logged
# exactly that many successful deliveries and no deferral, bounce or error, and one check message
# sent through the relay after the measured window (at the run's size, with dot-stuffed lines,
# an empty line and a 900-octet line) arrived once at a second sink (check.bench.test, on
# 127.0.0.3:25, which writes it to a file) with its envelope and its body octet for octet and, in
# a signed run, with one DKIM signature of the run's algorithm, relaxed/relaxed, by example.com,
# that python3-dkim verifies.
#
# What is compared, and why it is fair:
#  - Same path and same peers for both: the same smtp-source load, the same kind of sink, the same
#    route. Intake is durable on both (Postfix fsyncs each queue file; mxrelayd commits to SQLite
#    with synchronous=FULL, group commit) and both data directories are on disk (tmpfs refused).
#  - Postfix is a private instance (own config and queue in the work directory, no chroot) with the
#    queue manager ON, delivering with its smtp client. Everything else is Postfix's default, in
#    particular in_flow_delay = 1s (its intake/delivery flow control) and the on-demand connection
#    cache (smtp_connection_cache_on_demand = yes: a session to a destination with a backlog is kept
#    for the next message, 2 s idle). mxrelayd keeps an idle connection 5 s and reuses it (its
#    default). Postfix tried with more sessions per destination and with in_flow_delay = 0 did not
#    deliver more (README, "Benchmark"): as shipped is Postfix at its best here.
#  - Concurrency towards the destination: 20 for both, starting at 5 and growing on success: these
#    are both relays' defaults (Postfix initial_destination_concurrency 5,
#    default_destination_concurrency_limit 20; mxrelayd domain_concurrency_start 5,
#    domain_concurrency 20), stated explicitly. Total outgoing connections: 100 for both (Postfix
#    smtp maxproc 100, mxrelayd delivery_concurrency 100). Recipients per transaction: 50 for both
#    (default_destination_recipient_limit, rcpts_per_transaction; with one recipient per message it
#    does not come into play).
#  - DKIM: both sign every message (From example.com) with the same key type, rsa-sha256 (2048
#    bits) or ed25519-sha256, relaxed/relaxed, the same signed and oversigned header fields.
#    mxrelayd signs on its worker threads; Postfix through the Debian opendkim milter
#    (milter_default_action = tempfail), whose CPU counts for Postfix. Both use libopendkim 2.11
#    underneath. The milter listens on a unix socket, as in Debian's opendkim.conf: on a TCP
#    socket on loopback (--milter inet) Postfix + OpenDKIM is slower at low concurrency (Nagle's
#    algorithm and delayed ACKs meet libmilter's small writes; see relays.sh).
#  - TLS: opportunistic on both (Postfix smtp_tls_security_level = may with its tlsmgr; mxrelayd
#    always tries STARTTLS when offered). smtp-sink offers no STARTTLS, so both send in plaintext.
#  - --route mx, the older setup: the relays look up the MX of bench.test through a private nsd.
#    mxrelayd asks nsd through dns_servers = 127.0.0.1:53; Postfix through the system resolver
#    (/etc/resolv.conf bind-mounted to "nameserver 127.0.0.1" in a private mount namespace).
#    Postfix has no DNS cache and asks for every delivery (mxrelayd caches by TTL). nsd's response
#    rate limiting (200 answers/s per client /24 by default) is switched off (rrl-ratelimit: 0):
#    with it, nsd dropped Postfix's queries past 200/s, every smtp client waiting for an answer sat
#    out the stub resolver's 2 s timeout, and Postfix delivered 143-165 msgs/s, mostly idle.
#  - Both log every session and delivery to a file in the work directory (Postfix through postlogd,
#    mxrelayd on stderr); that CPU counts on both sides.
#  - Isolation: the whole benchmark runs in a private network namespace (only 'lo') and mount
#    namespace: no packet can leave the machine, whatever a component resolves or connects to.
#  - Load generator and sinks run on the same 2 CPUs and are not counted for either relay; they
#    compete with the relay equally for both. smtp-sink is one process: were it the limit, the
#    ratio would understate the faster relay.
#  - Each run's line also shows the submission rate (smtp-source's own clock): when it equals the
#    delivered rate, delivery kept up and the relay's intake was the limit; when it is higher, the
#    relay queued mail faster than it delivered it.
#  - --baseline PATH adds another mxrelayd binary (e.g. the code before a change) to the same run,
#    alternating with the others, so before/after figures come from one run.
#
# Usage: test/bench/bench-e2e.sh [--quick] [--sizes 1,10,100] [--conc 10,50] [--dkim LIST] [options]
set -euo pipefail
export LC_ALL=C           # '.' in $EPOCHREALTIME and in awk's numbers

PROG=${0##*/}
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=test/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=test/bench/relays.sh
. "$(dirname "${BASH_SOURCE[0]}")/relays.sh"

SIZES="1,10,100"          # KB of message payload (smtp-source -l)
CONCS="10,50"             # parallel submission sessions (smtp-source -s)
DKIMS="none,ed25519,rsa"  # DKIM modes
ROUTE=static              # static | mx
MSGS_OVERRIDE=""
REPEAT=""                 # runs per cell (default: 3 for the target cells, 1 for the others)
MX_EXTRA=()               # --mx-set 'key = value': extra global lines for mxrelayd's config
PF_EXTRA=()               # --pf-set 'key = value': extra main.cf lines for Postfix
CPU_FROM=auto
ONLY="both"
MXRELAYD="${MXRELAYD:-$SRC_DIR/build/mta/mxrelayd}"
BASELINE=""
WORK_PARENT="${TMPDIR:-/var/tmp}"
KEEP=0
STRICT=0
CSV=""
ALLOW_TMPFS=0
STALL=30                  # seconds without progress before a run is declared stuck
DNS_PORT=53
SINK_ADDR=127.0.0.2       # bench.test: the measured sink
CHECK_ADDR=127.0.0.3      # check.bench.test: the content-check sink

usage() {
	cat <<USAGE
Usage: $PROG [options]

End to end: smtp-source -> relay -> smtp-sink through a static route (no DNS), for mxrelayd and
for a private Postfix relay (with an OpenDKIM milter when signing). Prints delivered messages/s
and relay CPU seconds per 1000 messages for both, and checks the DKIM targets at 1 KB c50. Run as
root; everything runs in private network and mount namespaces.

  --quick             only 1 KB at concurrency 50 (the target cells), every DKIM mode
  --sizes LIST        message payload sizes in KB, comma-separated (default $SIZES)
  --conc LIST         submission concurrencies, comma-separated (default $CONCS)
  --dkim LIST         DKIM modes none, ed25519, rsa, comma-separated (default $DKIMS)
  --route WHICH       static (default: a static route to the sink) or mx (MX lookup via nsd)
  --milter WHERE      OpenDKIM's socket: unix (default, Debian's) or inet (127.0.0.1)
  --msgs N            messages per measured run (default: by size and concurrency)
  --repeat N          runs per cell and relay, alternating the relays; the table shows medians
                      (default: 3 for 1 KB c50, the target cells, and 1 for the other cells)
  --only WHICH        mxrelayd | postfix | both (default both)
  --mxrelayd PATH     daemon binary (default \$MXRELAYD or build/mta/mxrelayd)
  --baseline PATH     also run this mxrelayd binary (e.g. built before a change), alternating
  --workdir DIR       parent of the temporary work directory (default \$TMPDIR or /var/tmp);
                      must be a disk filesystem: durability has to be real
  --csv FILE          also write the results as CSV
  --strict            exit 1 unless every target checked at 1 KB c50 is met
  --stall SECS        declare a run stuck after SECS without a delivery (default $STALL)
  --mx-set 'K = V'    add a global line to mxrelayd's configuration (repeatable)
  --pf-set 'K = V'    add a line to Postfix's main.cf (repeatable)
  --cpu-from WHERE    auto (cgroup v2, else v1 cpuacct, else /proc) or proc (/proc only)
  --keep              keep the work directory (configs, logs, queues, dumps) for inspection
  --allow-tmpfs       allow a tmpfs work directory (numbers then say nothing about fsync)
  -h, --help          this text
USAGE
}

ARGS=("$@")
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) SIZES="1"; CONCS="50" ;;
	--sizes) SIZES="${2:?--sizes needs a value}"; shift ;;
	--conc) CONCS="${2:?--conc needs a value}"; shift ;;
	--dkim) DKIMS="${2:?--dkim needs a value}"; shift ;;
	--route) ROUTE="${2:?--route needs a value}"; shift ;;
	--milter) OD_SOCKET="${2:?--milter needs a value}"; shift ;;
	--msgs) MSGS_OVERRIDE="${2:?--msgs needs a value}"; shift ;;
	--repeat) REPEAT="${2:?--repeat needs a value}"; shift ;;
	--only) ONLY="${2:?--only needs a value}"; shift ;;
	--mxrelayd) MXRELAYD="${2:?--mxrelayd needs a value}"; shift ;;
	--baseline) BASELINE="${2:?--baseline needs a value}"; shift ;;
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
case "$ROUTE" in static|mx) ;; *) die "--route: static or mx" ;; esac
case "$OD_SOCKET" in unix|inet) ;; *) die "--milter: unix or inet" ;; esac
SIGNING=0
for v in ${DKIMS//,/ }; do
	case "$v" in none) ;; ed25519|rsa) SIGNING=1 ;; *) die "--dkim: none, ed25519 or rsa, not '$v'" ;; esac
done
for v in ${SIZES//,/ } ${CONCS//,/ } $MSGS_OVERRIDE $REPEAT $STALL; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: $v"
done
want_mx() { [ "$ONLY" != postfix ]; }
want_pf() { [ "$ONLY" != mxrelayd ]; }

[ "$(id -u)" = 0 ] || die "run as root (Postfix, the sinks on port 25 and the cgroups need it)"

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
OPENDKIM=$(command -v opendkim || echo /usr/sbin/opendkim)
[ -x "$SMTP_SOURCE" ] && [ -x "$SMTP_SINK" ] || die "smtp-source/smtp-sink not found (apt-get install postfix)"
if [ "$ROUTE" = mx ]; then
	[ -x "$NSD" ] || die "nsd not found (apt-get install nsd)"
	command -v dig >/dev/null || die "dig not found (apt-get install dnsutils)"
fi
if want_pf; then
	[ -x "$POSTFIX" ] && [ -x "$POSTCONF" ] || die "postfix not found (apt-get install postfix)"
	[ "$SIGNING" = 0 ] || [ -x "$OPENDKIM" ] || die "opendkim not found (apt-get install opendkim)"
fi
if [ "$SIGNING" = 1 ]; then
	/usr/bin/python3 -c 'import dkim' 2>/dev/null || die "python3-dkim not found (apt-get install python3-dkim): it checks the signatures"
fi
if want_mx; then
	[ -x "$MXRELAYD" ] || die "mxrelayd not found at $MXRELAYD (build it: cmake -B build && cmake --build build -j2; or --only postfix)"
	[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || die "--baseline: no executable at $BASELINE"
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
	nsd_conf "$d/nsd.conf" "$d" "$DNS_PORT" bench.test "$d/bench.test.zone"
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
# With the static route nothing listens on port 53: a lookup anyone still made would fail at once.
RESOLV_BOUND=0
resolver_setup() {
	printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' >"$WORK/resolv.conf"
	chmod 644 "$WORK/resolv.conf"
	mount --bind "$WORK/resolv.conf" /etc/resolv.conf || die "cannot bind-mount a resolv.conf in the private mount namespace"
	RESOLV_BOUND=1
	[ "$ROUTE" = mx ] || return 0
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

# ---- per-relay dispatch ------------------------------------------------------------------------
# who: mxrelayd, baseline (the --baseline binary, an mxrelayd too) or postfix; DKIM: the run's mode
relay_start() {
	case "$1" in
	mxrelayd) mx_start "$MXRELAYD" "$2" ;;
	baseline) mx_start "$BASELINE" "$2" ;;
	postfix) pf_start "$2" ;;
	esac
}
is_mx() { [ "$1" != postfix ]; }
relay_stop() { if is_mx "$1"; then mx_stop; else pf_stop; fi; }
relay_port() { if is_mx "$1"; then echo "$MX_PORT"; else echo "$PF_PORT"; fi; }
relay_cg() { if is_mx "$1"; then echo "$MX_CG"; else echo "$PF_CG"; fi; }
relay_pid() { if is_mx "$1"; then echo "$MX_PID"; else pf_master_pid; fi; }
relay_queued() { if is_mx "$1"; then mx_queued; else pf_queued; fi; }
relay_problems() { if is_mx "$1"; then mx_problems; else pf_problems; fi; }
relay_log() { if is_mx "$1"; then echo "$MX_DIR/mxrelayd.log"; else echo "$PF_DIR/maillog"; fi; }
# successful deliveries the relay logged (to any destination)
relay_sent() {
	if is_mx "$1"; then
		mx_log_count 'event=delivery .*status=sent'
	else
		pf_log_count 'postfix/smtp\[[0-9]+\]: .*status=sent'
	fi
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

# content_check WHO KB TOKENPREFIX DKIM: send one check message through the relay; prints a problem
# (empty when the message arrived once, with the right envelope and an identical body, and signed
# as DKIM says)
content_check() {
	local who=$1 kb=$2 token=$3 dkim=$4 port f dumps d p
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
	if [ "$dkim" != none ]; then
		# the sink's own X- fields come first: strip them, they would not be signed anyway
		awk 'h || !/^X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args):/ { h = 1; print }' "$d" >"$f.signed"
		p=$(dkim_check "$f.signed" "$dkim" "$KEYS")
		[ -n "$p" ] && { echo "check message: $p"; return; }
	elif grep -qi '^DKIM-Signature:' "$d"; then
		echo "check message signed in an unsigned run"
		return
	fi
	rm -f "$f" "$f.out" "$f.got" "$f.want" "$f.signed"
}

# measure WHO KB CONC MSGS REP DKIM: sets R_RATE (delivered msgs/s), R_CPU (CPU s/1000), R_SUB
# (submitted msgs/s, smtp-source's own wall clock), R_NOTE (why the run does not count), R_PROBS
# (file with the relay's log lines about trouble)
measure() {
	local who=$1 kb=$2 conc=$3 msgs=$4 rep=$5 dkim=$6
	local bytes=$((kb * 1024)) port cg pid warm out t0 t1 tend c0 c1 left expect sent p n
	warm=$((conc * 4)); [ "$warm" -lt 100 ] && warm=100
	expect=$((warm + msgs))
	R_RATE="-" R_CPU="-" R_SUB="-" R_BUSY="-" R_NOTE="" R_PROBS=""
	out="$WORK/$who-$dkim-${kb}k-c$conc-r$rep"
	sync
	sink_start "$out.sink"
	relay_start "$who" "$dkim"
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
		read -r b0 </proc/stat
		load_start "$port" "$conc" "$msgs" "$bytes" "$out"
		if wait_delivered "$expect"; then
			t1=$T_DONE
			read -r b1 </proc/stat
			# how busy the whole machine was until the last delivery (everyone's processes)
			R_BUSY=$(busy_pct "$b0" "$b1")
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
			p=$(content_check "$who" "$kb" "$who-$dkim-${kb}k-c$conc-r$rep-$RANDOM$RANDOM" "$dkim")
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

# ---- set up: work directory, cgroups, DNS, sinks, keys, teardown on any exit ----------------------
WORK=$(mktemp -d "$WORK_PARENT/mxrelay-e2e.XXXXXX")
chmod 755 "$WORK"       # Postfix daemons run as 'postfix', mxrelayd and the sinks as other users
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkfifo "$WORK/tick"
exec {TICK_FD}<>"$WORK/tick"
# snapshot BINARY NAME: measure a copy, so that a rebuild of build/ during the run cannot swap it
snapshot() {
	mkdir -p "$WORK/bin"
	cp "$1" "$WORK/bin/$2"
	if ldd "$1" 2>/dev/null | grep -Eq 'lib(a|ub|t)san'; then
		note "warning: $1 is built with sanitizers; its figures mean little"
	fi
	echo "$WORK/bin/$2"
}
if want_mx; then
	MXRELAYD_ORIG=$MXRELAYD MXRELAYD=$(snapshot "$MXRELAYD" mxrelayd)
	[ -n "$BASELINE" ] && BASELINE_ORIG=$BASELINE BASELINE=$(snapshot "$BASELINE" baseline)
fi
KEYS="$WORK/keys"
[ "$SIGNING" = 1 ] && dkim_keys "$KEYS"
cg_init
[ "$ROUTE" = mx ] && nsd_start
resolver_setup
check_sink_start

# ---- main ------------------------------------------------------------------------------------
RELAYS=""
want_mx && RELAYS="mxrelayd ($MXRELAYD_ORIG, sha256 $(sha256sum "$MXRELAYD" | cut -c1-12))"
want_mx && [ -n "$BASELINE" ] &&
	RELAYS="$RELAYS, baseline ($BASELINE_ORIG, sha256 $(sha256sum "$BASELINE" | cut -c1-12))"
if want_pf; then
	PF_VERSION=$("$POSTCONF" -c "$WORK" -d -h mail_version 2>/dev/null || echo "?")
	RELAYS="${RELAYS:+$RELAYS, }postfix $PF_VERSION (private instance, qmgr on, smtp client)"
	[ "$SIGNING" = 1 ] && RELAYS="$RELAYS + $("$OPENDKIM" -V 2>/dev/null | head -1 | sed 's/^opendkim: //') milter ($OD_SOCKET socket)"
fi
case "$CG_MODE" in
v2|v1) CPU_HOW="cgroup $CG_MODE" ;;
*) CPU_HOW="/proc process trees ($([ "$CPU_FROM" = proc ] && echo "--cpu-from proc" || echo "no writable cgroup"))" ;;
esac

echo "mxrelay end-to-end benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr), work dir on $FSTYPE ($WORK_PARENT)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (load average at the start)"
echo "relays:  $RELAYS"
if [ "$ROUTE" = static ]; then
	echo "path:    smtp-source -> relay -> static route (no DNS) -> smtp-sink $SINK_ADDR:25"
else
	echo "path:    smtp-source -> relay -> MX bench.test via nsd (127.0.0.1:$DNS_PORT) -> smtp-sink $SINK_ADDR:25"
fi
echo "DKIM:    $DKIMS (none: unsigned; ed25519/rsa: mxrelayd signs itself, Postfix through OpenDKIM)"
echo "load:    one session per message, 1 recipient; fresh relay and sink per run, warm-up delivered"
echo "         first; per destination 5 -> 20 sessions for both; relays alternate; medians"
echo "CPU:     $CPU_HOW; network: private namespace, loopback only"
echo

WHO=()
want_mx && WHO+=(mxrelayd)
want_mx && [ -n "$BASELINE" ] && WHO+=(baseline)
want_pf && WHO+=(postfix)

declare -A RATES CPUS SUBS NOTE RATE CPU SUB
ROWS=()
PROBLEM_FILES=()
STAT0=$(head -1 /proc/stat)
for kb in ${SIZES//,/ }; do
	for conc in ${CONCS//,/ }; do
		msgs=$(msgs_for "$kb" "$conc")
		reps=$(repeat_for "$kb" "$conc")
		for dkim in ${DKIMS//,/ }; do ROWS+=("$kb $conc $dkim $msgs"); done
		for rep in $(seq "$reps"); do
			# rotate who goes first, so slow drifts of the machine hit every relay alike
			order=("${WHO[@]}")
			for _ in $(seq $(((rep - 1) % ${#WHO[@]}))); do order=("${order[@]:1}" "${order[0]}"); done
			for dkim in ${DKIMS//,/ }; do
				for who in "${order[@]}"; do
					k="$who,$kb,$conc,$dkim"
					printf '  %-9s %-7s %3s KB  c%-3s %5s msgs  run %s/%s: ' "$who" "$dkim" "$kb" "$conc" "$msgs" "$rep" "$reps" >&2
					measure "$who" "$kb" "$conc" "$msgs" "$rep" "$dkim"
					printf '%6s msgs/s delivered %7s CPU s/1000  (submitted %s msgs/s, CPUs %s%% busy)%s\n' \
						"$R_RATE" "$R_CPU" "$R_SUB" "$R_BUSY" "${R_NOTE:+  !! $R_NOTE}" >&2
					if [ -n "$R_NOTE" ]; then
						NOTE[$k]="${NOTE[$k]:-}${NOTE[$k]:+; }$R_NOTE"
						PROBLEM_FILES+=("$who $dkim $kb $conc $rep ${R_PROBS:--} $WORK/$who-$dkim-${kb}k-c$conc-r$rep.relay.log")
					fi
					# a run with any error does not count
					{ [ "$R_RATE" = "-" ] || [ -n "$R_NOTE" ]; } && continue
					RATES[$k]="${RATES[$k]:-} $R_RATE"
					CPUS[$k]="${CPUS[$k]:-} $R_CPU"
					SUBS[$k]="${SUBS[$k]:-} $R_SUB"
				done
			done
		done
		for who in "${WHO[@]}"; do
			for dkim in ${DKIMS//,/ }; do
				k="$who,$kb,$conc,$dkim"
				# shellcheck disable=SC2086 # word splitting of the lists is wanted
				RATE[$k]=$(median %.0f ${RATES[$k]:-})
				# shellcheck disable=SC2086
				CPU[$k]=$(median %.3f ${CPUS[$k]:-})
				# shellcheck disable=SC2086
				SUB[$k]=$(median %.0f ${SUBS[$k]:-})
			done
		done
	done
done

echo
fmt='%6s %4s %-7s %5s %4s   %8s %10s   %8s %10s   %6s %6s\n'
# shellcheck disable=SC2059 # the format is ours
printf "$fmt" "" "" "" "" "" "mxrelayd" "" "postfix" "" "mx/pf" "pf/mx"
# shellcheck disable=SC2059
printf "$fmt" "size" "conc" "DKIM" "msgs" "runs" "msgs/s" "CPU s/1000" "msgs/s" "CPU s/1000" "msgs/s" "CPU"
printf -- '-%.0s' $(seq 89); echo
[ -n "$CSV" ] && echo "size_kb,concurrency,dkim,msgs,runs,relay,msgs_per_s,cpu_s_per_1000,submitted_msgs_per_s,notes" >"$CSV"
FAILED=0
for row in "${ROWS[@]}"; do
	read -r kb conc dkim msgs <<<"$row"
	c="$kb,$conc,$dkim"
	mr=${RATE[mxrelayd,$c]:--} mc=${CPU[mxrelayd,$c]:--}
	pr=${RATE[postfix,$c]:--} pc=${CPU[postfix,$c]:--}
	mn=${NOTE[mxrelayd,$c]:-} pn=${NOTE[postfix,$c]:-}
	runs=$(repeat_for "$kb" "$conc")
	# shellcheck disable=SC2059
	printf "$fmt" "$kb KB" "$conc" "$dkim" "$msgs" "$runs" "$mr${mn:+ !}" "$mc" "$pr${pn:+ !}" "$pc" \
		"$(ratio "$mr" "$pr")" "$(ratio "$pc" "$mc")"
	for who in "${WHO[@]}"; do
		[ -n "${NOTE[$who,$c]:-}" ] && FAILED=1
		[ -n "$CSV" ] && echo "$kb,$conc,$dkim,$msgs,$runs,$who,${RATE[$who,$c]:--},${CPU[$who,$c]:--},${SUB[$who,$c]:--},\"${NOTE[$who,$c]:-}\"" >>"$CSV"
	done
done
echo
echo "msgs/s: messages delivered end to end per second (first submission to the sink's last receipt)."
echo "CPU s/1000: relay user+system CPU seconds per 1000 messages, all its processes and threads (for"
echo "Postfix with OpenDKIM), over the same window until its queue was empty. mx/pf: mxrelayd"
echo "throughput over Postfix's. pf/mx: Postfix CPU per message over mxrelayd's. runs: per relay"
echo "(medians shown). '!': a run failed (see above and below); failed runs are not in the medians."
echo "Every counted run delivered all messages exactly once and passed the content check (and, when"
echo "signing, python3-dkim verified the check message's signature). 'submitted' in the run lines:"
echo "smtp-source's own rate; 'CPUs busy': the whole machine (all users) from the first submission"
echo "to the last delivery: near 100% means the run was CPU-bound."

if [ -n "$BASELINE" ] && want_mx; then
	echo
	echo "baseline ($BASELINE_ORIG) against mxrelayd, same run:"
	printf "$fmt" "size" "conc" "DKIM" "msgs" "runs" "mxrelayd" "CPU s/1000" "baseline" "CPU s/1000" "mx/bl" "bl/mx"
	for row in "${ROWS[@]}"; do
		read -r kb conc dkim msgs <<<"$row"
		c="$kb,$conc,$dkim"
		# shellcheck disable=SC2059
		printf "$fmt" "$kb KB" "$conc" "$dkim" "$msgs" "$(repeat_for "$kb" "$conc")" \
			"${RATE[mxrelayd,$c]:--}" "${CPU[mxrelayd,$c]:--}" "${RATE[baseline,$c]:--}" "${CPU[baseline,$c]:--}" \
			"$(ratio "${RATE[mxrelayd,$c]:--}" "${RATE[baseline,$c]:--}")" "$(ratio "${CPU[baseline,$c]:--}" "${CPU[mxrelayd,$c]:--}")"
	done
fi
STEAL=$(steal_pct "$STAT0" "$(head -1 /proc/stat)")
echo "CPU steal time during the benchmark: $STEAL% of all CPU time; load average at the end:"
echo "$(cut -d' ' -f1-3 /proc/loadavg) (a busy host makes every figure noisy: compare the relays within"
echo "one run; --repeat 5 steadies the medians)."

if [ "${#PROBLEM_FILES[@]}" -gt 0 ]; then
	echo
	echo "problems (first relay log lines of each failed run):"
	for pf in "${PROBLEM_FILES[@]}"; do
		read -r who dkim kb conc rep probs relaylog <<<"$pf"
		echo "  $who $dkim $kb KB c$conc run $rep: ${NOTE[$who,$kb,$conc,$dkim]}"
		if [ "$probs" != "-" ] && [ -s "$probs" ]; then
			head -5 "$probs" | cut -c1-300 | sed 's/^/    /'
		elif [ -s "$relaylog" ]; then
			tail -5 "$relaylog" | cut -c1-300 | sed 's/^/    /'
		fi
	done
	[ "$KEEP" = 1 ] || echo "  (use --keep to keep the full logs: $WORK is removed on exit)"
fi

# ---- targets (issue 10), at 1 KB and concurrency 50 ----------------------------------------------
TARGET_RC=0
# target TEXT AWK-CONDITION A B: one line with PASS/FAIL; "-" figures make it FAIL
target() {
	local text=$1 cond=$2 a=$3 b=$4 verdict=FAIL
	if [ "$a" != "-" ] && [ "$b" != "-" ] && awk -v a="$a" -v b="$b" "BEGIN { exit !($cond) }"; then
		verdict=PASS
	else
		TARGET_RC=1
	fi
	printf '  %-62s %s\n' "$text" "$verdict"
}
have() { [[ ",$SIZES," == *,1,* ]] && [[ ",$CONCS," == *,50,* ]] && [[ ",$DKIMS," == *,$1,* ]]; }
if want_mx && have none && { have ed25519 || have rsa; }; then
	echo
	echo "targets at 1 KB, concurrency 50:"
	mn=${RATE[mxrelayd,1,50,none]:--} mcn=${CPU[mxrelayd,1,50,none]:--}
	if have ed25519; then
		me=${RATE[mxrelayd,1,50,ed25519]:--}
		target "mxrelayd Ed25519 $me msgs/s >= 0.85 x unsigned $mn ($(ratio "$me" "$mn")x)" 'a >= 0.85 * b' "$me" "$mn"
	fi
	if have rsa; then
		mcr=${CPU[mxrelayd,1,50,rsa]:--}
		target "mxrelayd RSA CPU $mcr s/1000 <= unsigned $mcn + 0.6" 'a <= b + 0.6' "$mcr" "$mcn"
	fi
fi
if want_mx && want_pf; then
	for dkim in rsa ed25519; do
		have "$dkim" || continue
		want=4; [ "$dkim" = ed25519 ] && want=5
		m=${RATE[mxrelayd,1,50,$dkim]:--} p=${RATE[postfix,1,50,$dkim]:--}
		target "$dkim: mxrelayd $m msgs/s >= $want x Postfix+OpenDKIM $p ($(ratio "$m" "$p")x)" "a >= $want * b" "$m" "$p"
	done
fi

[ "$FAILED" = 1 ] && exit 1
[ "$STRICT" = 1 ] && [ "$TARGET_RC" = 1 ] && exit 1
exit 0
