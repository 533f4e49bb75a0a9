// Scan-set tiles and plate windows on libtiff (>= 4.5, per-file error handlers) and libpng.
//
// Readers decode whole tiles or strips (TIFFReadEncoded*), never TIFFReadRGBA*: that path would
// drop 16-bit samples to 8. Writers go through path + ".tmp" and a rename, so a file that exists
// under its real name is whole.

#include "sim/scan_io.hpp"

#include <libdeflate.h>
#include <png.h>
#include <tiffio.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <list>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "io/png_file.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/error.hpp"
#include "sim/byte_samples.hpp"

#if !TIFFLIB_AT_LEAST(4, 5, 0)
#error "qrplate needs libtiff >= 4.5 (TIFFOpenExt with per-file error handlers)"
#endif

namespace qrplate::sim {
namespace {

// A gray image above this many pixels is refused rather than allocated (4 GiB of 16-bit samples).
constexpr std::uint64_t max_gray_pixels = std::uint64_t{1} << 31;
// Target size of one strip of a written TIFF (TIFF 6.0 §3 recommends strips of about 8 KiB; larger
// strips compress better and libtiff handles them fine).
constexpr std::uint64_t strip_bytes_target = 64 * 1024;
// A decoded plate tile (or strip band) above this size is refused: one must fit in the cache.
constexpr std::uint64_t max_plate_tile_bytes = std::uint64_t{1} << 30;
// Rows of a stripped plate are cached in bands of about this many packed bytes.
constexpr std::uint64_t plate_band_bytes = std::uint64_t{4} << 20;
constexpr std::uint32_t contact_gutter = 4;
constexpr std::uint8_t contact_background = 255;

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b)
{
  return a / b + (a % b != 0);
}

std::string system_reason(int err)
{
  return err != 0 ? std::strerror(err) : "unknown reason";
}

void remove_quietly(const std::string& path) noexcept
{
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) std::filesystem::remove(path, ec);
}

// Moves a finished temporary file onto its real name.
void commit_file(const std::string& tmp, const std::string& path)
{
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    remove_quietly(tmp);
    throw io_error("cannot rename " + tmp + " to " + path + ": " + ec.message());
  }
}

// ---------------------------------------------------------------------------------------------
// libtiff: each handle gets its own handlers (TIFFOpenOptions), which keep the first error for the
// exception message and swallow warnings (unknown tags in microscope files are common).

struct tiff_log {
  char error[512] = {};
};

int on_tiff_error(TIFF*, void* user, const char* /*module*/, const char* fmt, va_list ap)
{
  auto* log = static_cast<tiff_log*>(user);
  if (log->error[0] == '\0') std::vsnprintf(log->error, sizeof log->error, fmt, ap);
  return 1;
}

int on_tiff_warning(TIFF*, void*, const char*, const char*, va_list)
{
  return 1;
}

TIFF* open_tiff(const std::string& path, const char* mode, tiff_log& log)
{
  TIFFOpenOptions* options = TIFFOpenOptionsAlloc();
  if (options == nullptr) return nullptr;
  TIFFOpenOptionsSetErrorHandlerExtR(options, on_tiff_error, &log);
  TIFFOpenOptionsSetWarningHandlerExtR(options, on_tiff_warning, nullptr);
  errno = 0;
  TIFF* tif = TIFFOpenExt(path.c_str(), mode, options);
  TIFFOpenOptionsFree(options);
  return tif;
}

// libtiff's message, without the file name it often starts with, plus the system error when
// libtiff left it out ("Error writing TIFF header" says nothing about a full disk).
std::string tiff_reason(const tiff_log& log, const std::string& file, int err)
{
  std::string reason = log.error;
  const std::string prefix = file + ": ";
  if (reason.compare(0, prefix.size(), prefix) == 0) reason.erase(0, prefix.size());
  if (err != 0 && reason.find(std::strerror(err)) == std::string::npos) {
    reason += reason.empty() ? std::strerror(err) : std::string(" (") + std::strerror(err) + ")";
  }
  return reason.empty() ? "libtiff gave no reason" : reason;
}

struct tiff_closer {
  void operator()(TIFF* tif) const { TIFFClose(tif); }
};
using tiff_ptr = std::unique_ptr<TIFF, tiff_closer>;

struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

// ---------------------------------------------------------------------------------------------

void validate_gray(const gray_image& img, const char* what)
{
  const std::string where = std::string(what) + ": ";
  if (img.bits != 8 && img.bits != 16) {
    throw invalid_argument(where + "gray image of " + std::to_string(img.bits) + " bits; 8 or 16 allowed");
  }
  if (img.width == 0 || img.height == 0) {
    throw invalid_argument(where + "gray image of " + std::to_string(img.width) + " x " + std::to_string(img.height) +
                           " pixels; both sides must be >= 1");
  }
  const std::uint64_t n = static_cast<std::uint64_t>(img.width) * img.height;
  if (img.pixels.size() != n) {
    throw invalid_argument(where + "gray image of " + std::to_string(img.width) + " x " + std::to_string(img.height) +
                           " pixels holds " + std::to_string(img.pixels.size()) + " samples");
  }
  if (img.bits == 8) {
    const auto it = std::find_if(img.pixels.begin(), img.pixels.end(), [](std::uint16_t v) { return v > 255; });
    if (it != img.pixels.end()) {
      throw invalid_argument(where + "8-bit gray image has sample " + std::to_string(*it) + " at index " +
                             std::to_string(it - img.pixels.begin()) + "; 8-bit samples are 0..255");
    }
  }
}

// Rec. 709 luma of the stored values, rounded half up: (2126 R + 7152 G + 722 B) / 10000.
std::uint16_t luminance(std::uint32_t r, std::uint32_t g, std::uint32_t b)
{
  return static_cast<std::uint16_t>((2126u * r + 7152u * g + 722u * b + 5000u) / 10000u);
}

[[noreturn]] void unreadable(const std::string& path, const std::string& reason)
{
  throw io_error("cannot read " + path + ": " + reason);
}

// No codec this reader supports packs pixels much tighter than ~1000:1 (deflate's limit is
// ~1032:1), so a header promising far more pixels than the file could hold is a corrupt or hostile
// file: refused before its pixels are allocated (fuzz_gray_image found multi-GB claims in 30-byte
// files). 8 bytes per pixel covers RGB16 before the conversion to gray.
void check_plausible_size(const std::string& path, const char* format, std::uint64_t width, std::uint64_t height)
{
  std::error_code ec;
  const std::uint64_t file_bytes = std::filesystem::file_size(path, ec);
  if (ec) return;
  const std::uint64_t decoded = width * height * 8;
  if (decoded > file_bytes * 2048 + (std::uint64_t{1} << 20))
    unreadable(path, std::string(format) + " header claims " + std::to_string(width) + " x " + std::to_string(height) +
                         " pixels, far more than a " + std::to_string(file_bytes) + "-byte file can hold (corrupt or truncated)");
}

void check_gray_size(const std::string& path, const char* format, std::uint64_t width, std::uint64_t height)
{
  if (width == 0 || height == 0) {
    unreadable(path, std::string(format) + " image of " + std::to_string(width) + " x " + std::to_string(height) +
                         " pixels is empty");
  }
  if (width > std::numeric_limits<std::uint32_t>::max() || height > std::numeric_limits<std::uint32_t>::max() ||
      width * height > max_gray_pixels) {
    unreadable(path, std::string(format) + " image of " + std::to_string(width) + " x " + std::to_string(height) +
                         " pixels is larger than the " + std::to_string(max_gray_pixels) +
                         " pixels a scan tile may have");
  }
}

// ---------------------------------------------------------------------------------------------
// TIFF gray reading

// The fast path for what the simulator writes and most SEM software exports: one gray sample per
// pixel, in strips, zlib ("Adobe") deflate with or without the horizontal predictor, in the
// host's byte order. libtiff inflates these with libdeflate too, but undoes the predictor through
// memory, one sample at a time (a store-to-load chain per pixel: ~11% of a whole scan decode);
// here each strip is inflated straight into the image and the predictor undone in a register
// (sixteen bytes or eight 16-bit samples at a time: sim/byte_samples.hpp).
// Returns false for any surprise in the data (a stream that does not inflate to exactly its
// strip's rows, a raw strip that cannot be read): the caller then reads the file through libtiff,
// which gives the error message or copes with the oddity. `samples` holds width * height values;
// `keep` (8-bit only; may be null) width * height bytes, which get the same samples.
struct deflate_decompressor_deleter {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

bool read_deflate_strips(TIFF* t, std::uint32_t width, std::uint32_t height, std::uint16_t bits, bool predictor,
                         std::uint32_t rows_per_strip, std::uint16_t* samples, std::uint8_t* keep)
{
  std::unique_ptr<libdeflate_decompressor, deflate_decompressor_deleter> inflater(libdeflate_alloc_decompressor());
  if (!inflater) return false;
  const std::size_t row_bytes = static_cast<std::size_t>(width) * (bits / 8u);
  std::vector<std::uint8_t> raw, bytes;  // a compressed strip; an 8-bit strip's inflated bytes
  const std::uint32_t strips = TIFFNumberOfStrips(t);
  if (static_cast<std::uint64_t>(strips) * rows_per_strip < height) return false;
  for (std::uint32_t s = 0; s < strips; ++s) {
    const std::uint64_t y = static_cast<std::uint64_t>(s) * rows_per_strip;
    if (y >= height) break;  // strips past the image are never read (libtiff ignores them too)
    const std::uint32_t rows = static_cast<std::uint32_t>(std::min<std::uint64_t>(rows_per_strip, height - y));
    const std::size_t out_bytes = row_bytes * rows;
    const std::uint64_t raw_size = TIFFRawStripSize64(t, s);
    // Deflate expands at most ~1032:1; a larger claim is a corrupt strip table.
    if (raw_size == 0 || raw_size == static_cast<std::uint64_t>(-1) || raw_size > out_bytes + (out_bytes >> 3) + 4096) {
      return false;
    }
    raw.resize(static_cast<std::size_t>(raw_size));
    if (TIFFReadRawStrip(t, s, raw.data(), static_cast<tmsize_t>(raw_size)) != static_cast<tmsize_t>(raw_size)) {
      return false;
    }
    std::uint16_t* first = samples + y * width;
    void* out = first;
    if (bits == 8 && keep != nullptr) {
      out = keep + y * width;  // the predictor is undone in place below
    } else if (bits == 8) {
      bytes.resize(out_bytes);
      out = bytes.data();
    }
    std::size_t got = 0;
    if (libdeflate_zlib_decompress(inflater.get(), raw.data(), raw.size(), out, out_bytes, &got) !=
            LIBDEFLATE_SUCCESS ||
        got != out_bytes) {
      return false;
    }
    for (std::uint32_t r = 0; r < rows; ++r) {
      std::uint16_t* dst = first + static_cast<std::size_t>(r) * width;
      if (bits == 16) {
        if (predictor) undo_row_predictor(dst, width);  // differences from the left neighbour, mod 2^16
      } else {
        std::uint8_t* src = static_cast<std::uint8_t*>(out) + static_cast<std::size_t>(r) * width;
        row_bytes_to_samples(src, dst, width, predictor, keep != nullptr);
      }
    }
  }
  return true;
}

// The decoded samples (`channels` per pixel) as a MinIsBlack gray image.
gray_image finish_gray(std::uint32_t width, std::uint32_t height, std::uint16_t bits, bool min_is_white,
                       std::uint32_t channels, std::vector<std::uint16_t> samples)
{
  gray_image img;
  img.width = width;
  img.height = height;
  img.bits = bits;
  if (channels == 1) {
    img.pixels = std::move(samples);
    if (min_is_white) {
      const std::uint16_t top = bits == 8 ? 255 : 65535;
      for (std::uint16_t& v : img.pixels) v = static_cast<std::uint16_t>(top - v);
    }
  } else {
    const std::size_t pixel_count = static_cast<std::size_t>(width) * height;
    img.pixels.resize(pixel_count);
    for (std::size_t i = 0; i < pixel_count; ++i) {
      img.pixels[i] = luminance(samples[3 * i], samples[3 * i + 1], samples[3 * i + 2]);
    }
  }
  return img;
}

gray_image read_gray_tiff(const std::string& path, std::vector<std::uint16_t> storage, bool keep_bytes,
                          host_array<std::uint8_t> byte_storage)
{
  tiff_log log;
  tiff_ptr tif(open_tiff(path, "r", log));
  if (!tif) unreadable(path, tiff_reason(log, path, errno));
  TIFF* t = tif.get();

  std::uint32_t width = 0, height = 0;
  if (TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &width) != 1 || TIFFGetField(t, TIFFTAG_IMAGELENGTH, &height) != 1) {
    unreadable(path, "TIFF without ImageWidth or ImageLength");
  }
  std::uint16_t bits = 1, spp = 1, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
  std::uint16_t compression = COMPRESSION_NONE, photometric = 0;
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &compression);
  if (TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photometric) != 1) {
    photometric = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;  // a sloppy writer's default
  }

  if (bits == 1) {
    unreadable(path,
               "a 1-bit (bilevel) TIFF is not a gray scan (a plate.tif? read it with plate_image_reader); "
               "scan tiles have 8 or 16 bits per sample");
  }
  if (format != SAMPLEFORMAT_UINT) {
    unreadable(path, std::string("TIFF samples are ") + (format == SAMPLEFORMAT_IEEEFP ? "floating point" : "signed") +
                         "; scan tiles have unsigned 8 or 16 bit samples");
  }
  if (bits != 8 && bits != 16) {
    unreadable(path, "TIFF has " + std::to_string(bits) + " bits per sample; scan tiles have 8 or 16");
  }
  std::uint32_t channels = 1;
  const bool min_is_white = photometric == PHOTOMETRIC_MINISWHITE;
  if (photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE) {
    if (spp != 1) {
      unreadable(path,
                 "gray TIFF has " + std::to_string(spp) + " samples per pixel (an alpha channel?); a scan tile has 1");
    }
  } else if (photometric == PHOTOMETRIC_RGB) {
    if (spp != 3) {
      unreadable(path, "RGB TIFF has " + std::to_string(spp) +
                           " samples per pixel (an alpha channel?); "
                           "a scan tile is gray, or RGB without alpha");
    }
    channels = 3;
  } else {
    unreadable(path, "TIFF photometric interpretation " + std::to_string(photometric) +
                         " (palette, CMYK, YCbCr, Lab...) is not supported; scan tiles are gray (MinIsBlack or "
                         "MinIsWhite) or RGB");
  }
  if (TIFFIsCODECConfigured(compression) != 1) {
    unreadable(path, "TIFF compression scheme " + std::to_string(compression) + " is not supported by this libtiff");
  }
  check_gray_size(path, "TIFF", width, height);
  check_plausible_size(path, "TIFF", width, height);

  // Samples as decoded, channels per pixel, then reduced to one gray value per pixel.
  const std::size_t pixel_count = static_cast<std::size_t>(width) * height;
  // Every sample is written below (a block that fails to decode throws): recycled storage of the
  // right size is not cleared first.
  std::vector<std::uint16_t> samples = std::move(storage);
  if (samples.size() != pixel_count * channels) samples.resize(pixel_count * channels);
  const std::uint32_t planes = planar == PLANARCONFIG_SEPARATE ? spp : 1;
  const std::uint32_t per_pixel = planar == PLANARCONFIG_SEPARATE ? 1 : spp;  // samples per pixel in a block
  const std::uint32_t bytes_per_sample = bits / 8u;
  // keep_bytes: an 8-bit gray image's samples as stored, one byte each (gray_image::bytes), filled
  // as the blocks are copied; MinIsWhite files are left out (their samples are inverted after).
  host_array<std::uint8_t> bytes;
  if (keep_bytes && bits == 8 && channels == 1 && per_pixel == 1 && !min_is_white) {
    bytes = std::move(byte_storage);
    bytes.resize_for_overwrite(pixel_count);  // every byte is written below, as every sample is
  }

  // Copies a decoded block (tile or strip) of block_w x rows pixels whose top-left pixel is
  // (bx, by), plane `plane`, into `samples`.
  auto copy_block = [&](const std::uint8_t* block, std::uint32_t block_w, std::uint32_t bx, std::uint32_t by,
                        std::uint32_t rows, std::uint32_t cols, std::uint32_t plane) {
    for (std::uint32_t r = 0; r < rows; ++r) {
      const std::uint8_t* src = block + static_cast<std::size_t>(r) * block_w * per_pixel * bytes_per_sample;
      std::uint16_t* dst = samples.data() + (static_cast<std::size_t>(by + r) * width + bx) * channels;
      if (channels == 1 && per_pixel == 1) {  // gray: the common case, a row at a time
        if (bytes_per_sample == 2) {
          std::memcpy(dst, src, static_cast<std::size_t>(cols) * 2);
        } else {
          for (std::uint32_t c = 0; c < cols; ++c) dst[c] = src[c];
          if (!bytes.empty()) std::memcpy(bytes.data() + static_cast<std::size_t>(by + r) * width + bx, src, cols);
        }
        continue;
      }
      for (std::uint32_t c = 0; c < cols; ++c) {
        for (std::uint32_t k = 0; k < per_pixel; ++k) {
          const std::size_t i = static_cast<std::size_t>(c) * per_pixel + k;
          std::uint16_t v;
          if (bytes_per_sample == 1) {
            v = src[i];
          } else {
            std::memcpy(&v, src + 2 * i, 2);  // libtiff hands over native byte order
          }
          dst[static_cast<std::size_t>(c) * channels + (planes > 1 ? plane : k)] = v;
        }
      }
    }
  };

  std::vector<std::uint8_t> block;
  if (TIFFIsTiled(t)) {
    std::uint32_t tw = 0, th = 0;
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
    const tmsize_t tile_size = TIFFTileSize(t);
    if (tw == 0 || th == 0 || tile_size <= 0) unreadable(path, "TIFF tile size is invalid");
    const std::uint64_t need = static_cast<std::uint64_t>(tw) * th * per_pixel * bytes_per_sample;
    if (need > static_cast<std::uint64_t>(tile_size)) unreadable(path, "TIFF tile size is inconsistent");
    block.resize(static_cast<std::size_t>(tile_size));
    for (std::uint32_t p = 0; p < planes; ++p) {
      for (std::uint32_t y = 0; y < height; y += th) {
        for (std::uint32_t x = 0; x < width; x += tw) {
          const std::uint32_t index = TIFFComputeTile(t, x, y, 0, static_cast<std::uint16_t>(p));
          if (TIFFReadEncodedTile(t, index, block.data(), tile_size) < 0) {
            unreadable(path, "TIFF tile " + std::to_string(index) + ": " + tiff_reason(log, path, 0));
          }
          copy_block(block.data(), tw, x, y, std::min(th, height - y), std::min(tw, width - x), p);
        }
      }
    }
  } else {
    std::uint32_t rows_per_strip = height;
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
    rows_per_strip = std::max<std::uint32_t>(1, std::min(rows_per_strip, height));
    const tmsize_t strip_size = TIFFStripSize(t);
    const std::uint64_t row_bytes = static_cast<std::uint64_t>(width) * per_pixel * bytes_per_sample;
    if (strip_size <= 0 || static_cast<std::uint64_t>(strip_size) < row_bytes * rows_per_strip) {
      unreadable(path, "TIFF strip size is invalid");
    }
    std::uint16_t predictor = PREDICTOR_NONE, fill_order = FILLORDER_MSB2LSB;
    const bool deflate = compression == COMPRESSION_ADOBE_DEFLATE || compression == COMPRESSION_DEFLATE;
    if (deflate) TIFFGetFieldDefaulted(t, TIFFTAG_PREDICTOR, &predictor);
    TIFFGetFieldDefaulted(t, TIFFTAG_FILLORDER, &fill_order);
    if (deflate && channels == 1 && planes == 1 && per_pixel == 1 &&
        (predictor == PREDICTOR_NONE || predictor == PREDICTOR_HORIZONTAL) && fill_order == FILLORDER_MSB2LSB &&
        (bits == 8 || TIFFIsByteSwapped(t) == 0) &&
        read_deflate_strips(t, width, height, bits, predictor == PREDICTOR_HORIZONTAL, rows_per_strip,
                            samples.data(), bytes.empty() ? nullptr : bytes.data())) {
      gray_image img = finish_gray(width, height, bits, min_is_white, channels, std::move(samples));
      img.bytes = std::move(bytes);
      return img;
    }
    block.resize(static_cast<std::size_t>(strip_size));
    for (std::uint32_t p = 0; p < planes; ++p) {
      for (std::uint32_t y = 0; y < height; y += rows_per_strip) {
        const std::uint32_t rows = std::min(rows_per_strip, height - y);
        const std::uint32_t index = TIFFComputeStrip(t, y, static_cast<std::uint16_t>(p));
        const tmsize_t got = TIFFReadEncodedStrip(t, index, block.data(), strip_size);
        if (got < 0) unreadable(path, "TIFF strip " + std::to_string(index) + ": " + tiff_reason(log, path, 0));
        if (static_cast<std::uint64_t>(got) < row_bytes * rows) {
          unreadable(path, "TIFF strip " + std::to_string(index) + " is short: " + std::to_string(got) + " of " +
                               std::to_string(row_bytes * rows) + " bytes");
        }
        copy_block(block.data(), width, 0, y, rows, width, p);
      }
    }
  }

  gray_image img = finish_gray(width, height, bits, min_is_white, channels, std::move(samples));
  img.bytes = std::move(bytes);
  return img;
}

// ---------------------------------------------------------------------------------------------
// PNG. libpng reports errors by longjmp, which must not cross frames holding C++ objects with
// destructors: the functions that call setjmp hold only plain data, and their callers own the
// buffers.

struct png_read_state {
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[256] = {};
  png_uint_32 width = 0, height = 0;
  int depth = 0, color_type = 0;
  png_color palette[256] = {};
  int palette_size = 0;

  png_read_state() = default;
  png_read_state(const png_read_state&) = delete;
  png_read_state& operator=(const png_read_state&) = delete;
  ~png_read_state()
  {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

void on_png_error(png_structp png, png_const_charp message)
{
  auto* status = static_cast<char*>(png_get_error_ptr(png));
  std::snprintf(status, 256, "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

bool png_read_header(png_read_state& s, std::FILE* file)
{
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s.message, on_png_error, on_png_warning);
  if (s.png == nullptr) {
    std::snprintf(s.message, sizeof s.message, "cannot create a PNG reader");
    return false;
  }
  s.info = png_create_info_struct(s.png);
  if (s.info == nullptr) {
    std::snprintf(s.message, sizeof s.message, "cannot create a PNG reader");
    return false;
  }
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_init_io(s.png, file);
  png_read_info(s.png, s.info);
  int interlace = 0;
  png_get_IHDR(s.png, s.info, &s.width, &s.height, &s.depth, &s.color_type, &interlace, nullptr, nullptr);
  if (s.color_type == PNG_COLOR_TYPE_PALETTE) {
    png_colorp palette = nullptr;
    int n = 0;
    if (png_get_PLTE(s.png, s.info, &palette, &n) == PNG_INFO_PLTE && palette != nullptr) {
      s.palette_size = std::min(n, 256);
      std::memcpy(s.palette, palette, sizeof(png_color) * static_cast<std::size_t>(s.palette_size));
    }
  }
  return true;
}

// Reads all rows as stored: 8 or 16 bit samples (big-endian), palette indices one byte each.
bool png_read_pixels(png_read_state& s, png_bytep* rows)
{
  if (setjmp(png_jmpbuf(s.png))) return false;
  if (s.color_type == PNG_COLOR_TYPE_PALETTE && s.depth < 8) png_set_packing(s.png);
  if (s.color_type == PNG_COLOR_TYPE_GRAY && s.depth < 8) png_set_expand_gray_1_2_4_to_8(s.png);
  png_set_interlace_handling(s.png);
  png_read_update_info(s.png, s.info);
  png_read_image(s.png, rows);
  return true;
}

gray_image read_gray_png(const std::string& path, std::FILE* file)
{
  png_read_state s;
  if (!png_read_header(s, file)) unreadable(path, std::string("PNG: ") + s.message);
  if (s.color_type & PNG_COLOR_MASK_ALPHA) {
    unreadable(path, "PNG has an alpha channel; a scan tile is gray (or RGB / palette) without alpha");
  }
  if (s.color_type == PNG_COLOR_TYPE_PALETTE && s.palette_size == 0) unreadable(path, "palette PNG without PLTE");
  check_gray_size(path, "PNG", s.width, s.height);
  check_plausible_size(path, "PNG", s.width, s.height);

  const std::uint32_t channels = s.color_type == PNG_COLOR_TYPE_RGB ? 3 : 1;
  const std::uint32_t bytes_per_sample = s.depth == 16 ? 2 : 1;
  const std::size_t row_bytes = static_cast<std::size_t>(s.width) * channels * bytes_per_sample;
  std::vector<std::uint8_t> data(row_bytes * s.height);
  std::vector<png_bytep> rows(s.height);
  for (std::uint32_t y = 0; y < s.height; ++y) rows[y] = data.data() + y * row_bytes;
  if (!png_read_pixels(s, rows.data())) unreadable(path, std::string("PNG: ") + s.message);

  gray_image img;
  img.width = s.width;
  img.height = s.height;
  img.bits = s.depth == 16 ? 16 : 8;
  const std::size_t n = static_cast<std::size_t>(s.width) * s.height;
  img.pixels.resize(n);
  auto sample = [&](std::size_t i) -> std::uint32_t {
    return bytes_per_sample == 1 ? data[i] : (std::uint32_t{data[2 * i]} << 8) | data[2 * i + 1];
  };
  if (s.color_type == PNG_COLOR_TYPE_GRAY) {
    for (std::size_t i = 0; i < n; ++i) img.pixels[i] = static_cast<std::uint16_t>(sample(i));
  } else if (s.color_type == PNG_COLOR_TYPE_RGB) {
    for (std::size_t i = 0; i < n; ++i) img.pixels[i] = luminance(sample(3 * i), sample(3 * i + 1), sample(3 * i + 2));
  } else {
    std::uint16_t lut[256] = {};  // indices past the palette read as black
    for (int k = 0; k < s.palette_size; ++k)
      lut[k] = luminance(s.palette[k].red, s.palette[k].green, s.palette[k].blue);
    for (std::size_t i = 0; i < n; ++i) img.pixels[i] = lut[data[i]];
  }
  return img;
}

// ---------------------------------------------------------------------------------------------
// PGM (Netpbm "P5"): "P5", width, height, maxval as decimal numbers separated by whitespace, '#'
// comments to the end of a line between them, one whitespace character, then the samples.

gray_image read_gray_pgm(const std::string& path, std::FILE* file)
{
  auto bad = [&](const std::string& why) { unreadable(path, "PGM: " + why); };
  if (std::fseek(file, 2, SEEK_SET) != 0) bad("cannot seek past the signature");
  auto next_number = [&](const char* what) -> std::uint64_t {
    int c = std::fgetc(file);
    while (c != EOF) {
      if (c == '#') {
        while (c != EOF && c != '\n' && c != '\r') c = std::fgetc(file);
      } else if (std::isspace(c)) {
        c = std::fgetc(file);
      } else {
        break;
      }
    }
    if (c == EOF || !std::isdigit(c)) bad(std::string("header has no ") + what);
    std::uint64_t v = 0;
    while (c != EOF && std::isdigit(c)) {
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
      if (v > std::numeric_limits<std::uint32_t>::max()) bad(std::string(what) + " in the header is too large");
      c = std::fgetc(file);
    }
    if (c != EOF && !std::isspace(c) && c != '#') bad(std::string("header: bad character after the ") + what);
    if (c == '#') std::ungetc(c, file);  // the next number's scan skips the comment
    return v;
  };
  const std::uint64_t width = next_number("width");
  const std::uint64_t height = next_number("height");
  const std::uint64_t maxval = next_number("maxval");
  if (maxval == 0 || maxval > 65535) bad("maxval " + std::to_string(maxval) + " is outside 1..65535");
  check_gray_size(path, "PGM", width, height);

  const std::size_t n = static_cast<std::size_t>(width * height);
  const std::size_t bytes_per_sample = maxval > 255 ? 2 : 1;
  // Samples are stored raw: a header that claims more than the file holds is found out before
  // gigabytes are allocated for it (found by fuzz_gray_image).
  {
    const long here = std::ftell(file);
    if (here >= 0 && std::fseek(file, 0, SEEK_END) == 0) {
      const long end = std::ftell(file);
      if (end >= here && static_cast<std::uint64_t>(end - here) < static_cast<std::uint64_t>(n) * bytes_per_sample)
        bad("truncated: " + std::to_string(end - here) + " of " + std::to_string(n * bytes_per_sample) + " bytes of samples");
      std::fseek(file, here, SEEK_SET);
    }
  }
  std::vector<std::uint8_t> data(n * bytes_per_sample);
  const std::size_t got = std::fread(data.data(), 1, data.size(), file);
  if (got != data.size()) {
    bad("truncated: " + std::to_string(got) + " of " + std::to_string(data.size()) + " bytes of samples");
  }
  gray_image img;
  img.width = static_cast<std::uint32_t>(width);
  img.height = static_cast<std::uint32_t>(height);
  img.bits = bytes_per_sample == 2 ? 16 : 8;
  img.pixels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t v = bytes_per_sample == 1 ? data[i] : (std::uint32_t{data[2 * i]} << 8) | data[2 * i + 1];
    if (v > maxval) {
      bad("sample " + std::to_string(v) + " at pixel " + std::to_string(i) + " exceeds maxval " +
          std::to_string(maxval));
    }
    img.pixels[i] = static_cast<std::uint16_t>(v);
  }
  return img;
}

// ---------------------------------------------------------------------------------------------
// Bit rows. Plate TIFFs pack pixel x at bit 7 - x % 8 of byte x / 8 (FillOrder 1, which libtiff
// delivers whatever the file's FillOrder); qrplate rows hold pixel x at bit x % 64 of word x / 64.

// Reverses the bit order inside each byte of x, all eight bytes at once.
inline std::uint64_t reverse_bits_in_bytes(std::uint64_t x)
{
  x = ((x >> 1) & 0x5555555555555555ull) | ((x & 0x5555555555555555ull) << 1);
  x = ((x >> 2) & 0x3333333333333333ull) | ((x & 0x3333333333333333ull) << 2);
  x = ((x >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((x & 0x0F0F0F0F0F0F0F0Full) << 4);
  return x;
}

// MSB-first bytes (nbytes of them) to `nwords` LSB-first words, inverted when `invert`. Bits past
// the bytes are 0 (or 1 when inverted): callers never read past the image width.
void unpack_row_msb_first(const std::uint8_t* bytes, std::size_t nbytes, std::uint64_t* words, std::size_t nwords,
                          bool invert)
{
  const std::uint64_t flip = invert ? ~std::uint64_t{0} : 0;
  for (std::size_t k = 0; k < nwords; ++k) {
    std::uint64_t v = 0;
    const std::size_t first = 8 * k;
    const std::size_t count = first >= nbytes ? 0 : std::min<std::size_t>(8, nbytes - first);
    // Byte-wise loads keep this independent of host endianness; compilers merge them.
    for (std::size_t b = 0; b < count; ++b) v |= std::uint64_t{bytes[first + b]} << (8 * b);
    words[k] = reverse_bits_in_bytes(v) ^ flip;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void write_gray_tiff(const std::string& path, const gray_image& img, bool deflate)
{
  validate_gray(img, "write_gray_tiff");
  const std::string tmp = path + ".tmp";
  const std::uint64_t bytes_per_sample = img.bits == 8 ? 1 : 2;
  const std::uint64_t row_bytes = img.width * bytes_per_sample;
  const bool big = row_bytes * img.height > (std::uint64_t{1} << 31);

  tiff_log log;
  // Closes and removes the temporary file unless the write completed.
  struct guard {
    TIFF* tif = nullptr;
    const std::string& tmp;
    bool done = false;
    ~guard()
    {
      if (tif != nullptr) TIFFClose(tif);
      if (!done) remove_quietly(tmp);
    }
  } g{nullptr, tmp};
  g.tif = open_tiff(tmp, big ? "w8" : "w", log);
  if (g.tif == nullptr) throw io_error("cannot create " + path + ": " + tiff_reason(log, tmp, errno));
  auto fail = [&](const std::string& what) {
    const int err = errno;
    throw io_error("cannot write " + path + " (" + what + "): " + tiff_reason(log, tmp, err));
  };
  auto set = [&](ttag_t tag, auto value) {
    errno = 0;
    if (TIFFSetField(g.tif, tag, value) != 1) fail("TIFF tag " + std::to_string(tag));
  };

  const std::uint32_t rows_per_strip = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(img.height, std::max<std::uint64_t>(1, strip_bytes_target / row_bytes)));
  set(TIFFTAG_IMAGEWIDTH, img.width);
  set(TIFFTAG_IMAGELENGTH, img.height);
  set(TIFFTAG_BITSPERSAMPLE, img.bits);
  set(TIFFTAG_SAMPLESPERPIXEL, 1);
  set(TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
  set(TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  set(TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  set(TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
  set(TIFFTAG_ROWSPERSTRIP, rows_per_strip);
  if (deflate) {
    set(TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    set(TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);  // neighbouring pixels of a scan are alike
  } else {
    set(TIFFTAG_COMPRESSION, COMPRESSION_NONE);
  }
  set(TIFFTAG_SOFTWARE, "qrplate");

  std::vector<std::uint8_t> strip(static_cast<std::size_t>(row_bytes) * rows_per_strip);
  const std::uint32_t strips = static_cast<std::uint32_t>(ceil_div(img.height, rows_per_strip));
  for (std::uint32_t s = 0; s < strips; ++s) {
    const std::uint32_t y0 = s * rows_per_strip;
    const std::uint32_t rows = std::min(rows_per_strip, img.height - y0);
    const std::uint16_t* src = img.pixels.data() + static_cast<std::size_t>(y0) * img.width;
    const std::size_t n = static_cast<std::size_t>(rows) * img.width;
    if (img.bits == 8) {
      for (std::size_t i = 0; i < n; ++i) strip[i] = static_cast<std::uint8_t>(src[i]);
    } else {
      std::memcpy(strip.data(), src, 2 * n);  // native byte order; libtiff records it in the header
    }
    const auto size = static_cast<tmsize_t>(n * bytes_per_sample);
    errno = 0;
    // The predictor works in place: libtiff may scribble on the buffer, which is ours to lose.
    if (TIFFWriteEncodedStrip(g.tif, s, strip.data(), size) != size) fail("strip " + std::to_string(s));
  }
  errno = 0;
  if (TIFFFlush(g.tif) != 1) fail("directory");
  // TIFFClose would hide a failing close(); take it apart by hand to see the result.
  TIFFCloseProc close_proc = TIFFGetCloseProc(g.tif);
  thandle_t handle = TIFFClientdata(g.tif);
  TIFFCleanup(g.tif);
  g.tif = nullptr;
  if (close_proc(handle) != 0) throw io_error("cannot close " + tmp + ": " + system_reason(errno));
  commit_file(tmp, path);
  g.done = true;
}

gray_image read_gray_image(const std::string& path) { return read_gray_image(path, {}); }

gray_image read_gray_image(const std::string& path, std::vector<std::uint16_t> storage, bool keep_bytes,
                           host_array<std::uint8_t> byte_storage)
{
  errno = 0;
  file_ptr file(std::fopen(path.c_str(), "rb"));
  if (!file) unreadable(path, system_reason(errno));
  unsigned char sig[8] = {};
  errno = 0;
  const std::size_t n = std::fread(sig, 1, sizeof sig, file.get());
  const int read_err = errno;
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 4 && ((sig[0] == 'I' && sig[1] == 'I' && (sig[2] == 42 || sig[2] == 43) && sig[3] == 0) ||
                 (sig[0] == 'M' && sig[1] == 'M' && sig[2] == 0 && (sig[3] == 42 || sig[3] == 43)))) {
    file.reset();
    return read_gray_tiff(path, std::move(storage), keep_bytes, std::move(byte_storage));
  }
  if (n == 8 && std::memcmp(sig, png_sig, 8) == 0) {
    std::rewind(file.get());
    return read_gray_png(path, file.get());
  }
  if (n >= 2 && sig[0] == 'P' && sig[1] == '5') return read_gray_pgm(path, file.get());
  if (n >= 2 && sig[0] == 'P' && sig[1] >= '1' && sig[1] <= '7') {
    unreadable(path, std::string("Netpbm P") + static_cast<char>(sig[1]) +
                         " is not supported; scan tiles may be binary PGM (P5)");
  }
  if (std::ferror(file.get())) unreadable(path, system_reason(read_err));
  unreadable(path, n == 0 ? "the file is empty" : "not a TIFF, PNG or PGM (P5) file");
}

// ---------------------------------------------------------------------------------------------

struct plate_image_reader::state {
  std::string path;
  tiff_log log;
  TIFF* tif = nullptr;
  std::uint64_t width = 0, height = 0;
  bool tiled = false;
  bool invert = false;        // MinIsBlack: file bit 0 = dark
  std::uint64_t block_w = 0;  // tile size; for a stripped file: full width x band rows
  std::uint64_t block_h = 0;
  std::uint64_t blocks_across = 0;
  std::size_t block_row_bytes = 0;  // decoded bytes of one row of a block
  std::size_t block_stride = 0;     // words of one row of a cached block
  std::size_t capacity = 1;         // blocks the cache keeps
  std::vector<std::uint8_t> raw;    // one decoded tile, or one scanline
  // Stripped files: rows per strip, and the row TIFFReadScanline would decode next without
  // restarting a strip (no_row: unknown).
  static constexpr std::uint64_t no_row = ~std::uint64_t{0};
  std::uint64_t rows_per_strip = 1;
  std::uint64_t next_row = no_row;

  using entry = std::pair<std::uint64_t, std::vector<std::uint64_t>>;
  std::list<entry> lru;  // most recently used first
  std::unordered_map<std::uint64_t, std::list<entry>::iterator> where;

  state() = default;
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  ~state()
  {
    if (tif != nullptr) TIFFClose(tif);
  }

  [[noreturn]] void bad(const std::string& reason) const
  {
    throw io_error(path + ": not a plate image: " + reason +
                   " (plate.tif is 1 bit per pixel, 1 sample, "
                   "MinIsWhite, tiled)");
  }

  const std::vector<std::uint64_t>& block(std::uint64_t bx, std::uint64_t by)
  {
    const std::uint64_t key = by * blocks_across + bx;
    const auto found = where.find(key);
    if (found != where.end()) {
      lru.splice(lru.begin(), lru, found->second);
      return lru.front().second;
    }
    std::vector<std::uint64_t> words;
    if (lru.size() >= capacity) {  // reuse the least recently used block's memory
      words = std::move(lru.back().second);
      where.erase(lru.back().first);
      lru.pop_back();
    }
    words.resize(block_stride * block_h);
    decode(bx, by, words.data());
    lru.emplace_front(key, std::move(words));
    where[key] = lru.begin();
    return lru.front().second;
  }

  void decode(std::uint64_t bx, std::uint64_t by, std::uint64_t* words)
  {
    if (tiled) {
      const std::uint32_t index = TIFFComputeTile(tif, static_cast<std::uint32_t>(bx * block_w),
                                                  static_cast<std::uint32_t>(by * block_h), 0, 0);
      std::fill(raw.begin(), raw.end(), std::uint8_t{0});
      if (TIFFReadEncodedTile(tif, index, raw.data(), static_cast<tmsize_t>(raw.size())) < 0) {
        throw io_error("cannot decode tile " + std::to_string(index) + " of " + path + ": " +
                       tiff_reason(log, path, 0));
      }
      for (std::uint64_t r = 0; r < block_h; ++r) {
        unpack_row_msb_first(raw.data() + r * block_row_bytes, block_row_bytes, words + r * block_stride, block_stride,
                             invert);
      }
      return;
    }
    // Stripped: a band of rows, read line by line, so strips of any size work without holding one
    // whole. Most codecs cannot skip rows (libtiff: "does not support random access"): a band
    // that starts inside a strip is reached by decoding from the strip's first row, or from the
    // row after the last one read when that lies in the same strip, before the band.
    const std::uint64_t y0 = by * block_h;
    const std::uint64_t y1 = std::min(y0 + block_h, height);
    const std::uint64_t strip_start = y0 / rows_per_strip * rows_per_strip;
    const std::uint64_t start = next_row >= strip_start && next_row <= y0 ? next_row : strip_start;
    for (std::uint64_t y = start; y < y1; ++y) {
      next_row = no_row;
      if (TIFFReadScanline(tif, raw.data(), static_cast<std::uint32_t>(y), 0) < 0) {
        throw io_error("cannot decode row " + std::to_string(y) + " of " + path + ": " + tiff_reason(log, path, 0));
      }
      next_row = y + 1;
      if (y >= y0) {
        unpack_row_msb_first(raw.data(), block_row_bytes, words + (y - y0) * block_stride, block_stride, invert);
      }
    }
  }
};

plate_image_reader::plate_image_reader(const std::string& plate_tif, std::size_t cache_bytes)
    : state_(std::make_unique<state>())
{
  state& s = *state_;
  s.path = plate_tif;
  s.tif = open_tiff(plate_tif, "r", s.log);
  if (s.tif == nullptr)
    throw io_error("cannot open plate image " + plate_tif + ": " + tiff_reason(s.log, plate_tif, errno));
  TIFF* t = s.tif;

  std::uint32_t width = 0, height = 0;
  if (TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &width) != 1 || TIFFGetField(t, TIFFTAG_IMAGELENGTH, &height) != 1 ||
      width == 0 || height == 0) {
    s.bad("no image size");
  }
  std::uint16_t bits = 1, spp = 1, compression = COMPRESSION_NONE, photometric = 0;
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &compression);
  if (bits != 1) s.bad(std::to_string(bits) + " bits per sample");
  if (spp != 1) s.bad(std::to_string(spp) + " samples per pixel");
  if (TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photometric) != 1) s.bad("no photometric interpretation");
  if (photometric != PHOTOMETRIC_MINISWHITE && photometric != PHOTOMETRIC_MINISBLACK) {
    s.bad("photometric interpretation " + std::to_string(photometric));
  }
  if (TIFFIsCODECConfigured(compression) != 1) {
    throw io_error("cannot read plate image " + plate_tif + ": compression scheme " + std::to_string(compression) +
                   " is not supported by this libtiff");
  }
  s.width = width;
  s.height = height;
  s.invert = photometric == PHOTOMETRIC_MINISBLACK;
  s.tiled = TIFFIsTiled(t) != 0;
  if (s.tiled) {
    std::uint32_t tw = 0, th = 0;
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
    if (tw == 0 || th == 0) s.bad("tile size " + std::to_string(tw) + " x " + std::to_string(th));
    s.block_w = tw;
    s.block_h = th;
    s.block_row_bytes = static_cast<std::size_t>(ceil_div(tw, 8));
    const tmsize_t tile_size = TIFFTileSize(t);
    if (tile_size <= 0 || static_cast<std::uint64_t>(tile_size) < s.block_row_bytes * s.block_h) {
      s.bad("inconsistent tile size");
    }
    if (static_cast<std::uint64_t>(tile_size) > max_plate_tile_bytes) {
      s.bad("tiles of " + std::to_string(tw) + " x " + std::to_string(th) + " pixels are too large to decode");
    }
    s.raw.resize(static_cast<std::size_t>(tile_size));
  } else {
    s.block_w = width;
    s.block_row_bytes = static_cast<std::size_t>(ceil_div(width, 8));
    const tmsize_t line = TIFFScanlineSize(t);
    if (line <= 0 || static_cast<std::uint64_t>(line) < s.block_row_bytes) s.bad("inconsistent row size");
    std::uint32_t rows_per_strip = height;
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
    s.rows_per_strip = std::max<std::uint32_t>(1, std::min(rows_per_strip, height));
    // Bands of whole strips when strips are small (each band then decodes from a strip start);
    // otherwise bands cut strips.
    const std::uint64_t target = std::max<std::uint64_t>(1, plate_band_bytes / s.block_row_bytes);
    s.block_h = s.rows_per_strip <= target ? target / s.rows_per_strip * s.rows_per_strip : target;
    s.block_h = std::min<std::uint64_t>(s.block_h, height);
    s.raw.resize(static_cast<std::size_t>(line));
  }
  s.blocks_across = ceil_div(s.width, s.block_w);
  s.block_stride = static_cast<std::size_t>(ceil_div(s.block_w, 64));
  const std::uint64_t block_bytes = static_cast<std::uint64_t>(s.block_stride) * s.block_h * 8;
  s.capacity = static_cast<std::size_t>(std::max<std::uint64_t>(1, cache_bytes / block_bytes));
}

plate_image_reader::~plate_image_reader() = default;
plate_image_reader::plate_image_reader(plate_image_reader&&) noexcept = default;
plate_image_reader& plate_image_reader::operator=(plate_image_reader&&) noexcept = default;

std::uint64_t plate_image_reader::width() const
{
  return state_->width;
}

std::uint64_t plate_image_reader::height() const
{
  return state_->height;
}

const std::string& plate_image_reader::path() const
{
  return state_->path;
}

std::size_t plate_image_reader::cached_tiles() const
{
  return state_->lru.size();
}

void plate_image_reader::read_window(std::int64_t x0, std::int64_t y0, std::uint64_t w, std::uint64_t h,
                                     std::vector<std::uint64_t>& out, std::size_t& stride)
{
  state& s = *state_;
  constexpr std::uint64_t max_side = std::uint64_t{1} << 40;
  constexpr std::int64_t max_origin = std::int64_t{1} << 60;
  if (w > max_side || h > max_side || x0 > max_origin || y0 > max_origin || x0 < -max_origin || y0 < -max_origin) {
    throw invalid_argument("plate window " + std::to_string(w) + " x " + std::to_string(h) + " at (" +
                           std::to_string(x0) + ", " + std::to_string(y0) +
                           ") out of range: sides up to 2^40, "
                           "origin within +-2^60");
  }
  const std::uint64_t words_per_row = ceil_div(w, 64);
  if (h != 0 && words_per_row > (std::numeric_limits<std::size_t>::max() / 8) / h) {
    throw invalid_argument("plate window " + std::to_string(w) + " x " + std::to_string(h) + " does not fit in memory");
  }
  stride = static_cast<std::size_t>(words_per_row);
  out.assign(stride * static_cast<std::size_t>(h), 0);

  // The part of the window inside the image, in image coordinates.
  const std::int64_t ix0 = std::max<std::int64_t>(x0, 0);
  const std::int64_t iy0 = std::max<std::int64_t>(y0, 0);
  const std::int64_t ix1 =
      std::min<std::int64_t>(x0 + static_cast<std::int64_t>(w), static_cast<std::int64_t>(s.width));
  const std::int64_t iy1 =
      std::min<std::int64_t>(y0 + static_cast<std::int64_t>(h), static_cast<std::int64_t>(s.height));
  if (ix0 >= ix1 || iy0 >= iy1) return;
  const auto ux0 = static_cast<std::uint64_t>(ix0), ux1 = static_cast<std::uint64_t>(ix1);
  const auto uy0 = static_cast<std::uint64_t>(iy0), uy1 = static_cast<std::uint64_t>(iy1);

  for (std::uint64_t by = uy0 / s.block_h; by * s.block_h < uy1; ++by) {
    const std::uint64_t cy0 = std::max(uy0, by * s.block_h);
    const std::uint64_t cy1 = std::min(uy1, (by + 1) * s.block_h);
    for (std::uint64_t bx = ux0 / s.block_w; bx * s.block_w < ux1; ++bx) {
      const std::uint64_t cx0 = std::max(ux0, bx * s.block_w);
      const std::uint64_t cx1 = std::min(ux1, (bx + 1) * s.block_w);
      const std::vector<std::uint64_t>& words = s.block(bx, by);
      const auto out_bit = static_cast<std::uint64_t>(static_cast<std::int64_t>(cx0) - x0);
      for (std::uint64_t y = cy0; y < cy1; ++y) {
        const auto out_row = static_cast<std::uint64_t>(static_cast<std::int64_t>(y) - y0);
        core::or_bits(out.data() + out_row * stride, out_bit, words.data() + (y - by * s.block_h) * s.block_stride,
                cx0 - bx * s.block_w, cx1 - cx0);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

namespace {


// Area-averages `img` by f x f blocks into an 8-bit tile of ceil(w / f) x ceil(h / f) pixels at
// `out`, rows `out_stride` bytes apart.
void shrink_to_8bit(const gray_image& img, std::uint64_t f, std::uint8_t* out, std::size_t out_stride)
{
  const std::uint64_t ow = ceil_div(img.width, f), oh = ceil_div(img.height, f);
  std::uint16_t lo = 0, hi = 255;
  if (img.bits == 16) {
    const auto mm = std::minmax_element(img.pixels.begin(), img.pixels.end());
    lo = *mm.first;
    hi = *mm.second;
  }
  std::vector<std::uint64_t> sums(ow);
  for (std::uint64_t oy = 0; oy < oh; ++oy) {
    std::fill(sums.begin(), sums.end(), 0);
    const std::uint64_t y0 = oy * f, y1 = std::min<std::uint64_t>(y0 + f, img.height);
    for (std::uint64_t y = y0; y < y1; ++y) {
      const std::uint16_t* row = img.pixels.data() + y * img.width;
      for (std::uint64_t x = 0; x < img.width; ++x) sums[x / f] += row[x];
    }
    for (std::uint64_t ox = 0; ox < ow; ++ox) {
      const std::uint64_t count = (y1 - y0) * (std::min<std::uint64_t>((ox + 1) * f, img.width) - ox * f);
      const std::uint64_t sum = sums[ox];
      std::uint64_t v;
      if (img.bits == 8) {
        v = (2 * sum + count) / (2 * count);
      } else if (hi > lo) {
        const double above = static_cast<double>(sum - lo * count);
        v = static_cast<std::uint64_t>(
            std::floor(255.0 * above / (static_cast<double>(hi - lo) * static_cast<double>(count)) + 0.5));
      } else {
        v = static_cast<std::uint64_t>(
            std::floor(static_cast<double>(sum) / (257.0 * static_cast<double>(count)) + 0.5));
      }
      out[oy * out_stride + ox] = static_cast<std::uint8_t>(std::min<std::uint64_t>(v, 255));
    }
  }
}

}  // namespace

void write_contact_sheet(const std::string& path, const std::vector<gray_image>& tiles, std::uint32_t columns,
                         std::uint32_t max_tile_side)
{
  if (tiles.empty()) throw invalid_argument("write_contact_sheet: no tiles");
  if (columns == 0 || max_tile_side == 0) {
    throw invalid_argument("write_contact_sheet: columns " + std::to_string(columns) + " and tile side " +
                           std::to_string(max_tile_side) + " must be >= 1");
  }
  std::vector<std::uint64_t> factor(tiles.size());
  std::uint64_t cell_w = 0, cell_h = 0;
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    validate_gray(tiles[i], ("write_contact_sheet: tile " + std::to_string(i)).c_str());
    factor[i] = std::max<std::uint64_t>(1, ceil_div(std::max(tiles[i].width, tiles[i].height), max_tile_side));
    cell_w = std::max(cell_w, ceil_div(tiles[i].width, factor[i]));
    cell_h = std::max(cell_h, ceil_div(tiles[i].height, factor[i]));
  }
  const std::uint64_t cols = std::min<std::uint64_t>(columns, tiles.size());
  const std::uint64_t rows = ceil_div(tiles.size(), cols);
  const std::uint64_t sheet_w = cols * cell_w + (cols - 1) * contact_gutter;
  const std::uint64_t sheet_h = rows * cell_h + (rows - 1) * contact_gutter;
  constexpr std::uint64_t png_max_side = 0x7fffffffu;
  if (sheet_w > png_max_side || sheet_h > png_max_side) {
    throw invalid_argument("write_contact_sheet: a sheet of " + std::to_string(sheet_w) + " x " +
                           std::to_string(sheet_h) +
                           " pixels passes PNG's 2^31 - 1 a side; use fewer columns or "
                           "smaller tiles");
  }
  std::vector<std::uint8_t> sheet(static_cast<std::size_t>(sheet_w * sheet_h), contact_background);
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    const std::uint64_t cx = (i % cols) * (cell_w + contact_gutter);
    const std::uint64_t cy = (i / cols) * (cell_h + contact_gutter);
    shrink_to_8bit(tiles[i], factor[i], sheet.data() + cy * sheet_w + cx, static_cast<std::size_t>(sheet_w));
  }

  host::write_png_file(path, sheet.data(), static_cast<std::uint32_t>(sheet_w), static_cast<std::uint32_t>(sheet_h), 1);
}

}  // namespace qrplate::sim
