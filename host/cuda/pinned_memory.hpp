// Page-locked host memory through the CUDA runtime, seen from plain C++ (qrplate/host_memory.hpp
// allocates with it; the encode driver and the tile upload ask whether a caller's memory is
// pinned, to copy by DMA from there). Kept apart from the encode driver so that linking these
// does not pull the encoder in.
#pragma once

#include <cstddef>

namespace qrplate::host {

bool cuda_device_present();  // probed once

// nullptr where none can be had (no device, or the driver refused); never throws.
void* pinned_host_allocate(std::size_t bytes) noexcept;
void pinned_host_free(void* p) noexcept;
// Whether the first and the last byte of [p, p + bytes) lie in page-locked memory (allocated or
// registered with CUDA, by qrplate or not), so that a copy may go by DMA without staging.
bool host_range_pinned(const void* p, std::size_t bytes) noexcept;

}  // namespace qrplate::host
