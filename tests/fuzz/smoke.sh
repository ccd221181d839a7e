#!/usr/bin/env bash
# The fuzzers in CI: builds the libFuzzer targets (clang,
# -DBERTH_FUZZ=ON: the host library instrumented with ASan + UBSan) and
# runs each for FUZZ_SECONDS (default 10) from its seed corpus, so every
# CI run fuzzes a little further than the replay tests. New inputs go to a
# temporary directory; a crash fails the run and leaves its input there
# (copy it into tests/fuzz/corpus/<name>/ as crash-<what> and fix it).
# Usage: tests/fuzz/smoke.sh [build dir, default build-fuzz]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$src/build-fuzz}
secs=${FUZZ_SECONDS:-10}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
targets="submit config manifest yamltree cron message tzif gojson
	reg_manifest reg_challenge reg_link reg_token reg_error repl_resource
	ops_query"

command -v clang >/dev/null || { echo "fuzz smoke: clang is missing" >&2; exit 1; }
cmake -S "$src" -B "$dir" -DBERTH_FUZZ=ON -DCMAKE_C_COMPILER=clang \
	-DBERTH_WERROR=OFF >/dev/null
names=()
for t in $targets; do names+=(--target "fuzz_${t}_libfuzzer"); done
cmake --build "$dir" -j"$jobs" "${names[@]}" >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rc=0
for t in $targets; do
	case $t in
	config | manifest | yamltree) dict=$src/tests/fuzz/yaml.dict ;;
	cron | tzif | reg_challenge | reg_link | ops_query) dict= ;;
	*) dict=$src/tests/fuzz/json.dict ;;
	esac
	mkdir -p "$work/$t"
	log=$work/$t.log
	if (cd "$work" && "$dir/tests/fuzz_${t}_libfuzzer" \
		-max_total_time="$secs" -max_len=8192 -print_final_stats=1 \
		${dict:+-dict="$dict"} "$work/$t" "$src/tests/fuzz/corpus/$t" \
		>"$log" 2>&1); then
		printf 'fuzz %-13s ok   %s\n' "$t" \
			"$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
				grep -o '[0-9]*$') execs in ${secs} s"
	else
		rc=1
		printf 'fuzz %-13s FAILED\n' "$t"
		grep -E 'ERROR|SUMMARY|crash-|Test unit written' "$log" | head -20
		mkdir -p "$src/build-fuzz-crashes"
		cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* \
			"$src/build-fuzz-crashes/" 2>/dev/null || true
	fi
done
exit $rc
