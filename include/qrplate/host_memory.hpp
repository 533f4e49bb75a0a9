// Host memory the CUDA backend can copy to and from without staging. A GPU copies by DMA only
// from page-locked ("pinned") memory: from ordinary (pageable) memory the CUDA backend first
// copies through pinned buffers of its own, a second pass over every byte on the host. Payloads
// and a symbol_batch kept in pinned memory skip that pass (encode.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace qrplate {

enum class host_memory : std::uint8_t { pageable, pinned };

const char* to_string(host_memory m);

namespace detail {
// Allocates `bytes` (> 0) of the kind asked for (pageable: 64-byte aligned; pinned: as CUDA
// gives it, page-aligned) and sets `kind` to the kind given: pageable where pinned memory cannot
// be had (no CUDA backend or device, or the driver refused). Throws std::bad_alloc when no memory
// of either kind is left.
void* host_allocate(std::size_t bytes, host_memory& kind);
void host_free(void* p, host_memory kind) noexcept;
}  // namespace detail

// Owner of n elements of a trivially copyable T in host memory of one kind. As a
// std::vector, resize() keeps the first elements and value-initialises new ones;
// resize_for_overwrite() leaves new ones unspecified, for a buffer the next step writes whole
// (a symbol_batch reused batch after batch is then never cleared). Capacity only grows.
template <typename T>
class host_array {
  static_assert(std::is_trivially_copyable<T>::value, "host_array holds trivially copyable elements");

 public:
  explicit host_array(host_memory asked = host_memory::pageable) : asked_(asked), kind_(asked) {}
  host_array(host_array&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)),
        asked_(o.asked_),
        kind_(o.kind_)
  {
  }
  host_array& operator=(host_array&& o) noexcept
  {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
    std::swap(asked_, o.asked_);
    std::swap(kind_, o.kind_);
    return *this;
  }
  // A copy holds the same elements in memory of the same kind asked for (a pinned copy is a new
  // page-locked allocation: milliseconds for large arrays).
  host_array(const host_array& o) : asked_(o.asked_), kind_(o.asked_)
  {
    resize_for_overwrite(o.size_);
    if (size_) std::memcpy(static_cast<void*>(data_), o.data_, size_ * sizeof(T));
  }
  host_array& operator=(const host_array& o)
  {
    if (this != &o) {
      host_array copy(o);
      *this = std::move(copy);
    }
    return *this;
  }
  ~host_array()
  {
    if (data_) detail::host_free(data_, kind_);
  }

  // The kind of the memory held: what was asked for, or pageable where pinned could not be had
  // (known once memory is held; each growth asks for the kind given at construction again).
  host_memory memory() const { return kind_; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

  void resize(std::size_t n)
  {
    const std::size_t old = size_;
    resize_for_overwrite(n);
    for (std::size_t i = old; i < n; ++i) new (data_ + i) T();
  }

  void resize_for_overwrite(std::size_t n)
  {
    if (n > capacity_) {
      if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_alloc();
      host_memory kind = asked_;
      T* grown = static_cast<T*>(detail::host_allocate(n * sizeof(T), kind));
      if (size_) std::memcpy(static_cast<void*>(grown), data_, size_ * sizeof(T));
      if (data_) detail::host_free(data_, kind_);
      data_ = grown;
      capacity_ = n;
      kind_ = kind;
    }
    size_ = n;
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  host_memory asked_;
  host_memory kind_;  // of the memory held; asked_ until an allocation says otherwise
};

}  // namespace qrplate
