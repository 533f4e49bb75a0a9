// read_gray_image on an arbitrary file (TIFF, PNG and PGM are told apart by their signature): it
// returns an image that keeps the gray_image contract (pixels.size() == width * height, no zero
// side, bits 8 or 16, 8-bit samples <= 255) or throws qrplate::io_error.
#include <cstdint>
#include <filesystem>

#include "fuzz_util.hpp"
#include "qrplate/error.hpp"
#include "sim/scan_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  static const std::filesystem::path path = qrplate::fuzz::scratch_dir() / "image";
  qrplate::fuzz::write_file(path, data, size);
  qrplate::sim::gray_image img;
  try {
    img = qrplate::sim::read_gray_image(path.string());
  } catch (const qrplate::io_error&) {
    return 0;
  }
  QRPLATE_FUZZ_CHECK(img.width > 0 && img.height > 0);
  QRPLATE_FUZZ_CHECK(img.pixels.size() == static_cast<std::size_t>(img.width) * img.height);
  QRPLATE_FUZZ_CHECK(img.bits == 8 || img.bits == 16);
  if (img.bits == 8) {
    for (const std::uint16_t v : img.pixels) QRPLATE_FUZZ_CHECK(v <= 255);
  }
  return 0;
}
