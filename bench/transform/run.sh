#!/usr/bin/env bash
# Transform benchmark: our engine vs Sharp 0.33.5 on the same inputs, in the
# same run, single-threaded. Run on demand (not part of the tests):
#   bench/transform/run.sh [REPS]        two synthetic images, one quality
#   bench/transform/run.sh corpus [ARGS] the real-photo corpus (corpus.py; ARGS
#                                        e.g. --only Storm,gen-diagram --formats png)
# Each prints a table and writes it into bench/README.md (between its markers).
# The corpus photographs come from Debian's mate-backgrounds and
# gnome-backgrounds, installed here when missing (root), never committed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD="$ROOT/build/bench-transform"
WORK=${NIC_BENCH_DIR:-/tmp/nic-bench}
MODE=table
if [ "${1:-}" = corpus ]; then MODE=corpus; shift; fi
REPS=9
if [ "$MODE" = table ]; then REPS=${1:-9}; fi
mkdir -p "$WORK/out" "$WORK/sharp"

echo "== building (Release)" >&2
LAUNCHER=()
if command -v ccache >/dev/null; then LAUNCHER=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIC_WASM_TESTS=OFF "${LAUNCHER[@]}" >/dev/null
cmake --build "$BUILD" -j2 --target nic_transform >/dev/null
PKGS="libjpeg spng libwebp libwebpdemux libwebpmux libavif zlib libdeflate lcms2"
# shellcheck disable=SC2046
c++ -std=c++20 -O2 -DNDEBUG -I"$ROOT/shared/include" -I"$ROOT/native/transform" -I"$ROOT/tests/native" \
  "$ROOT/bench/transform/bench.cpp" "$BUILD/native/transform/libnic_transform.a" "$BUILD/shared/libnic_core.a" \
  $(pkg-config --cflags --libs $PKGS) -lgif -o "$BUILD/nic_bench"
BENCH="$BUILD/nic_bench"

install_sharp() {
  SHARP_OK=1
  if [ ! -d "$WORK/sharp/node_modules/sharp" ]; then
    (cd "$WORK/sharp" && npm install --no-audit --no-fund --no-save sharp@0.33.5 >npm.log 2>&1) || SHARP_OK=0
  fi
  if [ "$SHARP_OK" = 1 ] && ! (cd "$WORK/sharp" && node -e "require('sharp')" >/dev/null 2>&1); then
    SHARP_OK=0
  fi
}

replace_section() {  # README marker-name table-file
  python3 - "$1" "$2" "$3" <<'PY'
import sys
readme, name, table = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
text = open(readme).read()
start, end = f'<!-- {name}:start -->', f'<!-- {name}:end -->'
if start not in text:
    text += f'\n{start}\n{end}\n'
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
open(readme, 'w').write(head + start + '\n' + table + end + tail)
PY
}

if [ "$MODE" = corpus ]; then
  installed=$(dpkg-query -W -f='${Status}\n' mate-backgrounds gnome-backgrounds 2>/dev/null | grep -c "install ok installed" || true)
  if [ "$installed" != 2 ]; then
    if [ "$(id -u)" -eq 0 ]; then
      apt-get install -y -qq --no-install-recommends mate-backgrounds gnome-backgrounds >&2
    else
      echo "the corpus needs: sudo apt-get install mate-backgrounds gnome-backgrounds" >&2
      exit 1
    fi
  fi
  install_sharp
  [ "$SHARP_OK" = 1 ] || { echo "sharp@0.33.5 could not be installed into $WORK/sharp" >&2; exit 1; }
  python3 "$ROOT/bench/transform/corpus.py" "$BENCH" "$WORK/sharp" "$WORK" "$WORK/corpus.md" "$@"
  replace_section "$ROOT/bench/README.md" transform-corpus "$WORK/corpus.md"
  echo "table written to $ROOT/bench/README.md" >&2
  exit 0
fi

echo "== inputs" >&2
"$BENCH" gen "$WORK" >&2

echo "== sharp@0.33.5 into $WORK/sharp" >&2
install_sharp
if [ "$SHARP_OK" = 1 ]; then
  SHARP_IDLE_RSS=$(cd "$WORK/sharp" && node -e "require('sharp'); console.log(process.resourceUsage().maxRSS)")
fi

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
for input in photo.jpg screenshot.png; do
  for fmt in webp avif jpeg png; do
    echo "== $input -> $fmt" >&2
    ours=$("$BENCH" run "$WORK/$input" "$fmt" 800 "$REPS" "$WORK/out/ours-$input.$fmt")
    theirs="ms=n/a bytes=n/a rss_kb=n/a"
    if [ "$SHARP_OK" = 1 ]; then
      theirs=$(UV_THREADPOOL_SIZE=1 node "$ROOT/bench/transform/sharp_bench.cjs" "$WORK/sharp" \
        "$WORK/$input" "$fmt" 800 "$REPS" "$WORK/out/sharp-$input.$fmt")
    fi
    scores=$("$BENCH" score "$WORK/$input" "$WORK/out/ours-$input.$fmt" \
      $([ "$SHARP_OK" = 1 ] && echo "$WORK/out/sharp-$input.$fmt"))
    our_psnr=$(echo "$scores" | sed -n 1p | field psnr)
    their_psnr=$(echo "$scores" | sed -n 2p | field psnr)
    our_ms=$(echo "$ours" | field ms); their_ms=$(echo "$theirs" | field ms)
    our_cpu=$(echo "$ours" | field cpu); their_cpu=$(echo "$theirs" | field cpu)
    ratio=n/a
    if [ "$SHARP_OK" = 1 ]; then ratio=$(awk -v a="$our_cpu" -v b="$their_cpu" 'BEGIN{printf "%.2f", a/b}'); fi
    rows+=("| $input | $fmt | $our_cpu | ${their_cpu:-n/a} | $ratio | $our_ms | ${their_ms} | $(echo "$ours" | field bytes) | $(echo "$theirs" | field bytes) | $our_psnr | ${their_psnr:-n/a} | $(( $(echo "$ours" | field rss_kb) / 1024 )) | $( [ "$SHARP_OK" = 1 ] && echo $(( $(echo "$theirs" | field rss_kb) / 1024 )) || echo n/a) |")
  done
done

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
{
  echo "Transform benchmark, $(date -u +%Y-%m-%d), ${cpu:-unknown CPU}, single-threaded, $REPS runs after one warm-up;"
  echo "load average ${LOAD_START} at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
  echo "Inputs: 3000x2000 photo-like JPEG (q90, 4:2:0) and 2000x1400 screenshot-like PNG, both resized to 800 wide."
  echo "Settings: WebP q80, method/effort 4 (both; ours SNS 0 + filter sharpness 2 for photos, SNS 45 and q79.8 for flat content)."
  echo "AVIF q50: ours aom speed 5 all-intra, 4:4:4, chroma delta-q on, filter-intra/smooth-intra/angle-delta off;"
  echo "Sharp effort 4 (aom cpu-used 5), its default 4:4:4. JPEG q80 progressive, optimised Huffman, 4:2:0 (both; our scan"
  echo "script: spectral selection only for photos, one DC scan for flat content). PNG: Sharp zlib-ng level 6 unfiltered"
  echo "(its default); ours Debian zlib, Average filter + RLE for photos, unfiltered level 2 for flat content. PNG decode:"
  echo "Sharp libspng + zlib-ng; ours our own 8-bit path with libdeflate (libspng for the rest)."
  echo "PSNR: RGB against a double-precision Lanczos3 of the full-size source, computed by bench.cpp for both outputs."
  echo "ms = CPU time per image (median; the whole process, all threads: Node's and libvips' included for Sharp);"
  echo "wall = best wall-clock time. The machine is shared (load average ${LOAD_START} at the start), so wall times"
  echo "include waiting for a core; CPU time is the steadier measure and ours/sharp compares it."
  echo "Peak RSS is the whole process: Sharp's includes Node (an idle Node with sharp loaded: $(( ${SHARP_IDLE_RSS:-0} / 1024 )) MB)."
  [ "$SHARP_OK" = 1 ] || echo "**Sharp 0.33.5 could not be installed or loaded here: its columns are n/a.**"
  echo
  echo "| input | format | ours ms | sharp ms | ours/sharp | ours wall | sharp wall | ours bytes | sharp bytes | ours PSNR | sharp PSNR | ours RSS MB | sharp RSS MB |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
} > "$WORK/table.md"
cat "$WORK/table.md"

README="$ROOT/bench/README.md"
[ -f "$README" ] || printf '# Benchmarks\n\nEach benchmark is run on demand and measures its baseline in the same run.\n' > "$README"
if ! grep -q '<!-- transform-bench:start -->' "$README"; then
  printf '\n## Transform engine vs Sharp (`bench/transform/run.sh`)\n\n<!-- transform-bench:start -->\n<!-- transform-bench:end -->\n' >> "$README"
fi
python3 - "$README" "$WORK/table.md" <<'PY'
import sys
readme, table = sys.argv[1], open(sys.argv[2]).read()
text = open(readme).read()
start, end = '<!-- transform-bench:start -->', '<!-- transform-bench:end -->'
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
open(readme, 'w').write(head + start + '\n' + table + end + tail)
PY
echo "table written to $README" >&2
