// qrplate's CUDA emulation: thrust::counting_iterator, as far as cub::DeviceSelect reads it.
#pragma once

#include <cstddef>

namespace thrust {

template <typename T>
class counting_iterator {
 public:
  explicit counting_iterator(T first) : first_(first) {}
  T operator[](std::ptrdiff_t i) const { return static_cast<T>(first_ + static_cast<T>(i)); }
  T operator*() const { return first_; }

 private:
  T first_;
};

}  // namespace thrust
