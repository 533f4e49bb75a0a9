// Where each frame of a plate goes: frames form outer-code groups of K data + M parity frames,
// and the members of a group are spread over a band of code rows so that no single loss
// destroys more than M members of any group:
//   (a) a dust disk covering a `window` x `window` square of code cells anywhere,
//   (b) a scratch destroying one whole row of codes,
//   (c) random loss of codes (then a per-group binomial tail: see docs/FORMAT.md).
//
// Scheme (a contract: the decoder inverts it). The data grid is cut into bands of B code rows.
// Every band has the same G_b group slots. The cells of a band in row-major order t = r * C + c
// hold member m = t / G_b of the band's group slot t % G_b, for t < G_b * (K + M); later cells
// stay empty. So in any row the members of one group sit exactly G_b cells apart, each row holds
// at most ceil(C / G_b) of them, and a window of w x w cells holds at most
// min(w, B) * ceil(min(w, C) / G_b) — or, for tall bands with G_b >= C (one member per row,
// members floor(G_b / C) rows apart), (min(w, B) - 1) / floor(G_b / C) + 1. B is the smallest
// band height >= ceil((K+M)/M) for which both bounds are <= M. Member m < K is data frame group * K + m (frames past the payload's
// last data frame are virtual: zero bodies, not written); member m >= K is parity frame
// group * M + (m - K). With no outer code (M = 0) every frame is its own group, one row a band.
#pragma once

#include <cstdint>

namespace qrplate::plate {

struct placement_slot {
  enum kind_t : std::uint8_t { data, parity, empty } kind = empty;
  std::uint64_t index = 0;  // data frame index or parity frame index
  std::uint64_t group = 0;
  int member = 0;           // 0..K-1 data, K..K+M-1 parity
};

class frame_placement {
 public:
  frame_placement() = default;
  // columns: code cells per row; data_frames: D; k, m: outer code (m = 0: none);
  // window: the dust window side in cells to guarantee. Throws qrplate::invalid_argument when
  // no band height satisfies the bounds (callers then retry with a smaller window).
  frame_placement(std::uint32_t columns, std::uint64_t data_frames, int k, int m, std::uint32_t window);

  std::uint32_t columns() const { return columns_; }
  std::uint32_t band_rows() const { return band_rows_; }
  std::uint32_t groups_per_band() const { return groups_per_band_; }
  std::uint64_t groups() const { return groups_; }
  std::uint64_t bands() const { return bands_; }
  std::uint64_t rows() const { return bands_ * band_rows_; }
  std::uint64_t data_frames() const { return data_frames_; }
  std::uint64_t parity_frames() const { return groups_ * static_cast<std::uint64_t>(m_); }
  int k() const { return k_; }
  int m() const { return m_; }
  std::uint32_t window() const { return window_; }
  // Largest number of one group's members in any row / any window x window square (the bounds
  // above, evaluated for this layout).
  std::uint32_t max_members_per_row() const;
  std::uint32_t max_members_per_window() const;

  placement_slot at(std::uint64_t row, std::uint32_t col) const;
  // The cell of member `member` of group `group`.
  void cell_of(std::uint64_t group, int member, std::uint64_t& row, std::uint32_t& col) const;

 private:
  std::uint32_t columns_ = 0;
  std::uint32_t band_rows_ = 0;
  std::uint32_t groups_per_band_ = 0;
  std::uint32_t window_ = 0;
  std::uint64_t groups_ = 0;
  std::uint64_t bands_ = 0;
  std::uint64_t data_frames_ = 0;
  int k_ = 1;
  int m_ = 0;
};

}  // namespace qrplate::plate
