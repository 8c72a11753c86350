#!/usr/bin/env bash
# bench-queue.sh: queue commands, restart and drain at a very large queue (issue 12: "queue summary
# and every control command answer in bounded time at 1,000,000 queued messages").
#
# Not run by ctest (minutes of CPU and GBs of disk). As root, in a private network namespace with
# only 'lo' (unshare --net), so nothing can leave the machine:
#   1. fill: spoolfill (built by CMake next to this script) puts N messages (default 1,000,000, one
#      recipient each, SIZE bytes, spread over DOMAINS domains d<k>.bench.test, received over the
#      last 2 hours) straight into a fresh spool through spool_insert_batch; then they are made due
#      in a day (one UPDATE), so nothing drains before step 6 asks;
#   2. start mxrelayd: seconds to `event=ready` and its memory (VmRSS, VmHWM) with the queue loaded;
#   3. SMTP: SMTP_MSGS more messages (default 5,000) by smtp-source (10 sessions), delivered at once
#      to the sink (smtp-sink; the route of smtp.bench.test), while the big queue waits;
#   4. queue commands, each the best of 3 wall-clock runs of mxrelayctl: summary, list --limit 10,
#      show QID, flush d7.bench.test (N / DOMAINS messages become due: the drain of one domain);
#   5. restart (SIGTERM, start): seconds to `event=ready` again, memory;
#   5b. bulk commands (issue 16), each timed with a `queue summary` 0.3 s into it: hold and release
#      of one domain (N / DOMAINS messages, then delivered), hold ALL, then release ALL (drain)
#      or, with --no-drain, a recipient delete of one domain and delete ALL;
#   6. drain: `queue flush` (all), then the queue summary every 5 s until it says 0 messages:
#      messages per second, a summary timed under that load, and `status=sent` lines counted
#      against the messages put in (a message delivered twice shows as more lines than messages).
#
# Usage: test/bench/bench-queue.sh [--messages N] [--smtp N] [--size BYTES] [--domains N]
#                                  [--build DIR] [--work DIR] [--no-drain] [--keep]
# The work directory (default: a new one under /var/tmp, on disk, never tmpfs) is removed at the
# end unless --keep. Needs about 1.6 KB of disk per 1.3 KB message (1M: 1.6 GB).
set -u
PROG=bench-queue
N=1000000 SMTP_MSGS=5000 SIZE=1300 DOMAINS=100 KEEP=0 DRAIN=1 DRAIN_MAX=3600
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD="$HERE/../../build" WORKROOT=/var/tmp
ARGS=("$@")
die() { echo "$PROG: $*" >&2; exit 2; }
note() { echo "$PROG: $*" >&2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--messages) N=$2; shift ;;
	--smtp) SMTP_MSGS=$2; shift ;;
	--size) SIZE=$2; shift ;;
	--domains) DOMAINS=$2; shift ;;
	--build) BUILD=$2; shift ;;
	--work) WORKROOT=$2; shift ;;
	--no-drain) DRAIN=0 ;;
	--keep) KEEP=1 ;;
	*) die "unknown option $1 (see the header of $0)" ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || die "run as root (private network namespace, the daemon drops to nobody)"
if [ -z "${MXBENCH_QUEUE_NS:-}" ]; then
	unshare --net true 2>/dev/null || die "needs 'unshare --net' (util-linux, root)"
	export MXBENCH_QUEUE_NS=1
	exec unshare --net -- "$BASH" "$0" "${ARGS[@]}"
fi
ip link set lo up || die "cannot bring up lo in the private network namespace"

BUILD=$(cd "$BUILD" && pwd) || die "no build directory"
MXRELAYD=$BUILD/mta/mxrelayd CTL=$BUILD/tools/mxrelayctl FILL=$BUILD/test/bench/spoolfill
for b in "$MXRELAYD" "$CTL" "$FILL"; do [ -x "$b" ] || die "$b missing: cmake --build $BUILD"; done
SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
[ -x "$SINK" ] && [ -x "$SOURCE" ] || die "needs smtp-sink and smtp-source (postfix)"
command -v sqlite3 >/dev/null || die "needs sqlite3 (the sqlite3 package)"

WORK=$(mktemp -d "$WORKROOT/bench-queue.XXXXXX") || die "cannot create a work directory"
chmod 755 "$WORK"
DATA=$WORK/data CONF=$WORK/mxrelay.conf LOG=$WORK/mxrelayd.log
PID="" SINK_PID=""
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
	if [ "$KEEP" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
mem() { awk '/^VmRSS|^VmHWM/ { printf "%s %d MB  ", $1, $2 / 1024 }' "/proc/$PID/status"; }
ctlq() { "$CTL" queue -c "$CONF" "$@"; }
RESULTS=()
result() { RESULTS+=("$(printf '%-44s %s' "$1" "$2")"); note "$1: $2"; }

# best of 3 wall-clock runs of one mxrelayctl queue command, in ms
timed3() {
	local best="" t0 t i
	for i in 1 2 3; do
		t0=$(now)
		ctlq "$@" >"$WORK/last.out" 2>&1 || { cat "$WORK/last.out" >&2; die "queue $* failed"; }
		t=$(since "$t0")
		best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (a == "" || b < a) ? b : a }')
	done
	awk -v s="$best" 'BEGIN { printf "%.1f ms", s * 1000 }'
}

SINK_PORT=2525 MX_PORT=2526
{
	echo "# bench-queue.sh: $N spooled messages to d0..d$((DOMAINS - 1)).bench.test, all routed to smtp-sink"
	echo "hostname = bench-queue.localdomain"
	echo "data_dir = $DATA"
	echo "user = nobody"
	echo "relay_from = 127.0.0.0/8"
	echo "log = stderr"
	echo "allow_private_mx = yes"
	echo "dns_servers = 127.0.0.1:53"
	echo "retry_min = 1h"
	echo "retry_max = 1h"
	echo "max_connections_per_ip = 200"
	for ((k = 0; k < DOMAINS; k++)); do echo "route = d$k.bench.test 127.0.0.1:$SINK_PORT"; done
	echo "route = smtp.bench.test 127.0.0.1:$SINK_PORT"
	printf '\n[listener bench]\naddress = 127.0.0.1:%s\ntls = none\n' "$MX_PORT"
} >"$CONF"

start_daemon() {
	local mark t0 i
	mark=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
	t0=$(now)
	"$MXRELAYD" -c "$CONF" >>"$LOG" 2>&1 &
	PID=$!
	for ((i = 0; i < 60000; i++)); do
		tail -c +"$((mark + 1))" "$LOG" | grep -q 'event=ready' && break
		kill -0 "$PID" 2>/dev/null || { tail -5 "$LOG" >&2; die "mxrelayd died at start"; }
		sleep 0.01
	done
	READY=$(since "$t0")
	LOADED=$(tail -c +"$((mark + 1))" "$LOG" | grep -o 'event=queue_loaded.*' | head -1)
}

stop_daemon() {
	kill "$PID" && wait "$PID" 2>/dev/null
	PID=""
}

# ---- 1. fill -----------------------------------------------------------------------------------
note "work directory $WORK; filling $N messages of $SIZE bytes"
mkdir -p "$DATA"
t0=$(now)
"$FILL" "$DATA" "$N" --domains "$DOMAINS" --size "$SIZE" --spread 7200 --zone bench.test \
	>"$WORK/fill.out" || die "spoolfill failed"
result "fill $N messages (spoolfill)" "$(since "$t0") s"
sqlite3 "$DATA/spool.db" "UPDATE messages SET next_try = strftime('%s') + 86400;" ||
	die "cannot make the filled messages due later"
chown -R nobody "$DATA"
result "spool.db after the fill" "$(du -m "$DATA/spool.db" | cut -f1) MB"

# ---- 2. start --------------------------------------------------------------------------------
"$SINK" -c -u nobody "127.0.0.1:$SINK_PORT" 2000 >"$WORK/sink.out" 2>&1 &
SINK_PID=$!
sync
start_daemon
result "start to event=ready ($N queued)" "$READY s  ($LOADED)"
result "mxrelayd memory after the start" "$(mem)"

# ---- 3. SMTP while the queue is big ------------------------------------------------------------
t0=$(now)
"$SOURCE" -s 10 -m "$SMTP_MSGS" -l "$SIZE" -f s@src.bench.test -t r@smtp.bench.test \
	"127.0.0.1:$MX_PORT" || die "smtp-source failed"
t=$(since "$t0")
result "SMTP intake of $SMTP_MSGS (smtp-source -s 10)" "$t s, $(awk -v n="$SMTP_MSGS" -v t="$t" 'BEGIN { printf "%.0f", n / t }') msg/s"

# ---- 4. queue commands -------------------------------------------------------------------------
result "queue summary" "$(timed3 summary)"
result "queue list --limit 10" "$(timed3 list --limit 10)"
QID=$(ctlq --json list --limit 1 | grep -o '"qid":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)
result "queue show $QID" "$(timed3 show "$QID")"
t0=$(now)
ctlq --json flush d7.bench.test >"$WORK/flush.out" || die "flush DOMAIN failed"
result "queue flush d7.bench.test" "$(awk -v s="$(since "$t0")" 'BEGIN { printf "%.1f ms", s * 1000 }')  $(cat "$WORK/flush.out")"

# ---- 5. restart ---------------------------------------------------------------------------------
stop_daemon
start_daemon
result "restart to event=ready" "$READY s  ($LOADED)"
result "mxrelayd memory after the restart" "$(mem)"

# ---- 5b. bulk queue commands (issue 16): batches, while the loop keeps answering ------------------
# one command, timed, with a `queue summary` timed 0.3 s into it (the loop must not be held)
bulk() {
	local t0 bp under t
	t0=$(now)
	ctlq "$@" >"$WORK/bulk.out" 2>&1 &
	bp=$!
	sleep 0.3
	under=$(timed3 summary)
	wait "$bp" || { cat "$WORK/bulk.out" >&2; die "queue $* failed"; }
	t=$(since "$t0")
	result "queue $*" "$t s: $(cat "$WORK/bulk.out"); summary meanwhile $under"
}
bulk hold --domain d3.bench.test
bulk release --domain d3.bench.test
bulk hold ALL
if [ "$DRAIN" = 1 ]; then
	bulk release ALL
else
	bulk delete --domain d5.bench.test
	bulk delete ALL
fi

# ---- 6. drain -----------------------------------------------------------------------------------
if [ "$DRAIN" = 1 ]; then
	left() { ctlq --json summary | grep -o '"messages":[0-9]*' | head -1 | cut -d: -f2; }
	start_left=$(left)
	t0=$(now)
	ctlq flush >/dev/null || die "flush failed"
	under=""
	while :; do
		sleep 5
		n=$(left)
		[ -z "$under" ] && under=$(timed3 summary)
		[ "$n" = 0 ] && break
		awk -v t="$(since "$t0")" -v m="$DRAIN_MAX" 'BEGIN { exit !(t > m) }' && {
			note "drain not finished after $DRAIN_MAX s ($n left)"; break; }
	done
	t=$(since "$t0")
	result "drain of $start_left messages to smtp-sink" "$t s (5 s polls), $(awk -v n="$start_left" -v t="$t" 'BEGIN { printf "%.0f", n / t }') msg/s, $n left"
	result "queue summary during the drain" "$under"
	sent=$(grep -c 'status=sent' "$LOG")
	result "status=sent lines / messages put in" "$sent / $((N + SMTP_MSGS))"
	result "mxrelayd memory after the drain" "$(mem)"
	result "spool.db after the drain" "$(du -m "$DATA/spool.db" | cut -f1) MB"
fi

echo
echo "bench-queue.sh: $N filled + $SMTP_MSGS by SMTP, $SIZE bytes, $DOMAINS domains, $(nproc) CPUs"
printf '%s\n' "${RESULTS[@]}"
