#include "encode/encode_cpu.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "util/popcnt_dispatch.hpp"

namespace qrplate::host {
namespace {

// The mask penalty is popcount-bound: the whole per-code core is compiled with and without
// POPCNT (util/popcnt_dispatch.hpp).

QRP_POPCNT_CLONES_FLATTEN void encode_range(const core::version_plan& plan, const payload_batch_view& payloads, int mask,
                                   std::uint64_t begin, std::uint64_t end, core::encode_workspace& ws,
                                   symbol_batch& out)
{
  const std::size_t stride = out.words_per_symbol();
  for (std::uint64_t i = begin; i < end; ++i) {
    const std::uint64_t off = payloads.offsets[i];
    const auto len = static_cast<std::uint32_t>(payloads.offsets[i + 1] - off);
    const int used = core::encode_byte_payload(plan, payloads.bytes + off, len, mask, ws, out.modules() + i * stride);
    out.masks()[i] = static_cast<std::uint8_t>(used < 0 ? 0 : used);
    out.status()[i] = used < 0 ? encode_status::too_long : encode_status::ok;
  }
}

}  // namespace

void encode_cpu(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out)
{
  const core::version_plan& plan = version_plan_for(options.version, options.ecc);
  const std::uint64_t count = payloads.count;
  unsigned threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  // Chunks of codes handed out dynamically: payload lengths (and so the work) may vary.
  constexpr std::uint64_t chunk = 64;
  threads = static_cast<unsigned>(std::min<std::uint64_t>(threads, (count + chunk - 1) / chunk));
  std::atomic<std::uint64_t> next{0};

  auto worker = [&] {
    auto ws = std::make_unique<core::encode_workspace>();
    for (;;) {
      const std::uint64_t begin = next.fetch_add(chunk, std::memory_order_relaxed);
      if (begin >= count) return;
      encode_range(plan, payloads, options.mask, begin, std::min(count, begin + chunk), *ws, out);
    }
  };
  if (threads <= 1) {
    worker();
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  try {
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  } catch (const std::system_error&) {  // the system would not start them all: work with those it did
  }
  worker();
  for (auto& t : pool) t.join();
}

}  // namespace qrplate::host
