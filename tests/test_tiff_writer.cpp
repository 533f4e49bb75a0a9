// plate.tif and preview.png: the streaming writers, read back with libtiff and libpng (never
// through the writers' own buffers).

#include <unistd.h>
#include <gtest/gtest.h>
#include <png.h>
#include <tiffio.h>

#if defined(__unix__)
#include <sys/resource.h>

#include <csignal>
#endif

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "plate/preview.hpp"
#include "plate/tiff_writer.hpp"
#include "qrplate/error.hpp"
#include "util/thread_team.hpp"

namespace {

using qrplate::plate::preview_builder;
using qrplate::plate::tiff_compression;
using qrplate::plate::tiff_options;
using qrplate::plate::tiled_bilevel_writer;

// A bit-packed image in the qrplate layout, `stride` words a row. Bits past `width` are random
// too, so the writers must ignore them.
struct bit_image {
  std::uint64_t width = 0;
  std::uint64_t height = 0;
  std::size_t stride = 0;
  std::vector<std::uint64_t> words;

  bool dark(std::uint64_t x, std::uint64_t y) const { return (words[y * stride + x / 64] >> (x % 64)) & 1u; }
  void set(std::uint64_t x, std::uint64_t y) { words[y * stride + x / 64] |= std::uint64_t{1} << (x % 64); }
};

bit_image random_image(std::uint64_t width, std::uint64_t height, std::size_t extra_words, double density,
                       std::mt19937_64& rng)
{
  bit_image img;
  img.width = width;
  img.height = height;
  img.stride = static_cast<std::size_t>((width + 63) / 64) + extra_words;
  img.words.assign(img.stride * height, 0);
  std::bernoulli_distribution bit(density);
  for (std::uint64_t y = 0; y < height; ++y) {
    for (std::uint64_t x = 0; x < 64 * img.stride; ++x) {
      if (bit(rng)) img.words[y * img.stride + x / 64] |= std::uint64_t{1} << (x % 64);
    }
  }
  return img;
}

bit_image blank_image(std::uint64_t width, std::uint64_t height)
{
  bit_image img;
  img.width = width;
  img.height = height;
  img.stride = static_cast<std::size_t>((width + 63) / 64);
  img.words.assign(img.stride * height, 0);
  return img;
}

// Feeds all rows in uneven batches (1..max_batch rows).
template <typename Sink>
void append_in_batches(Sink& sink, const bit_image& img, std::mt19937_64& rng, std::size_t max_batch = 37)
{
  std::uniform_int_distribution<std::size_t> batch(1, max_batch);
  std::uint64_t y = 0;
  while (y < img.height) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(batch(rng), img.height - y));
    sink.append_rows(img.words.data() + y * img.stride, n, img.stride);
    y += n;
  }
}

std::string temp_path(const std::string& name)
{
  // ctest runs test cases as parallel processes: the pid keeps their files apart.
  return ::testing::TempDir() + "qrplate_tiff_test_" + std::to_string(::getpid()) + "_" + name;
}

bool file_exists(const std::string& path)
{
  return std::ifstream(path).good();
}

struct tiff_closer {
  void operator()(TIFF* tif) const { TIFFClose(tif); }
};
using tiff_ptr = std::unique_ptr<TIFF, tiff_closer>;

// Reads every tile with libtiff and checks every pixel against `img`, and that the padding of
// edge tiles is 0 (light).
void expect_tiff_matches(const std::string& path, const bit_image& img, const tiff_options& opt)
{
  tiff_ptr tif(TIFFOpen(path.c_str(), "r"));
  ASSERT_TRUE(tif) << path;
  EXPECT_TRUE(TIFFIsBigTIFF(tif.get()));
  EXPECT_TRUE(TIFFIsTiled(tif.get()));
  std::uint32_t w = 0, h = 0, tw = 0, th = 0;
  std::uint16_t bits = 0, spp = 0, photometric = 0, compression = 0, planar = 0;
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w));
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h));
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_TILEWIDTH, &tw));
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_TILELENGTH, &th));
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_BITSPERSAMPLE, &bits));
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &spp));
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_PHOTOMETRIC, &photometric));
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_COMPRESSION, &compression));
  ASSERT_TRUE(TIFFGetFieldDefaulted(tif.get(), TIFFTAG_PLANARCONFIG, &planar));
  EXPECT_EQ(w, img.width);
  EXPECT_EQ(h, img.height);
  ASSERT_EQ(tw, opt.tile_width);
  ASSERT_EQ(th, opt.tile_height);
  EXPECT_EQ(bits, 1);
  EXPECT_EQ(spp, 1);
  EXPECT_EQ(photometric, PHOTOMETRIC_MINISWHITE);
  EXPECT_EQ(planar, PLANARCONFIG_CONTIG);
  const std::uint16_t want_compression = opt.compression == tiff_compression::none      ? COMPRESSION_NONE
                                         : opt.compression == tiff_compression::deflate ? COMPRESSION_ADOBE_DEFLATE
                                                                                        : COMPRESSION_CCITTFAX4;
  EXPECT_EQ(compression, want_compression);

  const std::uint64_t across = (img.width + tw - 1) / tw;
  const std::uint64_t down = (img.height + th - 1) / th;
  ASSERT_EQ(TIFFNumberOfTiles(tif.get()), across * down);
  const std::size_t row_bytes = tw / 8;
  const auto tile_size = static_cast<tmsize_t>(row_bytes * th);
  ASSERT_EQ(TIFFTileSize(tif.get()), tile_size);
  std::vector<std::uint8_t> tile(static_cast<std::size_t>(tile_size));
  std::uint64_t mismatches = 0, padding_dark = 0;
  for (std::uint64_t ty = 0; ty < down; ++ty) {
    for (std::uint64_t tx = 0; tx < across; ++tx) {
      const std::uint32_t index =
          TIFFComputeTile(tif.get(), static_cast<std::uint32_t>(tx * tw), static_cast<std::uint32_t>(ty * th), 0, 0);
      ASSERT_EQ(TIFFReadEncodedTile(tif.get(), index, tile.data(), tile_size), tile_size) << "tile " << index;
      for (std::uint32_t r = 0; r < th; ++r) {
        for (std::uint32_t c = 0; c < tw; ++c) {
          const bool bit = (tile[r * row_bytes + c / 8] >> (7 - c % 8)) & 1u;
          const std::uint64_t x = tx * tw + c, y = ty * th + r;
          if (x < img.width && y < img.height) {
            if (bit != img.dark(x, y) && mismatches++ < 5) ADD_FAILURE() << "pixel (" << x << ", " << y << ")";
          } else if (bit) {
            if (padding_dark++ < 5) ADD_FAILURE() << "padding pixel (" << x << ", " << y << ") is dark";
          }
        }
      }
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(padding_dark, 0u);
}

// ----------------------------------------------------------------------------------------------
// Row packing

TEST(PackRow, GoldenBytes)
{
  // Pixel 0 is bit 0 of word 0 and must land in the top bit of byte 0 (MSB first).
  const std::uint64_t words[2] = {0x0000000000000181ull, 0x8000000000000001ull};
  std::uint8_t out[16] = {};
  qrplate::plate::pack_row_msb_first(words, 128, out);
  const std::uint8_t want[16] = {0x81, 0x80, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0x01};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(out[i], want[i]) << "byte " << i;

  // Width 3: bits past it are dropped; exactly one byte is written.
  const std::uint64_t tail[1] = {~std::uint64_t{0}};
  std::uint8_t small[2] = {0xAA, 0xAA};
  qrplate::plate::pack_row_msb_first(tail, 3, small);
  EXPECT_EQ(small[0], 0xE0);
  EXPECT_EQ(small[1], 0xAA);
}

TEST(PackRow, FastMatchesReference)
{
  const std::uint64_t seed = 20240611;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> widths;
  for (std::uint64_t w = 1; w <= 200; ++w) widths.push_back(w);
  for (std::uint64_t w : {255u, 256u, 257u, 1023u, 1024u, 1025u, 4097u, 100003u}) widths.push_back(w);
  for (std::uint64_t width : widths) {
    std::vector<std::uint64_t> words((width + 63) / 64 + 1);
    for (auto& w : words) w = rng();
    const std::size_t bytes = static_cast<std::size_t>((width + 7) / 8);
    std::vector<std::uint8_t> fast(bytes + 4, 0x5A), ref(bytes + 4, 0x5A);
    qrplate::plate::pack_row_msb_first(words.data(), width, fast.data());
    qrplate::plate::pack_row_msb_first_reference(words.data(), width, ref.data());
    ASSERT_EQ(fast, ref) << "width " << width;
    for (std::size_t i = bytes; i < bytes + 4; ++i) ASSERT_EQ(fast[i], 0x5A) << "wrote past the row, width " << width;
  }
}

// ----------------------------------------------------------------------------------------------
// Options and arguments

TEST(TiffOptions, CompressionNames)
{
  for (auto c : {tiff_compression::none, tiff_compression::deflate, tiff_compression::ccitt_g4}) {
    EXPECT_EQ(qrplate::plate::parse_tiff_compression(qrplate::plate::to_string(c)), c);
  }
  EXPECT_EQ(qrplate::plate::parse_tiff_compression("g4"), tiff_compression::ccitt_g4);
  EXPECT_STREQ(qrplate::plate::to_string(tiff_compression::deflate), "deflate");
  EXPECT_THROW(qrplate::plate::parse_tiff_compression("zip"), qrplate::invalid_argument);
  EXPECT_THROW(qrplate::plate::parse_tiff_compression(""), qrplate::invalid_argument);
}

TEST(TiffOptions, TileSidesAreMultiplesOf16)
{
  for (std::uint32_t bad : {0u, 8u, 24u, 1000u, 65552u}) {
    tiff_options o;
    o.tile_width = bad;
    EXPECT_THROW(qrplate::plate::validate(o), qrplate::invalid_argument) << bad;
    o = tiff_options{};
    o.tile_height = bad;
    EXPECT_THROW(qrplate::plate::validate(o), qrplate::invalid_argument) << bad;
  }
  for (std::uint32_t good : {16u, 48u, 1024u, 65536u}) {
    tiff_options o;
    o.tile_width = o.tile_height = good;
    EXPECT_NO_THROW(qrplate::plate::validate(o)) << good;
  }
  const std::string path = temp_path("bad_tile.tif");
  tiff_options o;
  o.tile_width = 1000;
  EXPECT_THROW(tiled_bilevel_writer(path, 10, 10, o), qrplate::invalid_argument);
  EXPECT_FALSE(file_exists(path));
}

TEST(TiledBilevelWriter, BadSizesThrow)
{
  const std::string path = temp_path("bad_size.tif");
  EXPECT_THROW(tiled_bilevel_writer(path, 0, 10), qrplate::invalid_argument);
  EXPECT_THROW(tiled_bilevel_writer(path, 10, 0), qrplate::invalid_argument);
  EXPECT_THROW(tiled_bilevel_writer(path, std::uint64_t{1} << 32, 10), qrplate::invalid_argument);
  tiff_options tiny;
  tiny.tile_width = tiny.tile_height = 16;  // (2^32 / 16)^2 tiles: past libtiff's 32-bit tile index
  EXPECT_THROW(tiled_bilevel_writer(path, 0xFFFFFFFFull, 0xFFFFFFFFull, tiny), qrplate::invalid_argument);
  EXPECT_FALSE(file_exists(path));
}

TEST(TiledBilevelWriter, BadPathThrowsIoError)
{
  const std::string path = "/nonexistent-qrplate-dir/plate.tif";
  try {
    tiled_bilevel_writer w(path, 100, 100);
    FAIL() << "no exception";
  } catch (const qrplate::io_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(TiledBilevelWriter, FullDiskThrowsIoError)
{
  if (!file_exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  std::mt19937_64 rng(7);
  const bit_image img = random_image(300, 300, 0, 0.5, rng);
  tiff_options o;
  o.tile_width = o.tile_height = 64;
  EXPECT_THROW(
      {
        tiled_bilevel_writer w("/dev/full", img.width, img.height, o);
        w.append_rows(img.words.data(), img.height, img.stride);
        w.finish();
      },
      qrplate::io_error);
  // Cleaning up after a failure removes regular files only, never the device.
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/full"));
}

#if defined(__unix__)
// A write that fails after the header: a file size limit (RLIMIT_FSIZE) makes write() fail with
// EFBIG once the file reaches it, as a full disk would with ENOSPC.
TEST(TiledBilevelWriter, FailedTileWriteThrowsIoError)
{
  const std::string path = temp_path("limited.tif");
  std::mt19937_64 rng(13);
  const bit_image img = random_image(1000, 1000, 0, 0.5, rng);  // 125 kB uncompressed
  tiff_options o;
  o.tile_width = o.tile_height = 64;
  o.compression = tiff_compression::none;

  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = 32 * 1024;
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  std::string message;
  bool constructed = false;
  try {
    tiled_bilevel_writer w(path, img.width, img.height, o);
    constructed = true;
    w.append_rows(img.words.data(), img.height, img.stride);
    w.finish();
  } catch (const qrplate::io_error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_TRUE(constructed);
  EXPECT_NE(message.find("cannot write a tile of " + path), std::string::npos) << message;
  EXPECT_NE(message.find(std::strerror(EFBIG)), std::string::npos) << message;
  EXPECT_FALSE(file_exists(path)) << "a failed plate must not be left behind";
}
#endif

// ----------------------------------------------------------------------------------------------
// Round trips: every pixel, every compression, odd sizes, uneven batches

class TiffRoundTrip : public ::testing::TestWithParam<std::tuple<tiff_compression, std::uint32_t, std::uint32_t>> {};

TEST_P(TiffRoundTrip, EveryPixelReadsBack)
{
  tiff_options opt;
  opt.compression = std::get<0>(GetParam());
  opt.tile_width = std::get<1>(GetParam());
  opt.tile_height = std::get<2>(GetParam());
  struct size {
    std::uint64_t w, h;
  };
  const size sizes[] = {{1, 1}, {17, 33}, {64, 16}, {1000, 999}, {1025, 2049}, {2049, 40}, {129, 1}};
  std::uint64_t seed = 1000 + static_cast<std::uint64_t>(opt.compression) * 100 + opt.tile_width + opt.tile_height;
  for (const size& s : sizes) {
    ++seed;
    SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(s.w) + " x " + std::to_string(s.h) + ", " +
                 qrplate::plate::to_string(opt.compression) + ", tiles " + std::to_string(opt.tile_width) + " x " +
                 std::to_string(opt.tile_height));
    std::mt19937_64 rng(seed);
    const double density = std::uniform_real_distribution<double>(0.05, 0.95)(rng);
    const bit_image img = random_image(s.w, s.h, seed % 3 == 0 ? 2 : 0, density, rng);
    const std::string path = temp_path("roundtrip.tif");
    {
      tiled_bilevel_writer w(path, s.w, s.h, opt);
      append_in_batches(w, img, rng);
      EXPECT_EQ(w.rows_written(), s.h);
      w.finish();
    }
    expect_tiff_matches(path, img, opt);
    std::remove(path.c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(Tiles, TiffRoundTrip,
                         ::testing::Combine(::testing::Values(tiff_compression::none, tiff_compression::deflate,
                                                              tiff_compression::ccitt_g4),
                                            ::testing::Values(16u, 48u, 1024u), ::testing::Values(16u, 32u, 1024u)),
                         [](const auto& param_info) {
                           return std::string(qrplate::plate::to_string(std::get<0>(param_info.param))) + "_" +
                                  std::to_string(std::get<1>(param_info.param)) + "x" +
                                  std::to_string(std::get<2>(param_info.param));
                         });

TEST(TiledBilevelWriter, TagsAndResolution)
{
  const std::string path = temp_path("tags.tif");
  std::mt19937_64 rng(42);
  const bit_image img = random_image(100, 70, 0, 0.5, rng);
  {
    tiled_bilevel_writer w(path, img.width, img.height);
    w.append_rows(img.words.data(), 20, img.stride);
    // Tags that do not change the layout may follow pixel data.
    w.set_resolution_nm(49.0);
    w.set_description("plate 7");
    w.append_rows(img.words.data() + 20 * img.stride, 50, img.stride);
    w.finish();
  }
  tiff_ptr tif(TIFFOpen(path.c_str(), "r"));
  ASSERT_TRUE(tif);
  EXPECT_TRUE(TIFFIsBigTIFF(tif.get()));
  char* text = nullptr;
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_SOFTWARE, &text));
  EXPECT_STREQ(text, "qrplate");
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_IMAGEDESCRIPTION, &text));
  EXPECT_STREQ(text, "plate 7");
  std::uint16_t unit = 0, fill = 0;
  float xres = 0, yres = 0;
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_RESOLUTIONUNIT, &unit));
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_XRESOLUTION, &xres));
  ASSERT_TRUE(TIFFGetField(tif.get(), TIFFTAG_YRESOLUTION, &yres));
  ASSERT_TRUE(TIFFGetFieldDefaulted(tif.get(), TIFFTAG_FILLORDER, &fill));
  EXPECT_EQ(unit, RESUNIT_CENTIMETER);
  EXPECT_NEAR(xres, 1e7 / 49.0, 0.05);  // 204081.63 pixels per cm
  EXPECT_NEAR(yres, 1e7 / 49.0, 0.05);
  EXPECT_EQ(fill, FILLORDER_MSB2LSB);
  tif.reset();
  expect_tiff_matches(path, img, tiff_options{});
  std::remove(path.c_str());
}

TEST(TiledBilevelWriter, FinishEarlyThrowsAndCanResume)
{
  const std::string path = temp_path("early.tif");
  std::mt19937_64 rng(99);
  const bit_image img = random_image(17, 33, 0, 0.5, rng);
  tiff_options opt;
  opt.tile_width = opt.tile_height = 16;
  tiled_bilevel_writer w(path, img.width, img.height, opt);
  w.append_rows(img.words.data(), 10, img.stride);
  try {
    w.finish();
    FAIL() << "no exception";
  } catch (const qrplate::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("wrote 10 of 33 rows"), std::string::npos) << e.what();
  }
  // Moving keeps the open file; the rest of the rows complete it.
  tiled_bilevel_writer moved = std::move(w);
  moved.append_rows(img.words.data() + 10 * img.stride, 23, img.stride);
  moved.finish();
  moved.finish();  // a second finish() is a no-op
  EXPECT_THROW(moved.append_rows(img.words.data(), 1, img.stride), qrplate::invalid_argument);
  expect_tiff_matches(path, img, opt);
  std::remove(path.c_str());
}

TEST(TiledBilevelWriter, RejectsExtraRowsAndShortStride)
{
  const std::string path = temp_path("extra.tif");
  std::mt19937_64 rng(5);
  const bit_image img = random_image(130, 20, 0, 0.5, rng);  // 3 words a row
  tiled_bilevel_writer w(path, img.width, 19);
  EXPECT_THROW(w.append_rows(img.words.data(), 20, img.stride), qrplate::invalid_argument);
  EXPECT_EQ(w.rows_written(), 0u);
  EXPECT_THROW(w.append_rows(img.words.data(), 1, 2), qrplate::invalid_argument);
  EXPECT_EQ(w.rows_written(), 0u);
  w.append_rows(img.words.data(), 19, img.stride);
  EXPECT_THROW(w.append_rows(img.words.data(), 1, img.stride), qrplate::invalid_argument);
  EXPECT_EQ(w.rows_written(), 19u);
  w.finish();
  std::remove(path.c_str());
}

TEST(TiledBilevelWriter, UnfinishedFileIsRemoved)
{
  const std::string path = temp_path("unfinished.tif");
  std::mt19937_64 rng(3);
  const bit_image img = random_image(40, 40, 0, 0.5, rng);
  {
    tiff_options opt;
    opt.tile_width = opt.tile_height = 16;
    tiled_bilevel_writer w(path, img.width, img.height, opt);
    w.append_rows(img.words.data(), 35, img.stride);  // two tile rows already on disk
    EXPECT_TRUE(file_exists(path));
  }
  EXPECT_FALSE(file_exists(path));
}

// ----------------------------------------------------------------------------------------------
// Preview

// Oracle: the area average of each block, one module at a time.
std::vector<std::uint8_t> naive_preview(const bit_image& img, std::uint64_t f)
{
  const std::uint64_t pw = (img.width + f - 1) / f, ph = (img.height + f - 1) / f;
  std::vector<std::uint8_t> out(pw * ph);
  for (std::uint64_t by = 0; by < ph; ++by) {
    for (std::uint64_t bx = 0; bx < pw; ++bx) {
      std::uint64_t dark = 0, all = 0;
      for (std::uint64_t y = by * f; y < std::min((by + 1) * f, img.height); ++y) {
        for (std::uint64_t x = bx * f; x < std::min((bx + 1) * f, img.width); ++x) {
          dark += img.dark(x, y);
          ++all;
        }
      }
      const double level = 255.0 * static_cast<double>(dark) / static_cast<double>(all);
      out[by * pw + bx] = static_cast<std::uint8_t>(255 - static_cast<int>(std::floor(level + 0.5)));
    }
  }
  return out;
}

TEST(Preview, SizeAndFactor)
{
  preview_builder small(17, 33);
  EXPECT_EQ(small.factor(), 1u);
  EXPECT_EQ(small.width(), 17u);
  EXPECT_EQ(small.height(), 33u);
  preview_builder wide(3000, 1000);
  EXPECT_EQ(wide.factor(), 2u);
  EXPECT_EQ(wide.width(), 1500u);
  EXPECT_EQ(wide.height(), 500u);
  preview_builder plate(10'000'000, 5'000'000);  // f = ceil(1e7 / 2048) = 4883
  EXPECT_EQ(plate.factor(), 4883u);
  EXPECT_EQ(plate.width(), 2048u);
  EXPECT_EQ(plate.height(), 1024u);
  EXPECT_THROW(preview_builder(0, 5), qrplate::invalid_argument);
  EXPECT_THROW(preview_builder(5, 5, 0), qrplate::invalid_argument);
}

TEST(Preview, LeftHalfDark)
{
  bit_image img = blank_image(1000, 600);
  for (std::uint64_t y = 0; y < img.height; ++y) {
    for (std::uint64_t x = 0; x < 500; ++x) img.set(x, y);
  }
  preview_builder p(img.width, img.height, 100);  // f = 10: 100 x 60
  ASSERT_EQ(p.width(), 100u);
  ASSERT_EQ(p.height(), 60u);
  std::mt19937_64 rng(11);
  append_in_batches(p, img, rng);
  const std::vector<std::uint8_t> px = p.pixels();
  for (std::uint32_t y = 0; y < 60; ++y) {
    for (std::uint32_t x = 0; x < 100; ++x) ASSERT_EQ(px[y * 100 + x], x < 50 ? 0 : 255) << x << ", " << y;
  }
}

TEST(Preview, StripesAreMidGrey)
{
  // Every other column dark: each 10 x 10 block is half dark, 255 - round(127.5) = 127.
  // One extra column (1001 wide) makes the last block one column wide and fully dark.
  bit_image img = blank_image(1001, 600);
  for (std::uint64_t y = 0; y < img.height; ++y) {
    for (std::uint64_t x = 0; x < img.width; x += 2) img.set(x, y);
  }
  preview_builder p(img.width, img.height, 101);  // f = ceil(1001 / 101) = 10: 101 x 60
  ASSERT_EQ(p.factor(), 10u);
  ASSERT_EQ(p.width(), 101u);
  p.append_rows(img.words.data(), img.height, img.stride);
  const std::vector<std::uint8_t> px = p.pixels();
  for (std::uint32_t y = 0; y < p.height(); ++y) {
    for (std::uint32_t x = 0; x < 100; ++x) ASSERT_EQ(px[y * 101 + x], 127) << x << ", " << y;
    ASSERT_EQ(px[y * 101 + 100], 0) << y;
  }
}

TEST(Preview, RandomMatchesNaiveAverage)
{
  struct c {
    std::uint64_t w, h;
    std::uint32_t max_side;
  };
  const c cases[] = {{1, 1, 2048}, {130, 7, 2048}, {25, 7, 10}, {1000, 999, 64}, {1025, 2049, 100}, {700, 3, 2}};
  std::uint64_t seed = 777;
  for (const c& k : cases) {
    ++seed;
    SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(k.w) + " x " + std::to_string(k.h) + " max " +
                 std::to_string(k.max_side));
    std::mt19937_64 rng(seed);
    const bit_image img = random_image(k.w, k.h, 1, 0.3, rng);
    preview_builder p(k.w, k.h, k.max_side);
    append_in_batches(p, img, rng, 13);
    EXPECT_EQ(p.pixels(), naive_preview(img, p.factor()));
  }
}

TEST(Preview, PngDecodesWithExpectedSize)
{
  std::mt19937_64 rng(2024);
  const bit_image img = random_image(1025, 333, 0, 0.4, rng);
  preview_builder p(img.width, img.height, 256);  // f = 5: 205 x 67
  const std::string path = temp_path("preview.png");
  EXPECT_THROW(p.write_png(path), qrplate::invalid_argument);  // no rows yet
  append_in_batches(p, img, rng);
  EXPECT_THROW(p.append_rows(img.words.data(), 1, img.stride), qrplate::invalid_argument);
  p.write_png(path);

  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&png, path.c_str())) << png.message;
  EXPECT_EQ(png.width, 205u);
  EXPECT_EQ(png.height, 67u);
  EXPECT_EQ(png.format, static_cast<png_uint_32>(PNG_FORMAT_GRAY));  // 8-bit, one channel
  png.format = PNG_FORMAT_GRAY;
  std::vector<std::uint8_t> decoded(PNG_IMAGE_SIZE(png));
  ASSERT_TRUE(png_image_finish_read(&png, nullptr, decoded.data(), 0, nullptr)) << png.message;
  EXPECT_EQ(decoded, p.pixels());
  EXPECT_EQ(decoded, naive_preview(img, 5));
  std::remove(path.c_str());

  EXPECT_THROW(p.write_png("/nonexistent-qrplate-dir/preview.png"), qrplate::io_error);
  if (std::filesystem::is_character_file("/dev/full")) {
    EXPECT_THROW(p.write_png("/dev/full"), qrplate::io_error);
    EXPECT_TRUE(std::filesystem::is_character_file("/dev/full")) << "a failed write must not remove a device";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Region mode (put_region / add_region): the plate encoder's band x block units arrive as
// rectangles in band order; any partition of the image must give the same pixels.

namespace {

// Cuts img into a random grid of rectangles (rows of random heights, each cut into random
// widths) and calls put(x0, y0, w, h, words, stride) for each, in row-band order.
template <typename Put>
void put_in_rectangles(const bit_image& img, std::mt19937_64& rng, Put&& put)
{
  std::uniform_int_distribution<std::uint64_t> tall(1, 70), wide(1, 300);
  for (std::uint64_t y = 0; y < img.height;) {
    const std::uint64_t h = std::min(tall(rng), img.height - y);
    for (std::uint64_t x = 0; x < img.width;) {
      const std::uint64_t w = std::min(wide(rng), img.width - x);
      // Copy the rectangle into its own buffer, shifted to bit 0, as the encoder's rasters are.
      const std::size_t stride = static_cast<std::size_t>((w + 63) / 64);
      std::vector<std::uint64_t> rect(stride * h, 0);
      for (std::uint64_t r = 0; r < h; ++r)
        for (std::uint64_t c = 0; c < w; ++c)
          if (img.dark(x + c, y + r)) rect[r * stride + c / 64] |= std::uint64_t{1} << (c % 64);
      put(x, y, w, static_cast<std::size_t>(h), rect.data(), stride);
      x += w;
    }
    y += h;
  }
}

}  // namespace

TEST(TiledBilevelWriter, RegionsInAnyPartitionReadBack)
{
  for (std::uint64_t seed : {31u, 32u, 33u}) {
    std::mt19937_64 rng(seed);
    const std::uint64_t w = 200 + rng() % 900, h = 100 + rng() % 700;
    SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(w) + " x " + std::to_string(h));
    const bit_image img = random_image(w, h, 0, 0.5, rng);
    tiff_options opt;
    opt.tile_width = 64;
    opt.tile_height = 48;
    const std::string path = temp_path("regions.tif");
    {
      tiled_bilevel_writer out(path, w, h, opt);
      put_in_rectangles(img, rng, [&](std::uint64_t x, std::uint64_t y, std::uint64_t rw, std::size_t rh,
                                      const std::uint64_t* words, std::size_t stride) {
        out.put_region(x, y, rw, rh, words, stride);
      });
      out.finish();
    }
    expect_tiff_matches(path, img, opt);
    std::remove(path.c_str());
  }
}

TEST(TiledBilevelWriter, RegionsMustCoverTheImageOnce)
{
  std::vector<std::uint64_t> rows(2 * 100, ~std::uint64_t{0});
  {
    const std::string path = temp_path("regions_missing.tif");
    tiled_bilevel_writer out(path, 100, 100, {});
    out.put_region(0, 0, 100, 1, rows.data(), 2);
    EXPECT_THROW(out.finish(), qrplate::invalid_argument);                                  // 99 rows missing
    EXPECT_THROW(out.put_region(50, 99, 60, 1, rows.data(), 2), qrplate::invalid_argument);  // outside
    EXPECT_THROW(out.append_rows(rows.data(), 1, 2), qrplate::invalid_argument);              // modes mixed
  }
  {
    const std::string path = temp_path("regions_twice.tif");
    tiled_bilevel_writer out(path, 100, 100, {});
    out.put_region(0, 0, 100, 100, rows.data(), 2);  // the single tile is complete and written
    EXPECT_THROW(out.put_region(0, 0, 100, 1, rows.data(), 2), qrplate::invalid_argument);
    out.finish();
    std::remove(path.c_str());
  }
}

TEST(Preview, RegionsEqualRows)
{
  // Blocks of 1, 3, 8, 65 and 156 modules: smaller than a word, word-sized, spanning words.
  // Regions counted on one thread and on three (a row of blocks a task).
  for (std::uint32_t max_side : {777u, 300u, 100u, 12u, 5u}) {
   for (unsigned threads : {1u, 3u}) {
    SCOPED_TRACE("max side " + std::to_string(max_side) + ", threads " + std::to_string(threads));
    std::mt19937_64 rng(41 + max_side);
    const bit_image img = random_image(777, 333, 0, 0.4, rng);
    preview_builder by_rows(777, 333, max_side);
    append_in_batches(by_rows, img, rng, 9);
    qrplate::host::thread_team team(threads);
    preview_builder by_regions(777, 333, max_side, threads == 1 ? nullptr : &team);
    put_in_rectangles(img, rng, [&](std::uint64_t x, std::uint64_t y, std::uint64_t rw, std::size_t rh,
                                    const std::uint64_t* words, std::size_t stride) {
      by_regions.add_region(x, y, rw, rh, words, stride);
    });
    EXPECT_EQ(by_regions.pixels(), by_rows.pixels());
    EXPECT_EQ(by_regions.pixels(), naive_preview(img, by_regions.factor()));
   }
  }
}

// Finished tiles are packed and deflated on several threads and written in tile order: the file
// must be the same bytes for any thread count, in both modes and every compression, and read back.
TEST(TiledBilevelWriter, FileBytesDoNotDependOnThreads)
{
  auto file_bytes = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  for (auto compression : {tiff_compression::none, tiff_compression::deflate, tiff_compression::ccitt_g4}) {
    for (bool regions : {false, true}) {
      SCOPED_TRACE(std::string(qrplate::plate::to_string(compression)) + (regions ? ", regions" : ", rows"));
      std::mt19937_64 rng(51 + static_cast<unsigned>(compression));
      const bit_image img = random_image(1000, 700, 1, 0.3, rng);
      std::vector<char> first;
      for (unsigned threads : {1u, 2u, 5u}) {
        SCOPED_TRACE("threads " + std::to_string(threads));
        qrplate::host::thread_team team(threads);
        tiff_options opt;
        opt.tile_width = 32;  // 32 x 44 tiles: rounds of 16 tiles a thread, several per call
        opt.tile_height = 16;
        opt.compression = compression;
        opt.team = threads == 1 ? nullptr : &team;
        const std::string path = temp_path("threads.tif");
        {
          tiled_bilevel_writer out(path, img.width, img.height, opt);
          std::mt19937_64 cut(7);  // the same cuts for every thread count
          if (regions) {
            put_in_rectangles(img, cut, [&](std::uint64_t x, std::uint64_t y, std::uint64_t rw, std::size_t rh,
                                            const std::uint64_t* words, std::size_t stride) {
              out.put_region(x, y, rw, rh, words, stride);
            });
          } else {
            append_in_batches(out, img, cut);
          }
          out.finish();
        }
        expect_tiff_matches(path, img, opt);
        const std::vector<char> bytes = file_bytes(path);
        if (first.empty()) {
          first = bytes;
        } else {
          EXPECT_TRUE(bytes == first) << "the file differs from the one-thread file";
        }
        std::remove(path.c_str());
      }
    }
  }
}
