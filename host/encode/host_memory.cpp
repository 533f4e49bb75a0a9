// Host memory of a chosen kind (qrplate/host_memory.hpp): pinned through the CUDA backend where
// there is one and a device, else (or when the driver refuses) ordinary aligned memory.
#include "qrplate/host_memory.hpp"

#include <new>

#if defined(QRPLATE_WITH_CUDA)
#include "cuda/pinned_memory.hpp"
#endif

namespace qrplate {

const char* to_string(host_memory m) { return m == host_memory::pinned ? "pinned" : "pageable"; }

namespace detail {

constexpr std::align_val_t host_alignment{64};

void* host_allocate(std::size_t bytes, host_memory& kind)
{
#if defined(QRPLATE_WITH_CUDA)
  if (kind == host_memory::pinned) {
    if (void* p = host::pinned_host_allocate(bytes)) return p;
  }
#endif
  kind = host_memory::pageable;
  return ::operator new(bytes, host_alignment);
}

void host_free(void* p, host_memory kind) noexcept
{
  if (p == nullptr) return;
#if defined(QRPLATE_WITH_CUDA)
  if (kind == host_memory::pinned) {
    host::pinned_host_free(p);
    return;
  }
#endif
  (void)kind;
  ::operator delete(p, host_alignment);
}

}  // namespace detail
}  // namespace qrplate
