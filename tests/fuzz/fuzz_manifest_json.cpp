// manifest_from_json on arbitrary text: it returns or throws qrplate::invalid_argument. What it
// returns round-trips: to_json (which may refuse, with invalid_argument, a manifest it cannot
// describe, such as a version outside 1..40) parsed again gives the same manifest and image info.
// geometry_of on the result gets the same contract.
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "manifest_equal.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"

namespace plate = qrplate::plate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string text(reinterpret_cast<const char*>(data), size);
  plate::manifest m;
  plate::image_info image;
  try {
    m = plate::manifest_from_json(text, &image);
  } catch (const qrplate::invalid_argument&) {
    return 0;
  }
  std::string again;
  try {
    again = plate::to_json(m, image);
  } catch (const qrplate::invalid_argument&) {
    return 0;
  }
  plate::image_info image2;
  const plate::manifest m2 = plate::manifest_from_json(again, &image2);
  QRPLATE_FUZZ_CHECK(qrplate::fuzz::same_manifest(m, m2, true));
  QRPLATE_FUZZ_CHECK(image.file == image2.file && image.tile_width == image2.tile_width &&
                     image.tile_height == image2.tile_height && image.compression == image2.compression &&
                     image.preview == image2.preview);
  try {
    const plate::plate_geometry g = plate::geometry_of(m);
    QRPLATE_FUZZ_CHECK(g.version == m.version && g.columns == m.columns && g.rows == m.rows);
  } catch (const qrplate::invalid_argument&) {
  }
  return 0;
}
