// preview.png: a downsampled overview of a plate a person can look at (DESIGN.md, "File formats").
// Built while the plate streams past, like the TIFF: it holds one row of block counters and the
// small 8-bit preview, never the plate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qrplate::host {
class thread_team;
}

namespace qrplate::plate {

class preview_builder {
 public:
  // A plate of width x height modules (each >= 1) becomes a preview of ceil(width / f) x
  // ceil(height / f) pixels, f = ceil(max(width, height) / max_side) (1 when the plate is small).
  // Throws qrplate::invalid_argument for a zero size, max_side == 0, or f > 2^28.
  // `team` (nullptr: the calling thread alone; it must outlive the builder) counts add_region's
  // rows side by side, a row of blocks each.
  preview_builder(std::uint64_t width, std::uint64_t height, std::uint32_t max_side = 2048,
                  host::thread_team* team = nullptr);

  // Same row layout as tiled_bilevel_writer::append_rows: LSB-first 64-bit words, 1 = dark,
  // words_per_row >= ceil(width / 64), bits past width ignored. Throws qrplate::invalid_argument
  // for a short stride or rows past the plate height.
  void append_rows(const std::uint64_t* rows, std::size_t row_count, std::size_t words_per_row);

  // Rectangles in any order covering every module once (the counterpart of
  // tiled_bilevel_writer::put_region); do not mix with append_rows. Keeps one counter per
  // preview pixel.
  void add_region(std::uint64_t x0, std::uint64_t y0, std::uint64_t width, std::size_t row_count,
                  const std::uint64_t* rows, std::size_t words_per_row);

  // 8-bit grayscale PNG of pixels(). Throws qrplate::invalid_argument until every plate row has
  // been appended, qrplate::io_error when the file cannot be written.
  void write_png(const std::string& path) const;

  // Row-major, width() * height() bytes. Each pixel is the area average of its block of f x f
  // modules (blocks on the right and bottom edges may be smaller; they average what they hold):
  // 255 - round(255 * dark / modules), so dark = black and a QR code reads as mid grey. Rows of
  // blocks not yet complete are 255.
  std::vector<std::uint8_t> pixels() const { return pixels_; }

  std::uint32_t width() const { return preview_width_; }
  std::uint32_t height() const { return preview_height_; }
  std::uint64_t factor() const { return factor_; }  // f, modules per preview pixel along each axis
  std::uint64_t rows_appended() const { return rows_appended_; }

 private:
  void finish_block_row();

  std::uint64_t plate_width_ = 0;
  std::uint64_t plate_height_ = 0;
  std::uint64_t factor_ = 1;
  std::uint32_t preview_width_ = 0;
  std::uint32_t preview_height_ = 0;
  std::uint64_t rows_appended_ = 0;
  std::vector<std::uint64_t> dark_;  // dark modules per block of the current block row
  std::vector<std::uint64_t> region_dark_;  // add_region mode: dark modules per block
  std::uint64_t region_modules_ = 0;        // modules added so far
  std::vector<std::uint8_t> pixels_;
  host::thread_team* team_ = nullptr;
};

}  // namespace qrplate::plate
