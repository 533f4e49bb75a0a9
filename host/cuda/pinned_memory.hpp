// Page-locked host memory through the CUDA runtime, seen from plain C++ (qrplate/host_memory.hpp
// allocates with it; the encode driver and the tile upload ask whether a caller's memory is
// pinned, to copy by DMA from there). Kept apart from the encode driver so that linking these
// does not pull the encoder in.
#pragma once

#include <cstddef>
#include <string>

namespace qrplate::host {

// Probed once. The probe also applies QRPLATE_CUDA_SYNC (auto, spin, yield or block: how host
// threads wait for the device, cudaSetDeviceFlags) before any CUDA context exists.
bool cuda_device_present();
// Device 0 in words, for the labels of measured figures: "NVIDIA H100 80GB HBM3, sm_90, 132 SMs,
// 79.2 GiB, driver 13.0, runtime 13.0"; "" without a device.
std::string cuda_device_summary();
// QRPLATE_CUDA_SYNC's value to cudaDeviceSchedule* flags; false for a value it does not know.
bool cuda_sync_flags(const char* text, unsigned& flags);

// nullptr where none can be had (no device, or the driver refused); never throws.
void* pinned_host_allocate(std::size_t bytes) noexcept;
void pinned_host_free(void* p) noexcept;
// Whether the first and the last byte of [p, p + bytes) lie in page-locked memory (allocated or
// registered with CUDA, by qrplate or not), so that a copy may go by DMA without staging.
bool host_range_pinned(const void* p, std::size_t bytes) noexcept;

}  // namespace qrplate::host
