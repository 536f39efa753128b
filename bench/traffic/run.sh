#!/usr/bin/env bash
# The traffic benchmark (issue 14), on demand, never part of the test command:
#   bench/traffic/run.sh                    # all parts: cold mixed herd hits
#   bench/traffic/run.sh cold mixed         # some of them (each rewrites only its README section)
#   HERD_NS=1000,5000 bench/traffic/run.sh herd
#   PHASE_SECONDS=10 HIT_RATE=5000 MISS_RATE=20 ROUNDS=3 NO_README=1 bench/traffic/run.sh ...
# Builds nic-origin and nic (BUILD, default build/o) and the load generator
# (bench/traffic/loadgen.cpp, plain C++ and libc), installs wrk, nginx-light
# mate-backgrounds and libjpeg-turbo-progs (the cold page's pictures) when missing (needs
# root), raises the descriptor limit, and writes its tables into bench/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build/o}"
PARTS="${*:-cold mixed herd hits}"

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DNIC_WASM_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target nic-origin nic
c++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -Werror "$ROOT/bench/traffic/loadgen.cpp" -o "$BUILD/loadgen"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
[ -d /usr/share/backgrounds/mate ] || missing+=(mate-backgrounds)
command -v cjpeg >/dev/null || missing+=(libjpeg-turbo-progs)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing (and not root): ${missing[*]}; the parts that need them will fail" >&2
  fi
fi

# The herd holds N connections at once: the origin (started from here) and the
# load generator each need N descriptors plus their own.
ulimit -n "$(ulimit -Hn)"

args=(--origin "$BUILD/native/origin/nic-origin" --nic "$BUILD/native/nic" --loadgen "$BUILD/loadgen"
      --parts "${PARTS// /,}" --seconds "${PHASE_SECONDS:-10}" --hit-rate "${HIT_RATE:-5000}"
      --miss-rate "${MISS_RATE:-20}" --herd-ns "${HERD_NS:-5000}" --rounds "${ROUNDS:-3}")
[ -n "${NO_README:-}" ] && args+=(--no-readme)
exec python3 "$ROOT/bench/traffic/traffic.py" "${args[@]}"
