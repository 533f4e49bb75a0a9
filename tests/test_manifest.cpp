// The plate manifest (qrplate/plate/manifest.hpp): the binary form (123 bytes) is read back
// against the documented byte layout with a CRC-32C written here, round-trips field by field,
// and rejects every single-bit flip; plate.json round-trips (SHA-256 and image info included);
// geometry_of rebuilds the geometry that made a manifest. Seeded; the seed is printed (override
// with QRPLATE_TEST_SEED=<n>).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "qrplate/error.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"

namespace {

namespace plate = qrplate::plate;
using plate::manifest;
using bytes = std::vector<std::uint8_t>;
using qrplate::ecc_level;

unsigned test_seed()
{
  static const unsigned seed = [] {
    const char* env = std::getenv("QRPLATE_TEST_SEED");
    const unsigned s = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : 20240612u;
    std::cout << "[ seed     ] QRPLATE_TEST_SEED=" << s << "\n";
    return s;
  }();
  return seed;
}

// CRC-32C, bit by bit (Castagnoli, reflected 0x82F63B78, init and final XOR 0xFFFFFFFF).
std::uint32_t crc32c_bitwise(const std::uint8_t* p, std::size_t n)
{
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

std::uint64_t le(const bytes& b, std::size_t off, int size)
{
  std::uint64_t v = 0;
  for (int i = 0; i < size; ++i) v |= static_cast<std::uint64_t>(b[off + i]) << (8 * i);
  return v;
}

void put_le(bytes& b, std::size_t off, std::uint64_t v, int size)
{
  for (int i = 0; i < size; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// The documented binary layout (manifest.hpp): size and where the CRC sits.
constexpr std::size_t layout_bytes = 123;
constexpr std::size_t crc_at = 119;

void reseal(bytes& b)
{
  put_le(b, crc_at, crc32c_bitwise(b.data(), crc_at), 4);
}

void expect_same(const manifest& a, const manifest& b, bool with_sha)
{
  EXPECT_EQ(a.plate_id, b.plate_id);
  EXPECT_EQ(a.plate_number, b.plate_number);
  EXPECT_EQ(a.plate_count, b.plate_count);
  EXPECT_DOUBLE_EQ(a.module_nm, b.module_nm);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.ecc, b.ecc);
  EXPECT_EQ(a.quiet, b.quiet);
  EXPECT_EQ(a.header_copies, b.header_copies);
  EXPECT_EQ(a.grid_x, b.grid_x);
  EXPECT_EQ(a.grid_y, b.grid_y);
  EXPECT_EQ(a.columns, b.columns);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.band_rows, b.band_rows);
  EXPECT_EQ(a.groups_per_band, b.groups_per_band);
  EXPECT_EQ(a.block_columns, b.block_columns);
  EXPECT_EQ(a.k, b.k);
  EXPECT_EQ(a.m, b.m);
  EXPECT_EQ(a.dust_window, b.dust_window);
  EXPECT_EQ(a.data_frames, b.data_frames);
  EXPECT_EQ(a.share_offset, b.share_offset);
  EXPECT_EQ(a.share_bytes, b.share_bytes);
  EXPECT_EQ(a.payload_bytes, b.payload_bytes);
  if (with_sha) {
    EXPECT_EQ(a.payload_hash, b.payload_hash);
    EXPECT_EQ(a.payload_digest, b.payload_digest);
    if (a.payload_hash == plate::payload_hash_kind::sha256_tree) {
      EXPECT_EQ(a.tree_leaf_bytes, b.tree_leaf_bytes);
    }
  }
}

bool code_holds_a_frame(int version, ecc_level ecc)
{
  try {
    return plate::frame_body_bytes(version, ecc) > 0;
  } catch (const qrplate::invalid_argument&) {
    return false;
  }
}

// A manifest with every field random within its binary width (not a consistent plate: the
// binary and JSON forms do not check consistency, geometry_of does).
manifest random_manifest(std::mt19937_64& rng)
{
  manifest m;
  m.plate_id = rng();
  m.plate_count = static_cast<std::uint16_t>(1 + rng() % 65535);
  m.plate_number = static_cast<std::uint16_t>(rng() % m.plate_count);
  m.module_nm = static_cast<double>(1000 + rng() % 4000000) / 1000.0;  // whole picometres
  m.width = rng() >> 20;
  m.height = rng() >> 20;
  // A code that can hold a frame (plate.json states the frame sizes of the code).
  do {
    m.version = static_cast<int>(1 + rng() % 40);
    m.ecc = static_cast<ecc_level>(rng() % 4);
  } while (!code_holds_a_frame(m.version, m.ecc));
  m.quiet = static_cast<int>(1 + rng() % 16);
  m.header_copies = static_cast<std::uint32_t>(rng() % 5);
  m.grid_x = rng() >> 24;
  m.grid_y = rng() >> 24;
  m.columns = static_cast<std::uint32_t>(rng());
  m.rows = rng() >> 8;
  m.band_rows = static_cast<std::uint32_t>(rng());
  m.groups_per_band = static_cast<std::uint32_t>(rng());
  m.block_columns = static_cast<std::uint32_t>(rng());
  m.k = static_cast<int>(1 + rng() % 255);
  m.m = static_cast<int>(rng() % static_cast<unsigned>(257 - m.k));
  m.dust_window = static_cast<std::uint32_t>(rng() % 65536);
  // A share inside the payload, and enough data frames for it (manifest_from_json checks both).
  m.payload_bytes = rng() >> 2;
  m.share_bytes = rng() % (m.payload_bytes + 1);
  m.share_offset = rng() % (m.payload_bytes - m.share_bytes + 1);
  const auto per_frame = static_cast<std::uint64_t>(plate::frame_data_bytes(m.version, m.ecc));
  m.data_frames = (m.share_bytes + per_frame - 1) / per_frame + rng() % 1000;
  for (auto& b : m.payload_digest) b = static_cast<std::uint8_t>(rng());
  // Half of them with the SHA-256 tree, leaves of any size plate.json allows.
  if (rng() % 2) {
    m.payload_hash = plate::payload_hash_kind::sha256_tree;
    m.tree_leaf_bytes = plate::min_tree_leaf_bytes + rng() % (plate::max_tree_leaf_bytes - plate::min_tree_leaf_bytes + 1);
  }
  return m;
}

// Manifests of real plates: auto-sized and fixed, with and without an outer code.
std::vector<std::pair<plate::plate_geometry, manifest>> real_manifests(std::mt19937_64& rng)
{
  std::vector<std::pair<plate::plate_geometry, manifest>> out;
  auto add = [&](plate::geometry_options o, std::uint64_t frames) {
    const plate::plate_geometry g = plate::make_geometry(o, frames);
    // A payload that fills `frames` data frames, the last one partly (manifest_from_json checks it).
    const auto per_frame = static_cast<std::uint64_t>(plate::frame_data_bytes(o.version, o.ecc));
    const std::uint64_t payload = frames == 0 ? 0 : (frames - 1) * per_frame + 1 + rng() % per_frame;
    manifest m = plate::make_manifest(g, rng(), 0, 1, 0, payload, payload);
    for (auto& b : m.payload_digest) b = static_cast<std::uint8_t>(rng());
    out.emplace_back(g, m);
  };
  plate::geometry_options o;
  add(o, 1);
  add(o, 100000);
  o.version = 10;
  o.ecc = ecc_level::M;
  o.k = 103;
  o.m = 7;
  add(o, 103);
  o.k = 1;
  o.m = 0;
  add(o, 777);
  add(o, 0);
  o.version = 5;
  o.k = 20;
  o.m = 4;
  o.quiet = 2;
  o.module_nm = 37.125;
  add(o, 181);
  o.quiet = 4;
  o.module_nm = 49;
  o.plate = plate::parse_plate_size("500x300um");
  add(o, 0);
  add(o, plate::plate_capacity_frames(o));
  o.version = 40;
  o.ecc = ecc_level::L;
  o.k = 239;
  o.m = 16;
  o.plate = plate::parse_plate_size("A4");
  add(o, 123456789);
  o.plate = plate::parse_plate_size("2x3mm");
  o.version = 25;
  o.ecc = ecc_level::H;
  add(o, plate::plate_capacity_frames(o) / 3);
  o.plate = plate::parse_plate_size("3x1mm");  // > 2048 columns of version 2: two column blocks
  o.version = 2;
  o.ecc = ecc_level::L;
  add(o, plate::plate_capacity_frames(o) - 5);
  if (out.back().first.placement.blocks() < 2) ADD_FAILURE() << "expected a plate of several column blocks";
  return out;
}

TEST(Manifest, BinaryLayoutIsTheDocumentedOne)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 50; ++trial) {
    const manifest m = random_manifest(rng);
    const bytes b = plate::to_binary(m);
    ASSERT_EQ(b.size(), layout_bytes);
    ASSERT_EQ(static_cast<std::size_t>(plate::manifest_bytes), layout_bytes);
    EXPECT_EQ(std::memcmp(b.data(), "QRPM", 4), 0);
    EXPECT_EQ(le(b, 4, 1), 1u);
    EXPECT_EQ(le(b, 5, 8), m.plate_id);
    EXPECT_EQ(le(b, 13, 2), m.plate_number);
    EXPECT_EQ(le(b, 15, 2), m.plate_count);
    EXPECT_EQ(le(b, 17, 4), static_cast<std::uint64_t>(std::llround(m.module_nm * 1000)));
    EXPECT_EQ(le(b, 21, 8), m.width);
    EXPECT_EQ(le(b, 29, 8), m.height);
    EXPECT_EQ(le(b, 37, 1), static_cast<std::uint64_t>(m.version));
    EXPECT_EQ(le(b, 38, 1), static_cast<std::uint64_t>(m.ecc));
    EXPECT_EQ(le(b, 39, 1), static_cast<std::uint64_t>(m.quiet));
    EXPECT_EQ(le(b, 40, 1), m.header_copies);
    EXPECT_EQ(le(b, 41, 8), m.grid_x);
    EXPECT_EQ(le(b, 49, 8), m.grid_y);
    EXPECT_EQ(le(b, 57, 4), m.columns);
    EXPECT_EQ(le(b, 61, 8), m.rows);
    EXPECT_EQ(le(b, 69, 4), m.band_rows);
    EXPECT_EQ(le(b, 73, 4), m.groups_per_band);
    EXPECT_EQ(le(b, 77, 4), m.block_columns);
    EXPECT_EQ(le(b, 81, 2), static_cast<std::uint64_t>(m.k));
    EXPECT_EQ(le(b, 83, 2), static_cast<std::uint64_t>(m.m));
    EXPECT_EQ(le(b, 85, 2), m.dust_window);
    EXPECT_EQ(le(b, 87, 8), m.data_frames);
    EXPECT_EQ(le(b, 95, 8), m.share_offset);
    EXPECT_EQ(le(b, 103, 8), m.share_bytes);
    EXPECT_EQ(le(b, 111, 8), m.payload_bytes);
    EXPECT_EQ(le(b, crc_at, 4), crc32c_bitwise(b.data(), crc_at));
  }
  // ECC codes as documented: 0 L, 1 M, 2 Q, 3 H.
  manifest m;
  for (auto [e, code] : {std::pair{ecc_level::L, 0}, std::pair{ecc_level::M, 1}, std::pair{ecc_level::Q, 2},
                         std::pair{ecc_level::H, 3}}) {
    m.ecc = e;
    EXPECT_EQ(plate::to_binary(m)[38], code);
  }
}

TEST(Manifest, BinaryRoundTrip)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed + 1);
  for (int trial = 0; trial < 200; ++trial) {
    const manifest m = random_manifest(rng);
    const bytes b = plate::to_binary(m);
    const manifest back = plate::manifest_from_binary(b.data(), b.size());
    SCOPED_TRACE("trial " + std::to_string(trial));
    expect_same(m, back, false);
    EXPECT_EQ(back.payload_digest, (std::array<std::uint8_t, 32>{}));  // not in the binary form
    EXPECT_EQ(plate::to_binary(back), b);
  }
  for (const auto& [g, m] : real_manifests(rng)) {
    const bytes b = plate::to_binary(m);
    expect_same(m, plate::manifest_from_binary(b.data(), b.size()), false);
  }
}

TEST(Manifest, EverySingleBitFlipIsRejected)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed + 2);
  for (int trial = 0; trial < 3; ++trial) {
    const bytes good = plate::to_binary(random_manifest(rng));
    ASSERT_NO_THROW(plate::manifest_from_binary(good.data(), good.size()));
    for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
      bytes bad = good;
      bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      EXPECT_THROW(plate::manifest_from_binary(bad.data(), bad.size()), qrplate::invalid_argument) << "bit " << bit;
    }
  }
}

TEST(Manifest, WrongSizeMagicVersionOrEccIsRejected)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed + 3);
  const bytes good = plate::to_binary(random_manifest(rng));
  // Sizes: short, long (a valid manifest with one byte more), empty.
  for (std::size_t n : {std::size_t{0}, std::size_t{4}, layout_bytes - 4, layout_bytes - 1}) {
    EXPECT_THROW(plate::manifest_from_binary(good.data(), n), qrplate::invalid_argument) << n << " bytes";
  }
  bytes longer = good;
  longer.push_back(0);
  EXPECT_THROW(plate::manifest_from_binary(longer.data(), longer.size()), qrplate::invalid_argument);
  // Each of these carries a correct CRC, so only the named check can reject it.
  auto resealed_throws = [&](std::size_t off, std::uint8_t value, const char* what) {
    bytes b = good;
    b[off] = value;
    reseal(b);
    EXPECT_THROW(plate::manifest_from_binary(b.data(), b.size()), qrplate::invalid_argument) << what;
  };
  resealed_throws(0, 'q', "magic");
  resealed_throws(3, 'X', "magic");
  resealed_throws(4, 0, "format version 0");
  resealed_throws(4, 2, "format version 2");
  resealed_throws(38, 4, "ECC level 4");
  resealed_throws(38, 255, "ECC level 255");
  // And the reseal itself is right: an unchanged manifest resealed still reads.
  bytes same = good;
  reseal(same);
  EXPECT_EQ(same, good);
  EXPECT_NO_THROW(plate::manifest_from_binary(same.data(), same.size()));
}

TEST(Manifest, JsonRoundTrip)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed + 4);
  for (int trial = 0; trial < 100; ++trial) {
    const manifest m = random_manifest(rng);
    plate::image_info image;
    image.file = "plate-" + std::to_string(trial) + ".tif";
    image.tile_width = static_cast<std::uint32_t>(16 * (1 + rng() % 4096));
    image.tile_height = static_cast<std::uint32_t>(16 * (1 + rng() % 4096));
    image.compression = trial % 3 == 0 ? "none" : trial % 3 == 1 ? "deflate" : "g4";
    image.preview = "p" + std::to_string(trial) + ".png";
    const std::string text = plate::to_json(m, image);
    plate::image_info back_image;
    const manifest back = plate::manifest_from_json(text, &back_image);
    SCOPED_TRACE("trial " + std::to_string(trial));
    expect_same(m, back, true);
    EXPECT_EQ(back_image.file, image.file);
    EXPECT_EQ(back_image.tile_width, image.tile_width);
    EXPECT_EQ(back_image.tile_height, image.tile_height);
    EXPECT_EQ(back_image.compression, image.compression);
    EXPECT_EQ(back_image.preview, image.preview);
    EXPECT_EQ(plate::to_json(back, back_image), text);
    // The digest is written as 64 lowercase hex digits, under the name of its kind.
    EXPECT_NE(text.find("\"" + plate::to_hex(m.payload_digest.data(), 32) + "\""), std::string::npos);
    const bool tree = m.payload_hash == plate::payload_hash_kind::sha256_tree;
    EXPECT_EQ(text.find("\"sha256_tree\": {") != std::string::npos, tree);
    EXPECT_EQ(text.find("\"sha256\": \"") != std::string::npos, !tree);
    if (tree) {
      EXPECT_NE(text.find("\"leaf_bytes\": " + std::to_string(m.tree_leaf_bytes)), std::string::npos);
    }
  }
  for (const auto& [g, m] : real_manifests(rng)) expect_same(m, plate::manifest_from_json(plate::to_json(m, {})), true);
}

TEST(Manifest, ToHex)
{
  const std::uint8_t b[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(plate::to_hex(b, sizeof b), "00017f80abff");
  EXPECT_EQ(plate::to_hex(b, 0), "");
}

TEST(Manifest, BadJsonIsRejected)
{
  const unsigned seed = test_seed();
  std::mt19937_64 rng(seed + 5);
  manifest with_sha256 = random_manifest(rng);
  with_sha256.payload_hash = plate::payload_hash_kind::sha256;
  const std::string good = plate::to_json(with_sha256, {});
  ASSERT_NO_THROW(plate::manifest_from_json(good));
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const auto at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) t.replace(at, from.size(), to);
    return t;
  };
  struct bad_case {
    const char* what;
    std::string text;
  };
  for (const bad_case& c : {
           bad_case{"empty", ""},
           bad_case{"truncated object", "{"},
           bad_case{"array", "[]"},
           bad_case{"empty object", "{}"},
           bad_case{"first half", good.substr(0, good.size() / 2)},
           bad_case{"other format", replaced("\"format\": \"qrplate\"", "\"format\": \"other\"")},
           bad_case{"format version 2", replaced("\"format_version\": 1", "\"format_version\": 2")},
           bad_case{"no data_frames", replaced("\"data_frames\"", "\"data_framez\"")},
           // The payload's numbers against each other: a share past the payload, more bytes than
           // the data frames hold.
           bad_case{"share past the payload", replaced("\"bytes\": ", "\"bytes\": 0, \"was\": ")},
           bad_case{"share beyond its frames", replaced("\"data_frames\": ", "\"data_frames\": 0, \"was\": ")},
           bad_case{"plate_id not hex", replaced("\"plate_id\": \"", "\"plate_id\": \"zz")},
           bad_case{"65-digit sha256", replaced("\"sha256\": \"", "\"sha256\": \"0")},
           bad_case{"non-hex sha256", replaced("\"sha256\": \"", "\"sha256\": \"zz")},
           // std::stoul would have read "1g" as 1.
           bad_case{"a non-hex digit after a hex one", replaced("\"sha256\": \"", "\"sha256\": \"1g")},
           bad_case{"no digest", replaced("\"sha256\": ", "\"sha257\": ")},
           bad_case{"both digests", replaced("\"sha256\": ", "\"sha256_tree\": {\"leaf_bytes\": 4096, \"root\": \"" +
                                                                 std::string(64, 'a') + "\"}, \"sha256\": ")},
           bad_case{"tree leaf of 100 bytes",
                    replaced("\"sha256\": ", "\"sha256_tree\": {\"leaf_bytes\": 100, \"root\": \"" + std::string(64, 'a') +
                                                 "\"}, \"x\": ")},
           bad_case{"tree without a root",
                    replaced("\"sha256\": ", "\"sha256_tree\": {\"leaf_bytes\": 4096}, \"x\": ")},
           bad_case{"ECC level X", replaced("\"ecc\": \"", "\"ecc\": \"X")},
           // The header codes carry the dust window in 16 bits (and the band search would run
           // for hours on a window of billions of cells).
           bad_case{"dust window past 16 bits", replaced("\"dust_window_cells\": ", "\"dust_window_cells\": 99999")},
           bad_case{"non-hex plate id", replaced("\"plate_id\": \"", "\"plate_id\": \"xyz")},
           bad_case{"columns as a string", replaced("\"columns\": ", "\"columns\": \"12\", \"c\": ")},
           // Out-of-range numbers must not wrap into plausible values.
           bad_case{"negative columns", replaced("\"columns\": ", "\"columns\": -")},
           bad_case{"plate number 0 (1-based in JSON)", replaced("\"number\": ", "\"number\": 0, \"n\": ")},
           bad_case{"plate count 70000 (16 bits)", replaced("\"count\": ", "\"count\": 70000, \"c\": ")},
       }) {
    EXPECT_THROW(plate::manifest_from_json(c.text), qrplate::invalid_argument) << c.what;
  }
  // The one a tree replaces the SHA-256 with is good (so the cases above fail for their reason).
  const manifest tree = plate::manifest_from_json(
      replaced("\"sha256\": ", "\"sha256_tree\": {\"leaf_bytes\": 4096, \"root\": \"" + std::string(64, 'A') + "\"}, \"x\": "));
  EXPECT_EQ(tree.payload_hash, plate::payload_hash_kind::sha256_tree);
  EXPECT_EQ(tree.tree_leaf_bytes, 4096u);
  EXPECT_EQ(tree.payload_digest, (std::array<std::uint8_t, 32>{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
                                                                0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
                                                                0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}));
  EXPECT_EQ(plate::parse_payload_hash("sha256-tree"), plate::payload_hash_kind::sha256_tree);
  EXPECT_EQ(plate::parse_payload_hash("sha256"), plate::payload_hash_kind::sha256);
  EXPECT_THROW(plate::parse_payload_hash("md5"), qrplate::invalid_argument);
}

void expect_same_geometry(const plate::plate_geometry& a, const plate::plate_geometry& b)
{
  EXPECT_DOUBLE_EQ(a.module_nm, b.module_nm);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.ecc, b.ecc);
  EXPECT_EQ(a.quiet, b.quiet);
  EXPECT_EQ(a.code_size, b.code_size);
  EXPECT_EQ(a.pitch, b.pitch);
  EXPECT_EQ(a.header_copies, b.header_copies);
  EXPECT_EQ(a.grid_x, b.grid_x);
  EXPECT_EQ(a.grid_y, b.grid_y);
  EXPECT_EQ(a.columns, b.columns);
  EXPECT_EQ(a.rows, b.rows);
  for (int strip = 0; strip < 2; ++strip) {
    EXPECT_EQ(a.header_y(strip), b.header_y(strip));
    for (std::uint32_t i = 0; i < a.header_copies; ++i) EXPECT_EQ(a.header_x(strip, i), b.header_x(strip, i));
  }
  const plate::frame_placement& p = a.placement;
  const plate::frame_placement& q = b.placement;
  EXPECT_EQ(p.columns(), q.columns());
  EXPECT_EQ(p.band_rows(), q.band_rows());
  EXPECT_EQ(p.groups_per_band(), q.groups_per_band());
  EXPECT_EQ(p.block_columns(), q.block_columns());
  EXPECT_EQ(p.blocks(), q.blocks());
  EXPECT_EQ(p.groups(), q.groups());
  EXPECT_EQ(p.bands(), q.bands());
  EXPECT_EQ(p.rows(), q.rows());
  EXPECT_EQ(p.data_frames(), q.data_frames());
  EXPECT_EQ(p.parity_frames(), q.parity_frames());
  EXPECT_EQ(p.k(), q.k());
  EXPECT_EQ(p.m(), q.m());
  EXPECT_EQ(p.window(), q.window());
  // And the same cells: sample the first and last band and a few in between.
  if (p.rows() > 0 && p.columns() > 0) {
    for (std::uint64_t r : {std::uint64_t{0}, p.rows() / 3, p.rows() / 2, p.rows() - 1})
      for (std::uint32_t c : {0u, p.columns() / 2, p.columns() - 1}) {
        const plate::placement_slot s = p.at(r, c), t = q.at(r, c);
        EXPECT_EQ(s.kind, t.kind);
        EXPECT_EQ(s.index, t.index);
        EXPECT_EQ(s.group, t.group);
        EXPECT_EQ(s.member, t.member);
      }
  }
}

TEST(Manifest, GeometryOfRebuildsTheGeometry)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed + 6);
  for (const auto& [g, m] : real_manifests(rng)) {
    SCOPED_TRACE("v" + std::to_string(g.version) + " " + std::to_string(g.width) + "x" + std::to_string(g.height) +
                 " frames " + std::to_string(g.placement.data_frames()));
    // The manifest names the geometry's own numbers.
    EXPECT_EQ(m.band_rows, g.placement.band_rows());
    EXPECT_EQ(m.groups_per_band, g.placement.groups_per_band());
    EXPECT_EQ(m.block_columns, g.placement.block_columns());
    EXPECT_EQ(m.data_frames, g.placement.data_frames());
    EXPECT_EQ(m.grid_x, g.grid_x);
    EXPECT_EQ(m.grid_y, g.grid_y);
    EXPECT_EQ(m.dust_window, g.placement.window());
    // Directly, through the header codes' binary form, and through plate.json.
    expect_same_geometry(g, plate::geometry_of(m));
    const bytes b = plate::to_binary(m);
    expect_same_geometry(g, plate::geometry_of(plate::manifest_from_binary(b.data(), b.size())));
    expect_same_geometry(g, plate::geometry_of(plate::manifest_from_json(plate::to_json(m, {}))));
  }
}

TEST(Manifest, GeometryOfRejectsInconsistentManifests)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed + 7);
  plate::geometry_options o;
  o.version = 10;
  o.ecc = ecc_level::M;
  o.k = 20;
  o.m = 4;
  const plate::plate_geometry g = plate::make_geometry(o, 500);
  const manifest good = plate::make_manifest(g, rng(), 0, 1, 0, 500 * 196, 500 * 196);
  ASSERT_NO_THROW(plate::geometry_of(good));
  ASSERT_GT(g.placement.rows(), 1u);
  struct mutation {
    const char* what;
    void (*apply)(manifest&);
  };
  for (const mutation& mu : {
           mutation{"band rows + 1", [](manifest& m) { ++m.band_rows; }},
           mutation{"band rows - 1", [](manifest& m) { --m.band_rows; }},
           mutation{"groups per band + 1", [](manifest& m) { ++m.groups_per_band; }},
           mutation{"no columns per block", [](manifest& m) { m.block_columns = 0; }},
           mutation{"fewer grid rows than the frames need", [](manifest& m) { m.rows = 1; }},
           mutation{"version 0", [](manifest& m) { m.version = 0; }},
           mutation{"version 41", [](manifest& m) { m.version = 41; }},
           mutation{"K + M > 256", [](manifest& m) { m.k = 250; }},
           mutation{"K = 0", [](manifest& m) { m.k = 0; }},
           mutation{"no columns", [](manifest& m) { m.columns = 0; }},
           // Found by the fuzzer (a division by zero): ~10^9 columns whose bands would need more
           // than 2^32 group slots.
           mutation{"a billion columns", [](manifest& m) {
                      m.columns = 1191182336;
                      m.block_columns = 18176;
                      m.k = 239;
                      m.m = 1;
                      m.dust_window = 4096;
                    }},
           // A grid that does not fit the image it describes: a reader would cut codes from
           // outside the image.
           mutation{"grid twice as wide as the plate", [](manifest& m) { m.width = m.width / 2; }},
           mutation{"grid rows past the plate's height", [](manifest& m) { m.height = m.grid_y + 10; }},
       }) {
    manifest m = good;
    mu.apply(m);
    EXPECT_THROW(plate::geometry_of(m), qrplate::invalid_argument) << mu.what;
  }
}

}  // namespace
