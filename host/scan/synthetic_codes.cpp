#include "scan/synthetic_codes.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "qrplate/error.hpp"

namespace qrplate::scan {

synthetic_codes make_synthetic_codes(int version, ecc_level ecc, double module_px, int columns, int rows,
                                     double rotation_deg, double noise, std::uint64_t seed)
{
  if (!(module_px >= 1.0 && module_px <= 32) || columns < 1 || rows < 1 || columns > 64 || rows > 64)
    throw invalid_argument("synthetic codes: 1..32 px/module and 1..64 codes per side");
  synthetic_codes s;
  s.plan = &host::version_plan_for(version, ecc);
  s.module_px = module_px;
  const core::version_plan& plan = *s.plan;
  const int n = plan.size, pitch = n + 4;
  const int capacity = max_byte_payload(version, ecc);
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::uint64_t>> symbols;
  auto ws = std::make_unique<core::encode_workspace>();
  for (int i = 0; i < columns * rows; ++i) {
    std::vector<std::uint8_t> payload(static_cast<std::size_t>(capacity * 6 / 10 + static_cast<int>(rng() % static_cast<std::uint64_t>(capacity * 4 / 10 + 1))));
    for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
    std::vector<std::uint64_t> symbol(static_cast<std::size_t>(n * plan.words));
    if (core::encode_byte_payload(plan, payload.data(), static_cast<std::uint32_t>(payload.size()), i % 8, *ws,
                                  symbol.data()) < 0)
      throw std::logic_error("synthetic codes: a payload within capacity did not fit");
    s.payloads.push_back(std::move(payload));
    symbols.push_back(std::move(symbol));
  }
  const double angle = rotation_deg * 3.14159265358979323846 / 180, m = module_px;
  s.to_pixel.a[1] = m * std::cos(angle), s.to_pixel.a[2] = -m * std::sin(angle);
  s.to_pixel.a[4] = m * std::sin(angle), s.to_pixel.a[5] = m * std::cos(angle);
  const double span_x = m * columns * pitch, span_y = m * rows * pitch;
  // Room for the rotation on every side.
  const double pad = std::fabs(std::sin(angle)) * std::max(span_x, span_y) + 3 * m + 4;
  s.to_pixel.a[0] = pad, s.to_pixel.a[3] = pad;
  core::affine_map to_plate;
  if (!s.to_pixel.inverse(to_plate)) throw std::logic_error("synthetic codes: singular pose");
  s.width = static_cast<int>(std::ceil(span_x + 2 * pad));
  s.height = static_cast<int>(std::ceil(span_y + 2 * pad));
  s.pixels.resize(s.pixel_count());
  std::normal_distribution<double> grain(0, noise);
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x) {
      double sum = 0;
      for (int sy = 0; sy < 2; ++sy)
        for (int sx = 0; sx < 2; ++sx) {
          double px, py;
          to_plate.apply(x + 0.25 + 0.5 * sx, y + 0.25 + 0.5 * sy, px, py);
          bool dark = false;
          const int cx = static_cast<int>(std::floor(px / pitch)), cy = static_cast<int>(std::floor(py / pitch));
          if (px >= 0 && py >= 0 && cx < columns && cy < rows) {
            const int col = static_cast<int>(std::floor(px - cx * pitch)), row = static_cast<int>(std::floor(py - cy * pitch));
            if (col < n && row < n)
              dark = core::get_bit(symbols[static_cast<std::size_t>(cy * columns + cx)].data() + row * plan.words, col);
          }
          sum += dark ? 12000 : 40000;
        }
      const double value = sum / 4 + (noise > 0 ? grain(rng) : 0.0);
      s.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(s.width) + static_cast<std::size_t>(x)] =
          static_cast<std::uint16_t>(std::clamp(value, 0.0, 65535.0));
    }
  for (int cy = 0; cy < rows; ++cy)
    for (int cx = 0; cx < columns; ++cx) {
      core::code_map map;
      map.base = s.to_pixel.shifted(cx * pitch, cy * pitch);
      s.maps.push_back(map);
    }
  return s;
}

}  // namespace qrplate::scan
