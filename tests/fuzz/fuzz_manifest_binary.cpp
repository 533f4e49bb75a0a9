// manifest_from_binary on arbitrary bytes: it returns or throws qrplate::invalid_argument, and what
// it returns writes back to the same 123 bytes (to_binary) and parses to the same manifest.
// geometry_of, which a reader runs next on what the header codes said, gets the same contract.
//
// Input: 123 bytes are parsed as they are. Any other size n > 123 is read as its first 123 bytes
// with the CRC32C at 119..122 recomputed, so the fuzzer gets past the CRC to the fields.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_util.hpp"
#include "manifest_equal.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"

namespace plate = qrplate::plate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  constexpr std::size_t n = plate::manifest_bytes;
  std::vector<std::uint8_t> bytes(data, data + size);
  if (size > n) {
    bytes.resize(n);
    const std::uint32_t crc = plate::crc32c(bytes.data(), n - 4);
    for (int i = 0; i < 4; ++i) bytes[n - 4 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(crc >> (8 * i));
  }
  plate::manifest m;
  try {
    m = plate::manifest_from_binary(bytes.data(), bytes.size());
  } catch (const qrplate::invalid_argument&) {
    return 0;
  }
  QRPLATE_FUZZ_CHECK(bytes.size() == n);
  const std::vector<std::uint8_t> again = plate::to_binary(m);
  QRPLATE_FUZZ_CHECK(again == bytes);
  QRPLATE_FUZZ_CHECK(qrplate::fuzz::same_manifest(plate::manifest_from_binary(again.data(), again.size()), m, true));
  try {
    const plate::plate_geometry g = plate::geometry_of(m);
    QRPLATE_FUZZ_CHECK(g.version == m.version && g.columns == m.columns && g.rows == m.rows);
  } catch (const qrplate::invalid_argument&) {
  }
  return 0;
}
