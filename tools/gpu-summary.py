#!/usr/bin/env python3
"""Summarises what a GPU run wrote (tools/gpu-first-run.sh's $OUT: Google Benchmark JSON from
bench_encode_cuda / bench_decode_cuda, and `qrplate bench --json` files) as Markdown for
docs/PERFORMANCE.md: every figure with the device and date its file names, beside the limit
measured in the same run (HBM copy, PCIe both ways) and the issue's target, as a fraction; and
the `qrplate decode --report` files of the e2e part (OUT_DIR/e2e/report_*.json), stage by stage, so
that decodes of one scan with different settings (--serial-reads, --strip-px) read side by side.

  tools/gpu-summary.py OUT_DIR [OUT_DIR ...]

Targets (issues #3 and #7, H100): device-resident v40-L auto-mask encode >= 100 GB/s of payload;
host-to-host encode >= 70% of host-to-device PCIe; read kernel >= 100 Gpixel/s; whole decodes of
8-bit tiles >= 70% of host-to-device PCIe (a byte a pixel). An encode sends back its matrices,
more bytes than its payloads (matrix_bytes_per_payload_byte), so its link bound is
min(h2d, d2h / that ratio); both are shown. Rows a run skipped (no device) are listed as skipped.
Exit status 1 when no file held a figure.
"""
import glob
import json
import os
import sys

ENCODE_TARGET = 100e9  # bytes of payload per second, device-resident v40-L auto mask
READ_TARGET = 100e9  # scan pixels per second, kernel only
LINK_SHARE_TARGET = 0.70  # of host-to-device PCIe, host to host


def gb(x):
    return "-" if x is None else f"{x / 1e9:.2f}"


def pct(x):
    return "-" if x is None else f"{100 * x:.0f}%"


def load(paths):
    """(google benchmark files, qrplate bench files, qrplate decode reports), each a list of (path, json)."""
    gbench, qbench, reports = [], [], []
    for d in paths:
        for path in sorted(glob.glob(os.path.join(d, "*.json")) + glob.glob(os.path.join(d, "e2e", "report_*.json"))):
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and "benchmarks" in data:
                gbench.append((path, data))
            elif isinstance(data, dict) and "machine" in data:
                qbench.append((path, data))
            elif isinstance(data, dict) and "seconds_by_stage" in data:
                reports.append((path, data))
    return gbench, qbench, reports


def summarise_reports(reports, out):
    """Decodes of the e2e scan: where their seconds went, and how long the host waited for the
    reads ahead it left to the GPU (near 0: registering the next tiles hid them)."""
    if not reports:
        return False
    out.append("### Decodes of the e2e scan (qrplate decode --report; the device is the run's)")
    out.append("")
    table_head(out, "report", "seconds", "tiles", "code batches", "cells", "frames", "rest", "waiting for reads ahead",
               "codes read in the background", "codes unreadable", "tiles: loading", "placing",
               "tiles registered ahead")
    sec = lambda x: "-" if x is None else f"{x:.3f}"
    for path, r in reports:
        st = r.get("seconds_by_stage", {})
        cb = r.get("code_batches", {})
        ot = r.get("seconds_of_tiles", {})  # the tiles' seconds split (reports since register-ahead)
        tiles = r.get("tiles", {})
        ahead = (f"{tiles['registered_ahead']} of {tiles.get('reads', '?')}" if "registered_ahead" in tiles else "-")
        out.append(f"| {os.path.basename(path)} | {sec(r.get('seconds'))} | {sec(st.get('tiles'))} | "
                   f"{sec(st.get('code_batches'))} | {sec(st.get('cells'))} | {sec(st.get('frames'))} | {sec(st.get('rest'))} | "
                   f"{sec(cb.get('seconds_waiting_for_background'))} | {cb.get('codes_read_in_background', '-')} | "
                   f"{r.get('codes', {}).get('unreadable', '-')} | {sec(ot.get('loading'))} | "
                   f"{sec(ot.get('placing'))} | {ahead} |")
    out.append("")
    return True


def rows_of(data):
    """name -> row: the median aggregate where repetitions made one, else the iteration row."""
    rows = {}
    for b in data.get("benchmarks", []):
        name = b.get("run_name", b.get("name", ""))
        for suffix in ("/real_time", "/manual_time", "/process_time"):  # Google Benchmark's timing suffixes
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                rows[name] = b
        elif name not in rows:
            rows[name] = b
    return rows


def rate(row, key):
    if row is None or row.get("error_occurred"):
        return None
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) else None


def measured(rows, prefix):
    """The rows of one family that ran (not skipped), by name."""
    return [(n, r) for n, r in sorted(rows.items()) if n.startswith(prefix) and not r.get("error_occurred")]


def table_head(out, *columns):
    out.append("| " + " | ".join(columns) + " |")
    out.append("|" + "---|" * len(columns))


def limits(rows):
    get = lambda name: rate(rows.get("BM_cuda_copy/" + name), "bytes_per_second")
    return {k: get(k) for k in ("device_to_device", "host_to_device_pinned", "host_to_device_pageable",
                                "device_to_host_pinned", "both_ways_pinned")}


def summarise_gbench(path, data, out):
    ctx = data.get("context", {})
    rows = rows_of(data)
    lim = limits(rows)
    out.append(f"### {os.path.basename(path)}: {ctx.get('gpu', 'device not named')}, {ctx.get('date', 'no date')}")
    out.append("")
    if any(v is not None for v in lim.values()):
        table_head(out, "limit (same run)", "GB/s")
        for k, v in lim.items():
            if v is not None:
                out.append(f"| BM_cuda_copy/{k} | {gb(v)} |")
        out.append("")
    h2d, d2h = lim["host_to_device_pinned"], lim["device_to_host_pinned"]
    skipped = sorted(n for n, r in rows.items() if r.get("error_occurred"))

    enc_dev = measured(rows, "BM_cuda_encode_device")
    if enc_dev:
        table_head(out, "encode, device-resident", "payload GB/s", "codes/s", "of 100 GB/s (v40-L auto)")
        for n, r in enc_dev:
            b = rate(r, "bytes_per_second")
            target = pct(b / ENCODE_TARGET) if "/v40/L/auto/" in n and b else ""
            out.append(f"| {n} | {gb(b)} | {rate(r, 'items_per_second') or 0:,.0f} | {target} |")
        out.append("")
    enc_host = measured(rows, "BM_cuda_encode_host")
    if enc_host:
        table_head(out, "encode, host to host", "payload GB/s", "of h2d", "link bound min(h2d, d2h / ratio)",
                   "of the bound", ">= 70% of h2d")
        for n, r in enc_host:
            b = rate(r, "bytes_per_second")
            ratio = rate(r, "matrix_bytes_per_payload_byte")
            bound = min(h2d, d2h / ratio) if h2d and d2h and ratio else None
            share = b / h2d if b and h2d else None
            met = "" if share is None else ("yes" if share >= LINK_SHARE_TARGET else "no")
            out.append(f"| {n} | {gb(b)} | {pct(share)} | {gb(bound)} | {pct(b / bound) if b and bound else '-'} | {met} |")
        out.append("")
    reads = measured(rows, "BM_cuda_read_device")
    if reads:
        table_head(out, "read kernel, device-resident", "Gpixel/s", "codes/s", "of 100 Gpixel/s")
        for n, r in reads:
            p = rate(r, "pixels_per_second")
            out.append(f"| {n} | {gb(p)} | {rate(r, 'items_per_second') or 0:,.0f} | {pct(p / READ_TARGET) if p else '-'} |")
        out.append("")
    across = measured(rows, "BM_cuda_read_across") + measured(rows, "BM_cpu_read_across")
    if across:
        # Codes no tile holds whole, read on the GPU from resident tiles, beside the same reads on
        # every core of this machine's CPU (what the scan reader would otherwise spend).
        table_head(out, "codes across tiles", "codes/s", "Gpixel/s")
        for n, r in across:
            out.append(f"| {n} | {rate(r, 'items_per_second') or 0:,.0f} | {gb(rate(r, 'pixels_per_second'))} |")
        out.append("")
    passes = measured(rows, "BM_cuda_tile_first_pass")
    if passes:
        table_head(out, "registration's first pass (upload, integral, contrast)", "link GB/s", "of h2d", "Gpixel/s")
        for n, r in passes:
            b = rate(r, "bytes_per_second")
            out.append(f"| {n} | {gb(b)} | {pct(b / h2d) if b and h2d else '-'} | {gb(rate(r, 'pixels_per_second'))} |")
        out.append("")
    register = measured(rows, "BM_register_tiles")
    if register:
        table_head(out, "registration, host CPU per Mpixel", "ms", "cores to register 10 Gpixel/s")
        for n, r in register:
            ms = rate(r, "host_cpu_ms_per_Mpx")
            cores = f"{ms * 10e9 / 1e6 / 1e3:.1f}" if ms else "-"
            out.append(f"| {n} | {ms if ms is None else f'{ms:.2f}'} | {cores} |")
        out.append("")
    if skipped:
        out.append(f"Skipped in this file ({len(skipped)}): " + ", ".join(skipped[:8]) + (" ..." if len(skipped) > 8 else ""))
        out.append("")
    return bool(enc_dev or enc_host or reads or across or passes or register or any(v is not None for v in lim.values()))


def summarise_qbench_encode(path, data, out):
    """`qrplate bench --json` encode rows (results): what a user's `qrplate bench` shows."""
    m = data["machine"]
    rows = data.get("results") or []
    if not rows:
        return False
    out.append(f"### {os.path.basename(path)} (qrplate bench): {m.get('gpu') or 'no GPU'}, {m.get('date', 'no date')}, "
               f"{m.get('logical_cores', '?')} cores")
    out.append("")
    table_head(out, "backend", "shape", "mask", "data", "payload GB/s", "codes/s",
               "of 100 GB/s (CUDA, v40-L auto, device)")
    for r in rows:
        b = r.get("payload_bytes_per_s")
        judged = r.get("backend") == "cuda" and r.get("data") == "device" and r.get("version") == 40 and \
            r.get("ecc") == "L" and r.get("mask") == "auto"
        out.append(f"| {r.get('backend')} | {r.get('version')}-{r.get('ecc')} | {r.get('mask')} | {r.get('data')} | "
                   f"{gb(b)} | {r.get('codes_per_s', 0):,.0f} | {pct(b / ENCODE_TARGET) if judged and b else ''} |")
    out.append("")
    return True


def summarise_qbench(path, data, h2d, h2d_from, out):
    if data.get("results"):
        return summarise_qbench_encode(path, data, out)
    m = data["machine"]
    rows = data.get("scan_results") or []
    if not rows:
        return False
    out.append(f"### {os.path.basename(path)}: {m.get('gpu') or 'no GPU'}, {m.get('date', 'no date')}, "
               f"{m.get('logical_cores', '?')} cores"
               + (" (tiles from the disk)" if data.get("from_disk") else " (tiles from host memory)"))
    out.append("")
    if h2d:
        out.append(f"Set against host_to_device_pinned = {gb(h2d)} GB/s from {h2d_from} (the same session).")
        out.append("")
    # The plates scanned: a strip narrower than the plate is read a row at a time (as an A4 plate
    # always is), one as wide a band of rows at once.
    plates = []
    for r in rows:
        if r.get("plate_um") and r.get("code_columns"):
            w, h = r["plate_um"]
            text = f"{r.get('version')}-{r.get('ecc')} at {r.get('px_per_module')} px/module: {w:.0f} x {h:.0f} um, " \
                   f"{r['code_columns']} code columns"
            if text not in plates:
                plates.append(text)
    if plates:
        out.append("Plates: " + "; ".join(plates) + ".")
        out.append("")
    disk = bool(data.get("from_disk"))
    table_head(out, "backend", "shape", "px/module", "strip", "scan Gpixel/s", "codes/s", "of h2d (a byte a pixel)",
               ">= 70% of h2d", *(("disk read GB/s", "of the disk (file bytes)", "cached") if disk else ()))
    for r in rows:
        p = r.get("scan_pixels_per_s")
        share = p / h2d if p and h2d else None
        met = ("" if share is None or r.get("backend") != "cuda" or r.get("serial_reads")
               or r.get("register_ahead") is False
               else ("yes" if share >= LINK_SHARE_TARGET else "no"))
        shape = f"{r.get('version')}-{r.get('ecc')}"
        # Twins for comparison: every read batch waited for; each tile registered when its rows come.
        where = (r.get("backend", "?") + ("-serial" if r.get("serial_reads") else "")
                 + ("-now" if r.get("register_ahead") is False else ""))
        strip = r.get("strip_px")
        if r.get("rows_per_prepare"):  # code rows prepared at once (qrplate decode --prepare-rows)
            strip = f"{strip} ({r['rows_per_prepare']} rows)"
        line = (f"| {where} | {shape} | {r.get('px_per_module')} | {strip} | {gb(p)} | "
                f"{r.get('codes_per_s', 0):,.0f} | {pct(share)} | {met} |")
        if disk:
            d = r.get("disk_bytes_per_s")
            seconds, file_bytes = r.get("seconds"), r.get("scan_file_bytes")
            used = file_bytes / seconds / d if d and seconds and file_bytes else None
            line += f" {gb(d)} | {pct(used)} | {pct(r.get('cached_at_start'))} |"
        out.append(line)
    out.append("")
    # Where each row's median decode went (qrplate decode's stages): with a fast GPU the host's
    # stages are what is left, and the tile reads show the work registration had (a tile read
    # again with its kept pose is not registered again).
    if any("seconds_by_stage" in r for r in rows):
        table_head(out, "backend", "shape", "strip", "seconds", "tiles (loading, placing)",
                   "code batches (waiting for reads ahead)", "cells", "frames (of finishing)", "rest",
                   "tile reads (registered ahead, kept pose)")
        sec = lambda x: "-" if x is None else f"{x:.3f}"
        for r in rows:
            st, ot, of = r.get("seconds_by_stage", {}), r.get("seconds_of_tiles", {}), r.get("seconds_of_frames", {})
            where = (r.get("backend", "?") + ("-serial" if r.get("serial_reads") else "")
                     + ("-now" if r.get("register_ahead") is False else ""))
            out.append(f"| {where} | {r.get('version')}-{r.get('ecc')} | {r.get('strip_px')} | {sec(r.get('seconds'))} | "
                       f"{sec(st.get('tiles'))} ({sec(ot.get('loading'))}, {sec(ot.get('placing'))}) | "
                       f"{sec(st.get('code_batches'))} ({sec(r.get('seconds_waiting_for_background'))}) | "
                       f"{sec(st.get('cells'))} | {sec(st.get('frames'))} ({sec(of.get('finishing'))}) | "
                       f"{sec(st.get('rest'))} | {r.get('tile_reads', '-')} ({r.get('tiles_registered_ahead', '-')}, "
                       f"{r.get('tile_reads_with_kept_pose', '-')}) |")
        out.append("")
    return True


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    gbench, qbench, reports = load(argv[1:])
    out = ["## GPU run summary (tools/gpu-summary.py)", ""]
    found = False
    h2d, h2d_from = None, None
    for path, data in gbench:
        found |= summarise_gbench(path, data, out)
        if h2d is None and limits(rows_of(data))["host_to_device_pinned"]:
            h2d, h2d_from = limits(rows_of(data))["host_to_device_pinned"], os.path.basename(path)
    for path, data in qbench:
        found |= summarise_qbench(path, data, h2d, h2d_from, out)
    found |= summarise_reports(reports, out)
    if not found:
        print("gpu-summary: no figure in " + ", ".join(argv[1:]), file=sys.stderr)
        return 1
    if h2d is None and qbench:
        out.append("(No BM_cuda_copy/host_to_device_pinned in these files: whole decodes are not set against the link.)")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
