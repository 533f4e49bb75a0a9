#!/usr/bin/env bash
# What a session with a GPU runs first (docs/DEVELOPERS.md), on the GPU machine, over a bundle
# made by tools/gpu-bundle.sh (carry [".device"]). Six parts, each one device call; 30 minutes of
# device time do not hold them all, so `first` comes first:
#
#   bash tools/gpu-first-run.sh first   the CUDA tests, then the headline figures of #3 and #7 (v40-L
#                                       encode on device memory, auto mask and mask 0, and host to
#                                       host; the read kernel on device memory, v10-M and v40-L at 2
#                                       and 3 px/module; codes across tiles, GPU vs CPU; whole decodes
#                                       CPU vs CUDA, of plates within a strip and of one wider, read row
#                                       by row, and the latter's CUDA rows again without registering
#                                       ahead; HBM and PCIe copies)
#   bash tools/gpu-first-run.sh tests   the GPU tests (CUDA vs CPU, byte for byte)
#   bash tools/gpu-first-run.sh sanitize compute-sanitizer memcheck and racecheck on the smaller
#                                       CUDA tests, then memcheck on a whole CUDA scan decode
#   bash tools/gpu-first-run.sh bench   the GPU benchmarks and `qrplate bench` (JSON; --scan: whole
#                                       decodes of simulated scan sets, CPU vs CUDA, from memory
#                                       and from the disk), with the
#                                       HBM and PCIe copies measured in the same runs; bench_plate
#                                       (the plate encoder's host stages on this machine's cores)
#   bash tools/gpu-first-run.sh profile Nsight Compute (ncu) on the cooperative encode kernel (v40-L)
#                                       and the read kernels (v10-M and v40-L at 3 px/module): what
#                                       binds them, memory or compute (text reports and .ncu-rep)
#   bash tools/gpu-first-run.sh e2e     a plate encoded with --backend cuda and cpu (plate.tif
#                                       compared); a simulated 8-bit scan of it read with --backend cuda
#                                       and --backend cpu (reports and bytes compared), and with
#                                       CUDA again under QRPLATE_CUDA_SYNC=block (blocking waits) and in
#                                       column strips 4x as wide (--strip-px 32768) and with
#                                       each read batch waited for (--serial-reads) and with
#                                       each tile registered when its rows come
#                                       (--no-register-ahead), then
#                                       bench_decode's qrplate rows (small plates, one thread; a
#                                       400 kB plate on every core, CPU vs CUDA, and its file reading),
#                                       then 512 MiB encoded into a plate (--discard), CPU vs CUDA
#                                       (and CUDA with --hash sha256-tree), and with CUDA written
#                                       out (deflate, none; the tree hash; to /dev/shm),
#                                       then registration alone (bench_decode BM_register_tiles)
#
# Logs go to $OUT (the device tool brings them back) or ./gpu-run; summary.txt has one line per
# step with its exit status. A step that fails does not stop the others. One device call may run
# 600 s: a part's steps share GPU_RUN_BUDGET seconds (default 560), each step's limit is cut to
# what is left, and a step with under 15 s left is skipped (exit 125 in the summary), so the logs
# of the steps that ran always come back.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: gpu-first-run.sh first|tests|sanitize|bench|profile|e2e}
out=${OUT:-gpu-run}
mkdir -p "$out"
run=.device/run.sh
[ -x "$run" ] || { echo "gpu-first-run: no .device bundle (tools/gpu-bundle.sh, then carry .device)" >&2; exit 2; }
export LD_LIBRARY_PATH="$PWD/.device/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
sanitizer=$(command -v compute-sanitizer || true)
for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [ -z "$sanitizer" ] && [ -x "$c" ] && sanitizer=$c
done
sanitizer=${sanitizer:-compute-sanitizer}  # missing: those steps fail with 127 and say so

deadline=$((SECONDS + ${GPU_RUN_BUDGET:-560}))

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit (cut to the part's budget left),
# its output in $out/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS left=$((deadline - SECONDS))
  if [ "$left" -lt 15 ]; then
    printf '%-28s exit 125     0 s  (skipped: no time left in the budget)\n' "$name" | tee -a "$out/summary.txt"
    echo "skipped: no time left in this part's budget" >"$out/$name.log"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  printf '%-28s exit %3d  %4d s\n' "$name" "$rc" $((SECONDS - t0)) | tee -a "$out/summary.txt"
  tail -n 4 "$out/$name.log" | sed 's/^/    /'
}

{ date -u; nvidia-smi; } >"$out/machine.txt" 2>&1
head -n 12 "$out/machine.txt"

case "$part" in
  first)
    # For a session short of device time, one call: the CUDA-vs-CPU tests, then the figures the
    # issues' targets are stated in, each beside its limit measured in the same run.
    step test_encode_cuda 120 bash "$run" test_encode_cuda
    step test_batch 60 bash "$run" test_batch
    step test_read_codes 60 bash "$run" test_read_codes
    step test_tile_passes 60 bash "$run" test_tile_passes
    # #3: v40-L device-resident encode, automatic mask and mask 0 (what the penalty costs), host
    # to host through pinned memory; HBM and PCIe copies.
    step first_encode 120 bash "$run" bench_encode_cuda \
      --benchmark_filter='BM_cuda_copy|BM_cuda_encode_device/v40/L/(auto|mask0)/cooperative|BM_cuda_encode_host/v40/L/auto/cooperative/pinned' \
      --benchmark_min_time=0.2 --benchmark_out="$out/first_encode.json" --benchmark_out_format=json
    # #7: the read kernel alone (both register budgets), v10-M and v40-L at 2 and 3 px/module;
    # codes across tiles, GPU beside every CPU core.
    step first_read 150 bash "$run" bench_decode_cuda \
      --benchmark_filter='BM_cuda_copy|BM_cuda_read_device/v(10-M|40-L)/px:(2|3)/cooperative|BM_(cuda|cpu)_read_across' \
      --benchmark_min_time=0.2 --benchmark_out="$out/first_read.json" --benchmark_out_format=json
    # #7 end to end from host memory: whole decodes, CPU beside CUDA (and CUDA with every read
    # batch waited for: what overlapping the reads with registration gains).
    step first_scan 120 bash -c \
      "bash '$run' qrplate bench --scan --backend all --serial-reads --json --seconds 0.5 >'$out/first_scan.json'"
    # ... and as a real plate is read: one wider than the strips (135-401 code columns), so a
    # strip's rows come a group at a time (--prepare-rows: automatic, and one by one), each
    # prepare() a batch (the plates above fit in a strip and are read a band of rows at a time).
    step first_scan_rows 300 bash -c \
      "bash '$run' qrplate bench --scan --backend all --json --seconds 0.3 --shapes 10-M,40-L \
       --scan-plate 1200x160um --strip-px 8192,32768 --prepare-rows 0,1 >'$out/first_scan_rows.json'"
    # The same plates' CUDA rows with each tile registered when its rows come (rows 'cuda-now'):
    # what registering on the read-ahead threads gains (compare the cuda rows above, 8,192 px).
    step first_scan_now 150 bash -c \
      "bash '$run' qrplate bench --scan --backend cuda --json --seconds 0.3 --shapes 10-M,40-L \
       --scan-plate 1200x160um --no-register-ahead >'$out/first_scan_now.json'"
    ;;
  tests)
    # CUDA against the CPU first: these are the tests that skip on machines without a GPU.
    step test_encode_cuda 300 bash "$run" test_encode_cuda
    step test_batch 120 bash "$run" test_batch
    step test_read_codes 120 bash "$run" test_read_codes
    step test_tile_passes 120 bash "$run" test_tile_passes
    step test_scan_decode_cuda 300 bash "$run" test_scan_decode --gtest_filter='*Batched*:*Cuda*:*EightBit*'
    ;;
  sanitize)
    # The kernels under the sanitizers, on the smaller CUDA tests.
    for tool in memcheck racecheck; do
      # Every encode test but the one that runs out of device memory on purpose (memcheck counts
      # its cudaMalloc failure as an error).
      step "${tool}_encode" 300 "$sanitizer" --tool "$tool" --error-exitcode 9 .device/bin/test_encode_cuda \
        --gtest_filter='-*ACaughtCudaErrorDoesNotFailTheNextEncode*'
      step "${tool}_read" 300 "$sanitizer" --tool "$tool" --error-exitcode 9 .device/bin/test_read_codes \
        --gtest_filter='*Cuda*'
      step "${tool}_tile_passes" 300 "$sanitizer" --tool "$tool" --error-exitcode 9 .device/bin/test_tile_passes \
        --gtest_filter='*Cuda*'
    done
    # A whole CUDA decode (tiles kept on the device by registration's threads, read on the scan
    # reader's background thread while the next tiles register, freed when dropped): memcheck
    # sees a read of a freed tile. Last, as the slowest: the budget may cut it.
    step memcheck_scan_decode 300 "$sanitizer" --tool memcheck --error-exitcode 9 .device/bin/test_scan_decode \
      --gtest_filter='*BatchedReadsAreTheCellByCellReads*'
    ;;
  bench)
    step bench_encode_cuda 420 bash "$run" bench_encode_cuda --benchmark_min_time=0.3 \
      --benchmark_out="$out/bench_encode_cuda.json" --benchmark_out_format=json
    step bench_decode_cuda 420 bash "$run" bench_decode_cuda --benchmark_min_time=0.3 \
      --benchmark_out="$out/bench_decode_cuda.json" --benchmark_out_format=json
    # The JSON alone in its file (stdout); the log keeps what goes to stderr.
    step qrplate_bench 300 bash -c "bash '$run' qrplate bench --backend all --json --seconds 0.5 >'$out/qrplate_bench.json'"
    # Whole decodes of simulated 8-bit scan sets (in /dev/shm: from host memory), CPU vs CUDA, in
    # column strips of 8,192 (the default) and 32,768 px (more tiles registered side by side).
    step qrplate_bench_scan 150 bash -c \
      "bash '$run' qrplate bench --scan --backend all --json --shapes 10-M,40-L --scan-kb 400 --strip-px 8192,32768 \
       >'$out/qrplate_bench_scan.json'"
    # A plate wider than the strips: read row by row in each strip, as an A4 plate is.
    step qrplate_bench_scan_rows 300 bash -c \
      "bash '$run' qrplate bench --scan --backend all --serial-reads --json --seconds 0.3 --shapes 10-M,40-L \
       --scan-plate 1200x160um --strip-px 8192,32768,131072 --prepare-rows 0,1 >'$out/qrplate_bench_scan_rows.json'"
    # The same from this machine's disk (#7: end to end from disk, beside the disk's read rate):
    # the scan set's files dropped from the page cache before every decode.
    mkdir -p gpu-scratch
    step qrplate_bench_scan_disk 150 bash -c \
      "bash '$run' qrplate bench --scan --backend all --json --shapes 10-M --scan-kb 400 --from-disk \
       --scratch '$PWD/gpu-scratch' >'$out/qrplate_bench_scan_disk.json'"
    rm -rf gpu-scratch
    step qrplate_bench_decode 300 bash -c \
      "bash '$run' qrplate bench --decode --backend all --json --seconds 0.5 >'$out/qrplate_bench_decode.json'"
    # The plate encoder's host stages on this machine's cores (plate.tif's tiles, the preview):
    # what a GPU encode leaves to the CPU.
    step bench_plate 120 bash "$run" bench_plate --benchmark_out="$out/bench_plate.json" --benchmark_out_format=json
    ;;
  profile)
    ncu=$(command -v ncu || true)
    for c in /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu; do
      [ -z "$ncu" ] && [ -x "$c" ] && ncu=$c
    done
    ncu=${ncu:-ncu}  # missing: the steps fail with 127 and say so
    # profile NAME KERNEL_REGEX BINARY FILTER: the first two launches of the kernel in that
    # benchmark row, the full section set; then its details page as text. --clock-control none:
    # ncu would otherwise lock the GPU's clocks for the run, and the device machine's rules
    # (the library's device/METHOD.md) say to leave the card's clocks as they are.
    profile() {
      local name=$1 kernel=$2 binary=$3 filter=$4
      step "ncu_$name" 150 "$ncu" --target-processes all --clock-control none -k "regex:$kernel" -c 2 --set full \
        -f -o "$out/$name" \
        bash "$run" "$binary" --benchmark_filter="$filter" --benchmark_min_time=0.01
      step "ncu_${name}_details" 60 "$ncu" --import "$out/$name.ncu-rep" --page details
    }
    profile encode_v40 encode_cooperative bench_encode_cuda 'BM_cuda_encode_device/v40/L/auto/cooperative'
    profile read_v10_px3 'read_codes_cooperative_kernel' bench_decode_cuda 'BM_cuda_read_device/v10-M/px:3/cooperative/'
    profile read_v40_px3 'read_codes_cooperative_kernel' bench_decode_cuda 'BM_cuda_read_device/v40-L/px:3/cooperative/'
    profile read_capped_v10_px3 'read_codes_cooperative_capped' bench_decode_cuda \
      'BM_cuda_read_device/v10-M/px:3/cooperative_capped'
    ;;
  e2e)
    work="$out/e2e"
    mkdir -p "$work"
    head -c 300000 /dev/urandom >"$work/payload.bin"
    # One plate id for both (the default is random, and it is in every frame).
    step e2e_encode 120 bash "$run" qrplate encode "$work/payload.bin" -o "$work/plate" --version 10 --ecc M \
      --backend cpu --plate-id 5eed0123
    # The plate encoded on the GPU: the same image, bit for bit.
    step e2e_encode_cuda 120 bash "$run" qrplate encode "$work/payload.bin" -o "$work/plate_cuda" --version 10 \
      --ecc M --backend cuda --plate-id 5eed0123
    step e2e_same_plate 30 cmp "$work/plate/plate.tif" "$work/plate_cuda/plate.tif"
    # 8-bit tiles: what the e2e target is set for (they go up at a byte a pixel).
    step e2e_simulate 180 bash "$run" qrplate simulate "$work/plate" -o "$work/scan" --preset typical --px-per-module 3 \
      --bits 8
    for b in cpu cuda; do
      step "e2e_decode_$b" 180 bash "$run" qrplate decode "$work/scan" -o "$work/out_$b.bin" --backend "$b" \
        --report "$work/report_$b.json" --no-progress
    done
    # How host threads wait for the GPU: CUDA spins by default (fewer contexts than cores), taking
    # cores from the tile readers; the same decode with blocking waits (compare the reports'
    # seconds and seconds_by_stage).
    step e2e_decode_cuda_block 180 env QRPLATE_CUDA_SYNC=block bash "$run" qrplate decode "$work/scan" \
      -o "$work/out_cuda_block.bin" --backend cuda --report "$work/report_cuda_block.json" --no-progress
    # Column strips four times as wide: four times the tiles registered side by side, for the
    # 16 cores (compare seconds_by_stage.tiles; the bytes must be the same).
    step e2e_decode_cuda_wide 180 bash "$run" qrplate decode "$work/scan" -o "$work/out_cuda_wide.bin" \
      --backend cuda --strip-px 32768 --report "$work/report_cuda_wide.json" --no-progress
    step e2e_same_bytes_wide 30 cmp "$work/out_cpu.bin" "$work/out_cuda_wide.bin"
    # Each batch of GPU reads waited for before the next tiles are registered (the default reads
    # the rows ahead on the GPU meanwhile): what the overlap gains is the difference in seconds
    # (the default report's code_batches.seconds_waiting_for_background near 0: fully hidden).
    step e2e_decode_cuda_serial 180 bash "$run" qrplate decode "$work/scan" -o "$work/out_cuda_serial.bin" \
      --backend cuda --serial-reads --report "$work/report_cuda_serial.json" --no-progress
    step e2e_same_bytes_serial 30 cmp "$work/out_cpu.bin" "$work/out_cuda_serial.bin"
    # Each tile registered when its rows come, not by the prefetcher's threads ahead of them: what
    # registering ahead gains is the difference (seconds_of_tiles.loading most of all).
    step e2e_decode_cuda_not_ahead 180 bash "$run" qrplate decode "$work/scan" -o "$work/out_cuda_not_ahead.bin" \
      --backend cuda --no-register-ahead --report "$work/report_cuda_not_ahead.json" --no-progress
    step e2e_same_bytes_not_ahead 30 cmp "$work/out_cpu.bin" "$work/out_cuda_not_ahead.bin"
    # The same bytes, and the same report but for timings and the read-ahead counts.
    step e2e_same_bytes 30 cmp "$work/out_cpu.bin" "$work/out_cuda.bin"
    step e2e_same_bytes_block 30 cmp "$work/out_cpu.bin" "$work/out_cuda_block.bin"
    step e2e_same_report 30 python3 tools/report-diff.py "$work/report_cpu.json" "$work/report_cuda.json"
    rm -f "$work/payload.bin" "$work"/out_*.bin
    rm -rf "$work/plate" "$work/plate_cuda" "$work/scan"
    # Plate encoding end to end (framing, outer parity, rasterising; nothing written): 512 MiB of
    # v40-L on the CPU (every core) and with CUDA; the logs end with the time and MB/s.
    head -c 512M /dev/urandom >"$work/big.bin"
    for b in cpu cuda; do
      step "plate_encode_$b" 240 bash "$run" qrplate encode "$work/big.bin" -o "$work/big_plate" --version 40 \
        --ecc L --backend "$b" --discard
    done
    # With CUDA the payload's SHA-256 (one core) is the floor; the SHA-256 tree hashes on every core.
    step plate_encode_cuda_tree 240 bash "$run" qrplate encode "$work/big.bin" -o "$work/big_plate" --version 40 \
      --ecc L --backend cuda --discard --hash sha256-tree
    # The same written out (to memory where /dev/shm is, so the disk is not the limit): the
    # whole plate encoder with CUDA, tiles deflated on every core, and uncompressed.
    plates="$work"
    [ -d /dev/shm ] && [ -w /dev/shm ] && plates=$(mktemp -d /dev/shm/qrplate-e2e.XXXXXX)
    for c in deflate none; do
      step "plate_write_cuda_$c" 240 bash "$run" qrplate encode "$work/big.bin" -o "$plates/plate_$c" --version 40 \
        --ecc L --backend cuda --compression "$c" --hash sha256-tree --no-progress
      du -sh "$plates/plate_$c" >>"$out/plate_write_cuda_$c.log" 2>&1
      rm -rf "$plates/plate_$c"
    done
    [ "$plates" != "$work" ] && rm -rf "$plates"
    rm -f "$work/big.bin"
    step bench_decode_e2e 420 bash "$run" bench_decode --benchmark_filter='qrplate|BM_decode_plate' \
      --benchmark_out="$out/bench_decode_e2e.json" --benchmark_out_format=json
    # Registration alone, CPU vs CUDA, 1,024- and 2,048-px tiles: the host's CPU time per Mpixel
    # (counter host_cpu_ms_per_Mpx), what decides how many cores feed the GPU.
    step bench_register 150 bash "$run" bench_decode --benchmark_filter='BM_register_tiles' \
      --benchmark_out="$out/bench_register.json" --benchmark_out_format=json
    ;;
  *)
    echo "gpu-first-run: unknown part '$part' (first, tests, sanitize, bench, profile or e2e)" >&2
    exit 2
    ;;
esac
# The headline figures as Markdown, beside their limits and targets (docs/DEVELOPERS.md).
python3 tools/gpu-summary.py "$out" >"$out/summary.md" 2>>"$out/summary.txt" || true
echo "logs: $out"
