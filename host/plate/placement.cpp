#include "qrplate/plate/placement.hpp"

#include <algorithm>
#include <string>

#include "qrplate/error.hpp"

namespace qrplate::plate {
namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

}  // namespace

frame_placement::frame_placement(std::uint32_t columns, std::uint64_t data_frames, int k, int m, std::uint32_t window)
    : columns_(columns), window_(window), data_frames_(data_frames), k_(k), m_(m)
{
  if (columns == 0) throw invalid_argument("a plate needs at least one code column");
  if (k < 1 || m < 0 || k + m > 256) throw invalid_argument("outer code K+M out of range");
  if (m == 0) {  // no outer code: one frame per group, plain row-major order
    k_ = 1;
    band_rows_ = 1;
    groups_per_band_ = columns;
    groups_ = data_frames;
    bands_ = ceil_div(groups_, groups_per_band_);
    return;
  }
  const std::uint64_t n = static_cast<std::uint64_t>(k + m);
  groups_ = ceil_div(data_frames, static_cast<std::uint64_t>(k));
  // Smallest band height meeting both bounds; B * C >= n so a band holds a whole group.
  const std::uint64_t lowest = std::max(ceil_div(n, static_cast<std::uint64_t>(m)), ceil_div(n, columns));
  // Tall bands (more group slots than columns) put at most one member of a group in a row and
  // space them rows apart, which is how narrow plates meet wide dust windows.
  for (std::uint64_t b = lowest; b <= lowest + n * (static_cast<std::uint64_t>(window) + 2); ++b) {
    band_rows_ = static_cast<std::uint32_t>(b);
    groups_per_band_ = static_cast<std::uint32_t>(b * columns / n);
    if (groups_per_band_ == 0) continue;
    if (max_members_per_row() <= static_cast<std::uint32_t>(m) && max_members_per_window() <= static_cast<std::uint32_t>(m)) {
      bands_ = ceil_div(groups_, groups_per_band_);
      return;
    }
  }
  throw invalid_argument("cannot spread outer-code groups of " + std::to_string(k) + "+" + std::to_string(m) +
                         " over " + std::to_string(columns) + " columns against a " + std::to_string(window) +
                         "-cell dust window");
}

std::uint32_t frame_placement::max_members_per_row() const
{
  return static_cast<std::uint32_t>(ceil_div(columns_, groups_per_band_));
}

std::uint32_t frame_placement::max_members_per_window() const
{
  const std::uint64_t w = std::max<std::uint32_t>(window_, 1);
  const std::uint64_t rows = std::min<std::uint64_t>(w, band_rows_);
  const std::uint64_t n = static_cast<std::uint64_t>(k_ + m_);
  std::uint64_t bound;
  if (groups_per_band_ >= columns_) {
    // One member per row at most; consecutive members lie floor(G_b / C) or more rows apart.
    const std::uint64_t step = groups_per_band_ / columns_;
    bound = (rows - 1) / step + 1;
  } else {
    bound = rows * ceil_div(std::min<std::uint64_t>(w, columns_), groups_per_band_);
  }
  return static_cast<std::uint32_t>(std::min(bound, n));
}

placement_slot frame_placement::at(std::uint64_t row, std::uint32_t col) const
{
  placement_slot s;
  if (col >= columns_ || band_rows_ == 0) return s;
  const std::uint64_t band = row / band_rows_;
  if (band >= bands_) return s;
  const std::uint64_t t = (row % band_rows_) * columns_ + col;
  const std::uint64_t n = static_cast<std::uint64_t>(k_ + m_);
  if (t >= static_cast<std::uint64_t>(groups_per_band_) * n) return s;
  s.group = band * groups_per_band_ + t % groups_per_band_;
  s.member = static_cast<int>(t / groups_per_band_);
  if (s.group >= groups_) return s;
  if (s.member < k_) {
    s.index = s.group * static_cast<std::uint64_t>(k_) + static_cast<std::uint64_t>(s.member);
    s.kind = s.index < data_frames_ ? placement_slot::data : placement_slot::empty;  // virtual frames stay empty
  } else {
    s.index = s.group * static_cast<std::uint64_t>(m_) + static_cast<std::uint64_t>(s.member - k_);
    s.kind = placement_slot::parity;
  }
  return s;
}

void frame_placement::cell_of(std::uint64_t group, int member, std::uint64_t& row, std::uint32_t& col) const
{
  const std::uint64_t band = group / groups_per_band_;
  const std::uint64_t t = static_cast<std::uint64_t>(member) * groups_per_band_ + group % groups_per_band_;
  row = band * band_rows_ + t / columns_;
  col = static_cast<std::uint32_t>(t % columns_);
}

}  // namespace qrplate::plate
