// Writes the seed corpus of every fuzz target (small valid inputs of each format) into
// DIR/<target>/. Run it again after a format changes:
//   build/fuzz-replay/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
// Regression inputs saved beside the seeds (crash-*) are left alone.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/png_file.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"
#include "qrplate/qr.hpp"
#include "sim/scan_io.hpp"

namespace fs = std::filesystem;
namespace plate = qrplate::plate;
using bytes = std::vector<std::uint8_t>;

namespace {

fs::path root;

void put(const std::string& target, const std::string& name, const bytes& b)
{
  fs::create_directories(root / target);
  std::ofstream f(root / target / name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot write " + (root / target / name).string());
}

void put(const std::string& target, const std::string& name, const std::string& s)
{
  put(target, name, bytes(s.begin(), s.end()));
}

bytes slurp(const fs::path& p)
{
  std::ifstream f(p, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

qrplate::sim::gray_image ramp(std::uint32_t w, std::uint32_t h, int bits)
{
  qrplate::sim::gray_image img;
  img.width = w;
  img.height = h;
  img.bits = bits;
  const std::uint32_t top = bits == 8 ? 255 : 65535;
  for (std::uint32_t i = 0; i < w * h; ++i) img.pixels.push_back(static_cast<std::uint16_t>(i * 37u % (top + 1)));
  return img;
}

void manifests()
{
  plate::geometry_options o;
  o.version = 10;
  const plate::plate_geometry g = plate::make_geometry(o, 1000);
  plate::manifest m = plate::make_manifest(g, 0x0123456789abcdefull, 0, 1, 0, 100000, 100000);
  for (int i = 0; i < 32; ++i) m.payload_digest[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i * 7);
  bytes b = plate::to_binary(m);
  put("manifest_binary", "plate-v10", b);
  b.push_back(0);  // 124 bytes: the target recomputes the CRC
  put("manifest_binary", "plate-v10-crcfix", b);
  put("manifest_json", "plate-v10.json", plate::to_json(m, {}));
  plate::manifest tree = m;
  tree.payload_hash = plate::payload_hash_kind::sha256_tree;
  put("manifest_json", "plate-v10-tree.json", plate::to_json(tree, {}));

  plate::geometry_options small;
  small.version = 3;
  small.m = 0;
  const plate::manifest m3 = plate::make_manifest(plate::make_geometry(small, 3), 42, 0, 1, 0, 300, 300);
  put("manifest_binary", "plate-v3-no-outer", plate::to_binary(m3));
  put("manifest_json", "plate-v3-no-outer.json", plate::to_json(m3, {}));
}

void scan_sets()
{
  put("scan_json", "two-tiles.json",
      R"({"pixel_nm": 12.5, "plate": "../plate/plate.json", "tiles": [)"
      R"({"file": "tile-000-000.tif", "x_nm": 0, "y_nm": 0}, {"file": "tile-000-001.tif", "x_nm": 51200.0, "y_nm": -3.5e2}]})"
      "\n");
  put("scan_json", "one-tile.json", R"({"pixel_nm":1e0,"tiles":[{"file":"sub/./a.png","x_nm":1e11,"y_nm":0}]})");
}

void images()
{
  const fs::path tmp = fs::temp_directory_path() / "qrplate-fuzz-make-corpus";
  fs::create_directories(tmp);
  qrplate::sim::write_gray_tiff((tmp / "a.tif").string(), ramp(5, 3, 8), true);
  put("gray_image", "gray8-deflate.tif", slurp(tmp / "a.tif"));
  qrplate::sim::write_gray_tiff((tmp / "a.tif").string(), ramp(3, 2, 16), false);
  put("gray_image", "gray16.tif", slurp(tmp / "a.tif"));
  // 16-bit deflate with the predictor: the strip fast path of scan_io's TIFF reader.
  qrplate::sim::write_gray_tiff((tmp / "a.tif").string(), ramp(9, 5, 16), true);
  put("gray_image", "gray16-deflate.tif", slurp(tmp / "a.tif"));

  const std::uint8_t gray[12] = {0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 255};
  qrplate::host::write_png_file((tmp / "a.png").string(), gray, 4, 3, 1);
  put("gray_image", "gray8.png", slurp(tmp / "a.png"));
  const std::uint8_t rgb[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 99, 199};
  qrplate::host::write_png_file((tmp / "a.png").string(), rgb, 2, 2, 3);
  put("gray_image", "rgb8.png", slurp(tmp / "a.png"));
  fs::remove_all(tmp);

  std::string pgm = "P5\n# a comment\n4 2\n255\n";
  pgm += std::string("\x00\x10\x20\x30\x40\x50\x60\xff", 8);
  put("gray_image", "gray8.pgm", pgm);
  std::string pgm16 = "P5 2 2 65535\n";
  pgm16 += std::string("\x00\x01\x12\x34\xab\xcd\xff\xff", 8);
  put("gray_image", "gray16.pgm", pgm16);
}

void decoders()
{
  // fuzz_rs_decode's layout (see the target): part, then the part's fields.
  // rs_decode, raw block: n - 1 = 25, degree - 1 = 6, p = 0, mode 0, no erasures, 26 bytes.
  bytes raw = {0, 25, 6, 0, 0, 0};
  for (int i = 0; i < 26; ++i) raw.push_back(static_cast<std::uint8_t>(i * 11));
  put("rs_decode", "rs-raw", raw);
  // rs_decode, codeword of 19 data bytes + 7 parity, 2 erasures, three errors.
  bytes cw = {0, 25, 6, 0, 1, 2, 3, 17};
  for (int i = 0; i < 19; ++i) cw.push_back(static_cast<std::uint8_t>(0x40 + i));
  for (const int e : {1, 0x55, 9, 0x01, 20, 0x80}) cw.push_back(static_cast<std::uint8_t>(e));
  put("rs_decode", "rs-codeword-errors", cw);
  // decode_symbol: version 1-M mask 3, clean; then version 5-Q with flips and confidences.
  bytes sym = {1, 0, 1, 1, 3, 0, 0};
  for (char c : std::string("\x40\x54\x86\x56\xc6\xc6\xf0\xec\x11")) sym.push_back(static_cast<std::uint8_t>(c));
  put("rs_decode", "symbol-v1-clean", sym);
  bytes noisy = {1, 4, 2, 2, 6, 3, 128};
  for (int i = 0; i < 40; ++i) noisy.push_back(static_cast<std::uint8_t>(i * 29 + 3));
  put("rs_decode", "symbol-v5-flips", noisy);

  // blind_reader: a version 1 code, 2 pixels per module, quiet zone 4: 58 x 58, 8 bit.
  qrplate::qr_options o;
  o.min_version = o.max_version = 1;
  const qrplate::qr_symbol s = qrplate::encode_text("FUZZ 18004", o);
  const int scale = 2, border = 4, side = (s.size + 2 * border) * scale;
  bytes img = {static_cast<std::uint8_t>(side - 1)};
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const int r = y / scale - border, c = x / scale - border;
      const bool dark = r >= 0 && c >= 0 && r < s.size && c < s.size && s.module(r, c);
      img.push_back(dark ? 20 : 230);
    }
  }
  put("blind_reader", "qr-v1-58px", img);
}

}  // namespace

int main(int argc, char** argv)
{
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT\n", argv[0]);
    return 2;
  }
  root = argv[1];
  manifests();
  scan_sets();
  images();
  decoders();
  return 0;
}
