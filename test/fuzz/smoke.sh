#!/bin/sh
# Smoke test of one libFuzzer target (ctest's fuzz.NAME):
#   smoke.sh TARGET SEEDS CRASHDIR SECONDS
# runs TARGET over every seed in SEEDS, then fuzzes for SECONDS, from a
# temporary copy of the seeds (the checkout is never written to). Fails when
# there are no seeds or the target crashes, leaks, times out or runs out of
# memory; the reproducer is kept in CRASHDIR and its path printed.
set -u
target=$1 seeds=$2 crashdir=$3 secs=$4
name=$(basename "$target")

if [ ! -x "$target" ]; then
	echo "$name: no executable $target (build it: tools/run-tests.sh, or" \
		"cmake --build build-fuzz --target fuzz)" >&2
	exit 1
fi
if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
	echo "$name: no seed corpus in $seeds (every target needs seeds)" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
cp -R "$seeds" "$work/corpus"
rm -rf "$crashdir"
mkdir -p "$crashdir"

# halt_on_error etc. are built in (-fno-sanitize-recover); leaks are errors.
LSAN_OPTIONS="suppressions=${LSAN_SUPP:-/dev/null}:fast_unwind_on_malloc=0" \
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" \
"$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$crashdir/" "$work/corpus" >"$work/log" 2>&1
rc=$?
# The summary: the last status line and the final stats.
grep -E '^#[0-9]+ +(DONE|INITED)|^stat::' "$work/log"
if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$crashdir")" ]; then
	tail -n 60 "$work/log"
	for f in "$crashdir"/*; do
		[ -e "$f" ] || continue
		echo "$name: FAILED, reproducer $f (run: $target $f)"
	done
	echo "$name: exit status $rc" >&2
	exit 1
fi
rmdir "$crashdir"
echo "$name: ok, ${secs}s"
