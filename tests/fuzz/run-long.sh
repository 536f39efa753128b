#!/usr/bin/env bash
# Long fuzzing runs, outside CTest:
#   tests/fuzz/run-long.sh [SECONDS_PER_TARGET] [TARGET...]
# Builds the libFuzzer targets (clang-14, ASan+UBSan) in build/fuzz-long and
# runs each target for SECONDS_PER_TARGET (default 600), JOBS processes at a
# time (default 1; libFuzzer's -fork=JOBS). Working corpora stay in
# build/fuzz-long/work/<target>/corpus and grow from run to run; crashes land
# in build/fuzz-long/work/<target>/artifacts/. To keep what a run found:
#   - a crash: fix it, then copy the input to tests/fuzz/regressions/<target>/
#     (the native replay test runs it from then on);
#   - new coverage worth seeding CI with: minimise first, e.g.
#     build/fuzz-long/tests/fuzz/fuzz_<t> -merge=1 tests/fuzz/corpus/<t> build/fuzz-long/work/<t>/corpus
#     (keep the committed corpora small).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SECS=${1:-600}
shift || true
JOBS=${JOBS:-1}
BUILD=${NIC_FUZZ_BUILD_DIR:-$ROOT/build/fuzz-long}
WORK=$BUILD/work

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNIC_FUZZ_BUILD=ON "${launcher[@]}" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/targets/*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
failed=()
mkdir -p "$WORK"
for t in "${targets[@]}"; do
  echo "== $t: ${SECS}s"
  extra=()
  [ "$JOBS" -gt 1 ] && extra=(-fork="$JOBS" -ignore_crashes=1)
  if ! tests/fuzz/run.sh "$BUILD/tests/fuzz/fuzz_$t" "$t" "$WORK" "$SECS" "${extra[@]}" 2>"$WORK/$t.log"; then
    failed+=("$t")
  fi
  grep -E "^(Done|stat::number_of_executed_units)" "$WORK/$t.log" || true
  ls "$WORK/$t/artifacts" 2>/dev/null | sed "s|^|  artifact: $WORK/$t/artifacts/|" || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "findings in: ${failed[*]} (logs in $WORK/<target>.log)" >&2
  exit 1
fi
