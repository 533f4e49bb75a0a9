// Typed host-side errors. Messages say what was wrong and what is allowed, so the command line
// can print them as they are (`invalid_argument: version 41 out of range 1..40`).
#pragma once

#include <atomic>
#include <stdexcept>
#include <string>

namespace qrplate {

// A parameter outside its documented range (version, ECC level, mask, thread count...).
class invalid_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A payload that does not fit the requested symbol (version and ECC level).
class data_too_long : public std::length_error {
 public:
  using std::length_error::length_error;
};

// A requested backend that is not available in this build or on this machine.
class backend_unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file that cannot be read or written.
class io_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A long operation stopped by its options' `interrupt` (a signal's number, set by a handler):
// what it staged was removed.
class interrupted : public std::runtime_error {
 public:
  explicit interrupted(int signal_number)
      : std::runtime_error("interrupted by signal " + std::to_string(signal_number)), signal(signal_number)
  {
  }
  int signal;
};

// Throws interrupted when `flag` (an options' `interrupt`, may be null) holds a signal's number.
inline void throw_if_interrupted(const std::atomic<int>* flag)
{
  if (const int sig = flag ? flag->load(std::memory_order_relaxed) : 0) throw interrupted(sig);
}

}  // namespace qrplate
