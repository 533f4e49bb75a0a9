#include "encode/version_plan_cache.hpp"

#include <array>
#include <mutex>
#include <string>

#include "qrplate/error.hpp"

namespace qrplate::host {
namespace {

int checked_slot(int version, ecc_level ecc)
{
  if (!spec::valid_version(version))
    throw invalid_argument("version " + std::to_string(version) + " out of range 1..40");
  const int level = static_cast<int>(ecc);
  if (level > 3) throw invalid_argument("unknown error correction level");
  return version * 4 + level;
}

// One lazily built T per (version, level); build(slot's T) runs once.
template <typename T, typename Build>
const T& cached(int slot, Build build)
{
  static std::array<std::unique_ptr<T>, 41 * 4> items;
  static std::array<std::once_flag, 41 * 4> built;
  std::call_once(built[slot], [&] {
    auto item = std::make_unique<T>();
    build(*item);
    items[slot] = std::move(item);
  });
  return *items[slot];
}

}  // namespace

const core::version_plan& version_plan_for(int version, ecc_level ecc)
{
  return cached<core::version_plan>(checked_slot(version, ecc),
                                    [&](core::version_plan& p) { core::build_version_plan(version, ecc, p); });
}

const core::cooperative_tables& cooperative_tables_for(int version, ecc_level ecc)
{
  const core::version_plan& plan = version_plan_for(version, ecc);
  return cached<core::cooperative_tables>(checked_slot(version, ecc),
                                          [&](core::cooperative_tables& t) { core::build_cooperative_tables(plan, t); });
}

}  // namespace qrplate::host
