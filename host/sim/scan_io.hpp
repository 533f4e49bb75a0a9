// Image files of the read side (DESIGN.md, "File formats"): the grayscale tiles of a scan set
// (TIFF 8/16 bit, PNG, PGM), random-access windows of a plate.tif, and a contact sheet of tiles a
// person can look at. libtiff and libpng stay inside scan_io.cpp.
//
// Polarity convention: in the plate, 1 = milled = dark, which is TIFF bit 1 under MinIsWhite
// (how plate.tif is written). In a gray scan, larger = brighter (MinIsBlack sense), whatever the
// file stored; which polarity milled modules have in a scan is the decoder's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "qrplate/host_memory.hpp"

namespace qrplate::sim {

// A grayscale image, row-major, width * height samples. bits is 8 (samples 0..255) or 16
// (0..65535); larger = brighter.
struct gray_image {
  std::uint32_t width = 0, height = 0;
  int bits = 16;
  std::vector<std::uint16_t> pixels;
  // Optional, for 8-bit images: the same samples as bytes (bytes[i] == pixels[i]), as a reader
  // asked to keep them found them in the file (read_gray_image's keep_bytes), so that a GPU upload
  // need not narrow the 16-bit samples again. Empty otherwise; whoever changes pixels clears it.
  // Pinned (host_memory.hpp) when the reader was handed pinned storage: the upload then goes by
  // DMA straight from here.
  host_array<std::uint8_t> bytes;

  std::uint16_t at(std::uint32_t x, std::uint32_t y) const { return pixels[static_cast<std::size_t>(y) * width + x]; }
};

// Writes `img` as a one-page TIFF: 8 or 16 bit, 1 sample, MinIsBlack, strips of about 64 KiB,
// Adobe Deflate with the horizontal predictor (or uncompressed), classic TIFF unless the pixels
// need BigTIFF (> 2 GiB). The file is written to path + ".tmp" and renamed onto `path` only when
// complete, so `path` never holds a partial image. Throws qrplate::invalid_argument for an image
// that breaks the gray_image contract (bits not 8/16, a zero side, a pixel count that is not
// width * height, an 8-bit sample above 255), qrplate::io_error when writing fails.
void write_gray_tiff(const std::string& path, const gray_image& img, bool deflate = true);

// Reads one grayscale image; the format comes from the file's signature, not its name:
//  - TIFF (classic or BigTIFF, first page): 8 or 16 bit unsigned, 1 sample, MinIsBlack or
//    MinIsWhite (converted to MinIsBlack: v -> max - v), strips or tiles, any compression this
//    libtiff decodes; also RGB (8/16 bit, no alpha; JPEG-YCbCr is decoded to RGB) -> luminance.
//  - PNG: 8 or 16 bit gray; 1, 2 or 4 bit gray scaled to 8 bit (1 bit: 0 / 255, as a QR code
//    image from `qrplate qr` or another encoder is stored); 8/16 bit RGB and palette images ->
//    luminance (palette -> 8 bit).
//    Sample values are taken as stored: gamma and sBIT chunks are not applied.
//  - PGM binary (P5): maxval <= 255 -> 8 bit, else 16 bit (big-endian samples); samples are not
//    rescaled to the full range.
// Luminance is Y = 0.2126 R + 0.7152 G + 0.0722 B (Rec. 709) of the stored values, rounded.
// Throws qrplate::io_error naming the path and the reason for a file that cannot be read or is
// not a gray scan: bilevel or 2/4-bit TIFFs, an alpha channel, float or signed samples, more
// than 2^31 pixels, truncated data.
gray_image read_gray_image(const std::string& path);
// The same, decoding into `storage` where the format allows (gray TIFF): a recycled tile's pixel
// buffer, so that reading a scan set does not page in fresh memory for every tile. keep_bytes:
// an 8-bit gray TIFF (MinIsBlack, one sample per pixel) also gets `bytes` (in byte_storage, a
// recycled buffer too), at the cost of a byte a pixel more; other formats leave it empty.
gray_image read_gray_image(const std::string& path, std::vector<std::uint16_t> storage, bool keep_bytes = false,
                           host_array<std::uint8_t> byte_storage = host_array<std::uint8_t>());

// Random access to the modules of a plate.tif, window by window.
//
// Bit convention: 1 = milled = dark. A MinIsWhite file (what qrplate writes) is taken as it is;
// a MinIsBlack file is inverted so that its dark (0) pixels read as 1.
//
// Not thread-safe: it holds one libtiff handle and a cache. Use one reader per thread (each opens
// the file itself): several readers of one file, one per thread, are fine.
class plate_image_reader {
 public:
  // Opens a classic or BigTIFF file, tiled (or, for robustness, stripped), 1 bit per sample,
  // 1 sample, MinIsWhite or MinIsBlack. cache_bytes bounds the decoded tiles kept for overlapping
  // windows (at least one tile is always kept). Throws qrplate::io_error naming the path for a
  // file that cannot be opened or is not such an image.
  explicit plate_image_reader(const std::string& plate_tif, std::size_t cache_bytes = std::size_t{64} << 20);
  ~plate_image_reader();
  plate_image_reader(plate_image_reader&&) noexcept;
  plate_image_reader& operator=(plate_image_reader&&) noexcept;
  plate_image_reader(const plate_image_reader&) = delete;
  plate_image_reader& operator=(const plate_image_reader&) = delete;

  std::uint64_t width() const;
  std::uint64_t height() const;

  // Fills `out` with the modules [x0, x0 + w) x [y0, y0 + h): row i starts at out[i * stride],
  // stride = ceil(w / 64), module (x0 + j, y0 + i) at bit j % 64 of word j / 64 (LSB first),
  // 1 = milled. Modules outside the plate (the window may start at negative coordinates and pass
  // the edges) and bits past w in each row are 0. Decodes only the tiles the window touches.
  // Throws qrplate::invalid_argument when the window does not fit in memory or 64-bit coordinates,
  // qrplate::io_error when a tile cannot be decoded.
  void read_window(std::int64_t x0, std::int64_t y0, std::uint64_t w, std::uint64_t h, std::vector<std::uint64_t>& out,
                   std::size_t& stride);

  const std::string& path() const;
  // Decoded tiles (for a stripped file: bands of rows) the cache holds now: at most
  // max(1, cache_bytes / bytes of one decoded tile).
  std::size_t cached_tiles() const;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

// Writes an 8-bit grayscale PNG showing `tiles` in reading order, `columns` to a row (fewer when
// there are fewer tiles), with a 4-pixel gutter of 255 (white) between cells; space a tile does not
// fill is 255 too. Each tile is shrunk by an integer factor f = ceil(max(width, height) /
// max_tile_side) (1 when it fits), each output pixel the area average of its f x f block (edge
// blocks average what they hold). Cells are max(tile width) x max(tile height) after shrinking,
// tiles at their cells' top-left. 8-bit tiles keep their values; 16-bit tiles are stretched from
// their own min..max (of the full-size tile) to 0..255, v8 = round(255 * (v - min) / (max - min)),
// or v / 257 rounded when the tile is uniform. Written to path + ".tmp", then renamed.
// Throws qrplate::invalid_argument for no tiles, columns or max_tile_side 0, a tile that breaks the
// gray_image contract, or a sheet past 2^31 - 1 pixels a side; qrplate::io_error when writing fails.
void write_contact_sheet(const std::string& path, const std::vector<gray_image>& tiles, std::uint32_t columns = 3,
                         std::uint32_t max_tile_side = 512);

}  // namespace qrplate::sim
