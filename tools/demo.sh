#!/usr/bin/env bash
# The main job on a built-in default. At this stage of qrplate: encode built-in samples into
# QR codes and write them as images (PNG, SVG, terminal), then encode a batch of codes and
# report the throughput. Later stages grow this into the full plate round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh release
qrplate=build/release/qrplate
out=build/demo
mkdir -p "$out"

echo "== a short text, automatic version and mask, shown in the terminal"
"$qrplate" qr "qrplate: bytes to plates of QR codes, and back" --format text

echo "== the same as PNG and SVG"
"$qrplate" qr "qrplate: bytes to plates of QR codes, and back" -o "$out/hello.png"
"$qrplate" qr "qrplate: bytes to plates of QR codes, and back" -o "$out/hello.svg"

echo "== 2900 bytes of binary data (this repository's README, gzipped) in one version-40-L code"
gzip -9c README.md | head -c 2900 >"$out/sample.bin"
"$qrplate" qr --input "$out/sample.bin" --ecc L --scale 3 -o "$out/sample.png"

echo "== digits use numeric mode: 7089 of them still fit version 40-L"
digits=$(head -c 20000 /dev/zero | tr '\0' '7' | head -c 7089)
"$qrplate" qr "$digits" --ecc L --scale 2 -o "$out/digits.png"

echo "== outputs in $out:"
ls -l "$out"
