// The kernel's page cache, seen from a benchmark: a file just written or read is served from
// memory, so a decode that should be timed from the storage device must first have its files
// dropped from the cache, and must be able to say whether that worked (tmpfs keeps everything).
#pragma once

#include <cstdint>
#include <string>

namespace qrplate::host {

// Writes back a file's dirty pages and asks the kernel to drop all of its cached pages
// (fdatasync, then posix_fadvise DONTNEED), so that the next read comes from the device.
// Only a request: file systems that keep their pages in memory (tmpfs, /dev/shm) keep them,
// and a page another process has mapped stays; cached_bytes says what is left.
// Throws qrplate::io_error when the file cannot be opened or the request is refused.
void drop_from_page_cache(const std::string& path);

// How many bytes of a file are in the page cache now (mmap and mincore: pages resident, times
// the page size, capped at the file's size). Throws qrplate::io_error when it cannot be asked.
std::uint64_t cached_bytes(const std::string& path);

}  // namespace qrplate::host
