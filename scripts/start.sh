#!/usr/bin/env bash
# Builds and starts the whole architecture on this machine: nic-origin (the
# native origin, embedded defaults: filesystem cache in ./cache, port 3002) and,
# in front of it, the edge worker in workerd through `wrangler dev` (from the
# lock file, offline), then prints both addresses and the page's. Ctrl-C stops
# both. Any setting of the README can be given in the environment, e.g.
#   PORT=8080 NOTION_TOKEN=secret_... scripts/start.sh
#   NIC_NO_EDGE=1 scripts/start.sh     the origin alone
#   EDGE_PORT=8787                     where the edge listens (default 8787)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/deps.sh
BUILD=build/release
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIC_WASM_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target nic-origin nic

export PORT=${PORT:-3002}
export CACHE_DIR=${CACHE_DIR:-$ROOT/cache}
mkdir -p "$CACHE_DIR"
EDGE_PORT=${EDGE_PORT:-8787}

if [ -z "${NIC_NO_EDGE:-}" ]; then
  # The edge module (wasm32-wasi), where wrangler.toml's worker loads it: wasm/dist/.
  cmake -S . -B build/wasi -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/wasm32-wasi.cmake \
        -DCMAKE_BUILD_TYPE=Release -DNIC_WASM_TESTS=OFF >/dev/null
  cmake --build build/wasi --target nic_edge
  if [ ! -d node_modules/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
fi

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

# The origin prints "listening on HOST:PORT" once it accepts connections.
log=$(mktemp)
"$BUILD/native/origin/nic-origin" "$@" > >(tee "$log") &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q "listening on" "$log" && break
  if ! kill -0 "${pids[0]}" 2>/dev/null; then echo "nic-origin did not start" >&2; exit 1; fi
  sleep 0.1
done
rm -f "$log"
ORIGIN="http://127.0.0.1:$PORT"

if [ -z "${NIC_NO_EDGE:-}" ]; then
  # Local mode: workerd on this machine, no Cloudflare account, no network.
  WRANGLER_SEND_METRICS=false NO_UPDATE_NOTIFIER=1 node_modules/.bin/wrangler dev \
    --ip 127.0.0.1 --port "$EDGE_PORT" --var "ORIGIN_URL:$ORIGIN" --show-interactive-dev-session=false &
  pids+=($!)
  EDGE="http://127.0.0.1:$EDGE_PORT"
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$EDGE/health" 2>/dev/null && break
    if ! kill -0 "${pids[1]}" 2>/dev/null; then echo "wrangler dev did not start" >&2; exit 1; fi
    sleep 0.2
  done
  echo
  echo "origin: $ORIGIN"
  echo "edge:   $EDGE   (workerd, in front of the origin)"
  echo "page:   $EDGE/"
else
  echo
  echo "origin: $ORIGIN"
  echo "page:   $ORIGIN/"
fi
echo "Ctrl-C stops everything."
wait -n "${pids[@]}" || true
