#!/usr/bin/env bash
# Installs the SDK from a build tree into a temporary prefix, builds
# sdk/examples/hello and a copy of plugins/webhook (which links the SDK's
# HTTP client, Berth::http) against it the way an out-of-tree author
# would, and checks that berthd loads both (ABI checks included).
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
mkdir -p "$tmp/plugins"
cp "$so" "$wso" "$tmp/plugins/"
cat >"$tmp/plugins.yml" <<YML
plugin_dir: $tmp/plugins
plugins:
  - name: HELLO
    file: hello.so
  - name: WEBHOOK
    file: webhook.so
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
echo "sdk example: HELLO and WEBHOOK built from the installed SDK and loaded"
