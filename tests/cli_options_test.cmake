# Bad option values of `qrplate simulate`, `encode`, `hash` and `plan`, run as a user would:
# each must be refused with a non-zero exit and one stderr line that names the option, never a
# crash, an allocation failure or a silent fallback.
#   cmake -DQRPLATE=<path to qrplate> [-DWORKDIR=<scratch dir>] -P tests/cli_options_test.cmake
include(${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake)
cli_workdir(cli-options-test)


# No staging directory (X.partial-PID) left in the work directory.
function(expect_no_partial)
  file(GLOB partial "${WORKDIR}/*.partial-*")
  if(partial)
    fail("left behind: ${partial}")
  endif()
endfunction()

# A tiny plate: 300 bytes in version 3-M codes, 2 x 13 cells, 3 tiles of 256 px at 1 px/module.
string(REPEAT "qrplate options 0123456789 " 11 payload)
file(WRITE "${WORKDIR}/payload.txt" "${payload}")
run(encode_plate ARGS encode "${WORKDIR}/payload.txt" -o "${WORKDIR}/plate" --version 3 --ecc M --plate-id 5eed0003)
expect_success()
set(plate "${WORKDIR}/plate")
set(sim simulate "${plate}" --preset clean --tile 256 --px-per-module 1 --no-progress)

# --------------------------------------------------------------------------------------------
# --threads: bench's bound, 0..1024, in every command that has it (it used to abort with
# std::terminate or std::bad_alloc).
run(simulate_threads ARGS ${sim} -o "${WORKDIR}/s_threads" --threads 4294967295)
expect_user_error("--threads 4294967295 out of range 0..1024")
run(encode_threads ARGS encode "${WORKDIR}/payload.txt" -o "${WORKDIR}/e_threads" --threads 1025)
expect_user_error("--threads 1025 out of range 0..1024")
run(hash_threads ARGS hash "${WORKDIR}/payload.txt" --hash sha256-tree --threads 4294967295)
expect_user_error("--threads 4294967295 out of range 0..1024")
# hash reads a regular file: standard input is refused with what to do instead.
run(hash_stdin ARGS hash -)
expect_user_error("save the stream to a file first")
run(plan_threads ARGS plan --threads 4294967295)
expect_user_error("--threads 4294967295 out of range 0..1024")
# The bound itself is allowed; simulate starts no more threads than it has tiles.
run(simulate_threads_max ARGS ${sim} -o "${WORKDIR}/s_threads_max" --threads 1024)
expect_success()

# --------------------------------------------------------------------------------------------
# Model parameters: documented upper bounds, named by their option (these died of bad_alloc).
foreach(case
    "--sigma-nm|1e9|--sigma-nm 1e+09: must be in 0..1000 nm"
    "--sigma-y-nm|-1|--sigma-y-nm -1: must be in 0..1000 nm"
    "--drift-nm-s|1e12|--drift-nm-s 1e+12: must be in 0..10000 nm/s"
    "--dust-per-mm2|1e12|--dust-per-mm2 1e+12: must be in 0..1e6 per mm2"
    "--scratches-per-mm2|1e9|--scratches-per-mm2 1e+09: must be in 0..1e5 per mm2"
    "--halo-nm|1e6|--halo-nm 1e+06: must be at most 10000 nm"
    "--dwell-us|1e6|--dwell-us 1e+06: must be > 0 and at most 1000 us"
    "--jitter-nm|1e9|--jitter-nm 1e+09: must be in 0..1000 nm"
    "--lag|1|--lag 1: must be at least 0 and below 1"
    "--missing-tiles|1|--missing-tiles 1: must be at least 0 and below 1"
    "--missing-tiles|nan|--missing-tiles nan: must be a finite number"
    "--stage-nm|-5|--stage-nm -5: must be in 0..100000 nm"
    "--rotation-deg|90|--rotation-deg 90: must be in 0..10 degrees"
    "--scale-error|0.2|--scale-error 0.2: must be at least 0 and below 0.2"
    "--overlap|0.95|--overlap 0.95: must be at least 0 and below 0.9"
    "--contrast|-1|--contrast -1: must be in 0..1"
    "--contrast|0.9|--contrast 0.9: must be at most the film level 0.55"
    "--overscan-nm|-1e6|--overscan-nm -1e+06: must be at least 0"
    "--overscan-nm|1e8|--overscan-nm 1e+08: must be a finite number of nm below 1e7"
    "--bits|12|--bits 12: must be 8 or 16")
  string(REPLACE "|" ";" parts "${case}")
  list(GET parts 0 option)
  list(GET parts 1 value)
  list(GET parts 2 message)
  run(simulate_range ARGS ${sim} -o "${WORKDIR}/s_range" ${option} ${value})
  expect_user_error("${message}")
  if(EXISTS "${WORKDIR}/s_range")
    fail("a refused simulate wrote its output")
  endif()
endforeach()
# Each within its own range, together out of range: the drift over one slow tile's scan.
run(simulate_drift_per_tile ARGS ${sim} -o "${WORKDIR}/s_drift" --drift-nm-s 10000 --dwell-us 1000)
expect_user_error("--drift-nm-s 10000: drifts the beam")
run(simulate_jumps_per_tile ARGS ${sim} -o "${WORKDIR}/s_jumps" --jump-rate 1000 --jump-nm 1000)
expect_user_error("--jump-rate 1000: with jumps of 1000 nm")
# A probe wider than the modules allow (8/5 of 49 nm), named by the option that set it.
run(simulate_wide_probe ARGS ${sim} -o "${WORKDIR}/s_wide" --sigma-y-nm 500)
expect_user_error("--sigma-y-nm 500: too wide for modules of 49 nm")
expect_no_partial()

# Destroyed cells are counted once however many defects cover them: never more than the plate's
# 2 x 13 cells (this reported 501 when each defect's cells were summed).
run(simulate_dense_defects ARGS ${sim} -o "${WORKDIR}/s_defects" --dust-per-mm2 1e5 --scratches-per-mm2 1e5)
expect_success()
file(READ "${plate}/plate.json" plate_json)
string(JSON columns GET "${plate_json}" grid columns)
string(JSON rows GET "${plate_json}" grid rows)
math(EXPR cells "${columns} * ${rows}")
if(NOT err MATCHES "scratches destroying ([0-9]+) code cells")
  fail("simulate does not say how many code cells the defects destroy")
endif()
if(CMAKE_MATCH_1 GREATER cells OR CMAKE_MATCH_1 EQUAL 0)
  fail("${CMAKE_MATCH_1} destroyed code cells on a plate of ${cells} under dense defects")
endif()

# --------------------------------------------------------------------------------------------
# plan: --bytes must be a byte count, and says which plate it plans; --plate must name one.
foreach(value -1 nan inf 1e19)
  run(plan_bytes_${value} ARGS plan --bytes ${value})
  expect_user_error("--bytes ")
  expect_user_error(": must be a number of bytes in 0..1e18")
endforeach()
run(plan_bytes_and_plate ARGS plan --bytes 1000 --plate A4)
expect_user_error("--bytes and --plate: give one")
# An empty argument is lost in a list, so these two call qrplate directly.
execute_process(COMMAND "${QRPLATE}" plan --plate "" INPUT_FILE /dev/null
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
set(current "plan_empty_plate: qrplate plan --plate ''")
expect_user_error("--plate '': give a size")
execute_process(COMMAND "${QRPLATE}" encode "${WORKDIR}/payload.txt" -o "${WORKDIR}/e_empty" --plate "" INPUT_FILE /dev/null
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
set(current "encode_empty_plate: qrplate encode payload.txt --plate ''")
expect_user_error("--plate '': give a size")
# Counts in plan --json are JSON integers (capacity is whole frames of 2936 bytes at 40-L).
run(plan_json ARGS plan --plate A4 --json)
expect_success()
foreach(key capacity_bytes encode_memory_bytes)
  string(JSON value GET "${out}" ${key})
  if(NOT value MATCHES "^[0-9]+$")
    fail("${key} is '${value}', not an integer")
  endif()
endforeach()
string(JSON value GET "${out}" image uncompressed_bytes)
if(NOT value MATCHES "^[0-9]+$")
  fail("image.uncompressed_bytes is '${value}', not an integer")
endif()
run(plan_bytes_ok ARGS plan --bytes 1000 --json)
expect_success()

# --------------------------------------------------------------------------------------------
# SIGTERM while simulating: the staging directory is removed and the exit status is 143. The
# signal is sent once the staging directory exists, so the handler is surely in place.
find_program(SH sh)
if(SH)
  run(encode_big_plate ARGS encode "${WORKDIR}/payload.txt" -o "${WORKDIR}/big_plate" --version 3 --ecc M
      --plate 100x100um --plate-id 5eed0004)
  expect_success()
  set(script [=[
"$@" & pid=$!
n=0
while [ ! -d "$DIR/s_term.partial-$pid" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n + 1)); done
kill -TERM $pid
wait $pid
]=])
  execute_process(COMMAND ${CMAKE_COMMAND} -E env "DIR=${WORKDIR}" "${SH}" -c "${script}" sh
                          "${QRPLATE}" simulate "${WORKDIR}/big_plate" -o "${WORKDIR}/s_term" --preset harsh
                          --px-per-module 6 --tile 256 --no-progress
                  INPUT_FILE /dev/null RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  set(current "simulate interrupted by SIGTERM")
  expect_user_error("interrupted by SIGTERM: nothing written to")
  if(NOT rc EQUAL 143)
    fail("expected exit status 143 (128 + SIGTERM)")
  endif()
  if(EXISTS "${WORKDIR}/s_term")
    fail("an interrupted simulate left its output")
  endif()
  expect_no_partial()
endif()

if(own_workdir)
  file(REMOVE_RECURSE "${WORKDIR}")
endif()
message(STATUS "cli_options: all checks passed")
