#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing, builds the CPU
# backend with warnings as errors, runs every test. Exit code 0 only if all pass.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh ci
ctest --preset ci -j "$(nproc)"
