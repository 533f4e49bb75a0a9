#include "encode/version_plan_cache.hpp"

#include <array>
#include <mutex>
#include <string>

#include "qrplate/error.hpp"

namespace qrplate::host {

const core::version_plan& version_plan_for(int version, ecc_level ecc)
{
  if (!spec::valid_version(version))
    throw invalid_argument("version " + std::to_string(version) + " out of range 1..40");
  const int level = static_cast<int>(ecc);
  if (level > 3) throw invalid_argument("unknown error correction level");
  static std::array<std::unique_ptr<core::version_plan>, 41 * 4> plans;
  static std::array<std::once_flag, 41 * 4> built;
  const int slot = version * 4 + level;
  std::call_once(built[slot], [&] {
    auto plan = std::make_unique<core::version_plan>();
    core::build_version_plan(version, ecc, *plan);
    plans[slot] = std::move(plan);
  });
  return *plans[slot];
}

}  // namespace qrplate::host
