# What the command-line test scripts (tests/cli_*_test.cmake) share: running qrplate as a user
# would, and the checks every one of them makes. Each script includes it first:
#   include(${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake)
# Every failed expectation stops the script with FATAL_ERROR (a non-zero exit for ctest).
cmake_minimum_required(VERSION 3.24)

if(NOT QRPLATE OR NOT EXISTS "${QRPLATE}")
  message(FATAL_ERROR "set -DQRPLATE=<path to the qrplate executable> (got '${QRPLATE}')")
endif()

# cli_workdir(<name>): WORKDIR as given (-DWORKDIR), else a fresh /tmp directory the script
# removes at its end (own_workdir); emptied either way.
macro(cli_workdir name)
  set(own_workdir OFF)
  if(NOT WORKDIR)
    string(RANDOM LENGTH 10 suffix)
    set(WORKDIR "/tmp/qrplate-${name}-${suffix}")
    set(own_workdir ON)
  endif()
  file(REMOVE_RECURSE "${WORKDIR}")
  file(MAKE_DIRECTORY "${WORKDIR}")
endmacro()

# run(<name> [STDIN <file>] [TIMEOUT <seconds>] ARGS <arg>...): runs qrplate; sets rc, out, err
# and current (for messages) in the caller. Arguments are list elements, so they may hold spaces
# but not ';'. Without STDIN, stdin is /dev/null: never ctest's, which a command that wrongly
# reads it would hang on. Default timeout 120 s.
function(run name)
  cmake_parse_arguments(PARSE_ARGV 1 R "" "STDIN;TIMEOUT" "ARGS")
  set(input INPUT_FILE /dev/null)
  if(R_STDIN)
    set(input INPUT_FILE "${R_STDIN}")
  endif()
  if(NOT R_TIMEOUT)
    set(R_TIMEOUT 120)
  endif()
  execute_process(COMMAND "${QRPLATE}" ${R_ARGS} ${input}
                  RESULT_VARIABLE result OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr TIMEOUT ${R_TIMEOUT})
  set(rc "${result}" PARENT_SCOPE)
  set(out "${stdout}" PARENT_SCOPE)
  set(err "${stderr}" PARENT_SCOPE)
  list(JOIN R_ARGS " " joined)
  set(current "${name}: qrplate ${joined}" PARENT_SCOPE)
endfunction()

function(fail what)
  set(where "")
  if(WORKDIR)
    set(where "\n  work directory: ${WORKDIR}")  # kept on failure, for a look at the files
  endif()
  message(FATAL_ERROR "${current}\n  ${what}\n  exit status: ${rc}\n  stdout: ${out}\n  stderr: ${err}${where}")
endfunction()

macro(expect_success)
  if(NOT rc STREQUAL "0")
    fail("expected exit status 0")
  endif()
endmacro()

# A user mistake: non-zero exit (not a crash), nothing on stdout, exactly one line
# "qrplate: <reason>" on stderr, and the reason mentions `needle` when one is given.
macro(expect_user_error needle)
  if(rc STREQUAL "0" OR NOT rc MATCHES "^[0-9]+$")
    fail("expected a non-zero exit status (not a crash)")
  endif()
  if(NOT out STREQUAL "")
    fail("expected nothing on stdout")
  endif()
  if(NOT err MATCHES "^qrplate: [^\n]+\n$")
    fail("expected exactly one stderr line starting with 'qrplate: '")
  endif()
  if(NOT "${needle}" STREQUAL "")
    string(FIND "${err}" "${needle}" at)
    if(at EQUAL -1)
      fail("expected the reason to mention '${needle}'")
    endif()
  endif()
endmacro()
