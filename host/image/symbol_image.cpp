// Rendering one symbol: PNG (libpng), PBM, SVG, terminal text and a 0/1 matrix.
//
// Raster formats are produced one pixel row at a time straight from the bit-packed modules, so a
// large scale costs output bytes but never a full 8-bit raster (only rasterize() builds one).
#include "qrplate/image.hpp"

#include <png.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "qrplate/error.hpp"

namespace qrplate {
namespace {

constexpr int min_scale = 1;
constexpr int max_scale = 1000;
constexpr int min_border = 0;
constexpr int max_border = 1000;

// Rasters are capped so that pixel indices fit in 31 bits and nobody allocates terabytes by a
// typo: version 40 at scale 250 with a 4-module quiet zone is still allowed.
constexpr std::int64_t max_raster_pixels = std::int64_t{1} << 31;

constexpr const char* format_names = "png, pbm, svg, text or matrix";

void check_symbol(symbol_view symbol)
{
  if (symbol.size < 1 || symbol.rows == nullptr) {
    throw invalid_argument("symbol has no modules (size " + std::to_string(symbol.size) + ")");
  }
}

void check_border(int border)
{
  if (border < min_border || border > max_border) {
    throw invalid_argument("border " + std::to_string(border) + " out of range " + std::to_string(min_border) +
                           ".." + std::to_string(max_border));
  }
}

void check_options(symbol_view symbol, const render_options& options)
{
  check_symbol(symbol);
  if (options.scale < min_scale || options.scale > max_scale) {
    throw invalid_argument("scale " + std::to_string(options.scale) + " out of range " + std::to_string(min_scale) +
                           ".." + std::to_string(max_scale));
  }
  check_border(options.border);
}

// Side of the square image in modules, quiet zone included.
int side_modules(symbol_view symbol, int border) { return symbol.size + 2 * border; }

// Side of a raster in pixels, after validating the options and the raster's total size.
int raster_side(symbol_view symbol, const render_options& options)
{
  check_options(symbol, options);
  const std::int64_t side = std::int64_t{side_modules(symbol, options.border)} * options.scale;
  if (side * side > max_raster_pixels) {
    throw invalid_argument("image of " + std::to_string(side) + "x" + std::to_string(side) +
                           " pixels is too large (at most 2^31 pixels); lower the scale or the border");
  }
  return static_cast<int>(side);
}

// Dark test in image coordinates (modules, quiet zone included): the quiet zone is light.
bool dark_at(symbol_view symbol, int border, int row, int col)
{
  const int r = row - border;
  const int c = col - border;
  if (r < 0 || c < 0 || r >= symbol.size || c >= symbol.size) return false;
  return symbol.module(r, c);
}

// One pixel row packed 8 pixels per byte, leftmost pixel in the most significant bit (the order
// of both PBM P4 and PNG bit depth 1). `dark_bit` is the value a dark pixel gets; padding bits
// at the end of the row are 0.
void pack_pixel_row(symbol_view symbol, const render_options& options, int side, int pixel_row, bool dark_bit,
                    std::uint8_t* out)
{
  const int module_row = pixel_row / options.scale;
  const std::size_t bytes = (static_cast<std::size_t>(side) + 7) / 8;
  std::fill(out, out + bytes, std::uint8_t{0});
  for (int x = 0; x < side; ++x) {
    const bool dark = dark_at(symbol, options.border, module_row, x / options.scale);
    if (dark == dark_bit) out[x >> 3] = static_cast<std::uint8_t>(out[x >> 3] | (0x80u >> (x & 7)));
  }
}

std::string lower(std::string_view text)
{
  std::string out(text);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

// ----------------------------------------------------------------------------------------------
// PNG through libpng. libpng reports errors by longjmp, which must not cross a frame holding C++
// objects with destructors: the setjmp frame (write_png_rows) and the callbacks hold only plain
// data, and everything that owns memory lives in the caller.

struct png_sink {
  std::vector<std::uint8_t>* out = nullptr;
  char message[256] = {};
};

void on_png_error(png_structp png, png_const_charp message)
{
  auto* sink = static_cast<png_sink*>(png_get_error_ptr(png));
  std::snprintf(sink->message, sizeof sink->message, "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // nothing we write should warn; stay quiet

void on_png_write(png_structp png, png_bytep data, png_size_t length)
{
  auto* sink = static_cast<png_sink*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    sink->out->insert(sink->out->end(), data, data + length);
  } catch (...) {  // no exception may unwind through libpng's C frames
    ok = false;
  }
  if (!ok) png_error(png, "out of memory while writing PNG");
}

void on_png_flush(png_structp) {}

// Returns true on success; on failure sink.message says why.
bool write_png_rows(png_sink& sink, symbol_view symbol, const render_options& options, int side, std::uint8_t* row)
{
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_png_error, on_png_warning);
  if (png == nullptr) {
    std::snprintf(sink.message, sizeof sink.message, "cannot create a PNG writer");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    std::snprintf(sink.message, sizeof sink.message, "cannot create a PNG writer");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, &sink, on_png_write, on_png_flush);
  // 1-bit grayscale: 0 = black, 1 = white, so dark modules are 0 bits.
  png_set_IHDR(png, info, static_cast<png_uint_32>(side), static_cast<png_uint_32>(side), 1, PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < side; ++y) {
    pack_pixel_row(symbol, options, side, y, false, row);
    png_write_row(png, row);
  }
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

// ----------------------------------------------------------------------------------------------
// Files

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err)
{
  throw io_error("cannot " + what + " " + path + ": " + std::strerror(err));
}

void write_stdout(const char* data, std::size_t length)
{
  // stdio on POSIX does no newline translation, so binary formats pass through untouched.
  if (std::fwrite(data, 1, length, stdout) != length || std::fflush(stdout) != 0) {
    throw_io("write", "standard output", errno);
  }
}

// Write to `path.tmp`, then rename over `path`: a reader never sees a half-written image.
void write_file(const char* data, std::size_t length, const std::string& path)
{
  const std::string tmp = path + ".tmp";
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) throw_io("write", path, errno);
  const bool wrote = std::fwrite(data, 1, length, file) == length;
  int err = errno;
  const bool closed = std::fclose(file) == 0;
  if (wrote && !closed) err = errno;
  if (!wrote || !closed) {
    std::remove(tmp.c_str());
    throw_io("write", path, err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    throw_io("write", path, err);
  }
}

}  // namespace

// ------------------------------------------------------------------------------------------------

image_format parse_image_format(std::string_view name)
{
  const std::string n = lower(name);
  if (n == "png") return image_format::png;
  if (n == "pbm") return image_format::pbm;
  if (n == "svg") return image_format::svg;
  if (n == "text") return image_format::text;
  if (n == "matrix") return image_format::matrix;
  throw invalid_argument("unknown image format '" + std::string(name) + "': expected " + format_names);
}

image_format image_format_from_path(std::string_view path)
{
  const std::size_t slash = path.find_last_of('/');
  const std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const std::size_t dot = base.find_last_of('.');
  const std::string ext = dot == std::string_view::npos ? std::string() : lower(base.substr(dot + 1));
  if (ext == "png") return image_format::png;
  if (ext == "pbm") return image_format::pbm;
  if (ext == "svg") return image_format::svg;
  if (ext == "txt" || ext == "text") return image_format::text;
  if (ext == "matrix") return image_format::matrix;
  throw invalid_argument("cannot tell the image format of '" + std::string(path) +
                         "' from its extension: expected .png, .pbm, .svg, .txt or .matrix");
}

gray_image rasterize(symbol_view symbol, const render_options& options)
{
  const int side = raster_side(symbol, options);
  gray_image image;
  image.width = side;
  image.height = side;
  image.pixels.assign(static_cast<std::size_t>(side) * static_cast<std::size_t>(side), std::uint8_t{255});
  for (int y = 0; y < side; ++y) {
    std::uint8_t* row = image.pixels.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(side);
    const int module_row = y / options.scale;
    for (int x = 0; x < side; ++x) {
      if (dark_at(symbol, options.border, module_row, x / options.scale)) row[x] = 0;
    }
  }
  return image;
}

std::vector<std::uint8_t> render_png(symbol_view symbol, const render_options& options)
{
  const int side = raster_side(symbol, options);
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> row((static_cast<std::size_t>(side) + 7) / 8);
  png_sink sink;
  sink.out = &out;
  if (!write_png_rows(sink, symbol, options, side, row.data())) {
    throw io_error(std::string("PNG encoding failed: ") + sink.message);
  }
  return out;
}

std::string render_pbm(symbol_view symbol, const render_options& options)
{
  const int side = raster_side(symbol, options);
  const std::string header = "P4\n" + std::to_string(side) + " " + std::to_string(side) + "\n";
  const std::size_t row_bytes = (static_cast<std::size_t>(side) + 7) / 8;
  std::string out(header.size() + row_bytes * static_cast<std::size_t>(side), '\0');
  std::copy(header.begin(), header.end(), out.begin());
  auto* bits = reinterpret_cast<std::uint8_t*>(&out[header.size()]);
  for (int y = 0; y < side; ++y) {
    pack_pixel_row(symbol, options, side, y, true, bits + static_cast<std::size_t>(y) * row_bytes);  // 1 = black
  }
  return out;
}

std::string render_svg(symbol_view symbol, const render_options& options)
{
  check_options(symbol, options);
  const int s = options.scale;
  const std::string side = std::to_string(std::int64_t{side_modules(symbol, options.border)} * s);
  const std::string unit = std::to_string(s);
  std::string out;
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + side + "\" height=\"" + side +
         "\" viewBox=\"0 0 " + side + " " + side + "\" shape-rendering=\"crispEdges\">\n";
  out += "<rect width=\"" + side + "\" height=\"" + side + "\" fill=\"#ffffff\"/>\n";
  out += "<path fill=\"#000000\" d=\"";
  // One rectangle per horizontal run of dark modules keeps the path short without tracing outlines.
  for (int r = 0; r < symbol.size; ++r) {
    for (int c = 0; c < symbol.size;) {
      if (!symbol.module(r, c)) {
        ++c;
        continue;
      }
      int end = c + 1;
      while (end < symbol.size && symbol.module(r, end)) ++end;
      const std::string width = std::to_string(std::int64_t{end - c} * s);
      out += "M" + std::to_string(std::int64_t{c + options.border} * s) + "," +
             std::to_string(std::int64_t{r + options.border} * s) + "h" + width + "v" + unit + "h-" + width + "z";
      c = end;
    }
  }
  out += "\"/>\n</svg>\n";
  return out;
}

// Light modules are drawn as ink (block glyphs) and dark modules as blank cells, so the code reads
// correctly on the usual light-on-dark terminal, where the blank background is the dark colour
// (the convention of `qrencode -t UTF8`). On a dark-on-light terminal it shows inverted; most
// phone scanners still read that, and the png/svg/pbm formats have no such ambiguity.
// Each text line holds two module rows: upper half block = top light, lower half = bottom light.
// The side (size + 2 * border) is odd for every QR version, so the last line's lower half lies
// past the image and is left blank (dark), like the terminal around it.
std::string render_text(symbol_view symbol, int border)
{
  check_symbol(symbol);
  check_border(border);
  const int side = side_modules(symbol, border);
  std::string out;
  out.reserve(static_cast<std::size_t>((side + 1) / 2) * (static_cast<std::size_t>(side) * 3 + 1));
  for (int y = 0; y < side; y += 2) {
    for (int x = 0; x < side; ++x) {
      const bool top_light = !dark_at(symbol, border, y, x);
      const bool bottom_light = y + 1 < side && !dark_at(symbol, border, y + 1, x);
      if (top_light && bottom_light) {
        out += "\u2588";  // █
      } else if (top_light) {
        out += "\u2580";  // ▀
      } else if (bottom_light) {
        out += "\u2584";  // ▄
      } else {
        out += ' ';
      }
    }
    out += '\n';
  }
  return out;
}

std::string render_matrix(symbol_view symbol)
{
  check_symbol(symbol);
  std::string out;
  out.reserve(static_cast<std::size_t>(symbol.size) * static_cast<std::size_t>(symbol.size + 1));
  for (int r = 0; r < symbol.size; ++r) {
    for (int c = 0; c < symbol.size; ++c) out += symbol.module(r, c) ? '1' : '0';
    out += '\n';
  }
  return out;
}

void write_symbol(symbol_view symbol, image_format format, const render_options& options, const std::string& path)
{
  std::string text;
  std::vector<std::uint8_t> png;
  const char* data = nullptr;
  std::size_t length = 0;
  switch (format) {
    case image_format::png:
      png = render_png(symbol, options);
      data = reinterpret_cast<const char*>(png.data());
      length = png.size();
      break;
    case image_format::pbm: text = render_pbm(symbol, options); break;
    case image_format::svg: text = render_svg(symbol, options); break;
    case image_format::text: text = render_text(symbol, options.border); break;
    case image_format::matrix: text = render_matrix(symbol); break;
    default: throw invalid_argument("unknown image format " + std::to_string(static_cast<int>(format)));
  }
  if (format != image_format::png) {
    data = text.data();
    length = text.size();
  }
  if (path == "-") {
    write_stdout(data, length);
  } else {
    write_file(data, length, path);
  }
}

}  // namespace qrplate
