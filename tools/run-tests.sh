#!/bin/sh
# Set up and run every mxrelay test: install the Debian packages (the relay's
# and the test peers', tools/install-deps.sh --test), build with warnings as
# errors, run unit and integration tests with ctest.
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
	# LeakSanitizer reads the suppressions at exit, when mxrelayd runs as nobody: a copy
	# anyone can read, as the checkout may sit in a private folder (/root, mktemp -d)
	supp=$(mktemp /tmp/mxrelay-lsan.XXXXXX)
	trap 'rm -f "$supp"' EXIT
	cp test/lsan.supp "$supp"
	chmod 0644 "$supp"
	export LSAN_OPTIONS="suppressions=$supp"
fi

# as root it installs what is missing; as another user it fails naming it
./tools/install-deps.sh --test
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
