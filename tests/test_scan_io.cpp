// Scan-set image files and plate windows (host/sim/scan_io): what the writers produce is read back
// with libtiff and libpng directly, and the readers are fed files written here by hand, with
// libtiff, libpng or tiled_bilevel_writer (never by the code under test).

#include <unistd.h>
#include <gtest/gtest.h>
#include <png.h>
#include <tiffio.h>

#include <algorithm>
#include <utility>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "plate/tiff_writer.hpp"
#include "qrplate/error.hpp"
#include "sim/byte_samples.hpp"
#include "sim/scan_io.hpp"

namespace {

using qrplate::sim::gray_image;
using qrplate::sim::plate_image_reader;
using qrplate::sim::read_gray_image;
using qrplate::sim::write_contact_sheet;
using qrplate::sim::write_gray_tiff;

// ctest runs test cases as parallel processes: the pid keeps their files apart. The files go away
// when the test ends, with any ".tmp" sibling.
class temp_file {
 public:
  explicit temp_file(const std::string& name)
      : path_(::testing::TempDir() + "qrplate_scan_io_" + std::to_string(::getpid()) + "_" + name)
  {
    remove();
  }
  ~temp_file() { remove(); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  const std::string& str() const { return path_; }

 private:
  void remove() const
  {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    std::filesystem::remove(path_ + ".tmp", ec);
  }
  std::string path_;
};

bool exists(const std::string& path)
{
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

void write_bytes(const std::string& path, const std::string& bytes)
{
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_bytes(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

gray_image random_gray(std::uint32_t width, std::uint32_t height, int bits, std::mt19937_64& rng)
{
  gray_image img;
  img.width = width;
  img.height = height;
  img.bits = bits;
  std::uniform_int_distribution<std::uint32_t> value(0, bits == 8 ? 255 : 65535);
  img.pixels.resize(static_cast<std::size_t>(width) * height);
  for (auto& v : img.pixels) v = static_cast<std::uint16_t>(value(rng));
  return img;
}

// Rec. 709 luma as scan_io.hpp documents it, rounded half up.
std::uint16_t luma(std::uint32_t r, std::uint32_t g, std::uint32_t b)
{
  return static_cast<std::uint16_t>((2126 * r + 7152 * g + 722 * b + 5000) / 10000);
}

// Expects `call` to throw io_error whose message names `path` and contains `word`.
template <typename F>
void expect_io_error(F&& call, const std::string& path, const std::string& word)
{
  try {
    call();
    ADD_FAILURE() << "no io_error for " << path;
  } catch (const qrplate::io_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(word), std::string::npos) << "'" << word << "' missing from: " << what;
  }
}

// ---------------------------------------------------------------------------------------------
// Test files written with libtiff.

struct tiff_closer {
  void operator()(TIFF* tif) const { TIFFClose(tif); }
};
using tiff_ptr = std::unique_ptr<TIFF, tiff_closer>;

struct tiff_spec {
  std::uint32_t width = 0, height = 0;
  std::uint16_t bits = 8, spp = 1;
  std::uint16_t photometric = PHOTOMETRIC_MINISBLACK;
  std::uint16_t compression = COMPRESSION_NONE;
  std::uint16_t planar = PLANARCONFIG_CONTIG;
  std::uint16_t sample_format = SAMPLEFORMAT_UINT;
  std::uint16_t predictor = 0;           // 0: no Predictor tag
  std::uint32_t tile_w = 0, tile_h = 0;  // 0: stripped
  std::uint32_t rows_per_strip = 0;      // 0: libtiff's default
  const char* mode = "w";                // "w8" BigTIFF, "wb" big-endian
  bool alpha = false;                    // the last sample is unassociated alpha
};

// Sample c of pixel (x, y); 1- and 4-bit images take the low bits, 32-bit ones the value as a float.
using sample_fn = std::function<std::uint32_t(std::uint32_t x, std::uint32_t y, std::uint32_t c)>;

void put_sample(std::uint8_t* buf, std::size_t i, std::uint16_t bits, std::uint32_t v)
{
  if (bits == 1) {
    if (v & 1u) buf[i / 8] = static_cast<std::uint8_t>(buf[i / 8] | (0x80u >> (i % 8)));
  } else if (bits == 4) {
    buf[i / 2] = static_cast<std::uint8_t>(buf[i / 2] | ((v & 15u) << (i % 2 == 0 ? 4 : 0)));
  } else if (bits == 8) {
    buf[i] = static_cast<std::uint8_t>(v);
  } else if (bits == 16) {
    const auto s = static_cast<std::uint16_t>(v);
    std::memcpy(buf + 2 * i, &s, 2);
  } else {
    const auto f = static_cast<float>(v);
    std::memcpy(buf + 4 * i, &f, 4);
  }
}

void write_test_tiff(const std::string& path, const tiff_spec& spec, const sample_fn& sample)
{
  tiff_ptr tif(TIFFOpen(path.c_str(), spec.mode));
  ASSERT_TRUE(tif) << path;
  TIFF* t = tif.get();
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, spec.width);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, spec.height);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, spec.bits);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spec.spp);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, spec.photometric);
  TIFFSetField(t, TIFFTAG_COMPRESSION, spec.compression);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, spec.planar);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, spec.sample_format);
  if (spec.predictor != 0) TIFFSetField(t, TIFFTAG_PREDICTOR, spec.predictor);
  if (spec.alpha) {
    const std::uint16_t extra[1] = {EXTRASAMPLE_UNASSALPHA};
    TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, extra);
  }
  const bool tiled = spec.tile_w != 0;
  if (tiled) {
    TIFFSetField(t, TIFFTAG_TILEWIDTH, spec.tile_w);
    TIFFSetField(t, TIFFTAG_TILELENGTH, spec.tile_h);
  } else {
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, spec.rows_per_strip != 0 ? spec.rows_per_strip : TIFFDefaultStripSize(t, 0));
  }
  const std::uint32_t planes = spec.planar == PLANARCONFIG_SEPARATE ? spec.spp : 1;
  const std::uint32_t per_pixel = spec.planar == PLANARCONFIG_SEPARATE ? 1 : spec.spp;
  for (std::uint32_t p = 0; p < planes; ++p) {
    if (tiled) {
      std::vector<std::uint8_t> buf(static_cast<std::size_t>(TIFFTileSize(t)));
      const std::size_t row_bytes = (static_cast<std::size_t>(spec.tile_w) * per_pixel * spec.bits + 7) / 8;
      for (std::uint32_t ty = 0; ty < spec.height; ty += spec.tile_h) {
        for (std::uint32_t tx = 0; tx < spec.width; tx += spec.tile_w) {
          std::fill(buf.begin(), buf.end(), std::uint8_t{0});
          for (std::uint32_t y = ty; y < std::min(ty + spec.tile_h, spec.height); ++y)
            for (std::uint32_t x = tx; x < std::min(tx + spec.tile_w, spec.width); ++x)
              for (std::uint32_t k = 0; k < per_pixel; ++k)
                put_sample(buf.data() + (y - ty) * row_bytes, (x - tx) * per_pixel + k, spec.bits,
                           sample(x, y, planes > 1 ? p : k));
          ASSERT_GE(TIFFWriteTile(t, buf.data(), tx, ty, 0, static_cast<std::uint16_t>(p)), 0);
        }
      }
    } else {
      std::vector<std::uint8_t> buf(static_cast<std::size_t>(TIFFScanlineSize(t)));
      for (std::uint32_t y = 0; y < spec.height; ++y) {
        std::fill(buf.begin(), buf.end(), std::uint8_t{0});
        for (std::uint32_t x = 0; x < spec.width; ++x)
          for (std::uint32_t k = 0; k < per_pixel; ++k)
            put_sample(buf.data(), x * per_pixel + k, spec.bits, sample(x, y, planes > 1 ? p : k));
        ASSERT_EQ(TIFFWriteScanline(t, buf.data(), y, static_cast<std::uint16_t>(p)), 1);
      }
    }
  }
  ASSERT_EQ(TIFFWriteDirectory(t), 1);
}

// ---------------------------------------------------------------------------------------------
// Test files written with libpng: rows of `row_bytes` as PNG stores them (16-bit big-endian).
// libpng longjmps on error: this frame holds only plain data.

void on_png_error(png_structp png, png_const_charp)
{
  png_longjmp(png, 1);
}

bool write_png_plain(std::FILE* file, std::uint32_t width, std::uint32_t height, int depth, int color_type,
                     int interlace, const std::uint8_t* data, std::size_t row_bytes, const png_color* palette,
                     int palette_size)
{
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, on_png_error, nullptr);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, width, height, depth, color_type, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (palette != nullptr) png_set_PLTE(png, info, palette, palette_size);
  png_write_info(png, info);
  const int passes = png_set_interlace_handling(png);
  for (int pass = 0; pass < passes; ++pass)
    for (std::uint32_t y = 0; y < height; ++y) png_write_row(png, data + y * row_bytes);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

void write_test_png(const std::string& path, std::uint32_t width, std::uint32_t height, int depth, int color_type,
                    const std::vector<std::uint8_t>& data, int interlace = PNG_INTERLACE_NONE,
                    const std::vector<png_color>& palette = {})
{
  std::FILE* file = std::fopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  const bool ok = write_png_plain(file, width, height, depth, color_type, interlace, data.data(), data.size() / height,
                                  palette.empty() ? nullptr : palette.data(), static_cast<int>(palette.size()));
  ASSERT_EQ(std::fclose(file), 0);
  ASSERT_TRUE(ok) << path;
}

// Reads an 8-bit gray PNG with libpng: width, height and pixels.
struct png_gray {
  std::uint32_t width = 0, height = 0;
  int depth = 0, color_type = -1;
  std::vector<std::uint8_t> pixels;
};

bool read_png_plain(std::FILE* file, png_gray* out, std::uint8_t** buffer)
{
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, on_png_error, nullptr);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_init_io(png, file);
  png_read_info(png, info);
  out->width = png_get_image_width(png, info);
  out->height = png_get_image_height(png, info);
  out->depth = png_get_bit_depth(png, info);
  out->color_type = png_get_color_type(png, info);
  if (out->depth == 8 && out->color_type == PNG_COLOR_TYPE_GRAY) {
    *buffer = static_cast<std::uint8_t*>(std::malloc(static_cast<std::size_t>(out->width) * out->height));
    for (std::uint32_t y = 0; y < out->height; ++y) png_read_row(png, *buffer + y * out->width, nullptr);
  }
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

png_gray read_png_gray(const std::string& path)
{
  png_gray out;
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return out;
  std::uint8_t* buffer = nullptr;
  const bool ok = read_png_plain(file, &out, &buffer);
  std::fclose(file);
  if (ok && buffer != nullptr) out.pixels.assign(buffer, buffer + static_cast<std::size_t>(out.width) * out.height);
  std::free(buffer);
  return out;
}

// =============================================================================================
// write_gray_tiff

class gray_tiff_round_trip : public ::testing::TestWithParam<std::tuple<int, bool, std::uint32_t, std::uint32_t>> {};

TEST_P(gray_tiff_round_trip, read_back_by_us_and_by_libtiff)
{
  const auto [bits, deflate, width, height] = GetParam();
  const std::uint64_t seed = 1000003u * static_cast<std::uint64_t>(bits) + 7919u * width + height + (deflate ? 1 : 0);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const gray_image img = random_gray(width, height, bits, rng);
  temp_file file("round_trip.tif");
  write_gray_tiff(file.str(), img, deflate);
  EXPECT_FALSE(exists(file.str() + ".tmp"));

  const gray_image back = read_gray_image(file.str());
  EXPECT_EQ(back.width, width);
  EXPECT_EQ(back.height, height);
  EXPECT_EQ(back.bits, bits);
  EXPECT_TRUE(back.pixels == img.pixels);

  tiff_ptr tif(TIFFOpen(file.str().c_str(), "r"));
  ASSERT_TRUE(tif);
  TIFF* t = tif.get();
  std::uint32_t w = 0, h = 0, rows_per_strip = 0;
  std::uint16_t b = 0, spp = 0, photometric = 99, compression = 0, planar = 0, format = 0;
  ASSERT_EQ(TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w), 1);
  ASSERT_EQ(TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h), 1);
  ASSERT_EQ(TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &b), 1);
  ASSERT_EQ(TIFFGetField(t, TIFFTAG_SAMPLESPERPIXEL, &spp), 1);
  ASSERT_EQ(TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photometric), 1);
  ASSERT_EQ(TIFFGetField(t, TIFFTAG_COMPRESSION, &compression), 1);
  ASSERT_EQ(TIFFGetField(t, TIFFTAG_ROWSPERSTRIP, &rows_per_strip), 1);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &format);
  EXPECT_EQ(w, width);
  EXPECT_EQ(h, height);
  EXPECT_EQ(b, bits);
  EXPECT_EQ(spp, 1);
  EXPECT_EQ(photometric, PHOTOMETRIC_MINISBLACK);
  EXPECT_EQ(compression, deflate ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE);
  EXPECT_EQ(planar, PLANARCONFIG_CONTIG);
  EXPECT_EQ(format, SAMPLEFORMAT_UINT);
  EXPECT_FALSE(TIFFIsTiled(t));
  EXPECT_FALSE(TIFFIsBigTIFF(t));
  const std::uint64_t row_bytes = static_cast<std::uint64_t>(width) * (bits / 8);
  EXPECT_GE(rows_per_strip, 1u);
  EXPECT_TRUE(rows_per_strip == 1 || rows_per_strip * row_bytes <= 65536) << rows_per_strip;
  EXPECT_TRUE(rows_per_strip >= height || (rows_per_strip + 1) * row_bytes > 65536) << rows_per_strip;

  std::vector<std::uint8_t> line(static_cast<std::size_t>(TIFFScanlineSize(t)));
  std::size_t mismatches = 0;
  for (std::uint32_t y = 0; y < height; ++y) {
    ASSERT_EQ(TIFFReadScanline(t, line.data(), y, 0), 1);
    for (std::uint32_t x = 0; x < width; ++x) {
      std::uint16_t v = 0;
      if (bits == 8) {
        v = line[x];
      } else {
        std::memcpy(&v, line.data() + 2 * x, 2);
      }
      mismatches += v != img.pixels[static_cast<std::size_t>(y) * width + x];
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

INSTANTIATE_TEST_SUITE_P(sizes, gray_tiff_round_trip,
                         ::testing::Combine(::testing::Values(8, 16), ::testing::Bool(),
                                            ::testing::Values(1u, 37u, 1025u), ::testing::Values(1u, 65u)));

TEST(write_gray_tiff, replaces_an_existing_file_whole)
{
  std::mt19937_64 rng(11);
  temp_file file("replace.tif");
  write_bytes(file.str(), "not a tiff at all");
  const gray_image img = random_gray(33, 17, 16, rng);
  write_gray_tiff(file.str(), img);
  EXPECT_TRUE(read_gray_image(file.str()).pixels == img.pixels);
  EXPECT_FALSE(exists(file.str() + ".tmp"));
}

TEST(write_gray_tiff, unwritable_path_is_an_io_error_and_leaves_nothing)
{
  std::mt19937_64 rng(12);
  const std::string path = ::testing::TempDir() + "qrplate_no_such_dir_" + std::to_string(::getpid()) + "/a.tif";
  expect_io_error([&] { write_gray_tiff(path, random_gray(8, 8, 8, rng)); }, path, "cannot");
  EXPECT_FALSE(exists(path));
}

TEST(write_gray_tiff, rejects_images_that_break_the_contract)
{
  temp_file file("bad.tif");
  gray_image img;
  img.width = 4;
  img.height = 2;
  img.bits = 12;
  img.pixels.assign(8, 0);
  EXPECT_THROW(write_gray_tiff(file.str(), img), qrplate::invalid_argument);
  img.bits = 8;
  img.pixels.assign(7, 0);
  EXPECT_THROW(write_gray_tiff(file.str(), img), qrplate::invalid_argument);
  img.pixels.assign(8, 0);
  img.pixels[5] = 256;
  EXPECT_THROW(write_gray_tiff(file.str(), img), qrplate::invalid_argument);
  img.width = 0;
  img.pixels.clear();
  EXPECT_THROW(write_gray_tiff(file.str(), img), qrplate::invalid_argument);
  EXPECT_FALSE(exists(file.str()));
}

// =============================================================================================
// read_gray_image: TIFF

TEST(read_gray_tiff, min_is_white_reads_as_min_is_black)
{
  for (const std::uint16_t bits : {std::uint16_t{8}, std::uint16_t{16}}) {
    SCOPED_TRACE(bits);
    temp_file file("miniswhite.tif");
    tiff_spec spec;
    spec.width = 29;
    spec.height = 11;
    spec.bits = bits;
    spec.photometric = PHOTOMETRIC_MINISWHITE;
    spec.rows_per_strip = 3;
    auto value = [&](std::uint32_t x, std::uint32_t y, std::uint32_t) {
      return (x * 977u + y * 131u) % (bits == 8 ? 256u : 65536u);
    };
    write_test_tiff(file.str(), spec, value);
    const gray_image img = read_gray_image(file.str());
    ASSERT_EQ(img.width, 29u);
    ASSERT_EQ(img.height, 11u);
    EXPECT_EQ(img.bits, bits);
    const std::uint32_t top = bits == 8 ? 255 : 65535;
    for (std::uint32_t y = 0; y < 11; ++y)
      for (std::uint32_t x = 0; x < 29; ++x) ASSERT_EQ(img.at(x, y), top - value(x, y, 0)) << x << "," << y;
  }
}

TEST(read_gray_tiff, tiled_big_endian_lzw_bigtiff)
{
  temp_file file("tiled16.tif");
  tiff_spec spec;
  spec.width = 70;  // not a multiple of the tile width: edge tiles are partial
  spec.height = 40;
  spec.bits = 16;
  spec.tile_w = 32;
  spec.tile_h = 16;
  spec.compression = COMPRESSION_LZW;
  spec.mode = "w8b";
  std::mt19937_64 rng(21);
  const gray_image src = random_gray(70, 40, 16, rng);
  write_test_tiff(file.str(), spec, [&](std::uint32_t x, std::uint32_t y, std::uint32_t) { return src.at(x, y); });
  {
    tiff_ptr tif(TIFFOpen(file.str().c_str(), "r"));
    ASSERT_TRUE(tif);
    ASSERT_TRUE(TIFFIsBigTIFF(tif.get()));
    ASSERT_TRUE(TIFFIsByteSwapped(tif.get()));  // big-endian file on this little-endian host
  }
  const gray_image img = read_gray_image(file.str());
  EXPECT_EQ(img.bits, 16);
  EXPECT_EQ(img.width, 70u);
  EXPECT_EQ(img.height, 40u);
  EXPECT_TRUE(img.pixels == src.pixels);
}

// Deflate strips are read by a fast path of their own (inflated without libtiff, the predictor
// undone by scan_io); every variant it takes, and the ones it leaves to libtiff (big-endian
// 16-bit), must give the pixels written.
TEST(read_gray_tiff, deflate_strips_with_and_without_predictor)
{
  std::mt19937_64 rng(5);
  for (const std::uint16_t bits : {std::uint16_t{8}, std::uint16_t{16}}) {
    for (const std::uint16_t compression : {std::uint16_t{COMPRESSION_ADOBE_DEFLATE}, std::uint16_t{COMPRESSION_DEFLATE}}) {
      for (const std::uint16_t predictor : {std::uint16_t{0}, std::uint16_t{PREDICTOR_NONE}, std::uint16_t{PREDICTOR_HORIZONTAL}}) {
        for (const char* mode : {"w", "wb"}) {
          for (const std::uint32_t rows_per_strip : {5u, 23u}) {
            SCOPED_TRACE(::testing::Message() << bits << " bit, compression " << compression << ", predictor "
                                              << predictor << ", mode " << mode << ", " << rows_per_strip
                                              << " rows per strip");
            temp_file file("deflate.tif");
            tiff_spec spec;
            spec.width = 37;  // odd: rows of 8-bit samples are not word-aligned
            spec.height = 23;  // with 5 rows per strip, the last strip is short
            spec.bits = bits;
            spec.compression = compression;
            spec.predictor = predictor;
            spec.rows_per_strip = rows_per_strip;
            spec.mode = mode;
            // Smooth rows with noise: the predictor's differences wrap around both ways.
            gray_image src = random_gray(37, 23, bits, rng);
            for (std::size_t i = 1; i < src.pixels.size(); i += 2) src.pixels[i] = src.pixels[i - 1];
            write_test_tiff(file.str(), spec,
                            [&](std::uint32_t x, std::uint32_t y, std::uint32_t) { return src.at(x, y); });
            const gray_image img = read_gray_image(file.str());
            EXPECT_EQ(img.bits, bits);
            ASSERT_EQ(img.width, 37u);
            ASSERT_EQ(img.height, 23u);
            EXPECT_TRUE(img.pixels == src.pixels);
            // Into recycled storage of the right size (the scan reader's case): the same pixels.
            const gray_image again = read_gray_image(file.str(), std::vector<std::uint16_t>(37 * 23, 7));
            EXPECT_TRUE(again.pixels == src.pixels);
          }
        }
      }
    }
  }
}

// The predictor's rows sixteen bytes (eight words) at a time against the plain running sums, on
// random rows of every width up to 70 and a few long ones (block boundaries, tails of every
// length, sums that wrap): the same samples, and with write_back the same bytes left in the row.
TEST(byte_samples, fast_rows_are_the_references)
{
  std::mt19937_64 rng(11);
  std::vector<std::size_t> widths;
  for (std::size_t w = 0; w <= 70; ++w) widths.push_back(w);
  for (std::size_t w : {1023u, 1024u, 1025u, 4099u}) widths.push_back(w);
  for (const std::size_t width : widths) {
    for (const bool predictor : {false, true}) {
      for (const bool write_back : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "width " << width << (predictor ? ", predictor" : "")
                                          << (write_back ? ", write back" : ""));
        std::vector<std::uint8_t> bytes(width);
        for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
        std::vector<std::uint8_t> want_bytes = bytes, got_bytes = bytes;
        std::vector<std::uint16_t> want(width + 1, 0xdead), got(width + 1, 0xdead);
        qrplate::sim::row_bytes_to_samples_reference(want_bytes.data(), want.data(), width, predictor, write_back);
        qrplate::sim::row_bytes_to_samples(got_bytes.data(), got.data(), width, predictor, write_back);
        EXPECT_EQ(got, want);  // the guard past the row included
        EXPECT_EQ(got_bytes, want_bytes);
      }
    }
    std::vector<std::uint16_t> words(width);
    for (auto& w : words) w = static_cast<std::uint16_t>(rng());
    std::vector<std::uint16_t> want = words, got = words;
    qrplate::sim::undo_row_predictor_reference(want.data(), width);
    qrplate::sim::undo_row_predictor(got.data(), width);
    EXPECT_EQ(got, want) << "16-bit, width " << width;
  }
  // The plain running sum, spelled out once: 200 + 100 wraps to 44.
  std::uint8_t row[3] = {200, 100, 1};
  std::uint16_t out[3];
  qrplate::sim::row_bytes_to_samples(row, out, 3, true, false);
  EXPECT_EQ(out[0], 200);
  EXPECT_EQ(out[1], 44);
  EXPECT_EQ(out[2], 45);
}

// keep_bytes (what the GPU passes ask for): an 8-bit MinIsBlack gray TIFF's samples come as bytes
// too, equal to its pixels, whichever way the file is read (the deflate fast path with and without
// the predictor, raw strips, tiles through libtiff with partial edge tiles); a 16-bit or MinIsWhite
// file, or a read without keep_bytes, leaves them empty.
TEST(read_gray_tiff, keep_bytes_gives_eight_bit_samples_as_bytes)
{
  std::mt19937_64 rng(9);
  struct variant {
    std::uint16_t bits, compression, predictor, photometric;
    std::uint32_t tile_w, tile_h;
    bool bytes_expected;
  };
  const variant variants[] = {
      {8, COMPRESSION_ADOBE_DEFLATE, PREDICTOR_HORIZONTAL, PHOTOMETRIC_MINISBLACK, 0, 0, true},
      {8, COMPRESSION_ADOBE_DEFLATE, PREDICTOR_NONE, PHOTOMETRIC_MINISBLACK, 0, 0, true},
      {8, COMPRESSION_NONE, PREDICTOR_NONE, PHOTOMETRIC_MINISBLACK, 0, 0, true},
      {8, COMPRESSION_LZW, PREDICTOR_NONE, PHOTOMETRIC_MINISBLACK, 32, 16, true},
      {8, COMPRESSION_ADOBE_DEFLATE, PREDICTOR_HORIZONTAL, PHOTOMETRIC_MINISWHITE, 0, 0, false},
      {16, COMPRESSION_ADOBE_DEFLATE, PREDICTOR_HORIZONTAL, PHOTOMETRIC_MINISBLACK, 0, 0, false},
  };
  for (const variant& v : variants) {
    SCOPED_TRACE(::testing::Message() << v.bits << " bit, compression " << v.compression << ", predictor "
                                      << v.predictor << ", photometric " << v.photometric << ", tiles " << v.tile_w);
    temp_file file("keep_bytes.tif");
    tiff_spec spec;
    spec.width = 70;  // not a multiple of the tile width, nor of a word
    spec.height = 23;
    spec.bits = v.bits;
    spec.compression = v.compression;
    spec.predictor = v.predictor;
    spec.photometric = v.photometric;
    spec.rows_per_strip = 5;
    spec.tile_w = v.tile_w;
    spec.tile_h = v.tile_h;
    const gray_image src = random_gray(70, 23, v.bits, rng);
    write_test_tiff(file.str(), spec, [&](std::uint32_t x, std::uint32_t y, std::uint32_t) { return src.at(x, y); });
    const gray_image plain = read_gray_image(file.str(), {});
    EXPECT_TRUE(plain.bytes.empty());
    // Into recycled buffers (junk, the byte buffer larger than needed): the scan reader's case.
    qrplate::host_array<std::uint8_t> junk_bytes;
    junk_bytes.resize(5000);
    std::fill_n(junk_bytes.data(), junk_bytes.size(), std::uint8_t{0xee});
    const gray_image img =
        read_gray_image(file.str(), std::vector<std::uint16_t>(70 * 23, 7), true, std::move(junk_bytes));
    EXPECT_TRUE(img.pixels == plain.pixels);
    if (!v.bytes_expected) {
      EXPECT_TRUE(img.bytes.empty());
      continue;
    }
    EXPECT_TRUE(img.pixels == src.pixels);
    ASSERT_EQ(img.bytes.size(), src.pixels.size());
    for (std::size_t i = 0; i < src.pixels.size(); ++i) ASSERT_EQ(img.bytes[i], src.pixels[i]) << i;
  }
}

TEST(read_gray_tiff, corrupt_deflate_strip_is_an_io_error)
{
  temp_file file("corrupt_deflate.tif");
  tiff_spec spec;
  spec.width = 300;
  spec.height = 40;
  spec.bits = 16;
  spec.compression = COMPRESSION_ADOBE_DEFLATE;
  spec.predictor = PREDICTOR_HORIZONTAL;
  spec.rows_per_strip = 40;
  std::mt19937_64 rng(6);
  const gray_image src = random_gray(300, 40, 16, rng);
  write_test_tiff(file.str(), spec, [&](std::uint32_t x, std::uint32_t y, std::uint32_t) { return src.at(x, y); });
  // libtiff writes the strip right after the 8-byte header: scribble over the middle of it.
  std::string bytes = read_bytes(file.str());
  ASSERT_GT(bytes.size(), 20000u);
  for (std::size_t i = 10000; i < 10064; ++i) bytes[i] = static_cast<char>(0xff);
  write_bytes(file.str(), bytes);
  expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "strip");
}

TEST(read_gray_tiff, rgb_becomes_luminance)
{
  struct variant {
    std::uint16_t bits, planar;
    bool tiled;
  };
  for (const variant v : {variant{8, PLANARCONFIG_CONTIG, false}, variant{16, PLANARCONFIG_SEPARATE, false},
                          variant{8, PLANARCONFIG_SEPARATE, true}}) {
    SCOPED_TRACE(std::to_string(v.bits) + " bit, planar " + std::to_string(v.planar));
    temp_file file("rgb.tif");
    tiff_spec spec;
    spec.width = 23;
    spec.height = 19;
    spec.bits = v.bits;
    spec.spp = 3;
    spec.photometric = PHOTOMETRIC_RGB;
    spec.planar = v.planar;
    spec.rows_per_strip = 4;
    if (v.tiled) spec.tile_w = spec.tile_h = 16;
    spec.compression = COMPRESSION_ADOBE_DEFLATE;
    std::mt19937_64 rng(31 + v.bits);
    const std::uint32_t top = v.bits == 8 ? 255 : 65535;
    std::vector<std::uint32_t> rgb(23 * 19 * 3);
    for (auto& s : rgb) s = static_cast<std::uint32_t>(rng() % (top + 1));
    write_test_tiff(file.str(), spec,
                    [&](std::uint32_t x, std::uint32_t y, std::uint32_t c) { return rgb[(y * 23 + x) * 3 + c]; });
    const gray_image img = read_gray_image(file.str());
    EXPECT_EQ(img.bits, v.bits);
    for (std::uint32_t i = 0; i < 23 * 19; ++i)
      ASSERT_EQ(img.pixels[i], luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2])) << i;
  }
}

TEST(read_gray_tiff, rejects_images_that_are_not_gray_scans)
{
  {  // a plate: 1 bit per pixel
    temp_file file("bilevel.tif");
    qrplate::plate::tiff_options options;
    options.tile_width = options.tile_height = 16;
    qrplate::plate::tiled_bilevel_writer writer(file.str(), 20, 3, options);
    const std::vector<std::uint64_t> rows(3, 0x5555u);
    writer.append_rows(rows.data(), 3, 1);
    writer.finish();
    expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "1-bit");
  }
  {  // RGB with alpha
    temp_file file("rgba.tif");
    tiff_spec spec;
    spec.width = spec.height = 5;
    spec.spp = 4;
    spec.photometric = PHOTOMETRIC_RGB;
    spec.alpha = true;
    write_test_tiff(file.str(), spec, [](std::uint32_t, std::uint32_t, std::uint32_t c) { return c * 60; });
    expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "alpha");
  }
  {  // gray with alpha
    temp_file file("graya.tif");
    tiff_spec spec;
    spec.width = spec.height = 5;
    spec.spp = 2;
    spec.alpha = true;
    write_test_tiff(file.str(), spec, [](std::uint32_t, std::uint32_t, std::uint32_t c) { return c * 60; });
    expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "alpha");
  }
  {  // floating point samples
    temp_file file("float.tif");
    tiff_spec spec;
    spec.width = spec.height = 5;
    spec.bits = 32;
    spec.sample_format = SAMPLEFORMAT_IEEEFP;
    write_test_tiff(file.str(), spec, [](std::uint32_t x, std::uint32_t, std::uint32_t) { return x; });
    expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "floating point");
  }
  {  // 4-bit gray
    temp_file file("gray4.tif");
    tiff_spec spec;
    spec.width = spec.height = 6;
    spec.bits = 4;
    write_test_tiff(file.str(), spec, [](std::uint32_t, std::uint32_t, std::uint32_t) { return 0u; });
    expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "4 bits");
  }
  {  // a TIFF cut short: the header promises strips the file does not hold
    temp_file file("cut.tif");
    std::mt19937_64 rng(41);
    write_gray_tiff(file.str(), random_gray(300, 300, 8, rng), false);
    const std::string bytes = read_bytes(file.str());
    write_bytes(file.str(), bytes.substr(0, 2000));
    EXPECT_THROW(read_gray_image(file.str()), qrplate::io_error);
  }
}

// =============================================================================================
// read_gray_image: PNG

TEST(read_gray_png, gray_8_and_16_bit_interlaced_or_not)
{
  std::mt19937_64 rng(51);
  for (const int depth : {8, 16}) {
    for (const int interlace : {PNG_INTERLACE_NONE, PNG_INTERLACE_ADAM7}) {
      SCOPED_TRACE(std::to_string(depth) + " bit, interlace " + std::to_string(interlace));
      temp_file file("gray.png");
      const gray_image src = random_gray(27, 14, depth, rng);
      std::vector<std::uint8_t> data;
      for (const std::uint16_t v : src.pixels) {
        if (depth == 16) data.push_back(static_cast<std::uint8_t>(v >> 8));
        data.push_back(static_cast<std::uint8_t>(v));
      }
      write_test_png(file.str(), 27, 14, depth, PNG_COLOR_TYPE_GRAY, data, interlace);
      const gray_image img = read_gray_image(file.str());
      EXPECT_EQ(img.width, 27u);
      EXPECT_EQ(img.height, 14u);
      EXPECT_EQ(img.bits, depth);
      EXPECT_TRUE(img.pixels == src.pixels);
    }
  }
}

TEST(read_gray_png, rgb_and_palette_become_luminance)
{
  std::mt19937_64 rng(52);
  {
    temp_file file("rgb16.png");
    std::vector<std::uint8_t> data(9 * 7 * 6);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    write_test_png(file.str(), 9, 7, 16, PNG_COLOR_TYPE_RGB, data);
    const gray_image img = read_gray_image(file.str());
    EXPECT_EQ(img.bits, 16);
    auto s = [&](std::size_t i) { return (std::uint32_t{data[2 * i]} << 8) | data[2 * i + 1]; };
    for (std::size_t i = 0; i < 63; ++i) ASSERT_EQ(img.pixels[i], luma(s(3 * i), s(3 * i + 1), s(3 * i + 2))) << i;
  }
  {  // 4-bit palette: two indices a byte, high nibble first
    temp_file file("palette.png");
    std::vector<png_color> palette(16);
    for (auto& c : palette) {
      c.red = static_cast<png_byte>(rng());
      c.green = static_cast<png_byte>(rng());
      c.blue = static_cast<png_byte>(rng());
    }
    const std::uint32_t w = 11, h = 5;
    std::vector<std::uint8_t> index(w * h);
    for (auto& i : index) i = static_cast<std::uint8_t>(rng() % 16);
    const std::size_t row_bytes = (w + 1) / 2;
    std::vector<std::uint8_t> data(row_bytes * h, 0);
    for (std::uint32_t y = 0; y < h; ++y)
      for (std::uint32_t x = 0; x < w; ++x)
        data[y * row_bytes + x / 2] |= static_cast<std::uint8_t>(index[y * w + x] << (x % 2 == 0 ? 4 : 0));
    write_test_png(file.str(), w, h, 4, PNG_COLOR_TYPE_PALETTE, data, PNG_INTERLACE_NONE, palette);
    const gray_image img = read_gray_image(file.str());
    EXPECT_EQ(img.bits, 8);
    for (std::uint32_t i = 0; i < w * h; ++i) {
      const png_color& c = palette[index[i]];
      ASSERT_EQ(img.pixels[i], luma(c.red, c.green, c.blue)) << i;
    }
  }
}

TEST(read_gray_png, bilevel_is_scaled_to_eight_bits)
{
  temp_file file("bilevel.png");
  write_test_png(file.str(), 16, 2, 1, PNG_COLOR_TYPE_GRAY, std::vector<std::uint8_t>(2 * 2, 0xA5));
  const gray_image img = read_gray_image(file.str());
  ASSERT_EQ(img.width, 16u);
  EXPECT_EQ(img.bits, 8);
  // 0xA5 = 1010 0101, most significant bit first: white, black, white, black, black, white, ...
  const int expect[8] = {255, 0, 255, 0, 0, 255, 0, 255};
  for (std::uint32_t y = 0; y < 2; ++y)
    for (std::uint32_t x = 0; x < 16; ++x) ASSERT_EQ(img.at(x, y), expect[x % 8]) << x << "," << y;
}

TEST(read_gray_png, rejects_alpha_and_truncated_files)
{
  {
    temp_file file("rgba.png");
    write_test_png(file.str(), 4, 4, 8, PNG_COLOR_TYPE_RGB_ALPHA, std::vector<std::uint8_t>(4 * 4 * 4, 200));
    expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "alpha");
  }
  {
    temp_file file("cut.png");
    std::vector<std::uint8_t> data(200 * 100);
    std::mt19937_64 rng(53);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());  // incompressible: the IDAT is large
    write_test_png(file.str(), 200, 100, 8, PNG_COLOR_TYPE_GRAY, data);
    const std::string bytes = read_bytes(file.str());
    write_bytes(file.str(), bytes.substr(0, bytes.size() / 2));
    expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "PNG");
  }
}

// =============================================================================================
// read_gray_image: PGM

TEST(read_gray_pgm, eight_bit_with_comments)
{
  temp_file file("eight.pgm");
  const std::string pixels = {'\x00', '\x01', '\x7f', '\x80', '\xfe', '\xff'};
  write_bytes(file.str(), "P5\n# made by hand\n3 # width\n2\n255\n" + pixels);
  const gray_image img = read_gray_image(file.str());
  EXPECT_EQ(img.width, 3u);
  EXPECT_EQ(img.height, 2u);
  EXPECT_EQ(img.bits, 8);
  EXPECT_EQ(img.pixels, (std::vector<std::uint16_t>{0, 1, 127, 128, 254, 255}));
}

TEST(read_gray_pgm, sixteen_bit_is_big_endian)
{
  temp_file file("sixteen.pgm");
  const std::string pixels = {'\x01', '\x02', '\xff', '\x00', '\x00', '\x03', '\x03', '\xe8'};
  write_bytes(file.str(), "P5 2 2 65535 " + pixels);
  gray_image img = read_gray_image(file.str());
  EXPECT_EQ(img.bits, 16);
  EXPECT_EQ(img.pixels, (std::vector<std::uint16_t>{0x0102, 0xff00, 0x0003, 0x03e8}));

  // maxval 1000 is 16 bit too; samples keep their values (1000 = 0x03e8)
  write_bytes(file.str(),
              "P5\t2\r\n2\n1000\n" + std::string{'\x00', '\x00', '\x00', '\x03', '\x00', '\x03', '\x03', '\xe8'});
  img = read_gray_image(file.str());
  EXPECT_EQ(img.bits, 16);
  EXPECT_EQ(img.pixels, (std::vector<std::uint16_t>{0, 3, 3, 1000}));
}

TEST(read_gray_pgm, rejects_broken_files)
{
  temp_file file("broken.pgm");
  write_bytes(file.str(), "P5\n4 4\n255\n" + std::string(10, '\x10'));
  expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "truncated");
  write_bytes(file.str(), "P5\n2 1\n100\n" + std::string{'\x10', '\x65'});  // 101 > maxval 100
  expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "maxval");
  write_bytes(file.str(), "P5\n2 x\n255\n");
  expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "height");
  write_bytes(file.str(), "P5\n2 2\n70000\n");
  expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "maxval");
  write_bytes(file.str(), "P2\n2 1\n255\n1 2\n");
  expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "P2");
}

// =============================================================================================
// read_gray_image: format by signature

TEST(read_gray_image, format_comes_from_the_signature_not_the_name)
{
  std::mt19937_64 rng(61);
  const gray_image src = random_gray(10, 6, 8, rng);
  {
    temp_file file("really_a_png.tif");
    std::vector<std::uint8_t> data(src.pixels.begin(), src.pixels.end());
    write_test_png(file.str(), 10, 6, 8, PNG_COLOR_TYPE_GRAY, data);
    EXPECT_TRUE(read_gray_image(file.str()).pixels == src.pixels);
  }
  {
    temp_file file("really_a_tiff.png");
    write_gray_tiff(file.str(), src);
    EXPECT_TRUE(read_gray_image(file.str()).pixels == src.pixels);
  }
  {
    temp_file file("really_a_pgm.png");
    write_bytes(file.str(), "P5 10 6 255\n" + std::string(src.pixels.begin(), src.pixels.end()));
    EXPECT_TRUE(read_gray_image(file.str()).pixels == src.pixels);
  }
}

TEST(read_gray_image, unknown_empty_and_missing_files_are_io_errors)
{
  temp_file file("text.tif");
  write_bytes(file.str(), "hello, this is text\n");
  expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "not a TIFF, PNG or PGM");
  write_bytes(file.str(), "");
  expect_io_error([&] { read_gray_image(file.str()); }, file.str(), "empty");
  temp_file missing("missing.tif");
  expect_io_error([&] { read_gray_image(missing.str()); }, missing.str(), "No such file");
  const std::string dir = ::testing::TempDir();
  expect_io_error([&] { read_gray_image(dir); }, dir, "Is a directory");
}

// =============================================================================================
// plate_image_reader

// A random bit image in the qrplate layout.
struct bit_image {
  std::uint64_t width = 0, height = 0;
  std::size_t stride = 0;
  std::vector<std::uint64_t> words;

  bool dark(std::int64_t x, std::int64_t y) const
  {
    if (x < 0 || y < 0 || static_cast<std::uint64_t>(x) >= width || static_cast<std::uint64_t>(y) >= height)
      return false;
    return (words[static_cast<std::size_t>(y) * stride + static_cast<std::size_t>(x) / 64] >> (x % 64)) & 1u;
  }
};

bit_image random_bits(std::uint64_t width, std::uint64_t height, std::mt19937_64& rng)
{
  bit_image img;
  img.width = width;
  img.height = height;
  img.stride = static_cast<std::size_t>((width + 63) / 64);
  img.words.resize(img.stride * height);
  for (auto& w : img.words) w = rng();
  return img;
}

// Reads `count` random windows, some reaching past every edge, and compares every bit, including
// the bits past the window width, which must be 0.
void check_random_windows(plate_image_reader& reader, const bit_image& img, std::mt19937_64& rng, int count,
                          std::uint64_t max_w, std::uint64_t max_h)
{
  const auto W = static_cast<std::int64_t>(img.width), H = static_cast<std::int64_t>(img.height);
  std::uniform_int_distribution<std::int64_t> x_dist(-static_cast<std::int64_t>(max_w), W + 20);
  std::uniform_int_distribution<std::int64_t> y_dist(-static_cast<std::int64_t>(max_h), H + 20);
  std::uniform_int_distribution<std::uint64_t> w_dist(0, max_w), h_dist(0, max_h);
  std::vector<std::uint64_t> out;
  for (int n = 0; n < count; ++n) {
    const std::int64_t x0 = x_dist(rng), y0 = y_dist(rng);
    const std::uint64_t w = w_dist(rng), h = h_dist(rng);
    std::size_t stride = 12345;
    out.assign(3, ~std::uint64_t{0});  // stale contents must go
    reader.read_window(x0, y0, w, h, out, stride);
    ASSERT_EQ(stride, (w + 63) / 64);
    ASSERT_EQ(out.size(), stride * h);
    std::size_t wrong = 0;
    for (std::uint64_t i = 0; i < h; ++i) {
      for (std::uint64_t j = 0; j < 64 * stride; ++j) {
        const bool got = (out[i * stride + j / 64] >> (j % 64)) & 1u;
        const bool want = j < w && img.dark(x0 + static_cast<std::int64_t>(j), y0 + static_cast<std::int64_t>(i));
        wrong += got != want;
      }
    }
    ASSERT_EQ(wrong, 0u) << "window " << w << " x " << h << " at (" << x0 << ", " << y0 << ")";
  }
}

class plate_reader_tiled : public ::testing::TestWithParam<std::tuple<qrplate::plate::tiff_compression, std::size_t>> {
};

TEST_P(plate_reader_tiled, random_windows_match_the_source_bits)
{
  const auto [compression, cache_bytes] = GetParam();
  const std::uint64_t seed = 71 + static_cast<std::uint64_t>(compression) * 10 + (cache_bytes == 0 ? 1 : 0);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const bit_image img = random_bits(301, 177, rng);
  temp_file file("plate.tif");
  qrplate::plate::tiff_options options;
  options.tile_width = 32;
  options.tile_height = 48;
  options.compression = compression;
  qrplate::plate::tiled_bilevel_writer writer(file.str(), img.width, img.height, options);
  writer.append_rows(img.words.data(), img.height, img.stride);
  writer.finish();

  plate_image_reader reader(file.str(), cache_bytes);
  EXPECT_EQ(reader.width(), 301u);
  EXPECT_EQ(reader.height(), 177u);
  EXPECT_EQ(reader.path(), file.str());
  check_random_windows(reader, img, rng, 300, 200, 90);

  // The whole plate, and windows wholly outside it.
  std::vector<std::uint64_t> out;
  std::size_t stride = 0;
  reader.read_window(0, 0, 301, 177, out, stride);
  ASSERT_EQ(stride, 5u);
  for (std::uint64_t y = 0; y < 177; ++y)
    for (std::uint64_t x = 0; x < 301; ++x)
      ASSERT_EQ((out[y * stride + x / 64] >> (x % 64)) & 1u,
                img.dark(static_cast<std::int64_t>(x), static_cast<std::int64_t>(y)) ? 1u : 0u);
  for (const auto& [x0, y0] : {std::pair<std::int64_t, std::int64_t>{-500, 0}, {301, 10}, {0, 177}, {-64, -64}}) {
    reader.read_window(x0, y0, 64, 64, out, stride);
    EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint64_t v) { return v == 0; })) << x0 << "," << y0;
  }
  reader.read_window(5, 5, 0, 7, out, stride);
  EXPECT_EQ(stride, 0u);
  EXPECT_TRUE(out.empty());

  // The cache holds what its budget allows: 40 tiles of 48 rows x 1 word.
  EXPECT_EQ(reader.cached_tiles(), cache_bytes == 0 ? 1u : 40u);

  // A moved reader keeps working.
  plate_image_reader moved(std::move(reader));
  check_random_windows(moved, img, rng, 20, 100, 100);
}

INSTANTIATE_TEST_SUITE_P(compression_and_cache, plate_reader_tiled,
                         ::testing::Combine(::testing::Values(qrplate::plate::tiff_compression::none,
                                                              qrplate::plate::tiff_compression::deflate,
                                                              qrplate::plate::tiff_compression::ccitt_g4),
                                            ::testing::Values(std::size_t{0}, std::size_t{64} << 20)));

TEST(plate_reader, cache_stays_within_its_budget)
{
  std::mt19937_64 rng(75);
  const bit_image img = random_bits(200, 100, rng);
  temp_file file("cache_plate.tif");
  qrplate::plate::tiff_options options;
  options.tile_width = 64;
  options.tile_height = 16;  // a decoded tile: 16 rows x 1 word = 128 bytes
  qrplate::plate::tiled_bilevel_writer writer(file.str(), img.width, img.height, options);
  writer.append_rows(img.words.data(), img.height, img.stride);
  writer.finish();
  plate_image_reader reader(file.str(), 3 * 128 + 127);
  std::vector<std::uint64_t> out;
  std::size_t stride = 0;
  reader.read_window(0, 0, 200, 100, out, stride);  // touches all 4 x 7 tiles
  EXPECT_EQ(reader.cached_tiles(), 3u);
  check_random_windows(reader, img, rng, 100, 150, 50);
  EXPECT_LE(reader.cached_tiles(), 3u);
}

TEST(plate_reader, stripped_min_is_black_is_inverted)
{
  std::mt19937_64 rng(81);
  const bit_image img = random_bits(150, 90, rng);
  temp_file file("stripped_minisblack.tif");
  tiff_spec spec;
  spec.width = 150;
  spec.height = 90;
  spec.bits = 1;
  spec.photometric = PHOTOMETRIC_MINISBLACK;  // file bit 1 = white = not milled
  spec.rows_per_strip = 7;
  spec.compression = COMPRESSION_PACKBITS;
  write_test_tiff(file.str(), spec,
                  [&](std::uint32_t x, std::uint32_t y, std::uint32_t) { return img.dark(x, y) ? 0u : 1u; });
  plate_image_reader reader(file.str(), 0);
  EXPECT_EQ(reader.width(), 150u);
  EXPECT_EQ(reader.height(), 90u);
  check_random_windows(reader, img, rng, 200, 130, 60);
}

class plate_reader_stripped : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(plate_reader_stripped, windows_across_bands)
{
  // Rows of 5000 bytes: the reader caches bands of about 4 MiB (838 rows; 600 = two strips of
  // 300), so this plate spans several bands. With one strip of 2000 rows, bands start inside the
  // strip, which deflate can reach only by decoding from the strip's start.
  const std::uint32_t rows_per_strip = GetParam();
  std::mt19937_64 rng(82 + rows_per_strip);
  const bit_image img = random_bits(40000, 2000, rng);
  temp_file file("stripped_bands.tif");
  {
    tiff_ptr tif(TIFFOpen(file.str().c_str(), "w8"));
    ASSERT_TRUE(tif);
    TIFF* t = tif.get();
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 40000u);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 2000u);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 1);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rows_per_strip);
    std::vector<std::uint8_t> line(5000);
    for (std::uint32_t y = 0; y < 2000; ++y) {
      qrplate::plate::pack_row_msb_first_reference(img.words.data() + y * img.stride, 40000, line.data());
      ASSERT_EQ(TIFFWriteScanline(t, line.data(), y, 0), 1);
    }
    ASSERT_EQ(TIFFWriteDirectory(t), 1);
  }
  plate_image_reader reader(file.str(), std::size_t{8} << 20);  // two bands: the third evicts one
  EXPECT_EQ(reader.width(), 40000u);
  std::vector<std::uint64_t> out;
  std::size_t stride = 0;
  std::uniform_int_distribution<std::int64_t> x_dist(-100, 40000), y_dist(-50, 2000);
  for (int n = 0; n < 60; ++n) {
    const std::int64_t x0 = x_dist(rng), y0 = y_dist(rng);
    reader.read_window(x0, y0, 333, 97, out, stride);
    std::size_t wrong = 0;
    for (std::uint64_t i = 0; i < 97; ++i)
      for (std::uint64_t j = 0; j < 333; ++j)
        wrong += (((out[i * stride + j / 64] >> (j % 64)) & 1u) != 0) !=
                 img.dark(x0 + static_cast<std::int64_t>(j), y0 + static_cast<std::int64_t>(i));
    ASSERT_EQ(wrong, 0u) << "window at (" << x0 << ", " << y0 << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(rows_per_strip, plate_reader_stripped, ::testing::Values(300u, 2000u));

TEST(plate_reader, rejects_files_that_are_not_plates)
{
  std::mt19937_64 rng(91);
  {
    temp_file file("gray_plate.tif");
    write_gray_tiff(file.str(), random_gray(20, 20, 8, rng));
    expect_io_error([&] { plate_image_reader reader(file.str()); }, file.str(), "8 bits per sample");
  }
  {
    temp_file file("rgb_plate.tif");
    tiff_spec spec;
    spec.width = spec.height = 8;
    spec.bits = 1;
    spec.spp = 3;
    spec.photometric = PHOTOMETRIC_RGB;
    write_test_tiff(file.str(), spec, [](std::uint32_t, std::uint32_t, std::uint32_t) { return 1u; });
    expect_io_error([&] { plate_image_reader reader(file.str()); }, file.str(), "3 samples per pixel");
  }
  {
    temp_file file("plate.png");
    write_test_png(file.str(), 4, 4, 8, PNG_COLOR_TYPE_GRAY, std::vector<std::uint8_t>(16, 0));
    expect_io_error([&] { plate_image_reader reader(file.str()); }, file.str(), "cannot open plate image");
  }
  temp_file missing("missing_plate.tif");
  expect_io_error([&] { plate_image_reader reader(missing.str()); }, missing.str(), "cannot open plate image");
}

TEST(plate_reader, rejects_windows_beyond_64_bit_coordinates)
{
  temp_file file("small_plate.tif");
  qrplate::plate::tiff_options options;
  options.tile_width = options.tile_height = 16;
  qrplate::plate::tiled_bilevel_writer writer(file.str(), 16, 1, options);
  const std::uint64_t row = 0xffff;
  writer.append_rows(&row, 1, 1);
  writer.finish();
  plate_image_reader reader(file.str());
  std::vector<std::uint64_t> out;
  std::size_t stride = 0;
  EXPECT_THROW(reader.read_window(0, 0, std::uint64_t{1} << 63, 1, out, stride), qrplate::invalid_argument);
  EXPECT_THROW(reader.read_window(INT64_MAX, 0, 1, 1, out, stride), qrplate::invalid_argument);
  reader.read_window(-3, 0, 8, 1, out, stride);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], 0xf8u);  // modules 0..4 of the all-dark row land at bits 3..7
}

// =============================================================================================
// write_contact_sheet

TEST(contact_sheet, layout_downscaling_and_pixel_values)
{
  // A: 8-bit 100 x 60 with distinct rows; it fits, so it is copied as it is.
  gray_image a;
  a.width = 100;
  a.height = 60;
  a.bits = 8;
  a.pixels.resize(6000);
  for (std::uint32_t y = 0; y < 60; ++y)
    for (std::uint32_t x = 0; x < 100; ++x) a.pixels[y * 100 + x] = static_cast<std::uint16_t>((x + 3 * y) % 256);
  // B: 16-bit 1030 x 20, shrunk by 3 to 344 x 7. Constant over 3 x 3 blocks, values multiples of
  // 257 from 0 to 65535, so the stretch from min..max = 0..65535 gives block value / 257.
  gray_image b;
  b.width = 1030;
  b.height = 20;
  b.bits = 16;
  b.pixels.resize(1030 * 20);
  auto b_level = [](std::uint32_t bx, std::uint32_t by) { return (bx * 7 + by * 40) % 256; };
  for (std::uint32_t y = 0; y < 20; ++y)
    for (std::uint32_t x = 0; x < 1030; ++x)
      b.pixels[y * 1030 + x] = static_cast<std::uint16_t>(257 * b_level(x / 3, y / 3));
  b.pixels[0] = 0;
  b.pixels[1] = 65535;  // min and max: block (0, 0) then averages (0 + 65535 + 7 * 0) / 9
  // C: 8-bit 10 x 10, uniform 77; D: 16-bit uniform 1000 -> round(1000 / 257) = 4.
  gray_image c;
  c.width = c.height = 10;
  c.bits = 8;
  c.pixels.assign(100, 77);
  gray_image d;
  d.width = 5;
  d.height = 3;
  d.bits = 16;
  d.pixels.assign(15, 1000);

  temp_file file("sheet.png");
  write_contact_sheet(file.str(), {a, b, c, d}, 3, 512);
  EXPECT_FALSE(exists(file.str() + ".tmp"));
  const png_gray sheet = read_png_gray(file.str());
  // Cells are max(100, 344, 10, 5) x max(60, 7, 10, 3); 3 columns, 2 rows, 4-pixel gutters.
  ASSERT_EQ(sheet.width, 3u * 344 + 2 * 4);
  ASSERT_EQ(sheet.height, 2u * 60 + 4);
  ASSERT_EQ(sheet.depth, 8);
  ASSERT_EQ(sheet.color_type, PNG_COLOR_TYPE_GRAY);
  auto at = [&](std::uint32_t x, std::uint32_t y) {
    return sheet.pixels[static_cast<std::size_t>(y) * sheet.width + x];
  };

  for (std::uint32_t y = 0; y < 60; ++y)
    for (std::uint32_t x = 0; x < 100; ++x) ASSERT_EQ(at(x, y), (x + 3 * y) % 256) << "A " << x << "," << y;
  EXPECT_EQ(at(100, 0), 255);  // cell space A does not fill
  for (std::uint32_t y = 0; y < sheet.height; ++y) {
    for (std::uint32_t g = 344; g < 348; ++g) ASSERT_EQ(at(g, y), 255) << "gutter " << g << "," << y;
  }
  for (std::uint32_t x = 0; x < sheet.width; ++x) {
    for (std::uint32_t g = 60; g < 64; ++g) ASSERT_EQ(at(x, g), 255) << "gutter " << x << "," << g;
  }
  const std::uint32_t bx0 = 348;
  EXPECT_EQ(at(bx0, 0), 28);  // round(255 * 65535 / 9 / 65535) = round(28.33)
  for (std::uint32_t by = 0; by < 7; ++by)
    for (std::uint32_t bx = 0; bx < 344; ++bx)
      if (bx != 0 || by != 0) {
        ASSERT_EQ(at(bx0 + bx, by), b_level(bx, by)) << "B " << bx << "," << by;
      }
  EXPECT_EQ(at(bx0, 7), 255);  // below B in its cell
  const std::uint32_t cx0 = 2 * 348;
  EXPECT_EQ(at(cx0, 0), 77);
  EXPECT_EQ(at(cx0 + 9, 9), 77);
  EXPECT_EQ(at(cx0 + 10, 9), 255);
  EXPECT_EQ(at(0, 64), 4);  // D, second row
  EXPECT_EQ(at(4, 66), 4);
  EXPECT_EQ(at(5, 66), 255);
  EXPECT_EQ(at(348, 64), 255);  // empty cells of the last row
}

TEST(contact_sheet, area_average_rounds_half_up)
{
  // 8-bit 1024 x 2 at a side limit of 512: blocks of 2 x 2 = {10, 11, 11, 11} -> 10.75 -> 11,
  // {10, 10, 11, 11} -> 10.5 -> 11, {10, 10, 10, 11} -> 10.25 -> 10.
  gray_image img;
  img.width = 1024;
  img.height = 2;
  img.bits = 8;
  img.pixels.assign(2048, 10);
  img.pixels[1] = img.pixels[1024] = img.pixels[1025] = 11;  // block 0
  img.pixels[1024 + 2] = img.pixels[1024 + 3] = 11;          // block 1
  img.pixels[1024 + 5] = 11;                                 // block 2
  temp_file file("average.png");
  write_contact_sheet(file.str(), {img}, 3, 512);
  const png_gray sheet = read_png_gray(file.str());
  ASSERT_EQ(sheet.width, 512u);  // one tile: one column, no gutter
  ASSERT_EQ(sheet.height, 1u);
  EXPECT_EQ(sheet.pixels[0], 11);
  EXPECT_EQ(sheet.pixels[1], 11);
  EXPECT_EQ(sheet.pixels[2], 10);
  EXPECT_EQ(sheet.pixels[3], 10);
}

TEST(contact_sheet, sixteen_bit_is_stretched_from_its_min_to_its_max)
{
  gray_image img;
  img.width = 5;
  img.height = 1;
  img.bits = 16;
  img.pixels = {1000, 2000, 3000, 1500, 2004};  // 255 * (v - 1000) / 2000: 0, 127.5, 255, 63.75, 128.01
  temp_file file("stretch.png");
  write_contact_sheet(file.str(), {img});
  const png_gray sheet = read_png_gray(file.str());
  ASSERT_EQ(sheet.width, 5u);
  ASSERT_EQ(sheet.height, 1u);
  EXPECT_EQ(sheet.pixels, (std::vector<std::uint8_t>{0, 128, 255, 64, 128}));
}

TEST(contact_sheet, bad_arguments_and_unwritable_paths)
{
  std::mt19937_64 rng(101);
  const gray_image tile = random_gray(8, 8, 8, rng);
  temp_file file("bad_sheet.png");
  EXPECT_THROW(write_contact_sheet(file.str(), {}), qrplate::invalid_argument);
  EXPECT_THROW(write_contact_sheet(file.str(), {tile}, 0), qrplate::invalid_argument);
  EXPECT_THROW(write_contact_sheet(file.str(), {tile}, 3, 0), qrplate::invalid_argument);
  gray_image broken = tile;
  broken.pixels.pop_back();
  EXPECT_THROW(write_contact_sheet(file.str(), {tile, broken}), qrplate::invalid_argument);
  EXPECT_FALSE(exists(file.str()));
  const std::string path = ::testing::TempDir() + "qrplate_no_such_dir_" + std::to_string(::getpid()) + "/sheet.png";
  expect_io_error([&] { write_contact_sheet(path, {tile}); }, path, "cannot");
  EXPECT_FALSE(exists(path));
}

}  // namespace
