#!/usr/bin/env bash
# bench-kill9.sh: duplicates after kill -9 under load, a longer run of it.test_kill9 (on demand,
# never ctest). Cycles of: start mxrelayd, SECONDS of load from Python clients that record every
# 250 queue id (2 fast recipient domains per message, a slow third one for one message in 4),
# kill -9. Then one start drains the queue into the aiosmtpd sink. Prints acknowledged messages,
# recipients, lost (must be 0), duplicates (count, rate, per kill) and the most copies of one.
#
# Needs root (like the integration tests) and an mxrelayd build (BUILD, default ./build).
# Usage: test/bench/bench-kill9.sh [--cycles 20] [--seconds 2-4] [--clients 4] [--build DIR]
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILD="$SRC_DIR/build"
CYCLES=20
SECS=2-4
CLIENTS=4
while [ $# -gt 0 ]; do
	case "$1" in
	--cycles) CYCLES=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--clients) CLIENTS=$2; shift 2 ;;
	--build) BUILD=$(cd "$2" && pwd); shift 2 ;;
	*) echo "usage: $0 [--cycles N] [--seconds LO-HI] [--clients N] [--build DIR]" >&2; exit 2 ;;
	esac
done
export MXRELAYD="$BUILD/mta/mxrelayd" MXRELAYCTL="$BUILD/tools/mxrelayctl" MXRELAY_SRC="$SRC_DIR"
export MXTEST_KILL9_CYCLES=$CYCLES MXTEST_KILL9_SECONDS=$SECS MXTEST_KILL9_CLIENTS=$CLIENTS
export MXTEST_TEST_TIMEOUT=$((CYCLES * 10 + 700)) PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$SRC_DIR/test/integration/test_kill9.py"
