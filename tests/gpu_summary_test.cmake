# tools/gpu-summary.py on made-up files (tests/data/gpu_summary: the shapes of Google Benchmark's
# and `qrplate bench --json`'s output, numbers chosen so the fractions can be checked by hand):
# every fraction against its limit and target, the median where repetitions made aggregates,
# skipped rows named, and an exit status of 1 for files without a figure.
#   cmake -DPYTHON=<python3> -DSCRIPT=tools/gpu-summary.py -DDATA=tests/data/gpu_summary -DWORKDIR=<dir> -P tests/gpu_summary_test.cmake
cmake_minimum_required(VERSION 3.24)

execute_process(COMMAND "${PYTHON}" "${SCRIPT}" "${DATA}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "gpu-summary.py failed (${rc}): ${err}")
endif()

function(expect_line line)
  string(FIND "${out}" "${line}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected the line\n  ${line}\nin\n${out}")
  endif()
endfunction()

# The device and date every section is labelled with.
expect_line("### bench_encode_cuda.json: FIXTURE GPU (made-up figures for tests/gpu_summary_test.cmake), sm_90, 132 SMs, 79.1 GiB, driver 13.0, runtime 13.0, 2026-01-01T00:00:00+00:00")
# Limits, GB/s.
expect_line("| BM_cuda_copy/device_to_device | 3000.00 |")
expect_line("| BM_cuda_copy/both_ways_pinned | 96.00 |")
# Device-resident encode: 40 of 100 GB/s; the forced mask is not held to the target.
expect_line("| BM_cuda_encode_device/v40/L/auto/cooperative | 40.00 | 13,500,000 | 40% |")
expect_line("| BM_cuda_encode_device/v40/L/mask0/cooperative | 120.00 | 40,600,000 |  |")
# Host to host: 30 of h2d's 50 GB/s = 60%; the link bound is d2h / (4248 / 2953) = 34.76 GB/s, 86%.
expect_line("| BM_cuda_encode_host/v40/L/auto/cooperative/pinned | 30.00 | 60% | 34.76 | 86% | no |")
expect_line("Skipped in this file (1): BM_cuda_encode_host/v40/L/auto/cooperative/pageable")
# The read kernel: 80 and 125 Gpixel/s (the median aggregate, not the mean's 1).
expect_line("| BM_cuda_read_device/v10-M/px:3/cooperative | 80.00 | 2,000,000 | 80% |")
expect_line("| BM_cuda_read_device/v40-L/px:3/cooperative | 125.00 | 200,000 | 125% |")
# Codes across tiles: the GPU's and every CPU core's codes/s and Gpixel/s.
expect_line("| BM_cuda_read_across/v40-L/px:3 | 40,000 | 12.00 |")
expect_line("| BM_cpu_read_across/v40-L/px:3/threads:all | 3,000 | 0.90 |")
# Registration: its first pass's link rate against h2d (25 of 50 GB/s), and the host's CPU per
# Mpixel as cores for 10 Gpixel/s (1.5 ms x 10,000 Mpixel/s = 15 cores).
expect_line("| BM_cuda_tile_first_pass/px:16M/bits:8 | 25.00 | 50% | 25.00 |")
expect_line("| BM_register_tiles/v10-M/px:3/raw8_2048px/cuda | 1.50 | 15.0 |")
# Whole decodes against h2d at a byte a pixel: 30 and 40 Gpixel/s of 50 GB/s; the CPU row not judged.
expect_line("Set against host_to_device_pinned = 50.00 GB/s from bench_decode_cuda.json")
# The plate the scan rows read (a grid wider than an 8,192-px strip: read a row at a time).
expect_line("Plates: 10-M at 3.0 px/module: 1200 x 160 um, 401 code columns.")
expect_line("| cpu | 10-M | 3.0 | 8192.0 | 2.00 | 30,000 | 4% |  |")
expect_line("| cuda | 10-M | 3.0 | 8192.0 | 30.00 | 450,000 | 60% | no |")
# The stage split of each row's median decode (rows without one show dashes).
expect_line("| cuda | 10-M | 8192.0 | 0.500 | 0.250 (0.188, 0.062) | 0.125 (0.062) | 0.062 | 0.031 (0.125) | 0.031 | 1120 (1000, 240) |")
expect_line("| cpu | 10-M | 8192.0 | - | - (-, -) | - (-) | - | - (-) | - | - (-, -) |")
# The same decodes with every read batch waited for (--serial-reads): shown, not held to the target.
expect_line("| cuda-serial | 10-M | 3.0 | 8192.0 | 25.00 | 375,000 | 50% |  |")
# And with each tile registered when its rows come (--no-register-ahead): shown, not held either.
expect_line("| cuda-now | 10-M | 3.0 | 8192.0 | 20.00 | 300,000 | 40% |  |")
# (with the code rows each prepare() took, where the row says)
expect_line("| cuda | 10-M | 3.0 | 32768.0 (5 rows) | 40.00 | 600,000 | 80% | yes |")

# From the disk: the file bytes a decode read per second against the disk's cold rate (12 GB in
# 2 s of 8 GB/s = 75%), and what was still cached.
expect_line("16 cores (tiles from the disk)")
expect_line("| cuda | 10-M | 3.0 | 8192.0 | 6.00 | 90,000 | 12% | no | 8.00 | 75% | 1% |")
# `qrplate bench --json` encode rows: the CUDA device row held to 100 GB/s, the CPU row not.
expect_line("| cpu | 40-L | auto | host | 0.59 | 200,000 |  |")
expect_line("| cuda | 40-L | auto | device | 29.53 | 10,000,000 | 30% |")

# The e2e decodes' reports, stage by stage: 0.0125 s waited for the reads ahead (rounded to 0.013);
# the tiles' loading and placing, and the tiles registered ahead (a report from before those keys: -).
expect_line("| report_cuda.json | 2.500 | 2.000 | 0.250 | 0.125 | 0.062 | 0.062 | 0.013 | 950 | 3 | 1.500 | 0.375 | 96 of 120 |")
expect_line("| report_cuda_serial.json | 3.000 | 2.000 | 0.750 | 0.125 | - | 0.125 | 0.000 | 0 | 3 | - | - | - |")

# Nothing but skipped rows: no figure, exit 1.
file(REMOVE_RECURSE "${WORKDIR}")
file(MAKE_DIRECTORY "${WORKDIR}")
file(WRITE "${WORKDIR}/skipped.json"
     "{\"context\": {}, \"benchmarks\": [{\"name\": \"BM_cuda_copy/host_to_device_pinned/manual_time\", \"run_type\": \"iteration\", \"error_occurred\": true}]}")
execute_process(COMMAND "${PYTHON}" "${SCRIPT}" "${WORKDIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "1" OR NOT err MATCHES "no figure")
  message(FATAL_ERROR "files without a figure: expected exit 1 and 'no figure', got ${rc}: ${err}")
endif()
file(REMOVE_RECURSE "${WORKDIR}")
message(STATUS "gpu-summary: all checks passed")
