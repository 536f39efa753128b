#!/usr/bin/env bash
# The herd benchmark (on demand, never part of the test command):
#   bench/herd/run.sh                 # N = 100,500,1000, coalescing on and off, + wrk vs nginx
#   NS=100 MODES=on bench/herd/run.sh # a quick subset
#   OFF_NS=100,500,1000 ...           # the baseline at N=1000 too (~7 GB RSS)
#   bench/herd/run.sh --client curl   # the herd from curl --parallel instead of asyncio
#   bench/herd/run.sh --throughput-only  # only wrk vs nginx (printed, README untouched)
# Builds nic-origin and nic (BUILD, default build/o), installs wrk and nginx-light
# when missing (needs root; otherwise the throughput part is skipped), and
# writes its table into the Herd section of bench/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build/o}"

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DNIC_WASM_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target nic-origin nic

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk nginx-light >/dev/null
  else
    echo "wrk/nginx missing and not root: the cache-hit comparison will be skipped" >&2
  fi
fi

ulimit -n 65536 2>/dev/null || true
exec python3 "$ROOT/bench/herd/herd.py" \
  --origin "$BUILD/native/origin/nic-origin" --nic "$BUILD/native/nic" \
  --ns "${NS:-100,500,1000}" --off-ns "${OFF_NS:-100,500}" --modes "${MODES:-on,off}" "$@"
