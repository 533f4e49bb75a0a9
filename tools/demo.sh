#!/usr/bin/env bash
# The main job on a built-in default: encode a sample (this repository's headers and docs, as a
# tar archive) into a plate: plate.json, plate.tif (tiled BigTIFF, 1 bit per module) and
# preview.png; read the plate image back and compare; scan it with the simulated SEM and read
# the bytes back from the scans; then show what an A4 plate holds.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh release qrplate
qrplate=build/release/qrplate
out=build/demo
rm -rf "$out"
mkdir -p "$out"

echo "== the sample: this repository's README, docs and headers as one tar archive"
tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 -cf "$out/sample.tar" README.md docs include
ls -l "$out/sample.tar"

echo "== encode it into a plate: version 10-M codes of 49 nm modules, default outer code 239+16"
"$qrplate" encode "$out/sample.tar" -o "$out/plate" --version 10 --ecc M

echo "== the plate directory"
ls -l "$out/plate"
echo "preview (open it to see the codes, bands and header strips): $out/plate/preview.png"

echo "== read the plate image back and compare with the sample"
"$qrplate" decode "$out/plate" -o "$out/restored.tar" --report "$out/decode-report.json"
cmp "$out/sample.tar" "$out/restored.tar" && echo "restored.tar is identical to sample.tar"

echo "== scan it with the simulated SEM (typical preset: 50 pA, 1 us dwell, 3 px/module, 10% overlap)"
"$qrplate" simulate "$out/plate" -o "$out/scans" --preset typical --px-per-module 3
echo "scans: $out/scans (scan.json, truth.json, 16-bit TIFF tiles); look at $out/scans/contact_sheet.png"

echo "== read the bytes back from the SEM scans and compare"
"$qrplate" decode "$out/scans" -o "$out/from-scans.tar" --report "$out/scan-report.json" --heatmap "$out/scan-heatmap.png"
cmp "$out/sample.tar" "$out/from-scans.tar" && echo "from-scans.tar is identical to sample.tar (report: $out/scan-report.json)"

echo "== one QR code in the terminal"
"$qrplate" qr "qrplate: bytes to plates of QR codes, and back" --format text

echo "== what one A4 plate holds at 49 nm with version 40-L codes"
"$qrplate" plan --plate A4 --version 40 --ecc L
