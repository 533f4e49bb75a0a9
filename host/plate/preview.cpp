// Plate preview: area-averaged blocks of modules, written as an 8-bit grayscale PNG (libpng).

#include "plate/preview.hpp"

#include <png.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "io/png_file.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/error.hpp"
#include "util/popcnt_dispatch.hpp"
#include "util/thread_team.hpp"

namespace qrplate::plate {
namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b)
{
  return a / b + (a % b != 0);
}

// Blocks of at most 2^28 x 2^28 modules keep 255 * (dark modules in a block) within 64 bits.
constexpr std::uint64_t max_factor = std::uint64_t{1} << 28;

// Counting is popcount-bound: the loops below are compiled with and without POPCNT
// (util/popcnt_dispatch.hpp).

// Adds the dark modules of one row to the per-block counters: block b covers columns
// [b * f, min((b + 1) * f, width)).
QRP_POPCNT_CLONES void count_row(const std::uint64_t* row, std::uint64_t width, std::uint64_t f, std::uint64_t* dark)
{
  const std::uint64_t blocks = ceil_div(width, f);
  for (std::uint64_t b = 0; b < blocks; ++b) {
    const std::uint64_t x0 = b * f;
    const std::uint64_t x1 = std::min(x0 + f, width);
    const std::uint64_t first = x0 / 64;
    const std::uint64_t last = (x1 - 1) / 64;
    const std::uint64_t lo = ~std::uint64_t{0} << (x0 % 64);
    const std::uint64_t hi = ~std::uint64_t{0} >> (63 - (x1 - 1) % 64);
    std::uint64_t n;
    if (first == last) {
      n = static_cast<std::uint64_t>(core::popcount64(row[first] & lo & hi));
    } else {
      n = static_cast<std::uint64_t>(core::popcount64(row[first] & lo));
      for (std::uint64_t w = first + 1; w < last; ++w) n += static_cast<std::uint64_t>(core::popcount64(row[w]));
      n += static_cast<std::uint64_t>(core::popcount64(row[last] & hi));
    }
    dark[b] += n;
  }
}

// Adds the dark modules of one region row (`width` modules from plate column x0, bit 0 of row[0]
// is column x0) to the counters of its row of blocks. Word by word: a popcount for the word, and
// for each block that ends inside it a popcount of the bits below the block's end (no division
// per block: blocks are as small as 1 module on small plates).
QRP_POPCNT_CLONES void count_region_row(const std::uint64_t* row, std::uint64_t x0, std::uint64_t width, std::uint64_t f,
                                           std::uint64_t* out)
{
  std::uint64_t block = x0 / f;
  std::uint64_t block_end = (block + 1) * f - x0;  // region column where the current block ends
  std::uint64_t dark = 0;                          // of the current block, so far
  for (std::uint64_t lo = 0; lo < width; lo += 64) {
    const std::uint64_t hi = std::min(lo + 64, width);
    std::uint64_t bits = row[lo / 64];
    if (hi - lo < 64) bits &= (std::uint64_t{1} << (hi - lo)) - 1;
    while (block_end < hi) {  // lo <= block_end: the block ends inside this word
      const std::uint64_t below = (std::uint64_t{1} << (block_end - lo)) - 1;
      out[block] += dark + static_cast<std::uint64_t>(core::popcount64(bits & below));
      bits &= ~below;
      dark = 0;
      ++block;
      block_end += f;
    }
    dark += static_cast<std::uint64_t>(core::popcount64(bits));
  }
  out[block] += dark;
}

}  // namespace

preview_builder::preview_builder(std::uint64_t width, std::uint64_t height, std::uint32_t max_side, host::thread_team* team)
    : team_(team)
{
  if (width == 0 || height == 0) {
    throw invalid_argument("preview of a " + std::to_string(width) + " x " + std::to_string(height) +
                           " plate: both sides must be >= 1 module");
  }
  if (max_side == 0) throw invalid_argument("preview side limit must be >= 1 pixel");
  plate_width_ = width;
  plate_height_ = height;
  factor_ = std::max<std::uint64_t>(1, ceil_div(std::max(width, height), max_side));
  if (factor_ > max_factor) {
    throw invalid_argument("preview of a " + std::to_string(width) + " x " + std::to_string(height) + " plate at " +
                           std::to_string(max_side) + " pixels a side needs blocks of " + std::to_string(factor_) +
                           " modules a side; at most " + std::to_string(max_factor) + ": raise the side limit");
  }
  preview_width_ = static_cast<std::uint32_t>(ceil_div(width, factor_));    // <= max_side
  preview_height_ = static_cast<std::uint32_t>(ceil_div(height, factor_));  // <= max_side
  dark_.assign(preview_width_, 0);
  pixels_.assign(static_cast<std::size_t>(preview_width_) * preview_height_, 255);
}

void preview_builder::append_rows(const std::uint64_t* rows, std::size_t row_count, std::size_t words_per_row)
{
  if (row_count == 0) return;
  const std::uint64_t need = ceil_div(plate_width_, 64);
  if (words_per_row < need) {
    throw invalid_argument("row stride " + std::to_string(words_per_row) + " words is below the " +
                           std::to_string(need) + " a row of " + std::to_string(plate_width_) + " modules needs");
  }
  if (row_count > plate_height_ - rows_appended_) {
    throw invalid_argument("appending " + std::to_string(row_count) + " rows to a preview after " +
                           std::to_string(rows_appended_) + " would pass the plate height " +
                           std::to_string(plate_height_));
  }
  if (rows == nullptr) throw invalid_argument("append_rows() given no rows");
  if (region_modules_ != 0) throw invalid_argument("append_rows() after add_region()");
  for (std::size_t i = 0; i < row_count; ++i) {
    count_row(rows + i * words_per_row, plate_width_, factor_, dark_.data());
    ++rows_appended_;
    if (rows_appended_ % factor_ == 0 || rows_appended_ == plate_height_) finish_block_row();
  }
}

void preview_builder::add_region(std::uint64_t x0, std::uint64_t y0, std::uint64_t width, std::size_t row_count,
                                 const std::uint64_t* rows, std::size_t words_per_row)
{
  if (width == 0 || row_count == 0) return;
  if (rows_appended_ != 0) throw invalid_argument("add_region() after append_rows()");
  if (x0 + width > plate_width_ || y0 + row_count > plate_height_ || rows == nullptr || words_per_row < ceil_div(width, 64))
    throw invalid_argument("add_region() rectangle outside the plate");
  if (region_dark_.empty()) region_dark_.assign(static_cast<std::size_t>(preview_width_) * preview_height_, 0);
  // Rows of one row of blocks add to the same counters: a row of blocks is one task.
  const std::uint64_t first_block_row = y0 / factor_, block_rows = (y0 + row_count - 1) / factor_ - first_block_row + 1;
  auto count_block_row = [&](unsigned, std::size_t k) {
    const std::uint64_t by = first_block_row + k;
    const std::uint64_t r0 = std::max<std::uint64_t>(y0, by * factor_), r1 = std::min<std::uint64_t>(y0 + row_count, (by + 1) * factor_);
    for (std::uint64_t y = r0; y < r1; ++y)
      count_region_row(rows + (y - y0) * words_per_row, x0, width, factor_, region_dark_.data() + by * preview_width_);
  };
  if (team_ != nullptr && block_rows > 1) {
    team_->run(static_cast<std::size_t>(block_rows), count_block_row);
  } else {
    for (std::uint64_t k = 0; k < block_rows; ++k) count_block_row(0, static_cast<std::size_t>(k));
  }
  region_modules_ += width * row_count;
  if (region_modules_ == plate_width_ * plate_height_) {
    for (std::uint32_t by = 0; by < preview_height_; ++by) {
      const std::uint64_t rows_in = std::min<std::uint64_t>(factor_, plate_height_ - static_cast<std::uint64_t>(by) * factor_);
      for (std::uint32_t bx = 0; bx < preview_width_; ++bx) {
        const std::uint64_t cols_in = std::min<std::uint64_t>(factor_, plate_width_ - static_cast<std::uint64_t>(bx) * factor_);
        const std::uint64_t modules = rows_in * cols_in;
        const std::uint64_t dark = region_dark_[static_cast<std::size_t>(by) * preview_width_ + bx];
        pixels_[static_cast<std::size_t>(by) * preview_width_ + bx] =
            static_cast<std::uint8_t>(255 - (255 * dark + modules / 2) / modules);
      }
    }
    rows_appended_ = plate_height_;  // complete: write_png may run
    std::vector<std::uint64_t>().swap(region_dark_);
  }
}

void preview_builder::finish_block_row()
{
  const std::uint64_t by = (rows_appended_ - 1) / factor_;
  const std::uint64_t block_rows = rows_appended_ - by * factor_;
  std::uint8_t* out = pixels_.data() + by * preview_width_;
  for (std::uint32_t bx = 0; bx < preview_width_; ++bx) {
    const std::uint64_t x0 = bx * factor_;
    const std::uint64_t modules = (std::min(x0 + factor_, plate_width_) - x0) * block_rows;
    const std::uint64_t level = (255 * dark_[bx] + modules / 2) / modules;  // no overflow: f <= max_factor
    out[bx] = static_cast<std::uint8_t>(255 - level);
    dark_[bx] = 0;
  }
}

void preview_builder::write_png(const std::string& path) const
{
  if (rows_appended_ != plate_height_) {
    throw invalid_argument("preview " + path + " has " + std::to_string(rows_appended_) + " of " +
                           std::to_string(plate_height_) + " plate rows");
  }
  host::write_png_file(path, pixels_.data(), preview_width_, preview_height_, 1);
}

}  // namespace qrplate::plate
