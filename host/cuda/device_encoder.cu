// qrplate::cuda::device_encoder: the plan and cooperative tables of one (version, level) in
// device memory, and the cooperative kernel's launch on a caller's stream.
#include "qrplate/cuda/device_encoder.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/encode_cuda.hpp"
#include "encode/encode_kernels.cuh"
#include "encode/version_plan_cache.hpp"

namespace qrplate::cuda {

struct device_encoder::state {
  int version;
  ecc_level ecc;
  int size;
  core::cooperative_layout layout;
  host::device_buffer<core::version_plan> plan{1};
  host::device_buffer<core::cooperative_tables> tables{1};
};

device_encoder::device_encoder(int version, ecc_level ecc)
{
  const core::version_plan& plan = host::version_plan_for(version, ecc);  // validates first
  const core::cooperative_tables& tables = host::cooperative_tables_for(version, ecc);
  if (!host::cuda_device_present()) throw backend_unavailable("backend cuda: no CUDA device is present");
  s_ = std::make_unique<state>();
  s_->version = version;
  s_->ecc = ecc;
  s_->size = plan.size;
  s_->layout = core::make_cooperative_layout(plan);
  QRP_CUDA_TRY(cudaMemcpy(s_->plan.data(), &plan, sizeof(plan), cudaMemcpyHostToDevice));
  QRP_CUDA_TRY(cudaMemcpy(s_->tables.data(), &tables, sizeof(tables), cudaMemcpyHostToDevice));
}

device_encoder::~device_encoder() = default;
device_encoder::device_encoder(device_encoder&&) noexcept = default;
device_encoder& device_encoder::operator=(device_encoder&&) noexcept = default;

int device_encoder::version() const { return s_->version; }
ecc_level device_encoder::ecc() const { return s_->ecc; }
std::size_t device_encoder::words_per_symbol() const { return qrplate::words_per_symbol(s_->size); }

cudaError_t device_encoder::encode_async(const device_payloads& in, int mask, const device_symbols& out,
                                         cudaStream_t stream) const noexcept
{
  if (mask < -1 || mask > 7) return cudaErrorInvalidValue;
  return kernels::launch_encode_cooperative(s_->plan.data(), s_->tables.data(), s_->layout, s_->size, in.bytes,
                                            in.offsets, in.count, mask, out.modules, out.masks,
                                            reinterpret_cast<std::uint8_t*>(out.status), stream);
}

}  // namespace qrplate::cuda
