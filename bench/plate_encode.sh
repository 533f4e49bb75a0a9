#!/usr/bin/env bash
# End-to-end `qrplate encode` throughput and peak memory, CPU backend, all cores: payloads made
# on the fly (random bytes from /dev/urandom through a pipe, so the input is standard input and
# no disk holds it), with --discard (the whole pipeline, nothing written) and to disk.
#   bench/plate_encode.sh [QRPLATE] [MiB]     defaults: build/release/qrplate, 1024
set -euo pipefail
qrplate=${1:-build/release/qrplate}
mib=${2:-1024}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # label, payload MiB, encode options...
  local label=$1 size=$2; shift 2
  local t0 t1 rss
  t0=$(date +%s.%N)
  if ! /usr/bin/time -f '%M' -o "$work/rss" bash -c "head -c $((size << 20)) /dev/urandom | $qrplate encode - $* --no-progress 2>$work/err"; then
    echo "$label: failed: $(tail -1 "$work/err")"
    return
  fi
  t1=$(date +%s.%N)
  rss=$(cat "$work/rss")
  awk -v l="$label" -v s="$size" -v a="$t0" -v b="$t1" -v r="$rss" \
    'BEGIN { printf "%-44s %6d MiB  %7.2f s  %7.1f MB/s  peak RSS %5.0f MiB\n", l, s, b - a, s * 1.048576 / (b - a), r / 1024 }'
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
run "v40-L --discard"                 "$mib" "-o $work/a --discard"
run "v40-L to disk (deflate)"         "$mib" "-o $work/b"
rm -rf "$work/b"
run "v3-L --discard"                  "$((mib / 8))" "-o $work/c --discard --version 3"
run "v3-L to disk (deflate)"          "$((mib / 8))" "-o $work/d --version 3"
rm -rf "$work/d"
run "v40-L --discard, 4 GiB, --buffer 600" "$((mib * 4))" "-o $work/e --discard --buffer 600"
