// read_scan_set on an arbitrary scan.json: it returns or throws qrplate::invalid_argument or
// qrplate::io_error. What it returns keeps its promises: a positive finite pixel size, at least
// one tile, finite positions within 1e12 nm, and every tile file inside the scan directory.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_util.hpp"
#include "qrplate/error.hpp"
#include "scan/scan_set.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  static const fs::path dir = qrplate::fuzz::scratch_dir() / "scan";
  static const bool made = fs::create_directories(dir) || fs::is_directory(dir);
  QRPLATE_FUZZ_CHECK(made);
  qrplate::fuzz::write_file(dir / "scan.json", data, size);
  qrplate::scan::scan_set s;
  try {
    s = qrplate::scan::read_scan_set(dir.string());
  } catch (const qrplate::invalid_argument&) {
    return 0;
  } catch (const qrplate::io_error&) {
    return 0;
  }
  QRPLATE_FUZZ_CHECK(s.pixel_nm > 0 && std::isfinite(s.pixel_nm));
  QRPLATE_FUZZ_CHECK(!s.tiles.empty());
  for (const qrplate::scan::scan_tile& t : s.tiles) {
    QRPLATE_FUZZ_CHECK(std::isfinite(t.x_nm) && std::isfinite(t.y_nm));
    QRPLATE_FUZZ_CHECK(std::fabs(t.x_nm) <= 1e12 && std::fabs(t.y_nm) <= 1e12);
    const fs::path rel = fs::path(t.file).lexically_normal().lexically_relative(dir.lexically_normal());
    QRPLATE_FUZZ_CHECK(!rel.empty() && rel.string().rfind("..", 0) != 0 && !rel.is_absolute());
  }
  return 0;
}
