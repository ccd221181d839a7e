#!/usr/bin/env bash
# valgrind memcheck over one end-to-end run (tests/memcheck.py): a real
# redis-server, berthd under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
#            --error-exitcode=99
# DEMO, a failing job, a scheduled and a periodic job, then SIGTERM. Fails on
# any memory error and on any definite or indirect leak at shutdown.
#   tests/memcheck.sh [build dir]      (default: build)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
command -v valgrind >/dev/null || { echo "memcheck: valgrind not found" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-memcheck-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/logs"
cat >"$work/berthd" <<WRAP
#!/bin/sh
exec valgrind --leak-check=full --show-leak-kinds=definite,indirect \\
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \\
	--track-origins=yes --num-callers=30 \\
	--suppressions="$src/tests/memcheck.supp" \\
	--log-file="$work/logs/valgrind.%p.log" "$build/berthd" "\$@"
WRAP
chmod +x "$work/berthd"
export BERTHD="$work/berthd" BERTH_MEMCHECK_LOGS="$work/logs"
export BERTH_PLUGINS="$build/plugins" BERTH_TEST_PLUGINS="$build/tests/plugins"
export BERTH_SOURCE="$src" PYTHONDONTWRITEBYTECODE=1
cd "$src/tests"
python3 -m unittest -v memcheck
