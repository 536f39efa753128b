#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the native tree (which
# also cross-builds the core for wasm32-wasi and Emscripten, and the libFuzzer
# targets with clang-14), runs CTest (the fuzz label runs each fuzz target for
# NIC_FUZZ_SECONDS), then the native tests again under ASan + UBSan.
#   scripts/test.sh              everything
#   NIC_SKIP_SANITIZE=1 scripts/test.sh   skip the sanitizer pass (native label + the failure suites)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}

bash scripts/deps.sh
if [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
fi

BUILD=${NIC_BUILD_DIR:-$ROOT/build/test}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNIC_WERROR=ON -DNIC_FUZZ=ON \
      -DNIC_FUZZ_SECONDS="${NIC_FUZZ_SECONDS:-20}"
cmake --build "$BUILD" -j"$JOBS"
ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --timeout 600

if [ -z "${NIC_SKIP_SANITIZE:-}" ]; then
  ASAN=$ROOT/build/test-asan
  cmake -S . -B "$ASAN" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNIC_WASM_TESTS=OFF \
        -DNIC_SANITIZE=address,undefined -DNIC_WERROR=ON
  cmake --build "$ASAN" -j"$JOBS"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$ASAN" --output-on-failure -j"$JOBS" -L native --timeout 900
  # The failure suites (issue 8) against the sanitized nic-origin too.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$ASAN" --output-on-failure -j"$JOBS" -R 'e2e_origin_(failures|outage|hardening)' --timeout 900
fi
