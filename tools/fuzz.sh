#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz": Clang, ASan + UBSan; tests/fuzz/) and runs each for
# SECONDS (default 20) on its seed corpus, as many at once as there are cores. Exit 1 when any
# target finds a crash, a sanitizer report, a leak, a timeout or an allocation past 1 GiB: the
# input is left in build/fuzz/artifacts/, the log in build/fuzz/logs/.
#   tools/fuzz.sh [SECONDS [TARGET...]]   TARGETs: manifest_binary manifest_json scan_json
#                                          gray_image rs_decode blind_reader (default: all)
# New inputs that reach new code are kept in build/fuzz/corpus/<target>/ for the next run; the
# checked-in seeds (tests/fuzz/corpus/<target>/) are only read. To reproduce a failure:
#   build/fuzz/tests/fuzz/fuzz_<target> build/fuzz/artifacts/<target>-crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(manifest_binary manifest_json scan_json gray_image rs_decode blind_reader)

# Clang and its runtimes (libFuzzer, ASan, UBSan: libclang-rt-*-dev, only recommended by clang, so
# named here). Only this script installs them: tools/setup.sh and the rest of CI build with g++.
packages=(clang libclang-rt-dev)
tools/install-packages.sh "${packages[@]}"

# The other packages, the configure and the build of just the fuzz targets.
build_targets=()
for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
tools/setup.sh fuzz "${build_targets[@]}"

# Largest input per target: a manifest and its CRC-fixing byte, JSON documents, small image files,
# a block or symbol description, a 64 x 64 image of 16-bit samples.
max_len() {
  case "$1" in
    manifest_binary) echo 256 ;;
    manifest_json | scan_json) echo 4096 ;;
    gray_image) echo 8192 ;;
    rs_decode) echo 1024 ;;
    blind_reader) echo 8200 ;;
    *) echo 4096 ;;
  esac
}

out=build/fuzz
mkdir -p "$out/logs" "$out/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

run_one() {
  local t=$1
  local args=(-max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048
              -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-")
  case "$t" in manifest_json | scan_json) args+=(-dict=tests/fuzz/json.dict) ;; esac
  mkdir -p "$out/corpus/$t"
  "$out/tests/fuzz/fuzz_$t" "${args[@]}" "$out/corpus/$t" "tests/fuzz/corpus/$t" >"$out/logs/$t.log" 2>&1
}

cores=$(nproc)
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= cores)); do wait -n || true; done
  rm -f "$out/logs/$t.rc"
  { if run_one "$t"; then echo 0; else echo $?; fi >"$out/logs/$t.rc"; } &
done
wait
failed=()
for t in "${targets[@]}"; do
  if [ "$(cat "$out/logs/$t.rc" 2>/dev/null)" = 0 ]; then
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz_$t: ok, ${seconds} s, ${runs} inputs"
  else
    failed+=("$t")
    echo "fuzz_$t: FAILED (log: $out/logs/$t.log)"
    grep -E 'ERROR:|SUMMARY:|runtime error|fuzz contract broken|Test unit written' "$out/logs/$t.log" | head -n 20 | sed 's/^/  /'
  fi
done
if ((${#failed[@]})); then
  echo "qrplate: fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
