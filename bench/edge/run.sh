#!/usr/bin/env bash
# Edge benchmarks (run on demand, never by the tests):
#   1. the module's size, raw and gzipped (target: < 64 KB gzipped), and the
#      whole upload as wrangler bundles it;
#   2. CPU time per request in the worker's decision path (hit, miss, herd,
#      errors), with the JS glue alone as the baseline;
#   3. an edge herd table: N concurrent requests for one uncached image ->
#      origin requests, against a plain caching worker as the baseline;
#   4. herd memory: 300 followers of a 2 MB image -> workerd's peak RSS, against
#      the worker as it was before (one ArrayBuffer copy per follower).
# Usage: bench/edge/run.sh [path/to/nic_edge.wasm]   (default: wasm/dist/nic_edge.wasm)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
wasm=${1:-$root/wasm/dist/nic_edge.wasm}
if [ ! -f "$wasm" ]; then
  echo "no module at $wasm: build the nic_edge target with toolchains/wasm32-wasi.cmake" >&2
  exit 1
fi
cd "$root"
cmake -DROOT="$root" -DNPM="$(command -v npm)" -P tests/edge/ensure_npm.cmake

raw=$(stat -c %s "$wasm")
gz=$(gzip -9c "$wasm" | wc -c)
out=$(mktemp -d)
upload=$(WRANGLER_SEND_METRICS=false node node_modules/wrangler/bin/wrangler.js deploy --dry-run --outdir "$out" 2>&1 |
  sed -n 's/.*Total Upload: \(.*\) \/ gzip: \(.*\)/\1 | \2/p')
rm -rf "$out"
echo "## Module size ($wasm)"
echo
echo "| artefact | bytes | gzip -9 |"
echo "|---|---:|---:|"
echo "| nic_edge.wasm | $raw | $gz |"
echo "| wrangler bundle (worker.js + module) | ${upload:-? | ?} |"
echo "target: gzip < 65536 bytes -> $([ "$gz" -lt 65536 ] && echo met || echo MISSED)"
echo
echo "## CPU per request in the worker (node $(node --version), same V8 as workerd)"
echo
node bench/edge/cpu.mjs "$wasm"
echo
echo "## Edge herd (miniflare/workerd, one isolate)"
echo
NIC_EDGE_WASM="$wasm" node bench/edge/herd.mjs
echo
echo "## Herd memory (miniflare/workerd, one isolate)"
echo
NIC_EDGE_WASM="$wasm" node bench/edge/memory.mjs
