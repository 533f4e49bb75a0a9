// Renderers (image.hpp) on hand-built module patterns. Expected values come from the test's own
// bool grid, and PNG/SVG output is read back by independent means (libpng's reader, a small path
// rasterizer here), so a renderer that draws the wrong modules fails.
#include <png.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qrplate/error.hpp"
#include "qrplate/image.hpp"
#include "qrplate/symbol.hpp"

namespace {

using qrplate::render_options;

// A symbol built by hand: the bit-packed rows of symbol.hpp plus a plain grid as the oracle.
struct test_symbol {
  int size;
  std::vector<std::uint64_t> rows;
  std::vector<std::vector<bool>> dark;

  explicit test_symbol(int n)
    : size(n), rows(qrplate::words_per_symbol(n), 0), dark(n, std::vector<bool>(n, false))
  {
  }
  void set(int r, int c)
  {
    rows[r * qrplate::words_per_row(size) + c / 64] |= std::uint64_t{1} << (c % 64);
    dark[r][c] = true;
  }
  void flip(int r, int c)
  {
    rows[r * qrplate::words_per_row(size) + c / 64] ^= std::uint64_t{1} << (c % 64);
    dark[r][c] = !dark[r][c];
  }
  qrplate::symbol_view view() const { return {rows.data(), size}; }

  // Is image pixel (x, y) dark, given the quiet zone and scale?
  bool dark_pixel(int x, int y, const render_options& o) const
  {
    const int r = y / o.scale - o.border;
    const int c = x / o.scale - o.border;
    return r >= 0 && c >= 0 && r < size && c < size && dark[r][c];
  }
};

// A fixed pseudo-random pattern with known corners: (0,0) and (n-1,n-1) dark, (0,1) and (n-1,0)
// light. An LCG keeps it reproducible without the code under test.
test_symbol pattern(int n, std::uint32_t seed)
{
  test_symbol s(n);
  std::uint32_t x = seed;
  for (int r = 0; r < n; ++r) {
    for (int c = 0; c < n; ++c) {
      x = x * 1664525u + 1013904223u;
      const bool corner_dark = (r == 0 && c == 0) || (r == n - 1 && c == n - 1);
      const bool corner_light = (r == 0 && c == 1) || (r == n - 1 && c == 0);
      if (corner_dark || (!corner_light && (x >> 31) != 0)) s.set(r, c);
    }
  }
  return s;
}

render_options opts(int scale, int border)
{
  render_options o;
  o.scale = scale;
  o.border = border;
  return o;
}

std::uint32_t be32(const std::uint8_t* p)
{
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// ------------------------------------------------------------------------------------------------

TEST(Rasterize, DimensionsAndCorners)
{
  const test_symbol s = pattern(21, 1);
  const render_options o = opts(3, 2);
  const qrplate::gray_image img = qrplate::rasterize(s.view(), o);
  ASSERT_EQ(img.width, (21 + 2 * 2) * 3);
  ASSERT_EQ(img.height, img.width);
  ASSERT_EQ(img.pixels.size(), 75u * 75u);
  auto px = [&](int x, int y) { return img.pixels[static_cast<std::size_t>(y) * 75 + x]; };
  EXPECT_EQ(px(0, 0), 255);    // quiet zone
  EXPECT_EQ(px(5, 5), 255);    // last quiet-zone pixel before module (0,0)
  EXPECT_EQ(px(6, 6), 0);      // module (0,0), top-left pixel
  EXPECT_EQ(px(8, 8), 0);      // module (0,0), bottom-right pixel
  EXPECT_EQ(px(9, 6), 255);    // module (0,1) is light
  EXPECT_EQ(px(6, 66), 255);   // module (20,0) is light
  EXPECT_EQ(px(68, 68), 0);    // module (20,20), bottom-right pixel
  EXPECT_EQ(px(69, 69), 255);  // quiet zone after it
  EXPECT_EQ(px(74, 74), 255);
}

TEST(Rasterize, EveryPixelAcrossWordBoundaries)
{
  // 70 modules: two 64-bit words per row, so column 64 comes from the second word.
  test_symbol s = pattern(70, 7);
  s.set(1, 64);
  for (const render_options o : {opts(1, 0), opts(4, 1)}) {
    const qrplate::gray_image img = qrplate::rasterize(s.view(), o);
    ASSERT_EQ(img.width, (70 + 2 * o.border) * o.scale);
    for (int y = 0; y < img.height; ++y) {
      for (int x = 0; x < img.width; ++x) {
        const int expected = s.dark_pixel(x, y, o) ? 0 : 255;
        ASSERT_EQ(img.pixels[static_cast<std::size_t>(y) * img.width + x], expected)
          << "pixel (" << x << "," << y << ") scale " << o.scale << " border " << o.border;
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------

TEST(Pbm, HeaderAndEveryBit)
{
  const test_symbol s = pattern(21, 2);
  const render_options o = opts(1, 2);
  const std::string pbm = qrplate::render_pbm(s.view(), o);
  const std::string header = "P4\n25 25\n";
  ASSERT_EQ(pbm.compare(0, header.size(), header), 0) << pbm.substr(0, 12);
  const int row_bytes = 4;  // 25 pixels -> 4 bytes, 7 padding bits
  ASSERT_EQ(pbm.size(), header.size() + 25u * row_bytes);
  auto bit = [&](int x, int y) {
    const auto byte = static_cast<unsigned char>(pbm[header.size() + static_cast<std::size_t>(y) * row_bytes + x / 8]);
    return (byte >> (7 - x % 8)) & 1;
  };
  EXPECT_EQ(bit(2, 2), 1);  // module (0,0) is dark: 1 = black in PBM
  EXPECT_EQ(bit(3, 2), 0);  // module (0,1) is light
  EXPECT_EQ(bit(0, 0), 0);  // quiet zone
  for (int y = 0; y < 25; ++y) {
    for (int x = 0; x < 25; ++x) ASSERT_EQ(bit(x, y), s.dark_pixel(x, y, o) ? 1 : 0) << x << "," << y;
    for (int x = 25; x < 32; ++x) ASSERT_EQ(bit(x, y), 0) << "padding bit " << x << " of row " << y;
  }
}

// ------------------------------------------------------------------------------------------------

TEST(Png, SignatureAndHeader)
{
  const test_symbol s = pattern(21, 3);
  const std::vector<std::uint8_t> png = qrplate::render_png(s.view(), opts(8, 4));
  ASSERT_GT(png.size(), 33u);
  const std::uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(png[i], signature[i]) << "signature byte " << i;
  // The first chunk is IHDR: length 13, then width, height, bit depth, colour type.
  EXPECT_EQ(be32(&png[8]), 13u);
  EXPECT_EQ(std::string(png.begin() + 12, png.begin() + 16), "IHDR");
  EXPECT_EQ(be32(&png[16]), 232u);  // (21 + 8) * 8
  EXPECT_EQ(be32(&png[20]), 232u);
  EXPECT_TRUE(png[24] == 1 || png[24] == 8) << "bit depth " << int{png[24]};
  EXPECT_EQ(png[25], 0) << "colour type should be grayscale";
  EXPECT_EQ(std::string(png.end() - 8, png.end() - 4), "IEND");
}

TEST(Png, DeterministicAndDependsOnTheModules)
{
  const test_symbol a = pattern(21, 4);
  test_symbol b = pattern(21, 4);
  b.flip(10, 11);  // one module apart
  EXPECT_EQ(qrplate::render_png(a.view(), {}), qrplate::render_png(a.view(), {}));
  EXPECT_NE(qrplate::render_png(a.view(), {}), qrplate::render_png(b.view(), {}));
}

// Decoded by libpng's own reader (qrplate_host links libpng; the reader is not our code).
TEST(Png, DecodesBackToTheModules)
{
  test_symbol s = pattern(70, 5);
  s.set(3, 64);
  const render_options o = opts(3, 2);
  const std::vector<std::uint8_t> png = qrplate::render_png(s.view(), o);

  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  ASSERT_NE(png_image_begin_read_from_memory(&image, png.data(), png.size()), 0) << image.message;
  image.format = PNG_FORMAT_GRAY;
  std::vector<std::uint8_t> pixels(PNG_IMAGE_SIZE(image));
  ASSERT_NE(png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr), 0) << image.message;
  const int side = (70 + 2 * 2) * 3;
  ASSERT_EQ(static_cast<int>(image.width), side);
  ASSERT_EQ(static_cast<int>(image.height), side);
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      ASSERT_EQ(pixels[static_cast<std::size_t>(y) * side + x], s.dark_pixel(x, y, o) ? 0 : 255)
        << "pixel (" << x << "," << y << ")";
    }
  }
}

// ------------------------------------------------------------------------------------------------

// Rasterizes an SVG path made of absolute M/L/H/V and relative m/l/h/v/z commands (enough for any
// rectilinear outline) at module centres, with SVG's default nonzero fill rule.
std::vector<std::vector<bool>> fill_path(const std::string& d, int scale, int border, int size)
{
  struct edge {
    double x, y0, y1;  // vertical edges only: horizontal ones never cross a horizontal ray
  };
  std::vector<edge> edges;
  double x = 0, y = 0, start_x = 0, start_y = 0;
  std::istringstream in(d);
  char cmd = 0;
  auto number = [&in]() {
    double v = 0;
    in >> v;
    if (in.peek() == ',') in.get();
    EXPECT_FALSE(in.fail()) << "malformed number in path";
    return v;
  };
  auto line_to = [&](double nx, double ny) {
    EXPECT_TRUE(nx == x || ny == y) << "diagonal segment in a module path";
    if (nx == x && ny != y) edges.push_back({x, y, ny});
    x = nx;
    y = ny;
  };
  while (in >> cmd) {
    switch (cmd) {
      case 'M': x = start_x = number(); y = start_y = number(); break;
      case 'm': x = start_x = x + number(); y = start_y = y + number(); break;
      case 'L': { const double nx = number(); line_to(nx, number()); break; }
      case 'l': { const double nx = x + number(); line_to(nx, y + number()); break; }
      case 'H': line_to(number(), y); break;
      case 'h': line_to(x + number(), y); break;
      case 'V': line_to(x, number()); break;
      case 'v': line_to(x, y + number()); break;
      case 'z':
      case 'Z': line_to(start_x, start_y); break;
      default: ADD_FAILURE() << "unexpected path command '" << cmd << "'"; return {};
    }
  }
  std::vector<std::vector<bool>> filled(size, std::vector<bool>(size, false));
  for (int r = 0; r < size; ++r) {
    for (int c = 0; c < size; ++c) {
      const double cx = (c + border + 0.5) * scale;
      const double cy = (r + border + 0.5) * scale;
      int winding = 0;
      for (const edge& e : edges) {
        if (e.x > cx && cy > std::min(e.y0, e.y1) && cy < std::max(e.y0, e.y1)) winding += e.y1 > e.y0 ? 1 : -1;
      }
      filled[r][c] = winding != 0;
    }
  }
  return filled;
}

TEST(Svg, ViewBoxBackgroundAndModules)
{
  test_symbol s = pattern(70, 6);
  s.set(5, 64);
  const render_options o = opts(8, 4);
  const std::string svg = qrplate::render_svg(s.view(), o);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("viewBox=\"0 0 624 624\""), std::string::npos) << svg.substr(0, 300);  // (70 + 8) * 8
  EXPECT_NE(svg.find("crispEdges"), std::string::npos);
  EXPECT_NE(svg.find("<rect width=\"624\" height=\"624\" fill=\"#ffffff\""), std::string::npos);
  EXPECT_EQ(svg.rfind("</svg>"), svg.size() - 7);

  const std::size_t path = svg.find("<path");
  ASSERT_NE(path, std::string::npos);
  EXPECT_EQ(svg.find("<path", path + 1), std::string::npos) << "expected a single path";
  const std::size_t d0 = svg.find(" d=\"", path);
  ASSERT_NE(d0, std::string::npos);
  const std::size_t d1 = svg.find('"', d0 + 4);
  const auto filled = fill_path(svg.substr(d0 + 4, d1 - d0 - 4), o.scale, o.border, s.size);
  ASSERT_EQ(filled.size(), s.dark.size());
  for (int r = 0; r < s.size; ++r) {
    for (int c = 0; c < s.size; ++c) ASSERT_EQ(filled[r][c], s.dark[r][c]) << "module (" << r << "," << c << ")";
  }
}

// ------------------------------------------------------------------------------------------------

test_symbol small_pattern()
{
  // 1 0 1
  // 0 1 0
  // 1 1 0
  test_symbol s(3);
  s.set(0, 0);
  s.set(0, 2);
  s.set(1, 1);
  s.set(2, 0);
  s.set(2, 1);
  return s;
}

TEST(Matrix, SmallPattern)
{
  EXPECT_EQ(qrplate::render_matrix(small_pattern().view()), "101\n010\n110\n");
}

TEST(Matrix, SecondWordOfARow)
{
  test_symbol s(70);
  s.set(0, 64);
  s.set(69, 69);
  const std::string m = qrplate::render_matrix(s.view());
  ASSERT_EQ(m.size(), 70u * 71u);
  EXPECT_EQ(m.substr(0, 71), std::string(64, '0') + "1" + std::string(5, '0') + "\n");
  EXPECT_EQ(m.substr(69 * 71, 71), std::string(69, '0') + "1\n");
}

TEST(Text, HalfBlocksLightAsInk)
{
  // Image rows with a 1-module border (D = dark):   . . . . .
  //                                                 . D . D .
  //                                                 . . D . .
  //                                                 . D D . .
  //                                                 . . . . .
  // Light is drawn as ink; the row past the image counts as dark (blank).
  const std::string full = "\u2588", upper = "\u2580";
  const std::string expected = full + upper + full + upper + full + "\n" +  //
                               full + upper + " " + full + full + "\n" +    //
                               upper + upper + upper + upper + upper + "\n";
  EXPECT_EQ(qrplate::render_text(small_pattern().view(), 1), expected);
}

TEST(Text, LineCountAndWidth)
{
  const std::string text = qrplate::render_text(pattern(21, 8).view(), 4);
  int lines = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line); ++lines) {
    // Each cell is one space (1 byte) or one 3-byte UTF-8 block; count code points.
    int cells = 0;
    for (const char ch : line) cells += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    EXPECT_EQ(cells, 29) << "line " << lines;
  }
  EXPECT_EQ(lines, 15);  // 29 module rows, two per line
}

// ------------------------------------------------------------------------------------------------

TEST(Options, OutOfRangeThrows)
{
  const test_symbol s = pattern(21, 9);
  for (const render_options bad : {opts(0, 4), opts(1001, 4), opts(-3, 4), opts(8, -1), opts(8, 1001)}) {
    EXPECT_THROW(qrplate::rasterize(s.view(), bad), qrplate::invalid_argument);
    EXPECT_THROW(qrplate::render_png(s.view(), bad), qrplate::invalid_argument);
    EXPECT_THROW(qrplate::render_pbm(s.view(), bad), qrplate::invalid_argument);
    EXPECT_THROW(qrplate::render_svg(s.view(), bad), qrplate::invalid_argument);
  }
  EXPECT_THROW(qrplate::render_text(s.view(), -1), qrplate::invalid_argument);
  EXPECT_THROW(qrplate::render_text(s.view(), 1001), qrplate::invalid_argument);
  EXPECT_NO_THROW(qrplate::render_svg(s.view(), opts(1000, 1000)));
  EXPECT_NO_THROW(qrplate::render_pbm(s.view(), opts(1, 0)));
  try {
    qrplate::render_pbm(s.view(), opts(0, 4));
    FAIL() << "scale 0 accepted";
  } catch (const qrplate::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "scale 0 out of range 1..1000");
  }
}

TEST(Options, EmptySymbolThrows)
{
  EXPECT_THROW(qrplate::render_matrix(qrplate::symbol_view{}), qrplate::invalid_argument);
  EXPECT_THROW(qrplate::render_png(qrplate::symbol_view{}, {}), qrplate::invalid_argument);
}

TEST(Formats, ParseNames)
{
  EXPECT_EQ(qrplate::parse_image_format("png"), qrplate::image_format::png);
  EXPECT_EQ(qrplate::parse_image_format("pbm"), qrplate::image_format::pbm);
  EXPECT_EQ(qrplate::parse_image_format("svg"), qrplate::image_format::svg);
  EXPECT_EQ(qrplate::parse_image_format("text"), qrplate::image_format::text);
  EXPECT_EQ(qrplate::parse_image_format("matrix"), qrplate::image_format::matrix);
  EXPECT_EQ(qrplate::parse_image_format("PNG"), qrplate::image_format::png);
  EXPECT_THROW(qrplate::parse_image_format(""), qrplate::invalid_argument);
  try {
    qrplate::parse_image_format("jpeg");
    FAIL() << "jpeg accepted";
  } catch (const qrplate::invalid_argument& e) {
    const std::string message = e.what();
    for (const char* name : {"jpeg", "png", "pbm", "svg", "text", "matrix"}) {
      EXPECT_NE(message.find(name), std::string::npos) << "message lacks '" << name << "': " << message;
    }
  }
}

TEST(Formats, FromPath)
{
  EXPECT_EQ(qrplate::image_format_from_path("out.png"), qrplate::image_format::png);
  EXPECT_EQ(qrplate::image_format_from_path("dir.v2/OUT.PNG"), qrplate::image_format::png);
  EXPECT_EQ(qrplate::image_format_from_path("a.pbm"), qrplate::image_format::pbm);
  EXPECT_EQ(qrplate::image_format_from_path("a.svg"), qrplate::image_format::svg);
  EXPECT_EQ(qrplate::image_format_from_path("a.txt"), qrplate::image_format::text);
  EXPECT_EQ(qrplate::image_format_from_path("a.matrix"), qrplate::image_format::matrix);
  EXPECT_THROW(qrplate::image_format_from_path("a.jpg"), qrplate::invalid_argument);
  EXPECT_THROW(qrplate::image_format_from_path("noextension"), qrplate::invalid_argument);
  EXPECT_THROW(qrplate::image_format_from_path("dir.png/file"), qrplate::invalid_argument);
}

// ------------------------------------------------------------------------------------------------

std::string slurp(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(WriteSymbol, WritesTheRenderedBytes)
{
  const test_symbol s = pattern(21, 10);
  const std::string path = testing::TempDir() + "qrplate_test_image_write.pbm";
  std::remove(path.c_str());
  qrplate::write_symbol(s.view(), qrplate::image_format::pbm, opts(2, 1), path);
  EXPECT_EQ(slurp(path), qrplate::render_pbm(s.view(), opts(2, 1)));
  // Overwriting an existing file replaces it whole.
  qrplate::write_symbol(s.view(), qrplate::image_format::matrix, {}, path);
  EXPECT_EQ(slurp(path), qrplate::render_matrix(s.view()));
  EXPECT_FALSE(std::ifstream(path + ".tmp").good()) << "temporary file left behind";
  std::remove(path.c_str());
}

TEST(WriteSymbol, UnwritablePathThrowsIoError)
{
  const test_symbol s = pattern(21, 11);
  const std::string path = testing::TempDir() + "qrplate-no-such-dir/sub/out.png";
  try {
    qrplate::write_symbol(s.view(), qrplate::image_format::png, {}, path);
    FAIL() << "write to a missing directory succeeded";
  } catch (const qrplate::io_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  }
}

}  // namespace
