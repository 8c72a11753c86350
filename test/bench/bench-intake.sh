#!/usr/bin/env bash
# bench-intake.sh: intake benchmark, mxrelayd against a Postfix relay on the same machine.
#
# For every (message size, concurrency) pair, each relay is started fresh in a temporary directory
# on disk, warmed up, then fed MSGS messages by Postfix's smtp-source (one SMTP session per message,
# one recipient, as devices and scripts send). We print messages accepted per second (wall clock of
# smtp-source) and relay CPU seconds per 1000 messages (user+system of every process and thread of
# the relay). Each cell is run --repeat times (default 3), the two relays alternating who goes
# first, and the table shows medians: on a shared VM single runs swing by +-50%.
#
# What is compared, and why it is fair:
#  - Both relays do intake only: accept over SMTP, store durably, answer 250. mxrelayd does not
#    deliver yet (once it does, pause its delivery with --mx-set so both stay intake-only). For
#    Postfix the queue manager (qmgr) is commented out of master.cf, so cleanup leaves each message
#    fsynced in queue/incoming and nothing touches it afterwards. Alternatives we rejected:
#    defer_transports (qmgr would still move every file to active/, have the bounce daemon write a
#    defer log and move it to deferred/: work mxrelayd does not do) and an access-table HOLD action
#    (same intake work, plus a table lookup and a log line per message). Side effects of "no qmgr":
#    nobody hands out in_flow_delay tokens, so in_flow_delay = 0 (otherwise each message would wait
#    1 s for a token); and cleanup logs "unable to look up public/qmgr" once per message, in place
#    of the "from=" line qmgr would log, so Postfix's log volume stays what it is in production.
#  - Durability is on for both: Postfix fsyncs each queue file before its 250 (its default, not
#    configurable away); mxrelayd commits to SQLite WAL with synchronous=FULL before its 250 (group
#    commit). Both data directories are in one work directory on disk (tmpfs is refused).
#  - Both are started fresh for every run (empty queue/spool, so no run inherits a bigger database,
#    WAL or queue directory from the one before) and get the same warm-up at the run's size and
#    concurrency (for Postfix: enough sessions to have its smtpd and cleanup processes forked).
#  - Both log every session to a file in the work directory (Postfix through postlogd, mxrelayd on
#    stderr); that CPU counts on both sides.
#  - No DNS: Postfix has smtpd_peername_lookup = no and an explicit myhostname; both relay for
#    127.0.0.0/8 to rcpt@example.com. By default the whole benchmark runs in a private network
#    namespace with only the loopback interface (unshare --net), so no packet can leave the
#    machine whatever a component tries to resolve or connect to.
#  - CPU: each relay runs in its own cgroup (v2 cpu.stat usage_usec, else v1 cpuacct.usage), so
#    processes that exit during the run (Postfix recycles smtpd and cleanup) still count. Fallback
#    without cgroups (or --cpu-from proc): /proc/PID/stat utime+stime+cutime+cstime of the main
#    process plus utime+stime of its live children (Postfix's master reaps all its daemons).
#    Sampled just before the load and 0.3 s after smtp-source exits (QUITs and logging finish).
#  - smtp-source runs on the same machine (2 CPUs here) and its CPU is not counted for either
#    side; it competes with the relay for the CPUs, equally for both.
#
# Usage: test/bench/bench-intake.sh [--quick] [--sizes 1,10,100] [--conc 1,10,50] [options]
set -euo pipefail

PROG=${0##*/}
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=test/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES="1,10,100"          # KB of message payload (smtp-source -l)
CONCS="1,10,50"           # parallel SMTP sessions (smtp-source -s)
MSGS_OVERRIDE=""
REPEAT=3                  # runs per cell; the table shows the medians
SINK=0                    # --sink: also measure smtp-sink, a relay that stores nothing
MX_EXTRA=()               # --mx-set 'key = value': extra global lines for mxrelayd's config
CPU_FROM=auto             # --cpu-from proc: ignore cgroups (to cross-check the accounting)
ONLY="both"
MXRELAYD="${MXRELAYD:-$SRC_DIR/build/mta/mxrelayd}"
WORK_PARENT="${TMPDIR:-/var/tmp}"
KEEP=0
USE_NETNS=1
STRICT=0
CSV=""
ALLOW_TMPFS=0

usage() {
	cat <<EOF
Usage: $PROG [options]

Drives mxrelayd and a private Postfix relay with smtp-source and prints accepted messages/s and
relay CPU seconds per 1000 messages for both. Run as root (Postfix needs it).

  --quick             only 1 KB at concurrency 50, both relays (the target check)
  --sizes LIST        message payload sizes in KB, comma-separated (default $SIZES)
  --conc LIST         concurrencies, comma-separated (default $CONCS)
  --msgs N            messages per measured run (default: by size and concurrency, ~2-10 s each)
  --repeat N          runs per size/concurrency and relay, alternating the relays; the table
                      shows medians (default $REPEAT)
  --only WHICH        mxrelayd | postfix | both (default both)
  --mxrelayd PATH     daemon binary (default \$MXRELAYD or build/mta/mxrelayd)
  --workdir DIR       parent of the temporary work directory (default \$TMPDIR or /var/tmp);
                      must be a disk filesystem: durability has to be real
  --csv FILE          also write the results as CSV
  --strict            exit 1 when mxrelayd < 3x Postfix msgs/s at 1 KB, concurrency 50
  --sink              add a column: the same load against Postfix's smtp-sink, which stores
                      nothing (one run per cell); a rough upper bound for smtp-source and the
                      loopback here (smtp-sink is one process: at 100 KB it is its own limit)
  --mx-set 'K = V'    add a global line to mxrelayd's configuration (repeatable); e.g. to keep
                      delivery paused once mxrelayd delivers, so both sides stay intake-only
  --cpu-from WHERE    auto (cgroup v2, else v1 cpuacct, else /proc) or proc (/proc only)
  --keep              keep the work directory (configs, logs, queues) for inspection
  --no-netns          do not run inside a private network namespace (loopback only either way)
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
	--keep) KEEP=1 ;;
	--sink) SINK=1 ;;
	--mx-set) MX_EXTRA+=("${2:?--mx-set needs a value}"); shift ;;
	--cpu-from) CPU_FROM="${2:?--cpu-from needs a value}"; shift ;;
	--no-netns) USE_NETNS=0 ;;
	--allow-tmpfs) ALLOW_TMPFS=1 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

case "$ONLY" in mxrelayd|postfix|both) ;; *) die "--only: mxrelayd, postfix or both" ;; esac
case "$CPU_FROM" in auto|proc) ;; *) die "--cpu-from: auto or proc" ;; esac
for v in ${SIZES//,/ } ${CONCS//,/ } $MSGS_OVERRIDE $REPEAT; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: $v"
done
want_mx() { [ "$ONLY" != postfix ]; }
want_pf() { [ "$ONLY" != mxrelayd ]; }

[ "$(id -u)" = 0 ] || die "run as root (Postfix's master and the cgroups need it)"

# ---- private network namespace: only 'lo' exists inside, nothing can leave the machine --------
if [ "$USE_NETNS" = 1 ] && [ -z "${MXBENCH_IN_NETNS:-}" ]; then
	if command -v unshare >/dev/null && unshare --net true 2>/dev/null; then
		export MXBENCH_IN_NETNS=1
		# CSV and work paths are resolved the same inside: only the network is private.
		exec unshare --net -- "$BASH" "$0" "${ARGS[@]}"
	fi
	note "unshare --net is not available; running in the host namespace (loopback only anyway)"
fi
if [ -n "${MXBENCH_IN_NETNS:-}" ]; then
	ip link set lo up || die "cannot bring up lo in the private network namespace"
fi

# ---- tools -----------------------------------------------------------------------------------
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
POSTCONF=$(command -v postconf || echo /usr/sbin/postconf)
[ -x "$SMTP_SOURCE" ] || die "smtp-source not found (apt-get install postfix)"
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$SMTP_SINK" ] || SINK=0
if want_pf; then
	[ -x "$POSTFIX" ] && [ -x "$POSTCONF" ] || die "postfix not found (apt-get install postfix)"
fi
if want_mx; then
	[ -x "$MXRELAYD" ] || die "mxrelayd not found at $MXRELAYD (build it: cmake -B build && cmake --build build -j2; or --only postfix)"
fi
HAVE_SQLITE=0; command -v sqlite3 >/dev/null && HAVE_SQLITE=1
CLK_TCK=$(getconf CLK_TCK)

# ---- work directory: on disk, durability has to be real ------------------------------------------
mkdir -p "$WORK_PARENT"
FSTYPE=$(stat -f -c %T "$WORK_PARENT")
if [ "$FSTYPE" = tmpfs ] || [ "$FSTYPE" = ramfs ]; then
	[ "$ALLOW_TMPFS" = 1 ] || die "$WORK_PARENT is $FSTYPE: fsync would be free; use --workdir on disk"
fi

# CPU accounting (one cgroup per relay run), ports, banners, queue counts, medians: lib.sh
WORK=""

# ---- Postfix: a private instance ---------------------------------------------------------------
PF_DIR="" PF_CG="" PF_PORT="" PF_RUNNING=0
PF_OWNER=$(getent passwd postfix >/dev/null && echo postfix || echo "")

pf_start() {
	pf_prepare "bench-intake.sh: an outbound relay for 127.0.0.0/8, intake only."
	cat >>"$PF_DIR/conf/main.cf" <<EOF
# Enough smtpd and cleanup processes for concurrency 50 (and 100).
default_process_limit = 200
# qmgr is off (intake only, see master.cf), so no flow-control tokens: do not wait for them.
in_flow_delay = 0s
# Log to a file in the work directory (postlogd's CPU counts, like mxrelayd's own logging).
maillog_file_prefixes = $PF_DIR
maillog_file = $PF_DIR/maillog
EOF
	cat >"$PF_DIR/conf/master.cf" <<EOF
# No chroot (Debian's default master.cf chroots smtpd and friends): a chroot would need copies of
# /etc files inside the queue directory and does not change the work done per message.
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_PORT inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
# Intake only: no queue manager, so accepted mail stays in queue/incoming, fsynced, untouched.
#qmgr     unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
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

# ---- mxrelayd ------------------------------------------------------------------------------------
MX_DIR="" MX_CG="" MX_PID="" MX_PORT=""
MX_USER=$(getent passwd mxrelay >/dev/null && echo mxrelay || echo nobody)

# Settings that only newer mxrelayd versions know: each is kept when 'mxrelayd -n' accepts it.
#  - dns_servers on a closed loopback port: the daemon now tries to deliver what it accepted; its
#    MX lookups must fail at once and locally (never reach a real resolver, even with --no-netns).
#    Its per-message delivery attempt is extra work Postfix does not do here (see the report).
MX_OPTIONAL=()
mx_probe_options() {
	local cand line dir="$WORK/probe"
	mkdir -p "$dir"
	cand=("dns_servers = 127.0.0.1:$(pick_port)")
	for line in "${cand[@]}"; do
		printf 'data_dir = %s\n%s\n' "$dir/data" "$line" >"$dir/probe.conf"
		"$MXRELAYD" -n -c "$dir/probe.conf" >/dev/null 2>&1 && MX_OPTIONAL+=("$line")
	done
	rm -rf "$dir"
}

# delivery attempts mxrelayd logged during a run (0 when it does not deliver)
mx_deliveries() { grep -c 'event=delivery' "$MX_DIR/mxrelayd.log" 2>/dev/null || true; }

mx_start() {
	MX_DIR="$WORK/mxrelayd"
	rm -rf "$MX_DIR"
	mkdir -p "$MX_DIR/data"
	chmod 755 "$MX_DIR"
	chmod 700 "$MX_DIR/data"
	chown "$MX_USER" "$MX_DIR/data"
	MX_PORT=$(pick_port)
	cat >"$MX_DIR/mxrelay.conf" <<EOF
# mxrelayd for bench-intake.sh: relay for 127.0.0.0/8, plain SMTP, durable spool on disk.
hostname = mxbench.localdomain
data_dir = $MX_DIR/data
user = $MX_USER
relay_from = 127.0.0.0/8
max_connections = 1000
max_connections_per_ip = 200
log = stderr
$(printf '%s\n' "${MX_OPTIONAL[@]}" "${MX_EXTRA[@]}")

[listener bench]
address = 127.0.0.1:$MX_PORT
tls = none
EOF
	mx_launch "$MXRELAYD"
}


# ---- reference: smtp-sink stores nothing, so its rate is roughly what smtp-source and the loopback
# can do on this machine (smtp-sink is a single process, so at large sizes it is its own limit).
SINK_PID=""
sink_rate() {
	local kb=$1 conc=$2 msgs=$3 port elapsed out="$WORK/sink-${1}k-c$2"
	port=$(pick_port)
	"$SMTP_SINK" -u nobody "127.0.0.1:$port" 1000 >"$out.sink.log" 2>&1 &
	SINK_PID=$!
	if ! wait_banner "$port" 5; then
		kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
		echo "-"; return
	fi
	elapsed=$(smtp_load "$port" "$conc" "$msgs" $((kb * 1024)) "$out")
	kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
	if [ "$(cat "$out.rc")" != 0 ]; then echo "-"; return; fi
	awk -v m="$msgs" -v e="$elapsed" 'BEGIN { printf "%.0f\n", m / e }'
}

# ---- teardown --------------------------------------------------------------------------------
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$SINK_PID" ] && { kill "$SINK_PID" 2>/dev/null || true; }
	mx_stop
	pf_stop
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
# messages per measured run: ~2-10 s per run at the rates of a 2-core machine
msgs_for() {
	local kb=$1 conc=$2
	if [ -n "$MSGS_OVERRIDE" ]; then echo "$MSGS_OVERRIDE"; return; fi
	if [ "$kb" -ge 100 ]; then
		[ "$conc" -le 1 ] && echo 500 || echo 1000
	elif [ "$kb" -ge 10 ]; then
		[ "$conc" -le 1 ] && echo 1000 || echo 2000
	else
		[ "$conc" -le 1 ] && echo 1000 || echo 2000
	fi
}

# smtp_load PORT CONC MSGS BYTES OUTPREFIX: run smtp-source; prints elapsed seconds
smtp_load() {
	local port=$1 conc=$2 msgs=$3 bytes=$4 out=$5 t0 t1
	t0=$(date +%s.%N)
	"$SMTP_SOURCE" -c -s "$conc" -m "$msgs" -l "$bytes" -M bench.localdomain \
		-f sender@example.com -t rcpt@example.com "127.0.0.1:$port" >"$out.out" 2>"$out.err" \
		&& echo 0 >"$out.rc" || echo $? >"$out.rc"
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}

# RESULT fields set by measure(): R_RATE R_CPU R_NOTE
measure() {
	local who=$1 kb=$2 conc=$3 msgs=$4
	local bytes=$((kb * 1024)) port cg pid warm elapsed c0 c1 out counted rc queued expect
	warm=$((conc * 4)); [ "$warm" -lt 100 ] && warm=100
	R_RATE="-" R_CPU="-" R_NOTE=""
	sync
	case "$who" in
	mxrelayd) mx_start; port=$MX_PORT; cg=$MX_CG; pid=$MX_PID ;;
	postfix) pf_start; port=$PF_PORT; cg=$PF_CG; pid=$(pf_master_pid) ;;
	esac
	out="$WORK/$who-${kb}k-c$conc"
	smtp_load "$port" "$conc" "$warm" "$bytes" "$out.warmup" >/dev/null
	if [ "$(cat "$out.warmup.rc")" != 0 ]; then
		R_NOTE="warm-up failed: $(head -c 200 "$out.warmup.err")"
	else
		sync; sleep 0.5
		c0=$(cpu_usec "$cg" "$pid")
		elapsed=$(smtp_load "$port" "$conc" "$msgs" "$bytes" "$out")
		sleep 0.3   # let the relay finish the sessions' QUITs and logging
		c1=$(cpu_usec "$cg" "$pid")
		rc=$(cat "$out.rc")
		counted=$(tr '\r' '\n' <"$out.out" | grep -E '^[0-9]+$' | tail -1 || true)
		R_RATE=$(awk -v m="$msgs" -v e="$elapsed" 'BEGIN { printf "%.0f", m / e }')
		R_CPU=$(awk -v a="$c0" -v b="$c1" -v m="$msgs" 'BEGIN { printf "%.3f", (b - a) / 1e6 / m * 1000 }')
		if [ "$rc" != 0 ] || [ -s "$out.err" ]; then
			R_NOTE="smtp-source exit $rc: $(head -c 200 "$out.err" | tr '\n' ' ')"
		elif [ "${counted:-0}" != "$msgs" ]; then
			R_NOTE="smtp-source completed ${counted:-0} of $msgs DATA commands"
		fi
		case "$who" in
		mxrelayd) queued=$(mx_queued); MX_DELIVERY_ATTEMPTS=$((MX_DELIVERY_ATTEMPTS + $(mx_deliveries))) ;;
		postfix) queued=$(pf_queued) ;;
		esac
		expect=$((warm + msgs))
		if [ "$queued" != "?" ] && [ "$queued" != "$expect" ]; then
			R_NOTE="${R_NOTE:+$R_NOTE; }queue holds $queued messages, expected $expect"
		fi
	fi
	case "$who" in
	mxrelayd) mx_stop ;;
	postfix) pf_stop ;;
	esac
}

STAT0=$(head -1 /proc/stat)

# ---- set up: work directory, cgroup root, teardown on any exit ---------------------------------
WORK=$(mktemp -d "$WORK_PARENT/mxrelay-bench.XXXXXX")
chmod 755 "$WORK"       # Postfix daemons run as 'postfix', mxrelayd as its own user
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
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

MX_DELIVERY_ATTEMPTS=0
want_mx && mx_probe_options

# ---- main ------------------------------------------------------------------------------------
RELAYS=""
want_mx && RELAYS="mxrelayd ($MXRELAYD_ORIG)"
if want_pf; then
	PF_VERSION=$("$POSTCONF" -c "$WORK" -d -h mail_version 2>/dev/null || echo "?")
	RELAYS="${RELAYS:+$RELAYS, }postfix $PF_VERSION (private instance, qmgr off)"
fi
case "$CG_MODE" in
v2|v1) CPU_HOW="cgroup $CG_MODE" ;;
*) CPU_HOW="/proc process trees (no writable cgroup)" ;;
esac

echo "mxrelay intake benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "machine: $(nproc) CPUs, $(uname -sr), work dir on $FSTYPE ($WORK_PARENT)"
echo "relays:  $RELAYS"
echo "load:    smtp-source, one session per message, 1 recipient; fresh relay and warm-up before"
echo "         each run; $REPEAT run(s) per cell, relays alternating, medians in the table"
echo "CPU:     $CPU_HOW${MXBENCH_IN_NETNS:+; network: private namespace, loopback only}"
echo

WHO=()
want_mx && WHO+=(mxrelayd)
want_pf && WHO+=(postfix)

declare -A RATES CPUS NOTE RATE CPU SINKRATE
ROWS=()
for kb in ${SIZES//,/ }; do
	for conc in ${CONCS//,/ }; do
		msgs=$(msgs_for "$kb" "$conc")
		ROWS+=("$kb $conc $msgs")
		if [ "$SINK" = 1 ]; then
			printf '  %-9s %3s KB  c%-3s %5s msgs  reference (stores nothing): ' smtp-sink "$kb" "$conc" "$msgs" >&2
			SINKRATE[$kb,$conc]=$(sink_rate "$kb" "$conc" "$msgs")
			printf '%6s msgs/s\n' "${SINKRATE[$kb,$conc]}" >&2
		fi
		for rep in $(seq "$REPEAT"); do
			# alternate who goes first, so slow drifts of the machine hit both relays alike
			order=("${WHO[@]}")
			[ $((rep % 2)) = 0 ] && [ "${#WHO[@]}" = 2 ] && order=("${WHO[1]}" "${WHO[0]}")
			for who in "${order[@]}"; do
				printf '  %-9s %3s KB  c%-3s %5s msgs  run %s/%s: ' "$who" "$kb" "$conc" "$msgs" "$rep" "$REPEAT" >&2
				measure "$who" "$kb" "$conc" "$msgs"
				printf '%6s msgs/s %7s CPU s/1000%s\n' "$R_RATE" "$R_CPU" "${R_NOTE:+  !! $R_NOTE}" >&2
				if [ -n "$R_NOTE" ]; then
					NOTE[$who,$kb,$conc]="${NOTE[$who,$kb,$conc]:-}${NOTE[$who,$kb,$conc]:+; }$R_NOTE"
				fi
				# a run with errors does not count: smtp-source aborts at the first bad reply
				{ [ "$R_RATE" = "-" ] || [ -n "$R_NOTE" ]; } && continue
				RATES[$who,$kb,$conc]="${RATES[$who,$kb,$conc]:-} $R_RATE"
				CPUS[$who,$kb,$conc]="${CPUS[$who,$kb,$conc]:-} $R_CPU"
			done
		done
		for who in "${WHO[@]}"; do
			# shellcheck disable=SC2086 # word splitting of the lists is wanted
			RATE[$who,$kb,$conc]=$(median %.0f ${RATES[$who,$kb,$conc]:-})
			# shellcheck disable=SC2086
			CPU[$who,$kb,$conc]=$(median %.3f ${CPUS[$who,$kb,$conc]:-})
		done
	done
done

echo
fmt='%6s %5s %6s   %9s %11s   %9s %11s   %7s %7s'
width=87
[ "$SINK" = 1 ] && { fmt+='   %9s'; width=99; }
fmt+='\n'
row_out() {   # row_out COLUMNS... SINK_COLUMN
	local args=("$@")
	[ "$SINK" = 1 ] || unset 'args[${#args[@]}-1]'
	# shellcheck disable=SC2059 # the format is ours
	printf "$fmt" "${args[@]}"
}
row_out "" "" "" "mxrelayd" "" "postfix" "" "mx/pf" "pf/mx" "smtp-sink"
row_out "size" "conc" "msgs" "msgs/s" "CPU s/1000" "msgs/s" "CPU s/1000" "msgs/s" "CPU" "msgs/s"
printf -- '-%.0s' $(seq "$width"); echo
[ -n "$CSV" ] && echo "size_kb,concurrency,msgs,mxrelayd_msgs_per_s,mxrelayd_cpu_s_per_1000,postfix_msgs_per_s,postfix_cpu_s_per_1000,smtp_sink_msgs_per_s,notes" >"$CSV"
FAILED=0
for row in "${ROWS[@]}"; do
	read -r kb conc msgs <<<"$row"
	mr=${RATE[mxrelayd,$kb,$conc]:--} mc=${CPU[mxrelayd,$kb,$conc]:--}
	pr=${RATE[postfix,$kb,$conc]:--} pc=${CPU[postfix,$kb,$conc]:--}
	mn=${NOTE[mxrelayd,$kb,$conc]:-} pn=${NOTE[postfix,$kb,$conc]:-}
	[ -n "$mn$pn" ] && FAILED=1
	sr=${SINKRATE[$kb,$conc]:--}
	row_out "$kb KB" "$conc" "$msgs" "$mr${mn:+ !}" "$mc" "$pr${pn:+ !}" "$pc" \
		"$(ratio "$mr" "$pr")" "$(ratio "$pc" "$mc")" "$sr"
	[ -n "$CSV" ] && echo "$kb,$conc,$msgs,$mr,$mc,$pr,$pc,$sr,\"${mn:+mxrelayd: $mn }${pn:+postfix: $pn}\"" >>"$CSV"
done
echo
echo "msgs/s: messages accepted per second (wall clock of smtp-source). CPU s/1000: relay user+system"
echo "CPU seconds per 1000 messages, all its processes and threads. mx/pf: mxrelayd throughput over"
echo "Postfix's. pf/mx: Postfix CPU per message over mxrelayd's. '!': errors in a run (see above)."
[ "$SINK" = 1 ] && echo "smtp-sink: the same load against a sink that stores nothing (one run; a rough upper bound)."
STEAL=$(steal_pct "$STAT0" "$(head -1 /proc/stat)")
echo "CPU steal time during the benchmark: $STEAL% of all CPU time (a busy host makes every figure noisy:"
echo "compare the two relays within one run; use --repeat 5 for steadier medians)."

if [ "$MX_DELIVERY_ATTEMPTS" -gt 0 ]; then
	echo
	echo "note: mxrelayd made $MX_DELIVERY_ATTEMPTS delivery attempts during the runs (each failed at once: its"
	echo "DNS points at a closed loopback port) and recorded them as deferrals. Postfix (qmgr off) did"
	echo "no such work, so mxrelayd's figures include more than intake: they understate its lead."
fi

TARGET_RC=0
if want_mx && want_pf && [ -n "${RATE[mxrelayd,1,50]:-}" ] && [ -n "${RATE[postfix,1,50]:-}" ]; then
	r=$(ratio "${RATE[mxrelayd,1,50]}" "${RATE[postfix,1,50]}")
	if [ "$r" != "-" ] && awk -v r="$r" 'BEGIN { exit !(r >= 3) }'; then
		verdict="PASS"
	else
		verdict="FAIL"; TARGET_RC=1
	fi
	echo
	echo "target: mxrelayd >= 3x Postfix msgs/s at 1 KB, concurrency 50, durability on:" \
		"${RATE[mxrelayd,1,50]} / ${RATE[postfix,1,50]} = ${r}x -> $verdict"
fi

[ "$FAILED" = 1 ] && exit 1
[ "$STRICT" = 1 ] && [ "$TARGET_RC" = 1 ] && exit 1
exit 0
