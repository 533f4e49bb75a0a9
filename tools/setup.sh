#!/usr/bin/env bash
# Installs the Debian packages qrplate builds and tests with, when they are missing
# (apt-get; through sudo when not root), then configures and builds a preset.
#   tools/setup.sh [PRESET [TARGET...]]   PRESET: release (default), cpu, debug, asan, cuda, ci;
#                                         TARGETs: build only these (default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
shift || true
targets=()
for t in "$@"; do targets+=(--target "$t"); done

packages=(cmake ninja-build g++ pkg-config
          libgtest-dev libgmock-dev libbenchmark-dev libpng-dev libcli11-dev
          libtiff-dev libdeflate-dev libisal-dev libssl-dev nlohmann-json3-dev
          libqrencode-dev libzxing-dev libzbar-dev   # test oracles and benchmark peers
          python3)                                   # tools/gpu-summary.py and its test
tools/install-packages.sh "${packages[@]}"

cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)" "${targets[@]}"
