// Output directories that appear only when complete: work happens in TARGET.partial-PID beside
// the target, renamed onto it by commit(), removed otherwise (an error, an exception).
#pragma once

#include <filesystem>
#include <string>

namespace qrplate::host {

class staging_dir {
 public:
  // Throws qrplate::invalid_argument when `target` exists (unless the caller will never commit,
  // must_not_exist = false), qrplate::io_error when the staging directory cannot be created.
  explicit staging_dir(const std::string& target, bool must_not_exist = true);
  ~staging_dir();
  staging_dir(const staging_dir&) = delete;
  staging_dir& operator=(const staging_dir&) = delete;

  const std::filesystem::path& path() const { return staging_; }
  const std::filesystem::path& target() const { return target_; }
  // Renames the staging directory onto the target (qrplate::io_error on failure).
  void commit();

 private:
  std::filesystem::path target_, staging_;
  bool committed_ = false;
};

}  // namespace qrplate::host
