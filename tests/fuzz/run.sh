#!/usr/bin/env bash
# run.sh FUZZER NAME WORKDIR SECONDS [libFuzzer flags...]
# Runs one libFuzzer target for SECONDS over a working corpus in WORKDIR/NAME
# (seeded from the committed corpus/NAME and regressions/NAME, which are read,
# never written). A crash, leak, UBSan report or timeout fails with the input
# saved in WORKDIR/NAME/artifacts/; keep it under regressions/NAME/ with the fix.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 name=$2 work=$3 secs=$4
shift 4
dir=$work/$name
mkdir -p "$dir/corpus" "$dir/artifacts"
seeds=("$here/corpus/$name")
[ -d "$here/regressions/$name" ] && seeds+=("$here/regressions/$name")
dict=()
[ -f "$here/dict/$name.dict" ] && dict=(-dict="$here/dict/$name.dict")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -timeout is wall time: 30 s leaves room for a loaded 2-core CI machine
# (inputs that took 12 s there used 0.3 s of CPU).
exec "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "${dict[@]}" \
  "$dir/corpus" "${seeds[@]}" "$@"
