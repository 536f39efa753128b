#!/usr/bin/env bash
# Builds and starts the origin on embedded defaults: filesystem cache in
# ./cache, port 3002, no external services. Any setting of the README can be
# given in the environment, e.g. PORT=8080 NOTION_TOKEN=secret_... scripts/start.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
BUILD=build/release
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIC_WASM_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target nic-origin nic
export CACHE_DIR=${CACHE_DIR:-$PWD/cache}
mkdir -p "$CACHE_DIR"
exec "$BUILD/native/origin/nic-origin" "$@"
