#!/usr/bin/env bash
# The host's share of a `--backend cuda` decode or encode, measured without a GPU: the command
# runs on the emulated CUDA runtime (build/emulate, docs/DEVELOPERS.md) under perf, on one thread,
# and each sample is put where its call chain says it belongs: a kernel (emulated), a copy or
# memset the emulator carries out, the emulator's own API bookkeeping, or the host code a GPU
# machine runs too. The last is what matters: its seconds per tile (decode) or per GB of payload
# (encode) are what the CPU must give for the GPU's work. The host code is the build's (emulate
# preset: -O2 -g); a page fault's kernel time counts where it falls.
#
#   tools/host-share.sh SCAN_DIR [PERF_HZ [DECODE_OPTION...]]            decode a scan set
#   tools/host-share.sh --encode PAYLOAD [PERF_HZ [ENCODE_OPTION...]]    encode a file into a plate
#
# (needs perf; writes ./host-share.data and .txt). DECODE_OPTIONs go to `qrplate decode`: e.g.
# `--prefetch 16` for a small scan, whose tiles the default read-ahead budget would all read
# before the first is registered (then no buffer is ever recycled, and every tile's reading pays
# for fresh pages, as no long scan does). ENCODE_OPTIONs go to `qrplate encode` (e.g.
# `--compression none`); the plate is written to a temporary directory and removed.
set -euo pipefail
mode=decode
if [ "${1:-}" = --encode ]; then
  mode=encode
  shift
fi
input=${1:?usage: tools/host-share.sh [--encode] SCAN_DIR|PAYLOAD [PERF_HZ [OPTION...]]}
hz=${2:-1000}
shift $(( $# < 2 ? $# : 2 ))
here=$(cd "$(dirname "$0")/.." && pwd)
q=$here/build/emulate/qrplate
[ -x "$q" ] || { echo "host-share: build the emulate preset first (cmake --preset emulate && cmake --build --preset emulate)" >&2; exit 2; }
command -v perf >/dev/null || { echo "host-share: perf is missing (apt-get install linux-perf)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$mode" = decode ]; then
  perf record -q -e cpu-clock -F "$hz" --call-graph dwarf,8192 -o host-share.data -- \
    "$q" decode "$input" -o "$work/out.bin" --backend cuda --threads 1 --no-progress --report host-share.report.json "$@"
  units=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tiles"]["reads"] or 1)' host-share.report.json)
else
  perf record -q -e cpu-clock -F "$hz" --call-graph dwarf,8192 -o host-share.data -- \
    "$q" encode "$input" -o "$work/plate" --backend cuda --threads 1 --no-progress "$@"
  units=$(stat -c %s "$input")
fi
perf script -i host-share.data -F comm,tid,ip,sym 2>/dev/null >host-share.txt
python3 - host-share.txt "$hz" "$mode" "$units" <<'EOF'
import collections, json, re, sys
samples, tids, cur, tid = [], [], None, None
for line in open(sys.argv[1], errors="replace"):
    if not line.strip():
        if cur is not None:
            samples.append(cur)
            tids.append(tid)
        cur = None
    elif not line[0].isspace():
        cur = []
        fields = line.split()
        tid = fields[1] if len(fields) > 1 else "?"
    elif cur is not None:
        parts = line.split(None, 1)
        cur.append(parts[1].strip() if len(parts) > 1 else "?")
if cur:
    samples.append(cur)
    tids.append(tid)
hz = float(sys.argv[2])
mode, units = sys.argv[3], float(sys.argv[4])
# The first of these (from the root) on a host sample's chain names the part of the work.
if mode == "decode":
    parts = [(p, p) for p in ["read_gray_image", "register_against", "register_tile", "correct_lattice",
                              "integral_image", "read_first_attempts", "decode_in", "outer", "write"]]
    scale = 1000.0 / units  # ms per tile
else:
    parts = [("payload_reader", "reading the payload"), ("write_frame", "frames (header, CRC32C)"),
             ("make_data_body", "frames (header, CRC32C)"), ("pad_data_body", "frames (header, CRC32C)"),
             ("outer_encoder", "outer parity"), ("encode_cuda", "batch encode, host side"),
             ("blit", "raster of the unit"), ("count_region_row", "preview"), ("preview_builder", "preview"),
             ("put_region", "plate.tif (tiles)"), ("write_tiles", "plate.tif (tiles)"),
             ("encode_tile", "plate.tif (tiles)"), ("tiled_bilevel_writer", "plate.tif (tiles)")]
    scale = 1e9 / units  # s per GB
where, host = collections.Counter(), collections.Counter()
by_thread = collections.defaultdict(collections.Counter)  # host samples per thread, by part
for chain, tid in zip(samples, tids):
    text = " | ".join(chain)
    if re.search(r"run_grid|run_block|qrplate_emu_fiber_main|_kernel\b", text):
        where["kernels (emulated)"] += 1
    elif "flush_locked" in text or "run_now_locked" in text:
        where["copies and memsets (emulated)"] += 1
    elif re.search(r"qrplate_emu|\bcuda[A-Z]\w*", text):
        where["CUDA API (emulator's bookkeeping)"] += 1
    else:
        where["host code"] += 1
        part = next((name for p, name in parts if any(p in f for f in reversed(chain))), "other")
        host[part] += 1
        by_thread[tid][part] += 1
total = sum(where.values())
print(f"{total} samples at {hz:g} Hz, {units:g} {'tiles read' if mode == 'decode' else 'payload bytes'}")
for k, v in where.most_common():
    print(f"  {k:36s} {v / hz:8.3f} s  {100 * v / total:5.1f}%")
print(f"host code, by part of the {mode} ({'ms per tile read' if mode == 'decode' else 's per GB of payload'}):")
for k, v in host.most_common():
    print(f"  {k:36s} {v / hz:8.3f} s  {v / hz * scale:7.2f}")
# Per thread (one thread per stage here, --threads 1): the work of a stage that can only run on
# one thread (the payload's read and SHA-256 in an encode) binds the run at 1 / its figure.
print(f"host code, by thread (the same unit), busiest first:")
for t, parts_of in sorted(by_thread.items(), key=lambda kv: -sum(kv[1].values())):
    n = sum(parts_of.values())
    print(f"  thread {t:>8s} {n / hz:8.3f} s  {n / hz * scale:7.2f}   mostly {parts_of.most_common(1)[0][0]}")
EOF
