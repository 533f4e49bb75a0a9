// Ctrl-C and SIGTERM during a long command (encode, simulate, decode): the library stops at its
// next unit of work, removes what it staged and throws qrplate::interrupted, and the command exits
// with 128 + the signal, as the shell would have, leaving no staging directory or .partial file.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "commands.hpp"
#include "qrplate/error.hpp"

namespace qrplate::cli {

// Set by the handler interrupt_guard installs: the signal's number, 0 before one came. Handed to
// the library as its options' `interrupt`.
extern std::atomic<int> interrupt_signal;

// Installs the handler for SIGINT and SIGTERM for its lifetime (and clears interrupt_signal); a
// signal the shell ignores (nohup, `&`) stays ignored, and a second one takes the default action
// (SA_RESETHAND), should the clean-up hang.
class interrupt_guard {
 public:
  interrupt_guard();
  ~interrupt_guard();
  interrupt_guard(const interrupt_guard&) = delete;
  interrupt_guard& operator=(const interrupt_guard&) = delete;

 private:
  const int signals_[2] = {SIGINT, SIGTERM};
  struct sigaction old_[2] = {};
  bool installed_[2] = {false, false};
};

// "SIGINT", "SIGTERM" or "signal N", for messages.
std::string signal_name(int signal_number);

// Runs work() (a library call given &interrupt_signal as its options' `interrupt`) under an
// interrupt_guard and returns its result. When it throws qrplate::interrupted, says so (nothing
// written to `output`; `what_was_removed`, e.g. "the partial file", was) and exits with 128 + the
// signal, as the shell would have.
template <class Work>
auto run_interruptibly(const std::string& output, const char* what_was_removed, Work&& work) -> decltype(work())
{
  try {
    const interrupt_guard guard;
    return work();
  } catch (const interrupted& e) {
    std::fprintf(stderr, "qrplate: interrupted by %s: nothing written to %s (%s was removed)\n",
                 signal_name(e.signal).c_str(), output.c_str(), what_was_removed);
    throw exit_code_error{128 + e.signal};
  }
}

}  // namespace qrplate::cli
