// plate.tif: one tiled BigTIFF, 1 bit per pixel, one pixel per module, photometric MinIsWhite so
// that bit 1 = dark = milled (DESIGN.md, "File formats"). A plate can be terabytes, so the writer
// streams: it holds one row of tiles (tile_height rows of the full width) and nothing more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace qrplate::host {
class thread_team;
}

namespace qrplate::plate {

// Finished tiles one thread packs and deflates per round: bounds the tiles in flight (a packed
// and a deflated copy of each).
inline constexpr std::size_t tiles_per_thread_round = 16;

enum class tiff_compression : std::uint8_t { none, deflate, ccitt_g4 };

// "none", "deflate", "g4"; throws qrplate::invalid_argument otherwise.
tiff_compression parse_tiff_compression(std::string_view name);
const char* to_string(tiff_compression compression);  // the names parse_tiff_compression takes

struct tiff_options {
  std::uint32_t tile_width = 1024;   // pixels, a multiple of 16 (TIFF 6.0 §15, libtiff), 16..65536
  std::uint32_t tile_height = 1024;  // pixels, a multiple of 16, 16..65536
  tiff_compression compression = tiff_compression::deflate;
  // Threads that pack and deflate finished tiles side by side (nullptr: the calling thread
  // alone); it must outlive the writer. The file's bytes do not depend on it: tiles are written
  // in index order whatever thread compressed them. Group 4 tiles are packed so but compressed by
  // libtiff's own codec, one at a time.
  host::thread_team* team = nullptr;
};

// Throws qrplate::invalid_argument when a tile side is out of range or not a multiple of 16.
void validate(const tiff_options& options);

// Converts one row of `width` pixels from the qrplate matrix layout (pixel x at bit x % 64 of
// word x / 64, LSB first) to TIFF's byte packing (pixel x at bit 7 - x % 8 of byte x / 8, MSB
// first, FillOrder 1). Writes exactly ceil(width / 8) bytes; bits past `width` in the last byte
// are 0 whatever the input words hold there.
void pack_row_msb_first(const std::uint64_t* words, std::uint64_t width, std::uint8_t* out) noexcept;
// The same, one pixel at a time: the reference the fast path is tested against.
void pack_row_msb_first_reference(const std::uint64_t* words, std::uint64_t width, std::uint8_t* out) noexcept;

class tiled_bilevel_writer {
 public:
  // Creates `path` (truncating it) as a BigTIFF. width and height are 1..2^32-1 (TIFF's
  // ImageWidth/ImageLength are 32-bit) and the tile count must fit libtiff's 32-bit tile index.
  // Throws qrplate::invalid_argument for bad sizes or options, qrplate::io_error when the file
  // cannot be created.
  tiled_bilevel_writer(const std::string& path, std::uint64_t width, std::uint64_t height,
                       const tiff_options& options = {});
  // Without a successful finish() the file is incomplete: the destructor closes it and removes it,
  // so that a plate.tif that exists is always a whole one. Never throws.
  ~tiled_bilevel_writer();

  // Move-only; a moved-from writer may only be destroyed or assigned to.
  tiled_bilevel_writer(tiled_bilevel_writer&&) noexcept;
  tiled_bilevel_writer& operator=(tiled_bilevel_writer&&) noexcept;
  tiled_bilevel_writer(const tiled_bilevel_writer&) = delete;
  tiled_bilevel_writer& operator=(const tiled_bilevel_writer&) = delete;

  // Records the module pitch as XResolution = YResolution = 1e7 / module_nm pixels per
  // centimetre (ResolutionUnit 3). Any time before finish(); module_nm finite and > 0.
  void set_resolution_nm(double module_nm);
  // ImageDescription; the default names the format and the bit convention. Before finish().
  void set_description(const std::string& text);

  // Appends `row_count` rows, top to bottom, each `words_per_row` (>= ceil(width / 64)) 64-bit
  // words apart, LSB first, 1 = dark. Bits past `width` are ignored. Throws
  // qrplate::invalid_argument for a short stride or rows past `height` (nothing is appended
  // then), qrplate::io_error when a tile cannot be written (the writer is then unusable).
  void append_rows(const std::uint64_t* rows, std::size_t row_count, std::size_t words_per_row);

  // The other way to fill the image: rectangles in any order, as long as they cover every pixel
  // exactly once (the plate encoder's band x block units). Row i of the rectangle is `words` at
  // i * words_per_row, LSB first: bit j is pixel (x0 + j, y0 + i). A tile is compressed and
  // written as soon as all its pixels have arrived, so memory holds only the tiles that are
  // partly filled. Do not mix with append_rows. Throws qrplate::invalid_argument for a rectangle
  // outside the image or one that lands on a finished tile or overfills a pending one (other
  // overlaps go unnoticed until finish() finds tiles missing), qrplate::io_error when a tile
  // cannot be written.
  void put_region(std::uint64_t x0, std::uint64_t y0, std::uint64_t width, std::size_t row_count,
                  const std::uint64_t* rows, std::size_t words_per_row);

  // Writes the last, partial tile row (padded with 0 = light), the directory, and closes the file.
  // Throws qrplate::invalid_argument "wrote N of H rows" if rows are missing (the writer stays
  // open: append the rest and call finish() again), qrplate::io_error when writing fails
  // (a full disk, for example).
  void finish();

  std::uint64_t rows_written() const;
  std::uint64_t width() const;
  std::uint64_t height() const;
  const std::string& path() const;

 private:
  struct state;
  std::unique_ptr<state> state_;
  friend struct region_tiles;  // on the heap: libtiff's error handler keeps a pointer into it
};

}  // namespace qrplate::plate
