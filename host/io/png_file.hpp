// Writing 8-bit PNG files (previews, contact sheets, heatmaps): one writer for the project.
#pragma once

#include <cstdint>
#include <string>

namespace qrplate::host {

// Writes width x height pixels of `channels` (1 = gray, 3 = RGB) bytes each, row-major. A regular
// file is written to path + ".tmp" and renamed onto `path`, so it is always whole; an existing
// non-regular file (a device, a pipe) is written in place. Throws
// qrplate::io_error with the path and the reason (nothing is left behind on failure).
void write_png_file(const std::string& path, const std::uint8_t* pixels, std::uint32_t width, std::uint32_t height,
                    int channels);

}  // namespace qrplate::host
