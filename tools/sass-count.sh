#!/usr/bin/env bash
# Static SASS instruction counts of each kernel in a .cu file (default: the penalty-task probes,
# tools/probes/penalty_task.cu; any of kernels/*.cu works too), for sm_90 with the build's flags:
# what nvcc and ptxas make of a piece of device code, measured without a GPU. Counts are static:
# a loop's body counts once. "local" counts the local-memory loads and stores (LDL, STL).
#
#   tools/sass-count.sh [FILE.cu]      needs nvcc and nvdisasm (on PATH or in /usr/local/cuda/bin;
#                                      this project's CUDA image lacks it: `pip download --no-deps
#                                      nvidia-cuda-nvdisasm`, unzip the wheel, put its bin/ on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
source=${1:-tools/probes/penalty_task.cu}
export PATH="$PATH:/usr/local/cuda/bin"
command -v nvcc >/dev/null || { echo "sass-count: nvcc is missing" >&2; exit 2; }
command -v nvdisasm >/dev/null || { echo "sass-count: nvdisasm is missing (see this script's header)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nvcc -std=c++17 -O3 -arch=sm_90 --expt-relaxed-constexpr --fmad=false -Iinclude -Ihost -Ikernels -cubin -o "$tmp/probe.cubin" "$source"
nvdisasm -c "$tmp/probe.cubin" > "$tmp/probe.sass"
python3 - "$tmp/probe.sass" <<'PY'
import re, subprocess, sys
counts, ops, cur = {}, {}, None
for line in open(sys.argv[1]):
    m = re.match(r'\s*\.text\.(\S+):', line)
    if m:
        name = subprocess.run(["c++filt", m.group(1)], capture_output=True, text=True).stdout.strip()
        cur = name.replace("(anonymous namespace)::", "").split("(")[0]
        counts[cur], ops[cur] = 0, {}
        continue
    m = re.match(r'\s*/\*[0-9a-f]{4,}\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)', line)
    if m and cur and m.group(2) != "NOP":
        counts[cur] += 1
        ops[cur][m.group(2)] = ops[cur].get(m.group(2), 0) + 1
for k, n in counts.items():
    top = ", ".join(f"{o} {c}" for o, c in sorted(ops[k].items(), key=lambda x: -x[1])[:6])
    local = ops[k].get("LDL", 0) + ops[k].get("STL", 0)
    print(f"{n:6d}  local {local:4d}  {k}  ({top})")
PY
