// Host glue of the CUDA encode backend: a streaming driver. The batch is cut into chunks; chunk
// c runs on lane c % lanes, each lane a CUDA stream with its own pinned host staging and device
// buffers, so the upload of one chunk, the kernel of the next and the download of a third
// overlap. Payloads and results in pinned memory (qrplate/host_memory.hpp) go by DMA straight
// from and to the caller's memory; ordinary (pageable) ones pass through the lane's pinned
// staging, copied by a few host threads. Lanes, device tables and the copy threads are kept per
// host thread across calls. The kernel is the cooperative one (device_encoder), or the plain
// one-thread-per-code kernel that a GPU session holds it to.
// Status: run on an H100 (2026-11-24: the typed CPU/CUDA identity test in tests/test_batch.cpp and
// the encode tests pass, memcheck and racecheck clean; docs/PERFORMANCE.md).
#include "cuda/encode_cuda.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/pinned_memory.hpp"
#include "encode/encode_kernels.cuh"
#include "qrplate/cuda/device_encoder.hpp"
#include "encode/version_plan_cache.hpp"
#include "util/thread_team.hpp"

namespace qrplate::host {
namespace {

constexpr int lanes = 3;
constexpr unsigned threads_per_block = 128;
constexpr std::size_t chunk_output_bytes = 32u << 20;  // matrices per chunk, per lane
constexpr unsigned max_resident_codes = 32768;         // workspaces (~30 KB each) per lane

struct lane {
  stream_owner stream;
  std::uint64_t first = 0;  // first code of the chunk in flight
  std::uint64_t count = 0;  // 0: idle
  pinned_buffer<std::uint8_t> h_bytes;
  pinned_buffer<std::uint64_t> h_offsets, h_modules;
  pinned_buffer<std::uint8_t> h_masks, h_status;
  device_buffer<std::uint8_t> d_bytes;
  device_buffer<std::uint64_t> d_offsets, d_modules;
  device_buffer<std::uint8_t> d_masks, d_status;
  device_buffer<core::encode_workspace> d_ws;
  unsigned workspaces = 0;
};

// What outlives one encode_cuda call: pinned allocations cost milliseconds each and the plate
// encoder calls encode() once per block of groups, so the lanes' buffers and the device tables
// are kept, one set per host thread (encode() may run on several threads at once). Deliberately
// never freed: the CUDA runtime may be gone before thread-local destructors run at exit.
struct encode_context {
  std::vector<std::unique_ptr<lane>> lanes;
  std::map<std::pair<int, int>, std::unique_ptr<cuda::device_encoder>> encoders;  // by (version, level)
  std::unique_ptr<thread_team> copy_team;  // staging copies of pageable memory; made when first needed
  unsigned copy_threads = 0;
};

encode_context& this_threads_context()
{
  thread_local encode_context* context = new encode_context();
  return *context;
}

// Grows a buffer pair to at least n elements (buffers are reused across chunks).
template <typename T>
void reserve(pinned_buffer<T>& h, device_buffer<T>& d, std::size_t n)
{
  if (h.size() < n) h = pinned_buffer<T>(n);
  if (d.size() < n) d = device_buffer<T>(n);
}

std::atomic<std::uint64_t> staged_bytes{0};

// Copies between pageable memory and the staging are the host's second pass over every byte;
// one thread copies ~10-15 GB/s (12 on the development VM), below what PCIe Gen5 carries both
// ways, so they are spread over a few threads in slices. Past ~8 threads host memory
// bandwidth, not threads, is the limit.
constexpr std::size_t copy_slice_bytes = 1u << 20;
constexpr unsigned max_copy_threads = 8;

thread_team* copy_team_for(encode_context& context, unsigned threads)
{
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, max_copy_threads);
  if (threads < 2) return nullptr;
  if (!context.copy_team || context.copy_threads != threads) {
    context.copy_team = std::make_unique<thread_team>(threads);
    context.copy_threads = threads;
  }
  return context.copy_team.get();
}

void staged_copy(thread_team* team, void* dst, const void* src, std::size_t bytes)
{
  staged_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (team == nullptr || bytes < 2 * copy_slice_bytes) {
    std::memcpy(dst, src, bytes);
    return;
  }
  team->run((bytes + copy_slice_bytes - 1) / copy_slice_bytes, [&](unsigned, std::size_t i) {
    const std::size_t at = i * copy_slice_bytes;
    std::memcpy(static_cast<char*>(dst) + at, static_cast<const char*>(src) + at, std::min(copy_slice_bytes, bytes - at));
  });
}

}  // namespace

std::uint64_t cuda_encode_staged_bytes() { return staged_bytes.load(std::memory_order_relaxed); }

void encode_cuda(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out,
                 cuda_encode_kernel kernel, std::uint64_t chunk_codes)
{
  const std::uint64_t count = payloads.count;
  if (count == 0) return;
  const core::version_plan& plan = version_plan_for(options.version, options.ecc);
  const std::size_t stride = out.words_per_symbol();
  const std::uint64_t chunk =
      chunk_codes > 0 ? chunk_codes : std::max<std::uint64_t>(threads_per_block, chunk_output_bytes / (stride * 8));

  const bool plain = kernel == cuda_encode_kernel::per_thread;
  encode_context& context = this_threads_context();
  std::unique_ptr<cuda::device_encoder>& cached =
      context.encoders[{options.version, static_cast<int>(options.ecc)}];
  if (!cached) cached = std::make_unique<cuda::device_encoder>(options.version, options.ecc);
  const cuda::device_encoder& encoder = *cached;
  device_buffer<core::version_plan> d_plan(plain ? 1 : 0);
  if (plain) QRP_CUDA_TRY(cudaMemcpy(d_plan.data(), &plan, sizeof(plan), cudaMemcpyHostToDevice));

  std::vector<std::unique_ptr<lane>>& pool = context.lanes;
  while (pool.size() < lanes) pool.push_back(std::make_unique<lane>());
  auto abandon = [&] {  // waits for whatever is in flight and drops it
    for (auto& l : pool) {
      if (l->count == 0) continue;
      cuda_tolerate(cudaStreamSynchronize(l->stream.get()));
      l->count = 0;
    }
  };
  abandon();  // a call that threw may have left work in flight

  // Pinned payloads go up and pinned results come down by DMA, straight from and to the caller's
  // memory; pageable ones pass through the lane's staging, copied by the copy team.
  const std::uint64_t total_bytes = payloads.offsets[count] - payloads.offsets[0];
  const bool bytes_direct = host_range_pinned(payloads.bytes + payloads.offsets[0], total_bytes);
  const bool modules_direct = host_range_pinned(out.modules(), count * stride * sizeof(std::uint64_t));
  const bool masks_direct = host_range_pinned(out.masks(), count);
  const bool status_direct = host_range_pinned(out.status(), count);
  thread_team* copies = bytes_direct && modules_direct ? nullptr : copy_team_for(context, options.threads);

  // Waits for a lane's chunk and moves what came to the staging to its place.
  auto drain = [&](lane& l) {
    if (l.count == 0) return;
    QRP_CUDA_TRY(cudaStreamSynchronize(l.stream.get()));
    if (!modules_direct)
      staged_copy(copies, out.modules() + l.first * stride, l.h_modules.data(), l.count * stride * sizeof(std::uint64_t));
    if (!masks_direct) staged_copy(nullptr, out.masks() + l.first, l.h_masks.data(), l.count);
    if (!status_direct)
      staged_copy(nullptr, reinterpret_cast<std::uint8_t*>(out.status()) + l.first, l.h_status.data(), l.count);
    l.count = 0;
  };

  try {
    std::uint64_t index = 0;
    for (std::uint64_t first = 0; first < count; first += chunk, ++index) {
      lane& l = *pool[index % lanes];
      drain(l);
      const std::uint64_t n = std::min(chunk, count - first);
      const std::uint64_t base = payloads.offsets[first];
      const std::uint64_t bytes = payloads.offsets[first + n] - base;

      if (l.d_bytes.size() < std::max<std::uint64_t>(bytes, 1)) l.d_bytes = device_buffer<std::uint8_t>(std::max<std::uint64_t>(bytes, 1));
      if (!bytes_direct && l.h_bytes.size() < bytes) l.h_bytes = pinned_buffer<std::uint8_t>(bytes);
      reserve(l.h_offsets, l.d_offsets, n + 1);
      if (l.d_modules.size() < n * stride) l.d_modules = device_buffer<std::uint64_t>(n * stride);
      if (!modules_direct && l.h_modules.size() < n * stride) l.h_modules = pinned_buffer<std::uint64_t>(n * stride);
      reserve(l.h_masks, l.d_masks, n);
      reserve(l.h_status, l.d_status, n);
      const auto resident = static_cast<unsigned>(std::min<std::uint64_t>(
          (n + threads_per_block - 1) / threads_per_block * threads_per_block, max_resident_codes));
      if (plain && l.workspaces < resident) {
        l.d_ws = device_buffer<core::encode_workspace>(resident);
        l.workspaces = resident;
      }

      const std::uint8_t* up = payloads.bytes + base;
      if (!bytes_direct && bytes > 0) {
        staged_copy(copies, l.h_bytes.data(), up, bytes);
        up = l.h_bytes.data();
      }
      for (std::uint64_t i = 0; i <= n; ++i) l.h_offsets.data()[i] = payloads.offsets[first + i] - base;
      const cudaStream_t s = l.stream.get();
      if (bytes > 0) QRP_CUDA_TRY(cudaMemcpyAsync(l.d_bytes.data(), up, bytes, cudaMemcpyHostToDevice, s));
      QRP_CUDA_TRY(cudaMemcpyAsync(l.d_offsets.data(), l.h_offsets.data(), (n + 1) * sizeof(std::uint64_t),
                                   cudaMemcpyHostToDevice, s));
      if (plain) {
        kernels::launch_encode_byte_payloads(d_plan.data(), l.d_bytes.data(), l.d_offsets.data(), n, options.mask,
                                             l.d_ws.data(), resident, l.d_modules.data(), l.d_masks.data(),
                                             l.d_status.data(), s);
        QRP_CUDA_TRY(cudaGetLastError());
      } else {
        QRP_CUDA_TRY(encoder.encode_async({l.d_bytes.data(), l.d_offsets.data(), n}, options.mask,
                                          {l.d_modules.data(), l.d_masks.data(),
                                           reinterpret_cast<encode_status*>(l.d_status.data())},
                                          s));
      }
      std::uint64_t* modules_to = modules_direct ? out.modules() + first * stride : l.h_modules.data();
      std::uint8_t* masks_to = masks_direct ? out.masks() + first : l.h_masks.data();
      std::uint8_t* status_to =
          status_direct ? reinterpret_cast<std::uint8_t*>(out.status()) + first : l.h_status.data();
      QRP_CUDA_TRY(cudaMemcpyAsync(modules_to, l.d_modules.data(), n * stride * sizeof(std::uint64_t),
                                   cudaMemcpyDeviceToHost, s));
      QRP_CUDA_TRY(cudaMemcpyAsync(masks_to, l.d_masks.data(), n, cudaMemcpyDeviceToHost, s));
      QRP_CUDA_TRY(cudaMemcpyAsync(status_to, l.d_status.data(), n, cudaMemcpyDeviceToHost, s));
      l.first = first;
      l.count = n;
    }
    for (auto& l : pool) drain(*l);
  } catch (...) {
    // Copies in flight may still read the caller's payloads or write its results: wait for them
    // before the caller gets control (and perhaps frees that memory).
    abandon();
    throw;
  }
}

struct resident_encode::state {
  cuda::device_encoder encoder;
  int mask;
  std::uint64_t count;
  device_buffer<std::uint8_t> bytes, masks, status;
  device_buffer<std::uint64_t> offsets, modules;
  stream_owner stream;
  event_timer timer;

  state(const payload_batch_view& p, const batch_encode_options& o)
      : encoder(o.version, o.ecc),
        mask(o.mask),
        count(p.count),
        bytes(std::max<std::uint64_t>(p.offsets[p.count] - p.offsets[0], 1)),
        masks(p.count),
        status(p.count),
        offsets(p.count + 1),
        modules(p.count * encoder.words_per_symbol())
  {
    std::vector<std::uint64_t> rebased(p.count + 1);
    for (std::uint64_t i = 0; i <= p.count; ++i) rebased[i] = p.offsets[i] - p.offsets[0];
    QRP_CUDA_TRY(cudaMemcpy(bytes.data(), p.bytes + p.offsets[0], rebased[p.count], cudaMemcpyHostToDevice));
    QRP_CUDA_TRY(cudaMemcpy(offsets.data(), rebased.data(), rebased.size() * 8, cudaMemcpyHostToDevice));
  }
};

resident_encode::resident_encode(const payload_batch_view& payloads, const batch_encode_options& options)
    : s_(std::make_unique<state>(payloads, options))
{
}

resident_encode::~resident_encode() = default;

double resident_encode::run()
{
  state& s = *s_;
  const cudaStream_t stream = s.stream.get();
  return s.timer.seconds(stream, [&] {
    QRP_CUDA_TRY(s.encoder.encode_async(
        {s.bytes.data(), s.offsets.data(), s.count}, s.mask,
        {s.modules.data(), s.masks.data(), reinterpret_cast<encode_status*>(s.status.data())}, stream));
  });
}

std::uint64_t resident_encode::failed() const
{
  std::vector<std::uint8_t> status(s_->count);
  QRP_CUDA_TRY(cudaMemcpy(status.data(), s_->status.data(), s_->count, cudaMemcpyDeviceToHost));
  std::uint64_t failed = 0;
  for (std::uint8_t v : status) failed += v != 0;
  return failed;
}

}  // namespace qrplate::host
