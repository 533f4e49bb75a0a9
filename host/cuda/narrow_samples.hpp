// Narrowing 16-bit samples to bytes for the upload of a tile (tile_passes_cuda.cu): an 8-bit scan
// held as 16-bit samples goes over PCIe at 1 byte a pixel and is widened again on the device.
// Plain C++, so the CPU tests hold it to its definition.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace qrplate::host {

// out[i] = in[i] for i < n and true when every sample is below 256; false as soon as a block of
// samples holds one that is not (out then partly written, and the caller sends 16-bit samples).
// Blocks keep the loop branch-free for the vectoriser and stop a 16-bit tile within 4096 samples.
inline bool narrow_samples(const std::uint16_t* in, std::size_t n, std::uint8_t* out)
{
  constexpr std::size_t block = 4096;
  for (std::size_t a = 0; a < n; a += block) {
    const std::size_t b = std::min(n, a + block);
    unsigned high = 0;
    for (std::size_t i = a; i < b; ++i) {
      high |= in[i];
      out[i] = static_cast<std::uint8_t>(in[i]);
    }
    if (high > 0xffu) return false;
  }
  return true;
}

}  // namespace qrplate::host
