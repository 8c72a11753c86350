#!/bin/sh
# Set up and run every mxrelay test: install the Debian packages, build with
# warnings as errors, run unit and integration tests with ctest.
#   tools/run-tests.sh            normal build in ./build
#   tools/run-tests.sh --sanitize ASan+UBSan build in ./build-asan
# Extra arguments after the options go to ctest (e.g. -R it.test_tls).
set -eu
cd "$(dirname "$0")/.."

dir=build
flags="-DMXRELAY_WERROR=ON"
if [ "${1:-}" = "--sanitize" ]; then
	shift
	dir=build-asan
	flags="$flags -DMXRELAY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
	export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
	export LSAN_OPTIONS="suppressions=$(pwd)/test/lsan.supp"
fi

if [ "$(id -u)" = 0 ]; then
	./tools/install-deps.sh
else
	echo "run-tests.sh: not root, skipping package installation" >&2
fi
# shellcheck disable=SC2086
cmake -S . -B "$dir" $flags
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j2 "$@"
