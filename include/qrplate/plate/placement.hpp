// Where each frame of a plate goes: frames form outer-code groups of K data + M parity frames,
// and the members of a group are spread over a band of code rows so that no single loss
// destroys more than M members of any group:
//   (a) a dust disk covering a `window` x `window` square of code cells anywhere,
//   (b) a scratch destroying one whole row of codes,
//   (c) random loss of codes (then a per-group binomial tail: see docs/FORMAT.md).
//
// Scheme (a contract: the decoder inverts it). The data grid is cut into bands of B code rows,
// and the columns into blocks of `block_columns` cells (the last block takes the remainder, so
// it is 1 to 2 blocks wide; a grid narrower than two blocks is one block). A band x block unit
// of width w has G_w group slots; its cells in row-major order t = r * w + c hold member
// m = t / G_w of slot t % G_w, for t < G_w * (K + M); later cells stay empty. So in any row the
// members of one group sit exactly G_w cells apart, each row holds at most ceil(w / G_w) of them,
// and a window of s x s cells holds at most min(s, B) * ceil(min(s, w) / G_w) — or, for tall
// bands with G_w >= w (one member per row, floor(G_w / w) rows apart),
// (min(s, B) - 1) / floor(G_w / w) + 1. B is the smallest band height >= ceil((K+M)/M) for
// which both bounds are <= M for every block width. Groups are numbered band by band, block by
// block, slot by slot: a unit's frames are a contiguous run of the payload, so encoder and
// decoder stream unit by unit in memory bounded by the block width, not the plate width.
// Member m < K is data frame group * K + m (frames past the payload's last data frame are
// virtual: zero bodies, not written); member m >= K is parity frame group * M + (m - K). With
// no outer code (M = 0) every frame is its own group and B = 1.
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
  // window: the dust window side in cells to guarantee; block_columns: cells per column block.
  // Throws qrplate::invalid_argument when no band height satisfies the bounds (callers then
  // retry with a smaller window).
  frame_placement(std::uint32_t columns, std::uint64_t data_frames, int k, int m, std::uint32_t window,
                  std::uint32_t block_columns = default_block_columns);

  static constexpr std::uint32_t default_block_columns = 1024;

  std::uint32_t columns() const { return columns_; }
  std::uint32_t band_rows() const { return band_rows_; }
  std::uint32_t groups_per_band() const { return groups_per_band_; }  // all blocks together
  std::uint32_t block_columns() const { return block_columns_; }
  std::uint32_t blocks() const { return blocks_; }
  std::uint32_t block_x(std::uint32_t block) const { return block * block_columns_; }  // first column
  std::uint32_t block_width(std::uint32_t block) const { return block + 1 < blocks_ ? block_columns_ : last_width_; }
  std::uint32_t block_groups(std::uint32_t block) const { return block + 1 < blocks_ ? full_groups_ : last_groups_; }
  // Group number of slot 0 of (band, block).
  std::uint64_t first_group(std::uint64_t band, std::uint32_t block) const
  {
    return band * groups_per_band_ + static_cast<std::uint64_t>(block) * full_groups_;
  }
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
  std::uint32_t row_bound(std::uint32_t width, std::uint32_t groups) const;
  std::uint32_t window_bound(std::uint32_t width, std::uint32_t groups) const;

  std::uint32_t columns_ = 0;
  std::uint32_t band_rows_ = 0;
  std::uint32_t groups_per_band_ = 0;
  std::uint32_t block_columns_ = 0;
  std::uint32_t blocks_ = 1;
  std::uint32_t last_width_ = 0;
  std::uint32_t full_groups_ = 0;  // slots of a full block
  std::uint32_t last_groups_ = 0;  // slots of the last block
  std::uint32_t window_ = 0;
  std::uint64_t groups_ = 0;
  std::uint64_t bands_ = 0;
  std::uint64_t data_frames_ = 0;
  int k_ = 1;
  int m_ = 0;
};

}  // namespace qrplate::plate
