// The per-code decoding core on input-derived blocks and symbols. Never a crash or a write out of
// bounds (every buffer is heap-allocated at its exact size, so ASan sees the first byte past it).
//
// Input byte 0 picks the part: even -> rs_decode on one block, odd -> decode_symbol on a symbol.
//
// rs_decode (rs_decode.hpp): n, degree, protection, erasures, then either the block as given or a
// codeword of input data with input errors on it. Checked:
//   - failed leaves the block untouched; clean only for a codeword, untouched, counts 0;
//   - corrected gives a codeword (rs_remainder_reference, the plain encoder, on its data), with
//     `errors` = changed bytes outside the erasures, `erasures` <= the distinct valid positions,
//     and erasures + 2 * errors <= degree - protection;
//   - an erasure index >= n fails the call (unless the block is clean: that is checked first);
//   - from a known codeword within the budget (e + 2t <= degree - p), the original comes back.
// The table-driven rs_remainder is held to the reference on every codeword made here.
//
// decode_symbol (decode_symbol.hpp): a symbol of input version, level and mask built from input
// data codewords (an arbitrary bit stream, valid Reed-Solomon), then input module flips, optional
// input confidences and an input out_capacity. Checked: data_length within [0, capacity] and 0
// unless the status is good; without flips a symbol decodes with its own level and mask, format
// distance 0, no corrections, and either the bit stream parses or the error says bitstream /
// output_full.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "fuzz_util.hpp"
#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "qrplate/core/reed_solomon.hpp"
#include "qrplate/core/rs_decode.hpp"
#include "qrplate/spec/versions.hpp"

namespace core = qrplate::core;
namespace spec = qrplate::spec;
using qrplate::ecc_level;

namespace {

// Reads the input front to back; past its end every byte is 0.
struct input {
  const std::uint8_t* p;
  std::size_t left;
  std::uint8_t byte()
  {
    if (left == 0) return 0;
    --left;
    return *p++;
  }
};

bool is_codeword(const std::uint8_t* block, int n, int degree)
{
  std::uint8_t gen[core::rs_max_degree];
  core::rs_generator(degree, gen);
  std::uint8_t parity[core::rs_max_degree];
  core::rs_remainder_reference(block, n - degree, gen, degree, parity);
  return std::memcmp(parity, block + (n - degree), static_cast<std::size_t>(degree)) == 0;
}

void fuzz_rs_decode(input in)
{
  const int n = 1 + in.byte() % core::rs_max_block;
  const int degree = 1 + in.byte() % std::min(n, core::rs_max_degree);
  const int protection = in.byte() % 4;
  const std::uint8_t mode = in.byte();
  const int erasure_count = in.byte() % (core::rs_max_degree + 4);
  std::vector<std::uint8_t> erasures(static_cast<std::size_t>(erasure_count));
  for (auto& e : erasures) e = (mode & 2) ? in.byte() : static_cast<std::uint8_t>(in.byte() % n);
  bool erased[256] = {};
  int distinct = 0;
  bool out_of_range = false;
  for (const std::uint8_t e : erasures) {
    if (e >= n) {
      out_of_range = true;
    } else if (!erased[e]) {
      erased[e] = true;
      ++distinct;
    }
  }

  std::vector<std::uint8_t> block(static_cast<std::size_t>(n));
  std::vector<std::uint8_t> original;
  if (mode & 1) {  // a codeword of input data, then input errors: (position, xor value) pairs
    for (int i = 0; i < n - degree; ++i) block[static_cast<std::size_t>(i)] = in.byte();
    std::uint8_t gen[core::rs_max_degree];
    core::rs_generator(degree, gen);
    core::rs_remainder_reference(block.data(), n - degree, gen, degree, block.data() + (n - degree));
    {
      auto table = std::make_unique<core::rs_table>();
      core::rs_make_table(degree, *table);
      std::uint8_t fast[core::rs_max_degree];
      core::rs_remainder(block.data(), n - degree, *table, fast);
      QRPLATE_FUZZ_CHECK(std::memcmp(fast, block.data() + (n - degree), static_cast<std::size_t>(degree)) == 0);
    }
    original = block;
    while (in.left >= 2) {
      const int pos = in.byte() % n;
      block[static_cast<std::size_t>(pos)] ^= in.byte();
    }
  } else {
    for (auto& b : block) b = in.byte();
  }

  const std::vector<std::uint8_t> received = block;
  const core::rs_result r = core::rs_decode(block.data(), n, degree, erasures.empty() ? nullptr : erasures.data(),
                                            erasure_count, protection);
  switch (r.status) {
    case core::rs_status::failed:
      QRPLATE_FUZZ_CHECK(block == received);
      break;
    case core::rs_status::clean:  // checked before the erasures: a codeword is clean whatever they say
      QRPLATE_FUZZ_CHECK(block == received);
      QRPLATE_FUZZ_CHECK(r.errors == 0 && r.erasures == 0);
      QRPLATE_FUZZ_CHECK(is_codeword(block.data(), n, degree));
      break;
    case core::rs_status::corrected: {
      QRPLATE_FUZZ_CHECK(!out_of_range);
      QRPLATE_FUZZ_CHECK(is_codeword(block.data(), n, degree));
      int changed_outside = 0;
      for (int i = 0; i < n; ++i)
        if (block[static_cast<std::size_t>(i)] != received[static_cast<std::size_t>(i)] && !erased[i]) ++changed_outside;
      QRPLATE_FUZZ_CHECK(r.errors == changed_outside);
      QRPLATE_FUZZ_CHECK(r.erasures >= 0 && r.erasures <= distinct);
      QRPLATE_FUZZ_CHECK(r.erasures + 2 * r.errors <= degree - protection);
      break;
    }
    default:
      qrplate::fuzz::contract_broken("rs_decode returned an unknown status", __FILE__, __LINE__);
  }
  if (!original.empty() && !out_of_range) {
    int t = 0;  // true errors outside the erasures
    for (int i = 0; i < n; ++i)
      if (received[static_cast<std::size_t>(i)] != original[static_cast<std::size_t>(i)] && !erased[i]) ++t;
    const bool any = received != original;
    if (distinct + 2 * t <= degree - protection) {
      QRPLATE_FUZZ_CHECK(r.status != core::rs_status::failed);
      QRPLATE_FUZZ_CHECK(block == original);
      QRPLATE_FUZZ_CHECK(any || r.status == core::rs_status::clean);
    }
  }
}

constexpr ecc_level levels[4] = {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H};

void fuzz_decode_symbol(input in)
{
  const int version = 1 + in.byte() % spec::max_version;
  const ecc_level ecc = levels[in.byte() % 4];
  const ecc_level plan_ecc = levels[in.byte() % 4];
  const int mask = in.byte() % 8;
  const std::uint8_t flags = in.byte();
  const std::uint8_t threshold = in.byte();
  const int capacity = (flags & 4) ? in.byte() : core::max_decoded_length;

  static auto ews = std::make_unique<core::encode_workspace>();
  static auto dws = std::make_unique<core::decode_workspace>();
  const core::version_plan& plan = qrplate::host::version_plan_for(version, ecc);
  const int data_codewords = spec::num_data_codewords(version, ecc);
  // Input data codewords: the first bytes as given, the rest cycling over the input (or zero).
  const std::uint8_t* const rest = in.p;
  const std::size_t given = in.left;
  for (int i = 0; i < data_codewords; ++i) {
    const std::size_t k = given == 0 ? 0 : static_cast<std::size_t>(i) % given;
    ews->data[i] = given == 0 ? 0 : rest[k];
  }
  std::vector<std::uint64_t> modules(static_cast<std::size_t>(plan.size) * static_cast<std::size_t>(plan.words));
  core::encode_from_data_codewords(plan, *ews, mask, modules.data());

  int flips = 0;
  if (flags & 1) {  // module flips from the input: (row, col) pairs
    while (in.left >= 2) {
      const int row = in.byte() % plan.size, col = in.byte() % plan.size;
      modules[static_cast<std::size_t>(row * plan.words + col / 64)] ^= std::uint64_t{1} << (col % 64);
      ++flips;
    }
  }
  std::vector<std::uint8_t> confidence;
  if (flags & 2) {
    confidence.resize(static_cast<std::size_t>(plan.size) * static_cast<std::size_t>(plan.size));
    for (std::size_t i = 0; i < confidence.size(); ++i)
      confidence[i] = given == 0 ? 0 : static_cast<std::uint8_t>(rest[i % given] ^ (i * 37));
  }

  const core::version_plan& decode_plan = qrplate::host::version_plan_for(version, plan_ecc);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(capacity));
  const core::decode_result r = core::decode_symbol(decode_plan, modules.data(),
                                                    confidence.empty() ? nullptr : confidence.data(), threshold,
                                                    out.data(), *dws, capacity);
  const bool good = r.status == core::decode_status::ok || r.status == core::decode_status::corrected ||
                    r.status == core::decode_status::erasure_assisted;
  QRPLATE_FUZZ_CHECK(r.data_length >= 0 && r.data_length <= capacity);
  QRPLATE_FUZZ_CHECK(good || r.data_length == 0);
  QRPLATE_FUZZ_CHECK(good == (r.error == core::decode_error::none));
  if (flips == 0) {
    QRPLATE_FUZZ_CHECK(r.mask == mask && r.format_distance == 0 && r.corrected_symbols == 0 && r.erasures == 0);
    QRPLATE_FUZZ_CHECK(r.ecc == ecc);  // both format copies are intact: one reading, the symbol's
    QRPLATE_FUZZ_CHECK(r.status == core::decode_status::ok || r.error == core::decode_error::bitstream ||
                       r.error == core::decode_error::output_full);
    if (r.status == core::decode_status::ok)
      QRPLATE_FUZZ_CHECK(std::memcmp(dws->data, ews->data, static_cast<std::size_t>(data_codewords)) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size == 0) return 0;
  input in{data + 1, size - 1};
  if (data[0] & 1) {
    fuzz_decode_symbol(in);
  } else {
    fuzz_rs_decode(in);
  }
  return 0;
}
