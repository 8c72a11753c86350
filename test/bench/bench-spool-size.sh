#!/usr/bin/env bash
# bench-spool-size.sh: bytes on disk per queued message, by message size, and what is left once the
# queue has drained (issue 12). On demand, never ctest (it.test_spool_size checks the 1.3 KB case).
#
#   smtp-source --SMTP--> mxrelayd (route to a dead port: everything stays queued)
#   then smtp-sink on that port, `mxrelayctl queue flush`, and the spool is watched while it drains
#
# For each size: a fresh mxrelayd in a temporary directory on disk, MSGS messages of SIZE bytes
# (smtp-source -l) from 20 sessions, then spool.db + spool.db-wal against the sum of the stored
# message sizes (messages.size), the time to drain to smtp-sink, and the files' size 10 s after
# the queue is empty. Loopback only. Needs root, postfix (smtp-source, smtp-sink) and sqlite3.
#
# Usage: test/bench/bench-spool-size.sh [--msgs 20000] [--sizes 1300,5000,40000] [--mxrelayd PATH]
set -euo pipefail
export LC_ALL=C

PROG=${0##*/}
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
MSGS=20000
SIZES=1300,5000,40000
MXRELAYD=${MXRELAYD:-$SRC_DIR/build/mta/mxrelayd}
MXRELAYCTL=${MXRELAYCTL:-$SRC_DIR/build/tools/mxrelayctl}

die() { echo "$PROG: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--msgs) MSGS=${2:?}; shift ;;
	--sizes) SIZES=${2:?}; shift ;;
	--mxrelayd) MXRELAYD=${2:?}; shift ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || die "run as root"
for t in smtp-source smtp-sink sqlite3 "$MXRELAYD" "$MXRELAYCTL"; do
	command -v "$t" >/dev/null || die "$t not found"
done

WORK=$(mktemp -d /var/tmp/bench-spool-size.XXXXXX)
chmod 755 "$WORK"   # the daemon runs as nobody
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sq() { sqlite3 -cmd '.timeout 5000' "$1/spool.db" "$2"; }
bytes() { { stat -c %s "$1/spool.db" "$1/spool.db-wal" 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }'; }
queued() { # DIR OP N: is the number of spooled messages OP N (test's -ge, -eq)?
	test "$(sq "$1" 'SELECT count(*) FROM messages')" "$2" "$3"
}
wait_for() { # SECONDS COMMAND...: poll every 0.2 s
	local end=$((SECONDS + $1)); shift
	until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done
}

one_size() {
	local size=$1 dir="$WORK/$1" port sink t0 t1 peak body drained
	mkdir -p "$dir"
	port=$(free_port); sink=$(free_port)
	cat >"$dir/mxrelay.conf" <<CONF
hostname = bench.test.example
user = nobody
log = stderr
data_dir = $dir/data
dns_servers = 127.0.0.1:1
allow_private_mx = yes
route = d.test 127.0.0.1:$sink
retry_min = 1h
retry_max = 2h
max_connections_per_ip = 50

[listener main]
address = 127.0.0.1:$port
CONF
	"$MXRELAYD" -c "$dir/mxrelay.conf" >"$dir/log" 2>&1 &
	PIDS+=($!)
	wait_for 20 grep -q event=ready "$dir/log" || die "mxrelayd did not start: $(tail -3 "$dir/log")"
	t0=$(date +%s.%N)
	smtp-source -s 20 -m "$MSGS" -l "$size" -f s@example.com -t r@d.test "127.0.0.1:$port"
	t1=$(date +%s.%N)
	wait_for 30 queued "$dir/data" -ge "$MSGS" ||
		die "not all $MSGS messages spooled"
	peak=$(bytes "$dir/data")
	body=$(sq "$dir/data" 'SELECT sum(size) FROM messages')
	smtp-sink -u nobody "127.0.0.1:$sink" 2000 >/dev/null 2>&1 &
	PIDS+=($!)
	sleep 0.5
	"$MXRELAYCTL" queue -c "$dir/mxrelay.conf" flush >/dev/null
	local d0=$SECONDS
	wait_for 300 queued "$dir/data" -eq 0 || die "no drain"
	local dt=$((SECONDS - d0))
	sleep 10
	drained=$(bytes "$dir/data")
	awk -v s="$size" -v n="$MSGS" -v b="$body" -v p="$peak" -v d="$drained" -v t0="$t0" \
		-v t1="$t1" -v dt="$dt" 'BEGIN {
		printf "%7d %7d %9.0f %9.0f %6.2fx %8.0f %11.1f MB %9.1f MB %6d s\n", s, n, b / n,
			p / n, p / b, n / (t1 - t0), p / 1048576, d / 1048576, dt }'
	kill "${PIDS[-2]}" "${PIDS[-1]}" 2>/dev/null || true
	wait "${PIDS[-2]}" "${PIDS[-1]}" 2>/dev/null || true
}

printf "%7s %7s %9s %9s %7s %8s %14s %12s %8s\n" "-l" "msgs" "stored B" "disk B" "ratio" \
	"msg/s" "spool full" "drained+10s" "drain"
for s in ${SIZES//,/ }; do
	one_size "$s" | tail -1
done
echo "($MXRELAYD; disk B = spool.db + WAL per message, ratio = over the stored bytes)"
