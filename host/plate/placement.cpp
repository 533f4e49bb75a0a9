#include "qrplate/plate/placement.hpp"

#include <algorithm>
#include <string>

#include "qrplate/error.hpp"

namespace qrplate::plate {
namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return a / b + (a % b != 0); }  // no overflow near 2^64

}  // namespace

frame_placement::frame_placement(std::uint32_t columns, std::uint64_t data_frames, int k, int m, std::uint32_t window,
                                 std::uint32_t block_columns)
    : columns_(columns), window_(window), data_frames_(data_frames), k_(k), m_(m)
{
  if (columns == 0) throw invalid_argument("a plate needs at least one code column");
  if (block_columns == 0) throw invalid_argument("column blocks need at least one column");
  if (k < 1 || m < 0 || k + m > 256) throw invalid_argument("outer code K+M out of range");
  if (m == 0) k_ = 1;  // no outer code: one frame per group
  blocks_ = columns >= 2 * static_cast<std::uint64_t>(block_columns) ? columns / block_columns : 1;
  block_columns_ = blocks_ > 1 ? block_columns : columns;
  last_width_ = columns - (blocks_ - 1) * block_columns_;
  const std::uint64_t n = static_cast<std::uint64_t>(k_ + m_);
  groups_ = ceil_div(data_frames, static_cast<std::uint64_t>(k_));
  if (m == 0) {
    band_rows_ = 1;
    full_groups_ = block_columns_;
    last_groups_ = last_width_;
    groups_per_band_ = columns;
    bands_ = ceil_div(groups_, groups_per_band_);
    return;
  }
  // Smallest band height meeting both bounds in every block; B * w >= n so a unit holds a group.
  const std::uint64_t narrowest = std::min(block_columns_, last_width_);
  const std::uint64_t lowest = std::max(ceil_div(n, static_cast<std::uint64_t>(m)), ceil_div(n, narrowest));
  // Tall bands (more group slots than columns) put at most one member of a group in a row and
  // space them rows apart, which is how narrow plates meet wide dust windows.
  const auto mm = static_cast<std::uint32_t>(m);
  for (std::uint64_t b = lowest; b <= lowest + n * (static_cast<std::uint64_t>(window) + 2); ++b) {
    const std::uint64_t full = b * block_columns_ / n, last = b * last_width_ / n;
    if (full == 0 || last == 0) continue;
    // Group slots per band only grow with b: past 32 bits (a manifest claiming ~10^9 columns) no
    // band can be laid out.
    const std::uint64_t per_band = (blocks_ - 1) * full + last;
    if (per_band > 0xFFFFFFFFu || b > 0xFFFFFFFFu) {
      throw invalid_argument("outer-code bands over " + std::to_string(columns) +
                             " columns would need more than 2^32 group slots");
    }
    band_rows_ = static_cast<std::uint32_t>(b);
    full_groups_ = static_cast<std::uint32_t>(full);
    last_groups_ = static_cast<std::uint32_t>(last);
    if (max_members_per_row() <= mm && max_members_per_window() <= mm) {
      groups_per_band_ = static_cast<std::uint32_t>(per_band);
      bands_ = ceil_div(groups_, groups_per_band_);
      return;
    }
  }
  throw invalid_argument("cannot spread outer-code groups of " + std::to_string(k) + "+" + std::to_string(m) +
                         " over " + std::to_string(columns) + " columns against a " + std::to_string(window) +
                         "-cell dust window");
}

std::uint32_t frame_placement::row_bound(std::uint32_t width, std::uint32_t groups) const
{
  return static_cast<std::uint32_t>(ceil_div(width, groups));
}

std::uint32_t frame_placement::window_bound(std::uint32_t width, std::uint32_t groups) const
{
  const std::uint64_t w = std::max<std::uint32_t>(window_, 1);
  const std::uint64_t rows = std::min<std::uint64_t>(w, band_rows_);
  const std::uint64_t n = static_cast<std::uint64_t>(k_ + m_);
  std::uint64_t bound;
  if (groups >= width) {
    // One member per row at most; consecutive members lie floor(G / w) or more rows apart.
    const std::uint64_t step = groups / width;
    bound = (rows - 1) / step + 1;
  } else {
    bound = rows * ceil_div(std::min<std::uint64_t>(w, width), groups);
  }
  return static_cast<std::uint32_t>(std::min(bound, n));
}

std::uint32_t frame_placement::max_members_per_row() const
{
  return std::max(row_bound(block_columns_, full_groups_), row_bound(last_width_, last_groups_));
}

std::uint32_t frame_placement::max_members_per_window() const
{
  // A group lives in one band x block unit, so a window straddling units still meets at most
  // one unit's share of any group.
  return std::max(window_bound(block_columns_, full_groups_), window_bound(last_width_, last_groups_));
}

placement_slot frame_placement::at(std::uint64_t row, std::uint32_t col) const
{
  placement_slot s;
  if (col >= columns_ || band_rows_ == 0) return s;
  const std::uint64_t band = row / band_rows_;
  if (band >= bands_) return s;
  const std::uint32_t block = std::min(col / block_columns_, blocks_ - 1);
  const std::uint32_t width = block_width(block);
  const std::uint32_t groups = block_groups(block);
  const std::uint64_t t = (row % band_rows_) * width + (col - block_x(block));
  const std::uint64_t n = static_cast<std::uint64_t>(k_ + m_);
  if (t >= static_cast<std::uint64_t>(groups) * n) return s;
  s.group = first_group(band, block) + t % groups;
  s.member = static_cast<int>(t / groups);
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
  const std::uint64_t r = group % groups_per_band_;
  std::uint32_t block = static_cast<std::uint32_t>(std::min<std::uint64_t>(r / full_groups_, blocks_ - 1));
  const std::uint64_t slot = r - static_cast<std::uint64_t>(block) * full_groups_;
  const std::uint32_t width = block_width(block);
  const std::uint64_t t = static_cast<std::uint64_t>(member) * block_groups(block) + slot;
  row = band * band_rows_ + t / width;
  col = block_x(block) + static_cast<std::uint32_t>(t % width);
}

}  // namespace qrplate::plate
