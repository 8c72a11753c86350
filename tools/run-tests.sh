#!/bin/sh
# Set up and run every mxrelay test: install the Debian packages, build with
# warnings as errors, run unit and integration tests with ctest.
#   tools/run-tests.sh            normal build in ./build, plus the libFuzzer
#                                 targets (clang, ./build-fuzz), each run
#                                 briefly as ctest test fuzz.NAME
#   tools/run-tests.sh --sanitize ASan+UBSan build in ./build-asan (no fuzz
#                                 smoke: the targets are sanitized already)
# Extra arguments after the options go to ctest (e.g. -R it.test_tls).
set -eu
cd "$(dirname "$0")/.."

dir=build
flags="-DMXRELAY_WERROR=ON"
fuzz=1
if [ "${1:-}" = "--sanitize" ]; then
	shift
	dir=build-asan
	fuzz=0
	flags="$flags -DMXRELAY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
	export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
	# fast_unwind_on_malloc=0: the suppression must see through libcrypto's frames
	export LSAN_OPTIONS="suppressions=$(pwd)/test/lsan.supp:fast_unwind_on_malloc=0"
fi

if [ "$(id -u)" = 0 ]; then
	./tools/install-deps.sh
else
	echo "run-tests.sh: not root, skipping package installation" >&2
fi
if [ "$fuzz" = 1 ]; then
	# only the fuzz targets (and the libraries they link), test/fuzz/README.md
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMXRELAY_FUZZ=ON
	cmake --build build-fuzz -j"$(nproc)" --target fuzz
	flags="$flags -DMXRELAY_FUZZ_SMOKE_DIR=$(pwd)/build-fuzz"
else
	flags="$flags -DMXRELAY_FUZZ_SMOKE_DIR="
fi
# shellcheck disable=SC2086
cmake -S . -B "$dir" $flags
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j2 "$@"
