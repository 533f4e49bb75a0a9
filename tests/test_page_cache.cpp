// host/io/page_cache: what `qrplate bench --scan --from-disk` relies on to time decodes from the
// storage device. A file read through is cached; dropped, it is not (on file systems that page
// from a device); read a page at a time, only those pages are; tmpfs keeps everything (the bench
// must then say its rows were not from disk).

#include <fcntl.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "io/page_cache.hpp"
#include "qrplate/error.hpp"

namespace {

namespace fs = std::filesystem;

// statfs magic numbers (linux/magic.h) of file systems whose pages come from a device and can be
// dropped; tmpfs keeps its pages in memory.
constexpr long ext4_magic = 0xEF53, xfs_magic = 0x58465342, btrfs_magic = 0x9123683E,
               overlay_magic = 0x794C7630, tmpfs_magic = 0x01021994;

class scratch_file {
 public:
  scratch_file(const fs::path& dir, std::size_t bytes)
      : path_(dir / ("qrplate_page_cache_" + std::to_string(::getpid()) + "_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name()))
  {
    std::vector<char> data(bytes);
    std::mt19937_64 rng(bytes);
    for (char& c : data) c = static_cast<char>(rng());
    std::ofstream out(path_, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) throw std::runtime_error("cannot write " + path_.string());
  }
  ~scratch_file()
  {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  scratch_file(const scratch_file&) = delete;
  scratch_file& operator=(const scratch_file&) = delete;
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

long file_system_magic(const fs::path& dir)
{
  struct statfs s{};
  if (::statfs(dir.c_str(), &s) != 0) return 0;
  return static_cast<long>(s.f_type);
}

std::uint64_t read_through(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buffer(1 << 20);
  std::uint64_t total = 0;
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
    total += static_cast<std::uint64_t>(in.gcount());
  return total;
}

constexpr std::size_t file_bytes = 4u << 20;

TEST(PageCache, AFileReadThroughIsCached)
{
  const scratch_file f(fs::temp_directory_path(), file_bytes);
  ASSERT_EQ(read_through(f.path()), file_bytes);
  const std::uint64_t cached = qrplate::host::cached_bytes(f.path());
  EXPECT_GE(cached, file_bytes * 9 / 10);
  EXPECT_LE(cached, file_bytes);
}

TEST(PageCache, ADroppedFileIsNotCachedWhereADeviceHoldsIt)
{
  const fs::path dir = fs::temp_directory_path();
  const long magic = file_system_magic(dir);
  const scratch_file f(dir, file_bytes);
  ASSERT_EQ(read_through(f.path()), file_bytes);
  qrplate::host::drop_from_page_cache(f.path());  // also writes the fresh file back first
  const std::uint64_t cached = qrplate::host::cached_bytes(f.path());
  if (magic == tmpfs_magic) {
    EXPECT_EQ(cached, file_bytes) << "tmpfs has no device to page from: it keeps every page";
  } else if (magic == ext4_magic || magic == xfs_magic || magic == btrfs_magic || magic == overlay_magic) {
    EXPECT_LT(cached, file_bytes / 10) << dir;
    // Read again, it is cached again: the bytes are the same and the question is not stale.
    ASSERT_EQ(read_through(f.path()), file_bytes);
    EXPECT_GE(qrplate::host::cached_bytes(f.path()), file_bytes * 9 / 10);
  } else {
    GTEST_SKIP() << dir << " is on a file system (statfs magic 0x" << std::hex << magic
                 << ") this test does not know";
  }
}

TEST(PageCache, OnlyThePagesReadAreCounted)
{
  const fs::path dir = fs::temp_directory_path();
  const long magic = file_system_magic(dir);
  if (!(magic == ext4_magic || magic == xfs_magic || magic == btrfs_magic || magic == overlay_magic))
    GTEST_SKIP() << dir << " does not page from a device (statfs magic 0x" << std::hex << magic << ")";
  const scratch_file f(dir, file_bytes);
  qrplate::host::drop_from_page_cache(f.path());
  ASSERT_LT(qrplate::host::cached_bytes(f.path()), file_bytes / 10);
  const long page = ::sysconf(_SC_PAGESIZE);
  {
    const int fd = ::open(f.path().c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);  // no read-ahead around the two reads
    std::vector<char> one(static_cast<std::size_t>(page));
    EXPECT_EQ(::pread(fd, one.data(), one.size(), 0), page);
    EXPECT_EQ(::pread(fd, one.data(), one.size(), static_cast<off_t>(file_bytes / 2)), page);
    ::close(fd);
  }
  const std::uint64_t cached = qrplate::host::cached_bytes(f.path());
  EXPECT_GE(cached, 2u * static_cast<std::uint64_t>(page));
  EXPECT_LE(cached, file_bytes / 4) << "two pages read, far more counted";
}

TEST(PageCache, MissingAndEmptyFiles)
{
  const fs::path missing = fs::temp_directory_path() / "qrplate_page_cache_no_such_file";
  EXPECT_THROW(qrplate::host::cached_bytes(missing.string()), qrplate::io_error);
  EXPECT_THROW(qrplate::host::drop_from_page_cache(missing.string()), qrplate::io_error);
  const scratch_file empty(fs::temp_directory_path(), 0);
  EXPECT_EQ(qrplate::host::cached_bytes(empty.path()), 0u);
  EXPECT_NO_THROW(qrplate::host::drop_from_page_cache(empty.path()));
}

}  // namespace
