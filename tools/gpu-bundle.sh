#!/usr/bin/env bash
# Packs what a GPU session needs into .device (../shared/tools/device-bundle.sh does the packing):
# the CUDA build's GPU tests, GPU benchmarks and the qrplate program, stripped. The whole build
# bundled is ~77 MB, over the device tool's 64 MiB carry limit; this is ~57 MiB (2026-11-24).
#
#   tools/gpu-bundle.sh [BUILD_DIR]     (default build/cuda: cmake --preset cuda && cmake --build --preset cuda)
#
# Then, with the device tool and carry [".device"], one call each: bash tools/gpu-first-run.sh
# tests, ... bench, ... e2e, ... sanitize, ... profile (docs/DEVELOPERS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/cuda}
bundler=../shared/tools/device-bundle.sh
[ -x "$bundler" ] || bundler=/work/shared/tools/device-bundle.sh
pick=(qrplate tests/test_encode_cuda tests/test_batch tests/test_encode_cooperative tests/test_read_codes
      tests/test_decode_symbol tests/test_tile_passes tests/test_scan_decode bench/bench_encode_cuda
      bench/bench_decode_cuda bench/bench_decode bench/bench_encode bench/bench_plate)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for p in "${pick[@]}"; do
  if [ ! -x "$build/$p" ]; then
    echo "gpu-bundle: $build/$p is missing (build the CUDA preset with benchmarks on first)" >&2
    exit 1
  fi
  cp "$build/$p" "$stage/"
  strip --strip-unneeded "$stage/$(basename "$p")"
done
bash "$bundler" "$stage" .device
