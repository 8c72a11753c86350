#!/usr/bin/env bash
# bench-memory.sh: does a running mxrelayd grow while it signs? A long run, on demand (never ctest).
#
#   smtp-source --SMTP--> mxrelayd (signing) --static route--> smtp-sink on 127.0.0.2:25
#
# For each DKIM mode asked for (default: ed25519, then rsa; also dual and none), one mxrelayd is
# started fresh and sent MSGS messages (default 200,000) in batches of BATCH (default 10,000) by
# Postfix's smtp-source, 1 KB each, CONC sessions at once. After every batch, once the sink has
# every message and the spool is empty, the daemon's resident set (VmRSS in /proc/PID/status) is
# sampled. The first WARMUP messages (default 20,000) fill the caches that are meant to fill
# (SQLite's page cache, malloc's arenas, OpenSSL's per-thread state); the growth after them,
# per 10,000 messages, is the least-squares slope of RSS over messages. The target (issue 10):
# under 1 MB per 10,000 signed messages of either algorithm, over at least 200,000 messages.
#
# Everything runs in a private network namespace (loopback only). Needs root, postfix (for
# smtp-source and smtp-sink) and sqlite3 (to see the spool drain).
#
# Usage: test/bench/bench-memory.sh [--dkim ed25519,rsa] [--msgs 200000] [--batch 10000] [options]
set -euo pipefail
export LC_ALL=C

PROG=${0##*/}
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=test/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=test/bench/relays.sh
. "$(dirname "${BASH_SOURCE[0]}")/relays.sh"

DKIMS="ed25519,rsa"
MSGS=200000
BATCH=10000
WARMUP=20000
CONC=20
SIZE_KB=1
MXRELAYD="${MXRELAYD:-$SRC_DIR/build/mta/mxrelayd}"
WORK_PARENT="${TMPDIR:-/var/tmp}"
KEEP=0
STRICT=0
CSV=""
MX_EXTRA=()
PF_EXTRA=()
ROUTE=static
SINK_ADDR=127.0.0.2
CHECK_ADDR=127.0.0.3
DNS_PORT=53
CPU_FROM=auto

usage() {
	cat <<USAGE
Usage: $PROG [options]

Sends MSGS messages through one mxrelayd per DKIM mode and samples its resident set size after
every batch; prints the growth per 10,000 messages after the warm-up. Run as root.

  --dkim LIST       DKIM modes, run one after the other: ed25519, rsa, dual, none
                    (default $DKIMS)
  --msgs N          messages per mode (default $MSGS)
  --batch N         messages between two samples (default $BATCH)
  --warmup N        messages before the growth is measured (default $WARMUP)
  --conc N          smtp-source sessions at once (default $CONC)
  --size KB         message size (default $SIZE_KB)
  --mxrelayd PATH   daemon binary (default \$MXRELAYD or build/mta/mxrelayd)
  --workdir DIR     parent of the work directory (default \$TMPDIR or /var/tmp)
  --csv FILE        also write every sample as CSV (mode,messages,rss_kb,seconds)
  --strict          exit 1 when a signing mode grows by 1 MB or more per 10,000 messages
  --keep            keep the work directory
  -h, --help        this text
USAGE
}

ARGS=("$@")
while [ $# -gt 0 ]; do
	case "$1" in
	--dkim) DKIMS="${2:?--dkim needs a value}"; shift ;;
	--msgs) MSGS="${2:?--msgs needs a value}"; shift ;;
	--batch) BATCH="${2:?--batch needs a value}"; shift ;;
	--warmup) WARMUP="${2:?--warmup needs a value}"; shift ;;
	--conc) CONC="${2:?--conc needs a value}"; shift ;;
	--size) SIZE_KB="${2:?--size needs a value}"; shift ;;
	--mxrelayd) MXRELAYD="${2:?--mxrelayd needs a value}"; shift ;;
	--workdir) WORK_PARENT="${2:?--workdir needs a value}"; shift ;;
	--csv) CSV="${2:?--csv needs a value}"; shift ;;
	--strict) STRICT=1 ;;
	--keep) KEEP=1 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
for v in $MSGS $BATCH $CONC $SIZE_KB; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: $v"
done
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "not a number: $WARMUP"
[ "$WARMUP" -le $((MSGS - 2 * BATCH)) ] || die "--warmup must leave at least two batches to measure"
for v in ${DKIMS//,/ }; do
	case "$v" in none|ed25519|rsa|dual) ;; *) die "--dkim: none, ed25519, rsa or dual, not '$v'" ;; esac
done
[ "$(id -u)" = 0 ] || die "run as root (the sink on port 25, the private namespace)"

if [ -z "${MXBENCH_MEM_NS:-}" ]; then
	unshare --net true 2>/dev/null || die "needs 'unshare --net' (util-linux, root)"
	export MXBENCH_MEM_NS=1
	exec unshare --net -- "$BASH" "$0" "${ARGS[@]}"
fi
ip link set lo up || die "cannot bring up lo in the private network namespace"

SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$SMTP_SOURCE" ] && [ -x "$SMTP_SINK" ] || die "smtp-source/smtp-sink not found (apt-get install postfix)"
[ -x "$MXRELAYD" ] || die "mxrelayd not found at $MXRELAYD (build it first)"
command -v sqlite3 >/dev/null || die "sqlite3 not found (apt-get install sqlite3)"
HAVE_SQLITE=1
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "$WORK_PARENT/mxrelay-mem.XXXXXX")
chmod 755 "$WORK"
SINK_PID="" CHECK_PID=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	mx_stop
	[ -n "$SINK_PID" ] && { kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; }
	[ -n "$CHECK_PID" ] && { kill "$CHECK_PID" 2>/dev/null || true; wait "$CHECK_PID" 2>/dev/null || true; }
	[ -n "$CG_ROOT" ] && rmdir "$CG_ROOT" 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then note "work directory kept: $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK/bin"
cp "$MXRELAYD" "$WORK/bin/mxrelayd"   # a rebuild during the run must not swap the binary
KEYS="$WORK/keys"
dkim_keys "$KEYS"
cg_init
mkdir -p "$WORK/check"
chown nobody "$WORK/check"
"$SMTP_SINK" -a -C -F -h mxcheck.bench.test -u nobody -d "$WORK/check/m." "$CHECK_ADDR:25" 64 \
	>"$WORK/check-sink.log" 2>&1 &
CHECK_PID=$!
wait_banner 25 5 "$CHECK_ADDR" || die "the check smtp-sink does not answer on $CHECK_ADDR:25"

# sink_count: messages the sink has received ('-c' writes "... mesg=N\r" on every change)
sink_count() { tr '\r' '\n' <"$WORK/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$MX_PID/status"; }

# signed_check DKIM: one more message through the daemon, to the check sink, which keeps it: it
# must carry the signatures of mode DKIM, verified by python3-dkim
signed_check() {
	local dkim=$1 f p
	rm -f "$WORK/check/m."*
	"$SMTP_SOURCE" -m 1 -l 1024 -M bench.localdomain -f sender@example.com \
		-t check@check.bench.test "127.0.0.1:$MX_PORT" >"$WORK/check.out" 2>&1 ||
		die "$dkim: the check message was not accepted: $(head -c 300 "$WORK/check.out")"
	for _ in $(seq 100); do
		f=$(find "$WORK/check" -name 'm.*' -size +0 | head -1)
		[ -n "$f" ] && break
		sleep 0.1
	done
	[ -n "$f" ] || die "$dkim: the check message did not arrive"
	sleep 0.2
	awk 'h || !/^X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args):/ { h = 1; print }' "$f" >"$WORK/check.eml"
	p=$(dkim_check "$WORK/check.eml" "$dkim" "$KEYS")
	[ -z "$p" ] || die "$dkim: check message: $p"
}

# run_mode DKIM: one daemon, MSGS messages; prints a sample line per batch and sets SLOPE_KB
# (growth in KB per 10,000 messages after the warm-up)
run_mode() {
	local dkim=$1 sent=0 n want t0 rss first_rss left
	local xs=() ys=()
	: >"$WORK/sink.out"
	"$SMTP_SINK" -c -a -C -F -h mx.bench.test -u nobody -m 512 "$SINK_ADDR:25" 1024 \
		>"$WORK/sink.out" 2>"$WORK/sink.err" &
	SINK_PID=$!
	wait_banner 25 5 "$SINK_ADDR" || die "smtp-sink does not answer on $SINK_ADDR:25"
	mx_start "$WORK/bin/mxrelayd" "$dkim"
	first_rss=$(rss_kb)
	t0=$EPOCHREALTIME
	printf '  %-8s %9s %9s %9s %8s\n' "$dkim" "messages" "RSS KB" "+KB" "msgs/s"
	printf '  %-8s %9s %9s %9s %8s\n' "" 0 "$first_rss" "" ""
	while [ "$sent" -lt "$MSGS" ]; do
		n=$BATCH; [ $((sent + n)) -gt "$MSGS" ] && n=$((MSGS - sent))
		local b0=$EPOCHREALTIME
		"$SMTP_SOURCE" -s "$CONC" -m "$n" -l $((SIZE_KB * 1024)) -M bench.localdomain \
			-f sender@example.com -t rcpt@bench.test "127.0.0.1:$MX_PORT" >"$WORK/source.out" 2>&1 ||
			die "smtp-source failed: $(head -c 300 "$WORK/source.out")"
		sent=$((sent + n))
		want=$sent
		for _ in $(seq 600); do
			[ "$(sink_count)" = "$want" ] && break
			sleep 0.1
		done
		[ "$(sink_count)" = "$want" ] || die "$dkim: the sink has $(sink_count) of $want messages"
		for _ in $(seq 100); do
			left=$(mx_queued)
			[ "$left" = 0 ] && break
			sleep 0.1
		done
		[ "$left" = 0 ] || die "$dkim: the spool still holds $left messages"
		[ -z "$(mx_problems)" ] || die "$dkim: trouble in mxrelayd's log: $(mx_problems | head -3)"
		rss=$(rss_kb)
		printf '  %-8s %9s %9s %9s %8.0f\n' "" "$sent" "$rss" "$((rss - first_rss))" \
			"$(awk -v n="$n" -v a="$b0" -v b="$EPOCHREALTIME" 'BEGIN { print n / (b - a) }')"
		[ -n "$CSV" ] && echo "$dkim,$sent,$rss,$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" >>"$CSV"
		if [ "$sent" -ge "$WARMUP" ]; then
			xs+=("$sent")
			ys+=("$rss")
		fi
	done
	[ "$dkim" = none ] || signed_check "$dkim"
	SLOPE_KB=$(printf '%s %s\n' "$(echo "${xs[*]}")" "$(echo "${ys[*]}")" | awk '{
		n = NF / 2 } NR == 1 { split($0, v, " ") } END {
		m = 0; for (i = 1; i <= n; i++) { x[i] = v[i]; y[i] = v[n + i]; sx += x[i]; sy += y[i] }
		mx = sx / n; my = sy / n
		for (i = 1; i <= n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ^ 2 }
		printf "%.1f", (sxx > 0 ? sxy / sxx : 0) * 10000 }')
	mx_stop
	kill "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	SINK_PID=""
}

echo "mxrelay memory benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "machine: $(nproc) CPUs, $(uname -sr); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "daemon:  $MXRELAYD (sha256 $(sha256sum "$WORK/bin/mxrelayd" | cut -c1-12))"
echo "load:    $MSGS messages of $SIZE_KB KB per mode, $CONC sessions, samples every $BATCH;"
echo "         growth = slope of RSS over messages after the first $WARMUP"
echo
[ -n "$CSV" ] && echo "mode,messages,rss_kb,seconds" >"$CSV"
declare -A RESULT
RC=0
for dkim in ${DKIMS//,/ }; do
	run_mode "$dkim"
	RESULT[$dkim]=$SLOPE_KB
	echo
done
echo "RSS growth per 10,000 messages after the warm-up (target: under 1024 KB when signing):"
for dkim in ${DKIMS//,/ }; do
	verdict=""
	if [ "$dkim" != none ]; then
		verdict=PASS
		awk -v s="${RESULT[$dkim]}" 'BEGIN { exit !(s < 1024) }' || { verdict=FAIL; RC=1; }
	fi
	printf '  %-8s %8s KB  %s\n' "$dkim" "${RESULT[$dkim]}" "$verdict"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$STRICT" = 1 ] && exit "$RC"
exit 0
