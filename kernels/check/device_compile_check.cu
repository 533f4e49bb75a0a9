// Compile-only guard: instantiates, in device code, the per-item cores that the CUDA decode and
// simulation kernels of issues #6/#7 will call, so that a change making them host-only fails CI
// (which compiles every .cu with nvcc) long before those kernels exist. Nothing launches these.
#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/core/format_decode.hpp"
#include "qrplate/core/rs_decode.hpp"
#include "qrplate/core/sample_symbol.hpp"
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

// The read side's per-code pieces (issue #7's sampling kernel): anchor responses on an integral
// image, the affine map, module sampling and the threshold plane.
__global__ void sample_symbols(const core::version_plan* plan, core::gray_view image, core::integral_view integral,
                               const core::affine_map* maps, int count, float* values, std::uint64_t* modules,
                               std::uint8_t* confidence, core::symbol_levels* levels, float* anchors)
{
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= count) return;
  const int n = plan->size;
  float* v = values + static_cast<std::size_t>(i) * n * n;
  double u0, v0;
  maps[i].apply(3.5, 3.5, u0, v0);
  anchors[2 * i] = core::finder_response(integral, u0, v0, 3.0);
  anchors[2 * i + 1] = core::alignment_response(integral, u0, v0, 3.0);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) {
      double u, w;
      maps[i].apply(c + 0.5, r + 0.5, u, w);
      v[r * n + c] = core::sample_module(image, u, w, 3.0);
    }
  levels[i] = core::threshold_symbol(*plan, v, nullptr, modules + static_cast<std::size_t>(i) * n * plan->words,
                                     confidence + static_cast<std::size_t>(i) * n * n);
}

}  // namespace qrplate::kernels::check
