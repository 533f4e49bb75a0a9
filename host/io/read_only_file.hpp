// A file opened read-only as a POSIX descriptor (for pread, fstat, mmap, posix_fadvise), closed
// on every exit.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "qrplate/error.hpp"

namespace qrplate::host {

class read_only_file {
 public:
  // Throws qrplate::io_error when the file cannot be opened.
  explicit read_only_file(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC))
  {
    if (fd_ < 0) throw io_error("cannot open " + path + ": " + std::strerror(errno));
  }
  ~read_only_file() { ::close(fd_); }
  read_only_file(const read_only_file&) = delete;
  read_only_file& operator=(const read_only_file&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace qrplate::host
