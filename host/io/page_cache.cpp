#include "io/page_cache.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "io/read_only_file.hpp"
#include "qrplate/error.hpp"

namespace qrplate::host {

void drop_from_page_cache(const std::string& path)
{
  const read_only_file f(path);
  // Dirty pages are not dropped: a file just written must reach the device first.
  if (::fdatasync(f.fd()) != 0 && errno != EINVAL && errno != EROFS)  // EINVAL: a file system without sync
    throw io_error("cannot write back " + path + ": " + std::strerror(errno));
  const int err = ::posix_fadvise(f.fd(), 0, 0, POSIX_FADV_DONTNEED);
  if (err != 0) throw io_error("cannot drop " + path + " from the page cache: " + std::strerror(err));
}

std::uint64_t cached_bytes(const std::string& path)
{
  const read_only_file f(path);
  struct stat st{};
  if (::fstat(f.fd(), &st) != 0) throw io_error("cannot stat " + path + ": " + std::strerror(errno));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0) return 0;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, f.fd(), 0);
  if (map == MAP_FAILED) throw io_error("cannot map " + path + ": " + std::strerror(errno));
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  const int rc = ::mincore(map, size, resident.data());
  const int mincore_errno = errno;
  ::munmap(map, size);
  if (rc != 0) throw io_error("cannot ask the page cache about " + path + ": " + std::strerror(mincore_errno));
  const auto pages = static_cast<std::uint64_t>(
      std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return (r & 1) != 0; }));
  return std::min(pages * page, size);
}

}  // namespace qrplate::host
