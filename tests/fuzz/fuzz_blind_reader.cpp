// The blind reader on small arbitrary images: it never crashes or hangs on image content, and
// what it reports is a decoded code (good status, version 1..40, mask 0..7, corners finite).
//
// Input: byte 0 sets the width (1 + bits 0..5, so 1..64) and the depth (bit 6: 16 bit, two bytes
// a sample, big-endian); the samples follow, row by row, as many whole rows as there are bytes
// (at most 64). No whole row gives an empty image, which is legal too.
#include <cmath>
#include <cstdint>

#include "blind/blind_reader.hpp"
#include "fuzz_util.hpp"
#include "sim/scan_io.hpp"

namespace blind = qrplate::blind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size == 0) return 0;
  qrplate::sim::gray_image img;
  const bool wide = (data[0] & 0x40) != 0;
  const std::size_t bytes_per_sample = wide ? 2 : 1;
  img.bits = wide ? 16 : 8;
  img.width = 1u + (data[0] & 0x3Fu);
  const std::size_t row_bytes = img.width * bytes_per_sample;
  const std::size_t rows = (size - 1) / row_bytes;
  img.height = static_cast<std::uint32_t>(rows < 64 ? rows : 64);
  if (img.height == 0) img.width = 0;
  img.pixels.resize(static_cast<std::size_t>(img.width) * img.height);
  const std::uint8_t* p = data + 1;
  for (std::size_t i = 0; i < img.pixels.size(); ++i) {
    img.pixels[i] = wide ? static_cast<std::uint16_t>((p[2 * i] << 8) | p[2 * i + 1]) : p[i];
  }

  blind::blind_options options;
  options.threads = 1;
  const blind::blind_result r = blind::read_codes(img, options);
  for (const blind::found_code& c : r.codes) {
    QRPLATE_FUZZ_CHECK(c.version >= 1 && c.version <= 40 && c.mask >= 0 && c.mask <= 7);
    QRPLATE_FUZZ_CHECK(c.status == qrplate::core::decode_status::ok ||
                       c.status == qrplate::core::decode_status::corrected ||
                       c.status == qrplate::core::decode_status::erasure_assisted);
    for (int k = 0; k < 4; ++k) QRPLATE_FUZZ_CHECK(std::isfinite(c.x[k]) && std::isfinite(c.y[k]));
  }
  return 0;
}
