#!/usr/bin/env bash
# Installs the SDK from a build tree into a temporary prefix, builds
# sdk/examples/hello, a copy of plugins/webhook (which links the SDK's
# HTTP client, Berth::http) and a copy of plugins/replication (which links
# the registry client, Berth::registry, <berth/registry.h>) against it the
# way an out-of-tree author would, and checks that berthd loads all three
# (ABI checks included) and that the registry plugin exports nothing but
# the SDK's two entry points (the static libraries' symbols stay hidden).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/sdk/examples/hello" -B "$tmp/hello" \
	-DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/hello"
so=$(find "$tmp/hello" -name 'hello.so' | head -n1)
[ -n "$so" ] || { echo "hello.so was not built" >&2; exit 1; }
# plugins/webhook, copied out of the tree: only the installed SDK helps
cp -r "$src/plugins/webhook" "$tmp/webhook-src"
cmake -S "$tmp/webhook-src" -B "$tmp/webhook" \
	-DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/webhook"
wso=$(find "$tmp/webhook" -name 'webhook.so' | head -n1)
[ -n "$wso" ] || { echo "webhook.so was not built" >&2; exit 1; }
# plugins/replication, copied out of the tree: Berth::registry from the
# installed SDK alone (its header, libberth_registry.a, BerthConfig.cmake)
[ -f "$tmp/prefix/include/berth/registry.h" ] ||
	{ echo "berth/registry.h was not installed" >&2; exit 1; }
cp -r "$src/plugins/replication" "$tmp/replication-src"
cmake -S "$tmp/replication-src" -B "$tmp/replication" \
	-DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/replication"
rso=$(find "$tmp/replication" -name 'replication.so' | head -n1)
[ -n "$rso" ] || { echo "replication.so was not built" >&2; exit 1; }
exports=$(nm -D --defined-only "$rso" | awk '{print $3}' | grep -v '^_' |
	sort | tr '\n' ' ')
[ "$exports" = "berth_plugin_job_types berth_plugin_magic " ] ||
	{ echo "replication.so exports more than the SDK entry points:" \
		"$exports" >&2; exit 1; }
mkdir -p "$tmp/plugins"
cp "$so" "$wso" "$rso" "$tmp/plugins/"
cat >"$tmp/plugins.yml" <<YML
plugin_dir: $tmp/plugins
plugins:
  - name: HELLO
    file: hello.so
  - name: WEBHOOK
    file: webhook.so
  - name: REPLICATION
    file: replication.so
    isolation: process
YML
cat >"$tmp/berth.yml" <<YML
protocol: http
port: 8080
worker_pool:
  workers: 1
  backend: redis
  redis_pool:
    redis_url: embedded
    namespace: sdk_example
job_loggers:
  - name: STD_OUTPUT
    level: INFO
loggers:
  - name: STD_OUTPUT
    level: INFO
berth:
  data_dir: $tmp/data
  plugin_manifest: $tmp/plugins.yml
YML
"$build/berthd" -c "$tmp/berth.yml" --check-config | tee "$tmp/out"
grep -q "loaded HELLO" "$tmp/out"
grep -q "loaded WEBHOOK" "$tmp/out"
grep -q "loaded REPLICATION" "$tmp/out"
echo "sdk example: HELLO, WEBHOOK and REPLICATION (Berth::registry) built" \
	"from the installed SDK and loaded"
