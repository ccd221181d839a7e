#!/usr/bin/env bash
# Runs every test of the project (the README's test command):
#   1. the normal build and its full ctest suite,
#   2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the tests labelled "tsan" (threaded parts) under ThreadSanitizer,
#   4. the SDK example built from an installed SDK, as a third-party author
#      would build it, and loaded by berthd,
#   5. one end-to-end run of berthd under valgrind memcheck (~10 s):
#      tests/memcheck.sh,
#   6. the fifteen libFuzzer targets built with clang and run FUZZ_SECONDS
#      (10) each from their corpus: tests/fuzz/smoke.sh.
# The fuzz corpora also replay in every ctest run (fuzz_<name>_replay); the
# fault suite's short form is ctest fault_short (normal build only).
# Build trees: build/, build-asan/, build-tsan/, build-fuzz/ (reused).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
cd "$src"

build() {
	local dir=$1
	shift
	cmake -S "$src" -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$jobs"
}

step() { printf '\n==== %s ====\n' "$*"; }

step "build + tests"
build build
(cd build && ctest --output-on-failure -j"$jobs")

# The fault suite (label fault) runs in the normal build only: its limits
# are times (recovery within 15 s, ...), which a sanitizer build stretches.
step "AddressSanitizer + UndefinedBehaviorSanitizer"
build build-asan -DBERTH_SANITIZE=address -DCMAKE_BUILD_TYPE=Debug
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure -j"$jobs" -LE fault)

step "ThreadSanitizer (label tsan)"
build build-tsan -DBERTH_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	ctest --output-on-failure -j"$jobs" -L tsan)

step "SDK example from the installed SDK"
"$src/tests/sdk_example.sh" "$src/build"

step "valgrind memcheck (end to end)"
"$src/tests/memcheck.sh" "$src/build"

step "fuzzers (libFuzzer, ${FUZZ_SECONDS:-10} s per target)"
"$src/tests/fuzz/smoke.sh" "$src/build-fuzz"

step "all tests passed"
