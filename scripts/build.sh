#!/usr/bin/env bash
# build.sh - configure and build ingot: "release" (build/) or "asan"
# (build-asan/, AddressSanitizer + UBSan). Usage: scripts/build.sh [release|asan]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kind=${1:-release}
case "$kind" in
  release) dir=$ROOT/build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)    dir=$ROOT/build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DINGOT_SANITIZE=ON) ;;
  *) echo "usage: scripts/build.sh [release|asan]" >&2; exit 2 ;;
esac
cmake -S "$ROOT" -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
