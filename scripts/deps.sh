#!/usr/bin/env bash
# Installs every system package the build, the tests and the benchmarks need.
# Idempotent: packages already present are skipped. Needs root for apt-get;
# without root it prints what is missing and exits non-zero.
#   scripts/deps.sh            everything
#   scripts/deps.sh --origin   only what building nic-origin needs (the container's build stage;
#                              Emscripten and Node build the SDK that nic-origin's page embeds)
set -euo pipefail

ORIGIN_PKGS=(
  build-essential cmake ninja-build pkg-config ca-certificates python3 catch2
  libboost1.81-dev libcurl4-openssl-dev libssl-dev
  libjpeg62-turbo-dev libturbojpeg0-dev libspng-dev libwebp-dev libavif-dev libgif-dev zlib1g-dev libdeflate-dev
  liblcms2-dev libhiredis-dev
  emscripten binaryen nodejs
)

PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang-14 lld-14 wasi-libc libc++-14-dev-wasm32 libc++abi-14-dev-wasm32 libclang-rt-14-dev-wasm32
  emscripten binaryen
  catch2
  libboost1.81-dev libcurl4-openssl-dev libssl-dev
  libjpeg62-turbo-dev libturbojpeg0-dev libspng-dev libwebp-dev libavif-dev libgif-dev zlib1g-dev libdeflate-dev
  liblcms2-dev
  python3 curl libjpeg-turbo-progs
  radosgw ceph-mon ceph-osd ceph-common
  podman runc debootstrap
  libhiredis-dev redis-server haproxy python3-yaml
  chromium
)

missing=()
if [ "${1:-}" = "--origin" ]; then
  PKGS=("${ORIGIN_PKGS[@]}")
# Node.js may come from another source than Debian (nodesource ships npm inside nodejs).
elif ! command -v node >/dev/null 2>&1; then PKGS+=(nodejs npm); fi
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
