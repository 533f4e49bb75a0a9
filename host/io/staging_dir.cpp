#include "io/staging_dir.hpp"

#include <unistd.h>

#include <system_error>

#include "qrplate/error.hpp"

namespace qrplate::host {
namespace fs = std::filesystem;

staging_dir::staging_dir(const std::string& target, bool must_not_exist)
{
  std::error_code ec;
  if (must_not_exist && fs::exists(target, ec)) throw invalid_argument("output " + target + " already exists; remove it or choose another -o");
  target_ = fs::absolute(target);
  staging_ = target_.parent_path() / (target_.filename().string() + ".partial-" + std::to_string(::getpid()));
  if (!fs::create_directories(staging_, ec) || ec)
    throw io_error("cannot create " + staging_.string() + ": " + (ec ? ec.message() : "it exists"));
}

staging_dir::~staging_dir()
{
  std::error_code ec;
  if (!committed_) fs::remove_all(staging_, ec);
}

void staging_dir::commit()
{
  std::error_code ec;
  fs::rename(staging_, target_, ec);
  if (ec) throw io_error("cannot rename " + staging_.string() + " to " + target_.string() + ": " + ec.message());
  committed_ = true;
}

}  // namespace qrplate::host
