// A simulator parameter outside its range. It names the member of sem_params or
// simulate_options ("sigma_nm"), so a front end can name its own option for it instead
// (`--sigma-nm 1e+09: must be in 0..1000 nm`); what() reads on its own
// ("SEM model: sigma_nm = 1e+09: must be in 0..1000 nm").
#pragma once

#include <cstdio>
#include <string>
#include <utility>

#include "qrplate/error.hpp"

namespace qrplate::sim {

class parameter_error : public invalid_argument {
 public:
  parameter_error(const std::string& where, std::string name, double value, std::string rule)
      : invalid_argument(where + ": " + name + " = " + format(value) + ": " + rule),
        name_(std::move(name)),
        value_(value),
        rule_(std::move(rule))
  {
  }
  const std::string& name() const noexcept { return name_; }
  double value() const noexcept { return value_; }
  const std::string& rule() const noexcept { return rule_; }  // "must be ..."

  // %g, as the messages print values.
  static std::string format(double v)
  {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }

 private:
  std::string name_;
  double value_;
  std::string rule_;
};

}  // namespace qrplate::sim
