// The blind reader against symbols written by libqrencode, an encoder nobody here wrote: every
// version and level, grids of many codes in one image, scales from 1.5 to 12 pixels per module,
// rotations, light-on-dark, noise and blur; and bad images (tiny, uniform, random) that must give
// nothing, quickly, without crashing. Expected contents, versions and levels come from what was
// handed to libqrencode and what it reports back, never from the reader.
//
// Images are rendered here: each pixel is the coverage of dark modules over a 4x4 grid of
// sub-pixel points (what an optical or electron scan of a sharp print looks like), with the
// symbol rotated about its centre, then optionally blurred (Gaussian), noised (Gaussian, seeded)
// and inverted, and quantised to 8 bits. Payloads are seeded random bytes; the seed is printed
// with every failure (QRPLATE_BLIND_SEED reruns with another).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "blind/blind_reader.hpp"
#include "qrplate/error.hpp"
#include "qrplate/qr.hpp"
#include "qrplate/spec/versions.hpp"
#include "qrencode_support.hpp"
#include "sim/scan_io.hpp"

namespace {

using qrplate::ecc_level;
using qrplate::blind::read_codes;
using bytes = std::vector<std::uint8_t>;

constexpr double pi = 3.14159265358979323846;
constexpr ecc_level all_levels[] = {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H};

std::uint64_t test_seed()
{
  static const std::uint64_t seed = []() -> std::uint64_t {
    if (const char* text = std::getenv("QRPLATE_BLIND_SEED")) return std::strtoull(text, nullptr, 0);
    return 0xB11D'2024'5EEDull;
  }();
  return seed;
}

std::string seed_note() { return "QRPLATE_BLIND_SEED=" + std::to_string(test_seed()) + " (set it to reproduce)"; }

std::mt19937_64 case_rng(std::uint64_t tag)
{
  std::seed_seq seq{static_cast<std::uint32_t>(test_seed()), static_cast<std::uint32_t>(test_seed() >> 32),
                    static_cast<std::uint32_t>(tag), static_cast<std::uint32_t>(tag >> 32)};
  return std::mt19937_64(seq);
}

// ---------------------------------------------------------------------------------------------
// libqrencode

using qrplate::oracle::qrcode_ptr;
using qrplate::oracle::qrencode_level;

struct symbol {
  qrcode_ptr code;
  bytes payload;
  ecc_level ecc;
  int size() const { return code->width; }
  bool dark(int r, int c) const { return (code->data[r * code->width + c] & 1) != 0; }
};

// A byte-mode symbol of exactly `version` holding `length` random bytes (libqrencode's own
// choice of mask).
symbol make_symbol(std::mt19937_64& rng, int version, ecc_level ecc, int length)
{
  symbol s;
  s.ecc = ecc;
  s.payload.resize(static_cast<std::size_t>(length));
  for (auto& b : s.payload) b = static_cast<std::uint8_t>(rng());
  s.code.reset(QRcode_encodeData(length, s.payload.data(), version, qrencode_level(ecc)));
  if (!s.code) ADD_FAILURE() << "libqrencode refused v" << version << " length " << length;
  else if (s.code->version != version)
    ADD_FAILURE() << "libqrencode moved v" << version << " to v" << s.code->version << " (length " << length << ")";
  return s;
}

// Random length from 1 to the byte capacity of (version, ecc).
symbol random_symbol(std::mt19937_64& rng, int version, ecc_level ecc)
{
  const int cap = qrplate::max_byte_payload(version, ecc);
  std::uniform_int_distribution<int> len(1, cap);
  return make_symbol(rng, version, ecc, len(rng));
}

// ---------------------------------------------------------------------------------------------
// Rendering

struct placement {
  const symbol* s;
  double cx, cy;  // centre of the symbol in pixels
  double scale;   // pixels per module
  double angle;   // degrees, counter-clockwise as seen on screen (y down)
};

struct scene {
  int width, height;
  double dark = 40, light = 210;
  double blur_sigma = 0;   // pixels
  double noise_sigma = 0;  // grey levels
  bool inverted = false;
};

qrplate::sim::gray_image render(const scene& sc, const std::vector<placement>& items, std::mt19937_64& rng)
{
  const int w = sc.width, h = sc.height;
  std::vector<double> cover(static_cast<std::size_t>(w) * h, 0.0);
  constexpr int ss = 4;
  for (const placement& p : items) {
    const int n = p.s->size();
    const double half = n * p.scale / 2 * std::sqrt(2.0) + 2;
    const double ca = std::cos(p.angle * pi / 180), sa = std::sin(p.angle * pi / 180);
    const int x0 = std::max(0, static_cast<int>(p.cx - half)), x1 = std::min(w - 1, static_cast<int>(p.cx + half));
    const int y0 = std::max(0, static_cast<int>(p.cy - half)), y1 = std::min(h - 1, static_cast<int>(p.cy + half));
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        int hits = 0;
        for (int i = 0; i < ss; ++i)
          for (int j = 0; j < ss; ++j) {
            const double dx = x + (j + 0.5) / ss - p.cx, dy = y + (i + 0.5) / ss - p.cy;
            // Screen rotation by +angle (counter-clockwise with y down) undone.
            const double u = (ca * dx - sa * dy) / p.scale + n / 2.0;
            const double v = (sa * dx + ca * dy) / p.scale + n / 2.0;
            if (u < 0 || v < 0 || u >= n || v >= n) continue;
            if (p.s->dark(static_cast<int>(v), static_cast<int>(u))) ++hits;
          }
        cover[static_cast<std::size_t>(y) * w + x] += hits / double(ss * ss);
      }
  }
  std::vector<double> img(cover.size());
  for (std::size_t i = 0; i < cover.size(); ++i) img[i] = sc.light - std::min(1.0, cover[i]) * (sc.light - sc.dark);
  if (sc.blur_sigma > 0) {
    const int r = static_cast<int>(std::ceil(3 * sc.blur_sigma));
    std::vector<double> k(static_cast<std::size_t>(2 * r + 1));
    double sum = 0;
    for (int i = -r; i <= r; ++i) sum += k[static_cast<std::size_t>(i + r)] = std::exp(-i * i / (2 * sc.blur_sigma * sc.blur_sigma));
    for (auto& v : k) v /= sum;
    std::vector<double> tmp(img.size());
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        double a = 0;
        for (int i = -r; i <= r; ++i) a += k[static_cast<std::size_t>(i + r)] * img[static_cast<std::size_t>(y) * w + std::clamp(x + i, 0, w - 1)];
        tmp[static_cast<std::size_t>(y) * w + x] = a;
      }
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        double a = 0;
        for (int i = -r; i <= r; ++i) a += k[static_cast<std::size_t>(i + r)] * tmp[static_cast<std::size_t>(std::clamp(y + i, 0, h - 1)) * w + x];
        img[static_cast<std::size_t>(y) * w + x] = a;
      }
  }
  std::normal_distribution<double> noise(0, sc.noise_sigma > 0 ? sc.noise_sigma : 1);
  qrplate::sim::gray_image out;
  out.width = static_cast<std::uint32_t>(w);
  out.height = static_cast<std::uint32_t>(h);
  out.bits = 8;
  out.pixels.resize(img.size());
  for (std::size_t i = 0; i < img.size(); ++i) {
    double v = img[i] + (sc.noise_sigma > 0 ? noise(rng) : 0);
    if (sc.inverted) v = 255 - v;
    out.pixels[i] = static_cast<std::uint16_t>(std::clamp(std::lround(v), 0L, 255L));
  }
  return out;
}

// One symbol centred in an image with a 4-module quiet zone (more when rotated).
qrplate::sim::gray_image render_one(const symbol& s, double scale, double angle, scene sc, std::mt19937_64& rng)
{
  const double side = (s.size() + 8) * scale * (std::abs(std::cos(angle * pi / 180)) + std::abs(std::sin(angle * pi / 180)));
  sc.width = sc.height = static_cast<int>(std::ceil(side));
  return render(sc, {placement{&s, sc.width / 2.0, sc.height / 2.0, scale, angle}}, rng);
}

std::string hex(const bytes& b)
{
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < b.size() && i < 24; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    s += buf;
  }
  return s + (b.size() > 24 ? "..." : "");
}

// QRPLATE_BLIND_DUMP=DIR keeps the image of each failing case there, as PGM, for a look.
void dump_on_failure(const qrplate::sim::gray_image& img, const std::string& what)
{
  const char* dir = std::getenv("QRPLATE_BLIND_DUMP");
  if (dir == nullptr) return;
  std::string name = std::string(dir) + "/" + what + ".pgm";
  for (std::size_t i = std::string(dir).size() + 1; i < name.size(); ++i)
    if (name[i] == ' ') name[i] = '_';
  if (std::FILE* f = std::fopen(name.c_str(), "wb")) {
    std::fprintf(f, "P5\n%u %u\n255\n", img.width, img.height);
    for (std::uint16_t p : img.pixels) std::fputc(p, f);
    std::fclose(f);
  }
}

// Exactly one code, the one written.
void expect_single(const qrplate::blind::blind_result& r, const symbol& s, const std::string& what,
                   const qrplate::sim::gray_image& img)
{
  if (r.codes.size() != 1 || r.codes[0].content != s.payload) dump_on_failure(img, what);
  ASSERT_EQ(r.codes.size(), 1u) << what << " finders " << r.finders << " candidates " << r.candidates << " failed "
                                << r.failed << "; " << seed_note();
  const auto& c = r.codes[0];
  EXPECT_EQ(c.content, s.payload) << what << ": read " << hex(c.content) << " wrote " << hex(s.payload) << "; "
                                  << seed_note();
  EXPECT_EQ(c.version, s.code->version) << what << "; " << seed_note();
  EXPECT_EQ(c.ecc, s.ecc) << what << "; " << seed_note();
}

// ---------------------------------------------------------------------------------------------

TEST(BlindReader, EveryVersionAndLevelAtFourPixelsPerModule)
{
  for (int version = 1; version <= 40; ++version)
    for (ecc_level ecc : all_levels) {
      auto rng = case_rng(static_cast<std::uint64_t>(version) * 16 + static_cast<std::uint64_t>(ecc));
      const symbol s = random_symbol(rng, version, ecc);
      if (!s.code) continue;
      const auto img = render_one(s, 4.0, 0, scene{}, rng);
      const auto r = read_codes(img, {1, false});
      expect_single(r, s, "v" + std::to_string(version) + "-" + qrplate::to_string(ecc), img);
    }
}

TEST(BlindReader, GridOfHundredVersion3Codes)
{
  for (int quiet : {4, 1}) {
    auto rng = case_rng(1000 + static_cast<std::uint64_t>(quiet));
    std::vector<symbol> symbols;
    for (int i = 0; i < 100; ++i) symbols.push_back(random_symbol(rng, 3, all_levels[i % 4]));
    const double scale = 3.0;
    const int pitch = 29 + quiet;
    scene sc;
    sc.width = sc.height = static_cast<int>((10 * pitch + quiet + 8) * scale);
    std::vector<placement> items;
    for (int i = 0; i < 100; ++i)
      items.push_back(placement{&symbols[static_cast<std::size_t>(i)], (4 + quiet + (i % 10) * pitch + 14.5) * scale,
                                (4 + quiet + (i / 10) * pitch + 14.5) * scale, scale, 0});
    const auto img = render(sc, items, rng);
    const auto r = read_codes(img);
    if (r.codes.size() != 100) dump_on_failure(img, "grid quiet " + std::to_string(quiet));
    ASSERT_EQ(r.codes.size(), 100u) << "quiet " << quiet << "; " << seed_note();
    // Reading order is the order they were laid out in.
    for (std::size_t i = 0; i < 100; ++i) {
      EXPECT_EQ(r.codes[i].content, symbols[i].payload) << "code " << i << " quiet " << quiet << "; " << seed_note();
      EXPECT_NEAR(r.codes[i].x[0], (4 + quiet + static_cast<double>(i % 10) * pitch) * scale, scale) << i;
      EXPECT_NEAR(r.codes[i].y[0], (4 + quiet + static_cast<double>(i / 10) * pitch) * scale, scale) << i;
      EXPECT_NEAR(r.codes[i].module_px, scale, 0.05 * scale) << i;
    }
  }
}

TEST(BlindReader, Scales)
{
  for (double scale : {1.5, 2.0, 3.0, 5.5, 12.0})
    for (int version : {1, 4, 9, 20}) {
      auto rng = case_rng(2000 + static_cast<std::uint64_t>(scale * 10) * 64 + static_cast<std::uint64_t>(version));
      const symbol s = random_symbol(rng, version, ecc_level::M);
      const auto img = render_one(s, scale, 0, scene{}, rng);
      expect_single(read_codes(img), s, "scale " + std::to_string(scale) + " v" + std::to_string(version), img);
    }
}

TEST(BlindReader, Rotations)
{
  for (double angle : {5.0, -10.0, 90.0, 180.0, 270.0, 33.0})
    for (int version : {2, 7, 15}) {
      auto rng = case_rng(3000 + static_cast<std::uint64_t>(angle + 360) * 64 + static_cast<std::uint64_t>(version));
      const symbol s = random_symbol(rng, version, ecc_level::Q);
      const auto img = render_one(s, 4.0, angle, scene{}, rng);
      expect_single(read_codes(img), s, "angle " + std::to_string(angle) + " v" + std::to_string(version), img);
    }
}

TEST(BlindReader, CornersFollowTheSymbolWhenRotated)
{
  auto rng = case_rng(3500);
  const symbol s = random_symbol(rng, 5, ecc_level::M);
  const double scale = 5, angle = 180;
  const auto img = render_one(s, scale, angle, scene{}, rng);
  const auto r = read_codes(img);
  ASSERT_EQ(r.codes.size(), 1u) << seed_note();
  // Rotated by 180 degrees, the symbol's top-left corner is the image's bottom-right one.
  const double far = img.width / 2.0 + s.size() * scale / 2;
  EXPECT_NEAR(r.codes[0].x[0], far, scale);
  EXPECT_NEAR(r.codes[0].y[0], far, scale);
  EXPECT_NEAR(r.codes[0].x[2], img.width - far, scale);
  EXPECT_NEAR(r.codes[0].y[2], img.width - far, scale);
}

TEST(BlindReader, InvertedPolarity)
{
  for (int version : {1, 6, 12}) {
    auto rng = case_rng(4000 + static_cast<std::uint64_t>(version));
    const symbol s = random_symbol(rng, version, ecc_level::H);
    scene sc;
    sc.inverted = true;
    const auto img = render_one(s, 3.5, 3, sc, rng);
    const auto r = read_codes(img);
    expect_single(r, s, "inverted v" + std::to_string(version), img);
    if (!r.codes.empty()) {
      EXPECT_TRUE(r.codes[0].inverted);
    }
    // Without try_inverted a light-on-dark code is not looked for.
    EXPECT_TRUE(read_codes(img, {0, false}).codes.empty()) << seed_note();
  }
}

TEST(BlindReader, NoiseAndBlur)
{
  for (int version : {3, 10, 25}) {
    auto rng = case_rng(5000 + static_cast<std::uint64_t>(version));
    const symbol s = random_symbol(rng, version, ecc_level::M);
    scene sc;
    sc.blur_sigma = 1.0;
    sc.noise_sigma = 25;  // the dark-light step is 170
    const auto img = render_one(s, 4.0, 4, sc, rng);
    expect_single(read_codes(img), s, "noisy v" + std::to_string(version), img);
  }
}

TEST(BlindReader, MixedScalesAndPolaritiesInOneImage)
{
  auto rng = case_rng(6000);
  const symbol a = random_symbol(rng, 2, ecc_level::L), b = random_symbol(rng, 11, ecc_level::H),
               c = random_symbol(rng, 5, ecc_level::Q);
  scene sc;
  sc.width = 900;
  sc.height = 500;
  const auto img = render(sc, {{&a, 120, 120, 3.0, 0}, {&b, 500, 250, 5.0, 2}, {&c, 160, 380, 2.5, -7}}, rng);
  const auto r = read_codes(img);
  ASSERT_EQ(r.codes.size(), 3u) << seed_note();
  // Rows by their tops: a (top 78) and b (top 92) share the first row, c below.
  EXPECT_EQ(r.codes[0].content, a.payload);
  EXPECT_EQ(r.codes[1].content, b.payload);
  EXPECT_EQ(r.codes[2].content, c.payload);
}

TEST(BlindReader, BadImagesGiveNothing)
{
  using clock = std::chrono::steady_clock;
  std::vector<qrplate::sim::gray_image> images;
  auto make = [](std::uint32_t w, std::uint32_t h, int bits, std::uint16_t value) {
    qrplate::sim::gray_image g;
    g.width = w;
    g.height = h;
    g.bits = bits;
    g.pixels.assign(static_cast<std::size_t>(w) * h, value);
    return g;
  };
  images.push_back(make(0, 0, 8, 0));
  images.push_back(make(1, 1, 8, 0));
  images.push_back(make(3, 2, 16, 65535));
  images.push_back(make(7, 7, 8, 0));
  images.push_back(make(1, 5000, 8, 3));
  images.push_back(make(640, 480, 8, 128));
  images.push_back(make(640, 480, 16, 0));
  auto rng = case_rng(7000);
  for (std::uint32_t side : {64u, 1000u}) {
    auto g = make(side, side, 8, 0);
    for (auto& p : g.pixels) p = static_cast<std::uint16_t>(rng() & 255);
    images.push_back(g);
    auto b = make(side, side, 8, 0);  // random blocks of 4x4: run lengths like a code's
    for (std::uint32_t y = 0; y < side; ++y)
      for (std::uint32_t x = 0; x < side; ++x)
        b.pixels[y * side + x] = g.pixels[(y / 4 * 4) * side + x / 4 * 4] > 127 ? 200 : 50;
    images.push_back(b);
  }
  for (const auto& g : images) {
    const auto t0 = clock::now();
    const auto r = read_codes(g);
    const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
    EXPECT_TRUE(r.codes.empty()) << g.width << "x" << g.height << "; " << seed_note();
    // A bound for a hang or a quadratic blow-up, not a benchmark: ~1 s here in Release, and it
    // must hold under the sanitizers (~15 s) and on a loaded machine too.
    EXPECT_LT(seconds, 120.0) << g.width << "x" << g.height;
  }
}

TEST(BlindReader, BrokenImageContractThrows)
{
  qrplate::sim::gray_image g;
  g.width = 10;
  g.height = 10;
  g.bits = 8;
  g.pixels.assign(99, 0);
  EXPECT_THROW(read_codes(g), qrplate::invalid_argument);
  g.pixels.assign(100, 0);
  g.bits = 12;
  EXPECT_THROW(read_codes(g), qrplate::invalid_argument);
}

// Throughput, single thread, for the report (run with --gtest_also_run_disabled_tests).
TEST(BlindReader, DISABLED_Throughput)
{
  for (int version : {3, 40}) {
    auto rng = case_rng(9000 + static_cast<std::uint64_t>(version));
    const int per_side = version == 3 ? 10 : 3;
    std::vector<symbol> symbols;
    for (int i = 0; i < per_side * per_side; ++i) symbols.push_back(random_symbol(rng, version, ecc_level::L));
    const double scale = 4;
    const int pitch = qrplate::spec::symbol_size(version) + 4;
    scene sc;
    sc.width = sc.height = static_cast<int>((per_side * pitch + 4) * scale);
    std::vector<placement> items;
    for (int i = 0; i < per_side * per_side; ++i)
      items.push_back(placement{&symbols[static_cast<std::size_t>(i)], (4 + (i % per_side) * pitch + (pitch - 4) / 2.0) * scale,
                                (4 + (i / per_side) * pitch + (pitch - 4) / 2.0) * scale, scale, 0});
    const auto img = render(sc, items, rng);
    dump_on_failure(img, "throughput v" + std::to_string(version));
    const int reps = version == 3 ? 5 : 3;
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t found = 0;
    for (int k = 0; k < reps; ++k) found += read_codes(img, {1, true}).codes.size();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("v%d at 4 px/module, 1 thread, both polarities: %zu of %d codes, %.1f codes/s (%dx%d px)\n", version,
                found / static_cast<std::size_t>(reps), per_side * per_side, static_cast<double>(found) / s, sc.width, sc.height);
    EXPECT_EQ(found, static_cast<std::size_t>(reps * per_side * per_side));
  }
}

}  // namespace

