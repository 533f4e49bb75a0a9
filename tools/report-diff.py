#!/usr/bin/env python3
"""Compares two `qrplate decode --report` files, ignoring what may differ between runs of the same
decode (timings, the count of tiles read ahead) or between the CPU and CUDA backends (tiles whose
integral image had to be built on the host, the tile pixels sent to the GPU, how the code batches
were read). Exit 0 when the rest is equal; else prints
a unified diff of the rest and exits 1.

usage: tools/report-diff.py A.json B.json
"""
import difflib
import json
import sys

# Keys of the report (tools/qrplate/cmd_decode.cpp) whose values depend on the run, not the scan.
IGNORED = {"seconds", "seconds_by_stage", "read_ahead", "integrals_built_on_host", "pixels_uploaded",
           "pixel_bytes_uploaded", "pixels_uploaded_as_read", "pixel_bytes_staged", "code_batches"}


def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in IGNORED}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    texts = []
    for path in sys.argv[1:]:
        with open(path) as f:
            texts.append(json.dumps(strip(json.load(f)), indent=1, sort_keys=True).splitlines())
    diff = list(difflib.unified_diff(texts[0], texts[1], sys.argv[1], sys.argv[2], lineterm=""))
    print("\n".join(diff) if diff else "reports agree")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
