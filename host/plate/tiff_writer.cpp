// Streaming tiled BigTIFF writer for 1-bit plates, on libtiff (>= 4.5 for per-file error
// handlers).
//
// The writer keeps one row of tiles in tile order (tile t of the row is one contiguous block of
// tile_height * tile_width / 8 bytes); an incoming row is packed once into a row buffer and then
// split among the tiles. Finished tiles are packed and deflated here, several threads side by
// side (libdeflate), and handed to libtiff as raw tiles in index order: libtiff's own deflate
// runs on the one thread that calls it, and compressing was the plate encoder's serial limit
// (~65 MB/s of payload a core, docs/PERFORMANCE.md). Group 4 still goes through libtiff's codec.

#include "plate/tiff_writer.hpp"

#include <libdeflate.h>
#include <tiffio.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/error.hpp"
#include "util/thread_team.hpp"

#if !TIFFLIB_AT_LEAST(4, 5, 0)
#error "qrplate needs libtiff >= 4.5 (TIFFOpenExt with per-file error handlers)"
#endif

namespace qrplate::plate {
namespace {

constexpr std::uint32_t min_tile_side = 16;
constexpr std::uint32_t max_tile_side = 65536;
constexpr const char* default_description = "qrplate plate: 1 bit per module, 1 = dark = milled (MinIsWhite)";

// Reverses the bit order inside each byte of x, all eight bytes at once (swap neighbours, then
// pairs, then nibbles). Byte k of an LSB-first word holds pixels 8k..8k+7 with pixel 8k in bit 0;
// reversed, pixel 8k sits in bit 7, which is TIFF's MSB-first order for byte k.
inline std::uint64_t reverse_bits_in_bytes(std::uint64_t x)
{
  x = ((x >> 1) & 0x5555555555555555ull) | ((x & 0x5555555555555555ull) << 1);
  x = ((x >> 2) & 0x3333333333333333ull) | ((x & 0x3333333333333333ull) << 2);
  x = ((x >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((x & 0x0F0F0F0F0F0F0F0Full) << 4);
  return x;
}

// libtiff reports through handlers; each writer gets its own (TIFFOpenOptions), which keeps the
// first error for the exception message and swallows warnings instead of printing to stderr.
struct tiff_log {
  char error[512] = {};
};

int on_tiff_error(TIFF*, void* user, const char* /*module*/, const char* fmt, va_list ap)
{
  auto* log = static_cast<tiff_log*>(user);
  if (log->error[0] == '\0') {
    std::vsnprintf(log->error, sizeof log->error, fmt, ap);
  }
  return 1;  // handled: libtiff's global handler stays quiet
}

int on_tiff_warning(TIFF*, void*, const char*, const char*, va_list)
{
  return 1;
}

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b)
{
  return a / b + (a % b != 0);
}

// libdeflate level for plate tiles. Measured on tiles of a v40-L plate of random payload (this
// 2-core Xeon, 2026-11-23): level 1 deflates them to 96.1% at ~140 MB/s a core, level 6 (zlib's and
// libtiff's default) to 96.0% at ~105 MB/s; what deflate finds in a plate is its runs (margins,
// quiet zones, finders), which level 1 finds as well.
constexpr int deflate_level = 1;

struct compressor_deleter {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};
using compressor_ptr = std::unique_ptr<libdeflate_compressor, compressor_deleter>;

// Removes what a failed write left at `path`, but only a regular file: the path may name a device
// (/dev/full, a pipe) that must survive.
void remove_partial_file(const std::string& path) noexcept
{
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) std::filesystem::remove(path, ec);
}

}  // namespace

tiff_compression parse_tiff_compression(std::string_view name)
{
  if (name == "none") return tiff_compression::none;
  if (name == "deflate") return tiff_compression::deflate;
  if (name == "g4") return tiff_compression::ccitt_g4;
  throw invalid_argument("TIFF compression '" + std::string(name) + "' unknown; use none, deflate or g4");
}

const char* to_string(tiff_compression compression)
{
  switch (compression) {
    case tiff_compression::none:
      return "none";
    case tiff_compression::deflate:
      return "deflate";
    case tiff_compression::ccitt_g4:
      return "g4";
  }
  return "unknown";
}

void validate(const tiff_options& options)
{
  auto check_side = [](const char* what, std::uint32_t side) {
    if (side < min_tile_side || side > max_tile_side || side % 16 != 0) {
      throw invalid_argument("TIFF " + std::string(what) + " " + std::to_string(side) +
                             " must be a multiple of 16 in 16..65536");
    }
  };
  check_side("tile width", options.tile_width);
  check_side("tile height", options.tile_height);
  if (options.compression != tiff_compression::none && options.compression != tiff_compression::deflate &&
      options.compression != tiff_compression::ccitt_g4) {
    throw invalid_argument("TIFF compression value " + std::to_string(static_cast<int>(options.compression)) +
                           " unknown");
  }
}

void pack_row_msb_first(const std::uint64_t* words, std::uint64_t width, std::uint8_t* out) noexcept
{
  const std::uint64_t full = width / 64;
  for (std::uint64_t w = 0; w < full; ++w) {
    const std::uint64_t r = reverse_bits_in_bytes(words[w]);
    std::uint8_t* o = out + 8 * w;
    // Byte-wise stores keep this independent of host endianness; compilers merge them into one.
    o[0] = static_cast<std::uint8_t>(r);
    o[1] = static_cast<std::uint8_t>(r >> 8);
    o[2] = static_cast<std::uint8_t>(r >> 16);
    o[3] = static_cast<std::uint8_t>(r >> 24);
    o[4] = static_cast<std::uint8_t>(r >> 32);
    o[5] = static_cast<std::uint8_t>(r >> 40);
    o[6] = static_cast<std::uint8_t>(r >> 48);
    o[7] = static_cast<std::uint8_t>(r >> 56);
  }
  const unsigned rest = static_cast<unsigned>(width % 64);
  if (rest != 0) {
    const std::uint64_t r = reverse_bits_in_bytes(words[full] & ((std::uint64_t{1} << rest) - 1));
    std::uint8_t* o = out + 8 * full;
    for (unsigned k = 0; k < (rest + 7) / 8; ++k) o[k] = static_cast<std::uint8_t>(r >> (8 * k));
  }
}

void pack_row_msb_first_reference(const std::uint64_t* words, std::uint64_t width, std::uint8_t* out) noexcept
{
  std::memset(out, 0, static_cast<std::size_t>(ceil_div(width, 8)));
  for (std::uint64_t x = 0; x < width; ++x) {
    if ((words[x / 64] >> (x % 64)) & 1u) out[x / 8] = static_cast<std::uint8_t>(out[x / 8] | (0x80u >> (x % 8)));
  }
}

// ----------------------------------------------------------------------------------------------

struct tiled_bilevel_writer::state {
  std::string path;
  std::uint64_t width = 0;
  std::uint64_t height = 0;
  tiff_options options;
  TIFF* tif = nullptr;
  tiff_log log;

  std::uint64_t tiles_across = 0;
  std::size_t tile_row_bytes = 0;   // bytes of one pixel row inside a tile
  std::size_t tile_bytes = 0;       // bytes of one tile
  std::vector<std::uint8_t> tiles;  // the current row of tiles, tile after tile
  std::vector<std::uint8_t> row;    // one packed image row, zero-padded to whole tiles

  std::uint32_t rows_in_tile_row = 0;
  std::uint64_t tile_rows_done = 0;

  unsigned threads = 1;                        // options.team's size, or 1
  std::vector<compressor_ptr> compressors;     // one per team member, made on first use

  // A finished tile on its way to the file. Region mode gives its LSB-first words, row mode its
  // packed bytes (in `tiles`); encode_tile fills `packed` and `encoded`.
  struct finished_tile {
    std::uint64_t index = 0;
    std::vector<std::uint64_t> words;
    const std::uint8_t* packed = nullptr;
    std::vector<std::uint8_t> packed_bytes;
    std::vector<std::uint8_t> encoded;
  };

  // put_region mode: partly filled tiles, LSB-first words, and the pixels each still needs.
  struct pending_tile {
    std::vector<std::uint64_t> words;
    std::uint64_t missing = 0;
  };
  std::unordered_map<std::uint64_t, pending_tile> pending;
  std::uint64_t tiles_written = 0;
  std::vector<bool> region_written;  // per tile: already compressed and written
  bool region_mode = false;
  std::uint64_t rows_written = 0;
  bool finished = false;
  bool failed = false;

  state() = default;
  state(const state&) = delete;
  state& operator=(const state&) = delete;

  // An unfinished file is incomplete: close it quietly and remove it.
  ~state()
  {
    if (tif != nullptr) {
      TIFFClose(tif);
      tif = nullptr;
      remove_partial_file(path);
    }
  }

  // Call errno = 0 before the libtiff call that failed: libtiff's messages often lack the system
  // error ("Error writing TIFF header"), which is what tells a user the disk is full.
  [[noreturn]] void fail(const std::string& what)
  {
    const int err = errno;
    failed = true;
    std::string reason = log.error;
    const std::string prefix = path + ": ";
    if (reason.compare(0, prefix.size(), prefix) == 0) reason.erase(0, prefix.size());
    // libtiff's own words for a failed write say nothing a user can act on ("Write error at
    // scanline 4294967295" for a tile): the system's reason ("No space left on device") alone.
    if (err != 0 && reason.rfind("Write error", 0) == 0) reason.clear();
    if (err != 0 && reason.find(std::strerror(err)) == std::string::npos) {
      reason += reason.empty() ? std::strerror(err) : std::string(" (") + std::strerror(err) + ")";
    }
    if (reason.empty()) reason = "libtiff gave no reason";
    throw io_error("cannot " + what + " " + path + ": " + reason);
  }

  template <typename... Args>
  void set_field(ttag_t tag, Args... args)
  {
    errno = 0;
    if (TIFFSetField(tif, tag, args...) != 1) fail("set TIFF tag " + std::to_string(tag) + " of");
  }

  void write_tile_row()
  {
    std::vector<finished_tile> row_tiles(static_cast<std::size_t>(tiles_across));
    for (std::uint64_t t = 0; t < tiles_across; ++t) {
      row_tiles[t].index = tile_rows_done * tiles_across + t;
      row_tiles[t].packed = tiles.data() + t * tile_bytes;
    }
    write_tiles(row_tiles);
    ++tile_rows_done;
    rows_in_tile_row = 0;
  }

  std::uint64_t tiles_down() const { return ceil_div(height, options.tile_height); }

  // Packs (region mode) and deflates a tile on thread t; no libtiff call, so threads may share it.
  void encode_tile(unsigned t, finished_tile& f) const
  {
    if (!f.words.empty()) {
      const std::size_t stride = ceil_div(options.tile_width, 64);
      f.packed_bytes.resize(tile_bytes);
      for (std::uint32_t r = 0; r < options.tile_height; ++r)
        pack_row_msb_first(f.words.data() + r * stride, options.tile_width, f.packed_bytes.data() + r * tile_row_bytes);
      f.packed = f.packed_bytes.data();
      std::vector<std::uint64_t>().swap(f.words);
    }
    if (options.compression == tiff_compression::deflate) {
      libdeflate_compressor* c = compressors[t].get();
      f.encoded.resize(libdeflate_zlib_compress_bound(c, tile_bytes));
      const std::size_t n = libdeflate_zlib_compress(c, f.packed, tile_bytes, f.encoded.data(), f.encoded.size());
      if (n == 0) throw std::logic_error("libdeflate's bound did not hold for a plate tile");
      f.encoded.resize(n);
    }
  }

  // fn(thread, i) for i in [0, n): on the team when there is more than one of each.
  template <typename Fn>
  void for_each(std::size_t n, Fn&& fn)
  {
    if (options.team != nullptr && n > 1) {
      options.team->run(n, fn);
    } else {
      for (std::size_t i = 0; i < n; ++i) fn(0u, i);
    }
  }

  // Encodes the tiles on up to `threads` threads, a round at a time, and writes each round in the
  // order given (the callers give increasing tile indices).
  void write_tiles(std::vector<finished_tile>& batch)
  {
    const bool deflate = options.compression == tiff_compression::deflate;
    if (deflate && compressors.size() < threads) compressors.resize(threads);
    for (unsigned t = 0; t < threads && deflate; ++t) {
      if (!compressors[t]) {
        compressors[t].reset(libdeflate_alloc_compressor(deflate_level));
        if (!compressors[t]) throw io_error("cannot write " + path + ": out of memory for a deflate compressor");
      }
    }
    const std::size_t round = threads * tiles_per_thread_round;
    for (std::size_t first = 0; first < batch.size(); first += round) {
      const std::size_t n = std::min(round, batch.size() - first);
      for_each(n, [&](unsigned t, std::size_t i) { encode_tile(t, batch[first + i]); });
      for (std::size_t i = first; i < first + n; ++i) {
        write_encoded_tile(batch[i]);
        batch[i] = finished_tile{};  // its memory goes now, not with the batch
      }
    }
  }

  void write_encoded_tile(const finished_tile& f)
  {
    const auto index = static_cast<std::uint32_t>(f.index);
    errno = 0;
    switch (options.compression) {
      case tiff_compression::none: {
        const auto size = static_cast<tmsize_t>(tile_bytes);
        if (TIFFWriteRawTile(tif, index, const_cast<std::uint8_t*>(f.packed), size) != size) fail("write a tile of");
        break;
      }
      case tiff_compression::deflate: {
        const auto size = static_cast<tmsize_t>(f.encoded.size());
        if (TIFFWriteRawTile(tif, index, const_cast<std::uint8_t*>(f.encoded.data()), size) != size)
          fail("write a tile of");
        break;
      }
      case tiff_compression::ccitt_g4: {
        const auto size = static_cast<tmsize_t>(tile_bytes);
        if (TIFFWriteEncodedTile(tif, index, const_cast<std::uint8_t*>(f.packed), size) != size) fail("write a tile of");
        break;
      }
    }
    ++tiles_written;
  }

  void check_usable(const char* call) const
  {
    if (failed) throw io_error("cannot write " + path + ": an earlier write failed");
    if (finished) throw invalid_argument(std::string(call) + " after finish() on " + path);
  }
};

tiled_bilevel_writer::tiled_bilevel_writer(const std::string& path, std::uint64_t width, std::uint64_t height,
                                           const tiff_options& options)
{
  validate(options);
  constexpr std::uint64_t max_side = std::numeric_limits<std::uint32_t>::max();
  if (width == 0 || height == 0 || width > max_side || height > max_side) {
    throw invalid_argument("plate TIFF size " + std::to_string(width) + " x " + std::to_string(height) +
                           " out of range 1..4294967295 pixels a side");
  }
  const std::uint64_t tiles_across = ceil_div(width, options.tile_width);
  const std::uint64_t tiles_down = ceil_div(height, options.tile_height);
  if (tiles_across * tiles_down > std::numeric_limits<std::uint32_t>::max()) {
    throw invalid_argument("plate TIFF of " + std::to_string(width) + " x " + std::to_string(height) +
                           " pixels needs " + std::to_string(tiles_across * tiles_down) + " tiles of " +
                           std::to_string(options.tile_width) + " x " + std::to_string(options.tile_height) +
                           "; libtiff allows 4294967295: use larger tiles");
  }

  auto s = std::make_unique<state>();
  s->path = path;
  s->width = width;
  s->height = height;
  s->options = options;
  s->tiles_across = tiles_across;
  s->tile_row_bytes = options.tile_width / 8;
  s->tile_bytes = s->tile_row_bytes * options.tile_height;
  s->threads = options.team != nullptr ? options.team->size() : 1;
  // The row-of-tiles buffers are allocated by the first append_rows: put_region needs one tile.

  TIFFOpenOptions* open_options = TIFFOpenOptionsAlloc();
  if (open_options == nullptr) throw io_error("cannot create " + path + ": out of memory");
  TIFFOpenOptionsSetErrorHandlerExtR(open_options, on_tiff_error, &s->log);
  TIFFOpenOptionsSetWarningHandlerExtR(open_options, on_tiff_warning, nullptr);
  errno = 0;
  s->tif = TIFFOpenExt(path.c_str(), "w8", open_options);  // "8": BigTIFF
  TIFFOpenOptionsFree(open_options);
  if (s->tif == nullptr) s->fail("create");

  s->set_field(TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(width));
  s->set_field(TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(height));
  s->set_field(TIFFTAG_BITSPERSAMPLE, 1);
  s->set_field(TIFFTAG_SAMPLESPERPIXEL, 1);
  s->set_field(TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
  s->set_field(TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  s->set_field(TIFFTAG_FILLORDER, FILLORDER_MSB2LSB);
  s->set_field(TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
  s->set_field(TIFFTAG_TILEWIDTH, options.tile_width);
  s->set_field(TIFFTAG_TILELENGTH, options.tile_height);
  switch (options.compression) {
    case tiff_compression::none:
      s->set_field(TIFFTAG_COMPRESSION, COMPRESSION_NONE);
      break;
    case tiff_compression::deflate:
      s->set_field(TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
      break;
    case tiff_compression::ccitt_g4:
      s->set_field(TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX4);
      break;
  }
  s->set_field(TIFFTAG_SOFTWARE, "qrplate");
  s->set_field(TIFFTAG_IMAGEDESCRIPTION, default_description);
  state_ = std::move(s);
}

tiled_bilevel_writer::~tiled_bilevel_writer() = default;
tiled_bilevel_writer::tiled_bilevel_writer(tiled_bilevel_writer&&) noexcept = default;
tiled_bilevel_writer& tiled_bilevel_writer::operator=(tiled_bilevel_writer&&) noexcept = default;

void tiled_bilevel_writer::set_resolution_nm(double module_nm)
{
  state& s = *state_;
  s.check_usable("set_resolution_nm()");
  if (!std::isfinite(module_nm) || module_nm <= 0) {
    throw invalid_argument("module pitch " + std::to_string(module_nm) + " nm must be finite and > 0");
  }
  const double per_cm = 1e7 / module_nm;
  s.set_field(TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
  s.set_field(TIFFTAG_XRESOLUTION, per_cm);
  s.set_field(TIFFTAG_YRESOLUTION, per_cm);
}

void tiled_bilevel_writer::set_description(const std::string& text)
{
  state& s = *state_;
  s.check_usable("set_description()");
  s.set_field(TIFFTAG_IMAGEDESCRIPTION, text.c_str());
}

void tiled_bilevel_writer::append_rows(const std::uint64_t* rows, std::size_t row_count, std::size_t words_per_row)
{
  state& s = *state_;
  s.check_usable("append_rows()");
  if (row_count == 0) return;
  const std::uint64_t need = ceil_div(s.width, 64);
  if (words_per_row < need) {
    throw invalid_argument("row stride " + std::to_string(words_per_row) + " words is below the " +
                           std::to_string(need) + " a row of " + std::to_string(s.width) + " pixels needs");
  }
  if (row_count > s.height - s.rows_written) {
    throw invalid_argument("appending " + std::to_string(row_count) + " rows after " + std::to_string(s.rows_written) +
                           " would pass the plate height " + std::to_string(s.height) + " of " + s.path);
  }
  if (rows == nullptr) throw invalid_argument("append_rows() given no rows");

  if (s.region_mode) throw invalid_argument("append_rows() after put_region() on " + s.path);
  if (s.row.empty()) {
    s.tiles.assign(static_cast<std::size_t>(s.tiles_across) * s.tile_bytes, 0);
    s.row.assign(static_cast<std::size_t>(s.tiles_across) * s.tile_row_bytes, 0);
  }
  const std::size_t th = s.options.tile_height;
  for (std::size_t i = 0; i < row_count; ++i) {
    pack_row_msb_first(rows + i * words_per_row, s.width, s.row.data());
    std::uint8_t* dst = s.tiles.data() + s.rows_in_tile_row * s.tile_row_bytes;
    const std::uint8_t* src = s.row.data();
    for (std::uint64_t t = 0; t < s.tiles_across; ++t) {
      std::memcpy(dst, src, s.tile_row_bytes);
      dst += s.tile_bytes;
      src += s.tile_row_bytes;
    }
    ++s.rows_written;
    if (++s.rows_in_tile_row == th) s.write_tile_row();
  }
}

void tiled_bilevel_writer::put_region(std::uint64_t x0, std::uint64_t y0, std::uint64_t width, std::size_t row_count,
                                      const std::uint64_t* rows, std::size_t words_per_row)
{
  state& s = *state_;
  s.check_usable("put_region()");
  if (s.rows_written != 0) throw invalid_argument("put_region() after append_rows() on " + s.path);
  if (width == 0 || row_count == 0) return;
  if (x0 + width > s.width || y0 + row_count > s.height || rows == nullptr || words_per_row < ceil_div(width, 64))
    throw invalid_argument("put_region() rectangle outside the image " + s.path);
  if (!s.region_mode) {
    s.region_mode = true;
    s.region_written.assign(static_cast<std::size_t>(s.tiles_across * s.tiles_down()), false);
  }
  const std::uint64_t tw = s.options.tile_width, th = s.options.tile_height;
  const std::size_t stride = ceil_div(tw, 64);
  // Tiles this rectangle completes, encoded and written together once it is in (also when a
  // later tile of it turns out to overlap: those complete ones are whole and correct).
  std::vector<state::finished_tile> done;
  struct write_done_on_exit {
    state& s;
    std::vector<state::finished_tile>& done;
    bool ok = false;
    ~write_done_on_exit()
    {
      if (ok || done.empty()) return;
      try {
        s.write_tiles(done);
      } catch (...) {  // the first error is the one being thrown
      }
    }
  } guard{s, done};
  // The tiles the rectangle touches, made pending where new; then their pixels copied in, a tile
  // per task (the copying is a serial writer's largest cost after deflate); then the counts.
  struct piece {
    std::uint64_t index, tx, ty;
    state::pending_tile* tile;
  };
  std::vector<piece> pieces;
  for (std::uint64_t ty = y0 / th; ty * th < y0 + row_count; ++ty) {
    for (std::uint64_t tx = x0 / tw; tx * tw < x0 + width; ++tx) {
      const std::uint64_t index = ty * s.tiles_across + tx;
      if (s.region_written[index]) throw invalid_argument("put_region() rectangles overlap in " + s.path);
      auto it = s.pending.find(index);
      if (it == s.pending.end()) {
        state::pending_tile t;
        t.words.assign(stride * th, 0);
        // Pixels of the tile inside the image: the rest is padding, light.
        t.missing = (std::min(s.width, (tx + 1) * tw) - tx * tw) * (std::min(s.height, (ty + 1) * th) - ty * th);
        it = s.pending.emplace(index, std::move(t)).first;  // a node: the pointer below stays valid
      }
      pieces.push_back({index, tx, ty, &it->second});
    }
  }
  auto clip = [&](const piece& p, std::uint64_t& cx0, std::uint64_t& cx1, std::uint64_t& cy0, std::uint64_t& cy1) {
    cx0 = std::max(x0, p.tx * tw);
    cx1 = std::min(x0 + width, (p.tx + 1) * tw);
    cy0 = std::max(y0, p.ty * th);
    cy1 = std::min(y0 + row_count, (p.ty + 1) * th);
  };
  s.for_each(pieces.size(), [&](unsigned, std::size_t i) {
    const piece& p = pieces[i];
    std::uint64_t cx0, cx1, cy0, cy1;
    clip(p, cx0, cx1, cy0, cy1);
    for (std::uint64_t y = cy0; y < cy1; ++y)
      core::or_bits(p.tile->words.data() + (y - p.ty * th) * stride, cx0 - p.tx * tw, rows + (y - y0) * words_per_row,
                    cx0 - x0, cx1 - cx0);
  });
  for (const piece& p : pieces) {
    std::uint64_t cx0, cx1, cy0, cy1;
    clip(p, cx0, cx1, cy0, cy1);
    const std::uint64_t got = (cx1 - cx0) * (cy1 - cy0);
    if (got > p.tile->missing) throw invalid_argument("put_region() rectangles overlap in " + s.path);
    p.tile->missing -= got;
    if (p.tile->missing == 0) {
      state::finished_tile f;
      f.index = p.index;
      f.words = std::move(p.tile->words);
      done.push_back(std::move(f));
      s.region_written[p.index] = true;
      s.pending.erase(p.index);
    }
  }
  guard.ok = true;
  s.write_tiles(done);
}

void tiled_bilevel_writer::finish()
{
  state& s = *state_;
  if (s.finished) return;
  s.check_usable("finish()");
  if (s.region_mode) {
    const std::uint64_t total = s.tiles_across * s.tiles_down();
    if (s.tiles_written != total)
      throw invalid_argument("finish() on " + s.path + " wrote " + std::to_string(s.tiles_written) + " of " +
                             std::to_string(total) + " tiles");
  } else if (s.rows_written != s.height) {
    throw invalid_argument("finish() on " + s.path + " wrote " + std::to_string(s.rows_written) + " of " +
                           std::to_string(s.height) + " rows");
  }
  if (!s.region_mode && s.rows_in_tile_row != 0) {
    // Rows below the image in the last tile row still hold the previous tile row: clear to light.
    const std::size_t used = s.rows_in_tile_row * s.tile_row_bytes;
    for (std::uint64_t t = 0; t < s.tiles_across; ++t) {
      std::memset(s.tiles.data() + t * s.tile_bytes + used, 0, s.tile_bytes - used);
    }
    s.write_tile_row();
  }
  errno = 0;
  if (TIFFFlush(s.tif) != 1) s.fail("write the TIFF directory of");
  // TIFFClose would hide a failing close(); take it apart by hand to see the result.
  TIFFCloseProc close_proc = TIFFGetCloseProc(s.tif);
  thandle_t handle = TIFFClientdata(s.tif);
  TIFFCleanup(s.tif);
  s.tif = nullptr;
  if (close_proc(handle) != 0) {
    const int err = errno;
    remove_partial_file(s.path);
    s.failed = true;
    throw io_error("cannot close " + s.path + ": " + std::strerror(err));
  }
  s.finished = true;
  std::vector<std::uint8_t>().swap(s.tiles);
  std::vector<std::uint8_t>().swap(s.row);
}

std::uint64_t tiled_bilevel_writer::rows_written() const
{
  return state_->rows_written;
}
std::uint64_t tiled_bilevel_writer::width() const
{
  return state_->width;
}
std::uint64_t tiled_bilevel_writer::height() const
{
  return state_->height;
}
const std::string& tiled_bilevel_writer::path() const
{
  return state_->path;
}

}  // namespace qrplate::plate
