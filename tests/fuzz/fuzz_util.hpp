// Shared by the fuzz targets: a contract check that aborts (libFuzzer reports a deadly signal,
// the replay test fails), and a scratch directory per process for targets that read files.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace qrplate::fuzz {

[[noreturn]] inline void contract_broken(const char* what, const char* file, int line)
{
  std::fprintf(stderr, "%s:%d: fuzz contract broken: %s\n", file, line, what);
  std::abort();
}

// Not assert(): it must hold in Release builds too.
#define QRPLATE_FUZZ_CHECK(cond)                                                        \
  do {                                                                                  \
    if (!(cond)) ::qrplate::fuzz::contract_broken(#cond, __FILE__, __LINE__);           \
  } while (0)

// A directory of this process (libFuzzer -jobs / -fork run several at once), removed at exit.
inline const std::filesystem::path& scratch_dir()
{
  struct dir {
    std::filesystem::path path;
    dir()
    {
      path = std::filesystem::temp_directory_path() / ("qrplate-fuzz-" + std::to_string(::getpid()));
      std::filesystem::create_directories(path);
    }
    ~dir()
    {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const dir d;
  return d.path;
}

// Writes the input to `path` (truncating); aborts when it cannot, which is no input's fault.
inline void write_file(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size)
{
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  f.close();
  if (!f) contract_broken(("cannot write the scratch file " + path.string()).c_str(), __FILE__, __LINE__);
}

}  // namespace qrplate::fuzz
