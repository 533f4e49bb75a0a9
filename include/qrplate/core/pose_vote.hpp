// Registration's vote (host/scan/tile_registration.cpp): for each trial rotation, every pair of
// (finder detection, expected finder of the plate's lattice) proposes the whole-module shift bin
// that would put one on the other; each touched bin's 2x2 vote sum, less a prior on the shift,
// ranks the (rotation, shift) proposals. QRP_HD pieces, so that the CPU loop and the CUDA kernels
// (kernels/decode/registration_kernels.cu) vote into the same bins and score them alike.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "qrplate/config.hpp"

namespace qrplate::core {

struct pose_vote_grid {
  double cx = 0, cy = 0;      // the rotation's centre: the tile's centre, plate modules
  double search2 = 0;         // shifts farther than sqrt(search2) modules do not vote
  double prior_modules = 1;   // a shift this far costs one vote
  int bins_half = 0;          // bin (0, 0) is the shift (-bins_half, -bins_half)
  int bins_side = 0;          // 2 bins_half + 2: a spare row and column for the 2x2 sums

  QRP_HD std::size_t bins() const { return static_cast<std::size_t>(bins_side) * static_cast<std::size_t>(bins_side); }

  // A detection at plate point (px, py), turned by (ca, sa) = (cos, sin) about the centre.
  QRP_HD void turn(double px, double py, double ca, double sa, double& qx, double& qy) const
  {
    qx = cx + ca * (px - cx) - sa * (py - cy);
    qy = cy + sa * (px - cx) + ca * (py - cy);
  }
  // The bin the turned detection (qx, qy) and the expected finder (ex, ey) vote for; false when
  // the shift is beyond the search radius.
  QRP_HD bool bin_of(double qx, double qy, double ex, double ey, std::uint32_t& bin) const
  {
    const double sx = ex - qx, sy = ey - qy;
    if (sx * sx + sy * sy > search2) return false;
    bin = static_cast<std::uint32_t>((static_cast<int>(std::floor(sy)) + bins_half) * bins_side +
                                     static_cast<int>(std::floor(sx)) + bins_half);
    return true;
  }
  // A touched bin's proposal: a shift on a bin edge splits its votes, so 2x2 bins are scored
  // together; the shift (sx, sy) is their common corner; value = score less the prior.
  QRP_HD void proposal(const int* votes, std::uint32_t bin, int& score, double& sx, double& sy, double& value) const
  {
    const auto side = static_cast<std::uint32_t>(bins_side);
    score = votes[bin] + votes[bin + 1] + votes[bin + side] + votes[bin + side + 1];
    sx = static_cast<int>(bin % side) - bins_half + 1.0;
    sy = static_cast<int>(bin / side) - bins_half + 1.0;
    value = score - (sx * sx + sy * sy) / (prior_modules * prior_modules);
  }
};

// One rotation's proposal as the GPU reports it: the rotation's index, the first pair (in the
// CPU loop's order: detection by detection, its reachable finders in turn) that touched the bin,
// which orders the proposals of a rotation as the CPU lists them.
struct pose_vote_entry {
  std::uint32_t rotation = 0;
  std::uint32_t first_pair = 0;
  int score = 0;
  double value = 0, sx = 0, sy = 0;
};

// Which proposals registration goes on to check (host: scan::keep_proposals_worth_checking; GPU:
// kernels::launch_pose_vote_keep): the best is the highest value, ties going to the first in the
// CPU loop's order (by rotation, then by first pair, unique within a rotation); those within
// max(3, score / 2) of the best's value are kept. better_proposal is a strict total order on the
// entries of one vote, so any reduction order finds the same best.
QRP_HD inline bool better_proposal(const pose_vote_entry& a, const pose_vote_entry& b)
{
  if (a.value != b.value) return a.value > b.value;
  return a.rotation != b.rotation ? a.rotation < b.rotation : a.first_pair < b.first_pair;
}
QRP_HD inline double proposal_cutoff(const pose_vote_entry& best)
{
  const double half = 0.5 * best.score;
  return best.value - (half > 3.0 ? half : 3.0);
}

}  // namespace qrplate::core
