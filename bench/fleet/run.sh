#!/usr/bin/env bash
# The fleet benchmark (on demand, never part of the test command):
#   bench/fleet/run.sh                  # N = 300,1000 with and without Redis, + Redis killed mid-herd
#   NS=300 bench/fleet/run.sh --no-readme
# Needs haproxy and redis-server (scripts/deps.sh installs both) and s3rver
# (`npm ci`). Builds nic-origin and nic (BUILD, default build/o) and writes its
# table into the Fleet section of bench/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build/o}"

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DNIC_WASM_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target nic-origin nic
for tool in haproxy redis-server; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/deps.sh" >&2; exit 1; }
done
ulimit -n 65536 2>/dev/null || true
exec python3 "$ROOT/bench/fleet/fleet.py" \
  --origin "$BUILD/native/origin/nic-origin" --nic "$BUILD/native/nic" --ns "${NS:-300,1000}" "$@"
