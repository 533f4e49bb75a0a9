#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing, builds the CPU
# backend with warnings as errors and runs every test; then builds the CUDA backend's .cu files
# on the emulated CUDA runtime (tests/cuda_emulation: no GPU or nvcc needed) and runs every test
# again, so that the --backend cuda paths run against the CPU's results too. Exit code 0 only if
# all pass. QRPLATE_SKIP_EMULATION=1 skips the second half.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh ci
ctest --preset ci -j "$(nproc)"
if [ "${QRPLATE_SKIP_EMULATION:-0}" != 1 ]; then
  echo "== The CUDA backend on the emulated CUDA runtime (tests/cuda_emulation)"
  cmake --preset emulate >/dev/null
  cmake --build --preset emulate -j "$(nproc)"
  ctest --preset emulate -j "$(nproc)"
fi
