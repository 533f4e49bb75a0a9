// Compile-only guard: instantiates, in device code, the per-item cores that the CUDA decode and
// simulation kernels of issues #6/#7 will call, so that a change making them host-only fails CI
// (which compiles every .cu with nvcc) long before those kernels exist. Nothing launches these.
#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/core/format_decode.hpp"
#include "qrplate/core/rs_decode.hpp"
#include "qrplate/sim/sem_pixel.hpp"

namespace qrplate::kernels::check {

__global__ void decode_symbols(const core::version_plan* plan, const std::uint64_t* modules, std::size_t stride_words,
                               int count, core::decode_workspace* ws, std::uint8_t* out, core::decode_result* results)
{
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= count) return;
  results[i] = core::decode_symbol(*plan, modules + i * stride_words, nullptr, 0, out + i * spec::max_data_codewords,
                                   ws[i]);
}

__global__ void render_rows(sim::sem_params p, sim::tile_pose pose, sim::tile_spec spec, sim::module_window w,
                            std::uint64_t seed, std::uint16_t* out)
{
  const std::uint32_t j = blockIdx.x * blockDim.x + threadIdx.x;
  const sim::tile_context c = sim::make_tile_context(p, pose, spec, w.module_nm, seed);
  if (j < c.height) sim::render_row(p, c, w, j, out + static_cast<std::size_t>(j) * c.width, nullptr);
}

}  // namespace qrplate::kernels::check
