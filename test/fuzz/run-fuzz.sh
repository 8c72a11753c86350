#!/bin/bash
# Run the libFuzzer targets for a while, on demand (test/fuzz/README.md).
#   test/fuzz/run-fuzz.sh [-t MINUTES] [-j JOBS] [-b BUILDDIR] [TARGET...]
# -t  CPU minutes per target (10): about MINUTES/JOBS wall minutes, more on
#     a busy machine (the target runs again until its CPU time is spent)
# -j  processes per target (1): above 1, libFuzzer's -fork mode, which also
#     keeps going after a crash; at 1 a target stops at its first crash
# -b  the fuzz build (./build-fuzz), configured and built when needed
# TARGET: NAME of test/fuzz/fuzz_NAME.c (default: all), one after the other.
#
# Each target grows a working corpus outside the repository,
# BUILDDIR/corpus-work/NAME (kept between runs, seeded from
# test/fuzz/corpus/NAME), and saves what it finds as
# BUILDDIR/crashes/NAME/{crash,leak,timeout,oom}-SHA1; its output goes to
# BUILDDIR/fuzz-logs/NAME.log. Prints per target: CPU seconds, executions,
# coverage (edges, features), corpus size and findings. Runs under
# nice -n ${NICE:-10}. Exit status 1 when anything was found.
set -u
cd "$(dirname "$0")/../.."

minutes=10 jobs=1 bdir=build-fuzz
usage() {
	sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while getopts t:j:b:h opt; do
	case $opt in
	t) minutes=$OPTARG ;;
	j) jobs=$OPTARG ;;
	b) bdir=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
case "$minutes$jobs" in *[!0-9.]*) usage ;; esac
[ "$jobs" -ge 1 ] 2>/dev/null || usage

if [ $# -eq 0 ]; then
	set -- $(ls test/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
fi
for t in "$@"; do
	[ -f "test/fuzz/fuzz_$t.c" ] || { echo "run-fuzz.sh: no target test/fuzz/fuzz_$t.c" >&2; exit 2; }
done

if [ ! -f "$bdir/CMakeCache.txt" ]; then
	cmake -S . -B "$bdir" -DCMAKE_C_COMPILER=clang -DMXRELAY_FUZZ=ON >/dev/null || exit 1
fi
cmake --build "$bdir" -j"$(nproc)" --target fuzz >/dev/null || exit 1

budget=$(awk -v m="$minutes" 'BEGIN { print int(m * 60 + 0.5) }')
export LSAN_OPTIONS="suppressions=$(pwd)/test/lsan.supp:fast_unwind_on_malloc=0"
export ASAN_OPTIONS="detect_leaks=1"
mkdir -p "$bdir/fuzz-logs"
found=0
rows=""
printf 'run-fuzz.sh: %ss CPU per target, %d job(s) each\n' "$budget" "$jobs"

# One libFuzzer run of target $t for $1 wall seconds, its output appended to
# $log; adds its CPU seconds (user + system, all processes) to $cpu.
run_once() {
	local args t0
	args=(-max_total_time="$1" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
		-artifact_prefix="$crashes/")
	if [ "$jobs" -gt 1 ]; then
		args+=(-fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
	fi
	TIMEFORMAT='%3U %3S'
	# the seeds are read too; new inputs go to the first folder only
	t0=$({ time nice -n "${NICE:-10}" "$exe" "${args[@]}" "$work" "test/fuzz/corpus/$t" \
		>>"$log" 2>&1; } 2>&1)
	cpu=$(echo "$t0" | awk -v c="$cpu" '{ printf "%.3f", c + $1 + $2 }')
}

for t in "$@"; do
	exe="$bdir/test/fuzz/fuzz_$t" work="$bdir/corpus-work/$t" crashes="$bdir/crashes/$t"
	log="$bdir/fuzz-logs/$t.log" stamp="$bdir/fuzz-logs/.$t.start"
	mkdir -p "$work" "$crashes"
	: >"$log"
	touch "$stamp"
	echo "== $t: $exe, corpus $work, findings in $crashes/"
	# On a busy machine a process gets less CPU than wall time: run again for
	# what is left of the budget (the corpus carries over), a few times at most.
	cpu=0 execs=0
	for round in 1 2 3 4 5; do
		left=$(awk -v b="$budget" -v c="$cpu" -v j="$jobs" \
			'BEGIN { l = (b - c) / j; print (l >= 5 || c == 0) ? int(l < 1 ? 1 : l) : 0 }')
		[ "$left" -gt 0 ] || break
		run_once "$left"
		# the last status line of this round: "#EXECS ... cov: E ft: F corp: N/..."
		# (fork mode: "#EXECS: ..."); execs add up over the rounds
		status=$(grep -aE '^#[0-9]+:?[[:space:]].*cov: ' "$log" | tail -n 1)
		n=$(echo "$status" | sed -nE 's/^#([0-9]+).*/\1/p')
		execs=$((execs + ${n:-0}))
		echo "--- run-fuzz.sh: round $round done, ${cpu}s CPU so far" >>"$log"
		[ -z "$(find "$crashes" -type f -newer "$stamp")" ] || break
	done
	cov=$(echo "$status" | sed -nE 's/.*cov: ([0-9]+).*/\1/p')
	ft=$(echo "$status" | sed -nE 's/.*ft: ([0-9]+).*/\1/p')
	corp=$(find "$work" -type f | wc -l)
	newfiles=$(find "$crashes" -type f -newer "$stamp")
	new=$(printf '%s' "$newfiles" | grep -c .)
	rm -f "$stamp"
	rate=$(awk -v e="$execs" -v c="$cpu" 'BEGIN { print (c > 0 ? int(e / c) : "?") }')
	row=$(printf '%-12s %7.0f %11s %8s %6s %7s %7s %8s' "$t" "$cpu" "$execs" "$rate" \
		"${cov:-?}" "${ft:-?}" "$corp" "$new")
	rows="$rows$row"$'\n'
	echo "$row"
	if [ "$new" -gt 0 ]; then
		found=1
		printf '%s\n' "$newfiles" | head -n 20 | sed 's/^/   /'
		grep -aE '^SUMMARY|ERROR: ' "$log" | sort | uniq -c | head -n 5
	fi
done

echo
printf '%-12s %7s %11s %8s %6s %7s %7s %8s\n' target cpu_s execs execs/s cov ft corpus findings
printf '%s' "$rows"
if [ "$found" = 1 ]; then
	echo "run-fuzz.sh: findings above; reproduce with $bdir/test/fuzz/fuzz_NAME FILE" >&2
	exit 1
fi
