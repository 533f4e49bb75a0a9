#!/usr/bin/env bash
# Each CUDA kernel's static resources as ptxas reports them (registers, per-thread stack frame,
# spills, static shared memory): no GPU needed, and what says how many blocks fit on an SM and
# where local memory traffic comes from. Recompiles kernels/*.cu with the CUDA build's own
# commands plus -Xptxas=-v (objects go to a temporary directory; the build is not touched).
#
#   tools/ptxas-report.sh [BUILD_DIR]     (default build/cuda: cmake --preset cuda first)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/cuda}
[ -f "$build/compile_commands.json" ] || { echo "ptxas-report: no $build/compile_commands.json (cmake --preset cuda)" >&2; exit 2; }
command -v c++filt >/dev/null || { echo "ptxas-report: c++filt (binutils) is missing" >&2; exit 2; }
python3 - "$build/compile_commands.json" <<'EOF'
import json, os, re, shlex, subprocess, sys, tempfile
rows = []
with tempfile.TemporaryDirectory() as tmp:
    for entry in json.load(open(sys.argv[1])):
        source = entry["file"]
        if not source.endswith(".cu") or "/kernels/" not in source or "/check/" in source:
            continue
        args = shlex.split(entry["command"])
        args[args.index("-o") + 1] = os.path.join(tmp, os.path.basename(source) + ".o")
        args.insert(1, "-Xptxas=-v")
        run = subprocess.run(args, cwd=entry["directory"], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"ptxas-report: compiling {source} failed:\n{run.stderr}")
        kernel = stack = spill = None
        for line in (run.stdout + run.stderr).splitlines():
            m = re.search(r"Compiling entry function '([^']+)'", line)
            if m:
                name = subprocess.run(["c++filt", m.group(1)], capture_output=True, text=True).stdout.strip()
                name = name.replace("(anonymous namespace)::", "")
                kernel = re.sub(r".*::", "", name.split("(")[0]) if "cub::" not in name else None
                continue
            m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores", line)
            if m:
                stack, spill = int(m.group(1)), int(m.group(2))
                continue
            m = re.search(r"Used (\d+) registers", line)
            if m and kernel:
                smem = re.search(r"(\d+) bytes smem", line)
                rows.append((os.path.relpath(source), kernel, int(m.group(1)), stack, spill, int(smem.group(1)) if smem else 0))
                kernel = None
print(f"{'kernel':38s} {'file':42s} {'regs':>5s} {'stack B':>8s} {'spill B':>8s} {'smem B':>7s}")
for source, kernel, regs, stack, spill, smem in rows:
    print(f"{kernel:38s} {source:42s} {regs:5d} {stack:8d} {spill:8d} {smem:7d}")
EOF
