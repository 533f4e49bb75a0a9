// Frame placement and plate geometry (qrplate/plate/placement.hpp, geometry.hpp). The loss
// guarantees are checked by brute force over the cells (every row, every window position,
// random dust disks, random loss), never with the class's own max_members_* bounds; the random
// loss statistics are held to a binomial tail computed here. Seeded; the seed is printed
// (override with QRPLATE_TEST_SEED=<n>).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "qrplate/error.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/outer_code.hpp"
#include "qrplate/plate/placement.hpp"

namespace {

namespace plate = qrplate::plate;
using plate::frame_placement;
using plate::placement_slot;
using bytes = std::vector<std::uint8_t>;

unsigned test_seed()
{
  static const unsigned seed = [] {
    const char* env = std::getenv("QRPLATE_TEST_SEED");
    const unsigned s = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : 20240611u;
    std::cout << "[ seed     ] QRPLATE_TEST_SEED=" << s << "\n";
    return s;
  }();
  return seed;
}

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b)
{
  return (a + b - 1) / b;
}

struct layout_case {
  std::uint32_t columns;
  std::uint64_t data_frames;
  int k, m;
  std::uint32_t window;
  std::uint32_t block_columns = frame_placement::default_block_columns;

  frame_placement make() const { return frame_placement(columns, data_frames, k, m, window, block_columns); }
};

std::string describe(const layout_case& c)
{
  return "columns " + std::to_string(c.columns) + ", D " + std::to_string(c.data_frames) + ", " + std::to_string(c.k) +
         "+" + std::to_string(c.m) + ", window " + std::to_string(c.window) + ", blocks of " +
         std::to_string(c.block_columns);
}

// Fixed cases: no outer code, tiny, K+M = 256, column counts that are multiples of nothing.
const std::vector<layout_case>& fixed_cases()
{
  static const std::vector<layout_case> cases = {
      {1, 1, 1, 0, 1},
      {1, 1, 1, 1, 1},
      {1, 0, 4, 2, 1},
      {5, 0, 4, 2, 2},
      {13, 1000, 1, 0, 3},
      {7, 50, 5, 3, 2},
      {1, 40, 3, 2, 1},
      {23, 777, 20, 4, 4},
      {37, 5000, 239, 17, 3},
      {101, 3000, 200, 56, 5},
      {64, 2000, 250, 6, 2},
      {9, 1, 239, 16, 2},
      {997, 20000, 239, 16, 7},
      {31, 2390, 239, 16, 16},
      {3, 100, 2, 254, 1},
      // Several column blocks: equal ones, a wider last one, blocks of one column.
      {40, 900, 20, 4, 3, 10},
      {47, 900, 20, 4, 3, 10},
      {29, 500, 1, 0, 2, 7},
      {23, 300, 10, 2, 1, 1},
      {2100, 50000, 239, 16, 5},
      {250, 9000, 100, 20, 4, 64},
  };
  return cases;
}

// Seeded random cases; constructions the class refuses (allowed: no band height fits) are
// skipped, and the refusal must be a qrplate::invalid_argument.
std::vector<layout_case> random_cases(unsigned seed, int count)
{
  std::mt19937_64 rng(seed);
  std::vector<layout_case> out;
  while (static_cast<int>(out.size()) < count) {
    layout_case c{};
    c.columns = static_cast<std::uint32_t>(1 + rng() % 150);
    c.k = static_cast<int>(1 + rng() % 255);
    c.m = rng() % 8 == 0 ? 0 : static_cast<int>(1 + rng() % static_cast<unsigned>(256 - c.k));
    c.window = static_cast<std::uint32_t>(1 + rng() % 8);
    c.block_columns =
        rng() % 3 == 0 ? frame_placement::default_block_columns : static_cast<std::uint32_t>(1 + rng() % 40);
    const int n = c.m == 0 ? 1 : c.k + c.m;
    // Keep the grid to ~40k cells so the brute force stays quick.
    const std::uint64_t max_frames =
        std::max<std::uint64_t>(1, 30000ull * static_cast<std::uint64_t>(c.m == 0 ? 1 : c.k) / n);
    c.data_frames = rng() % (max_frames + 1);
    try {
      frame_placement p = c.make();
      if (p.rows() * p.columns() > 40000) continue;
    } catch (const qrplate::invalid_argument&) {
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Every cell of the placement, row-major.
std::vector<placement_slot> scan(const frame_placement& p)
{
  std::vector<placement_slot> cells;
  cells.reserve(p.rows() * p.columns());
  for (std::uint64_t r = 0; r < p.rows(); ++r)
    for (std::uint32_t c = 0; c < p.columns(); ++c) cells.push_back(p.at(r, c));
  return cells;
}

void check_bijection(const layout_case& c)
{
  SCOPED_TRACE(describe(c));
  const frame_placement p = c.make();
  const bool outer = c.m > 0;
  const std::uint64_t k = outer ? static_cast<std::uint64_t>(c.k) : 1;
  const std::uint64_t mm = outer ? static_cast<std::uint64_t>(c.m) : 0;
  const std::uint64_t n = k + mm;
  const std::uint64_t groups = outer ? ceil_div(c.data_frames, k) : c.data_frames;
  ASSERT_EQ(p.columns(), c.columns);
  ASSERT_EQ(p.data_frames(), c.data_frames);
  ASSERT_EQ(p.groups(), groups);
  ASSERT_EQ(p.parity_frames(), groups * mm);
  ASSERT_EQ(p.k(), static_cast<int>(k));
  ASSERT_EQ(p.m(), c.m);
  ASSERT_GE(p.band_rows(), 1u);
  ASSERT_GE(p.groups_per_band(), 1u);
  ASSERT_EQ(p.rows(), p.bands() * p.band_rows());
  // The header promises B >= ceil((K+M)/M) for an outer code, and one row per band without.
  if (outer)
    EXPECT_GE(p.band_rows(), ceil_div(n, mm));
  else
    EXPECT_EQ(p.band_rows(), 1u);

  const std::uint64_t parity = groups * mm;
  std::vector<int> data_seen(c.data_frames, 0), parity_seen(parity, 0);
  std::uint64_t empty = 0;
  const std::vector<placement_slot> cells = scan(p);
  for (std::uint64_t i = 0; i < cells.size(); ++i) {
    const placement_slot& s = cells[i];
    const std::uint64_t row = i / c.columns;
    const auto col = static_cast<std::uint32_t>(i % c.columns);
    if (s.kind == placement_slot::empty) {
      ++empty;
      continue;
    }
    ASSERT_LT(s.group, groups) << "row " << row << " col " << col;
    ASSERT_GE(s.member, 0);
    ASSERT_LT(s.member, static_cast<int>(n));
    if (s.kind == placement_slot::data) {
      ASSERT_LT(s.index, c.data_frames) << "row " << row << " col " << col;
      ASSERT_LT(s.member, static_cast<int>(k));
      EXPECT_EQ(s.index, s.group * k + static_cast<std::uint64_t>(s.member));  // the documented numbering
      ++data_seen[s.index];
    } else {
      ASSERT_EQ(s.kind, placement_slot::parity);
      ASSERT_LT(s.index, parity) << "row " << row << " col " << col;
      ASSERT_GE(s.member, static_cast<int>(k));
      EXPECT_EQ(s.index, s.group * mm + static_cast<std::uint64_t>(s.member) - k);
      ++parity_seen[s.index];
    }
    std::uint64_t r2 = ~0ull;
    std::uint32_t c2 = ~0u;
    p.cell_of(s.group, s.member, r2, c2);
    EXPECT_EQ(r2, row) << "cell_of(" << s.group << ", " << s.member << ")";
    EXPECT_EQ(c2, col) << "cell_of(" << s.group << ", " << s.member << ")";
  }
  for (std::uint64_t i = 0; i < c.data_frames; ++i) ASSERT_EQ(data_seen[i], 1) << "data frame " << i;
  for (std::uint64_t i = 0; i < parity; ++i) ASSERT_EQ(parity_seen[i], 1) << "parity frame " << i;

  // cell_of of every member of every group, virtual data frames included, lands on the grid, on
  // a cell that at() maps back (a virtual frame's cell is empty), and no two members share one.
  std::vector<char> used(cells.size(), 0);
  for (std::uint64_t g = 0; g < groups; ++g)
    for (int member = 0; member < static_cast<int>(n); ++member) {
      std::uint64_t r = 0;
      std::uint32_t col = 0;
      p.cell_of(g, member, r, col);
      ASSERT_LT(r, p.rows());
      ASSERT_LT(col, c.columns);
      const std::uint64_t at = r * c.columns + col;
      ASSERT_EQ(used[at], 0) << "group " << g << " member " << member << " shares a cell";
      used[at] = 1;
      const placement_slot& s = cells[at];
      const bool is_virtual =
          member < static_cast<int>(k) && g * k + static_cast<std::uint64_t>(member) >= c.data_frames;
      if (is_virtual) {
        EXPECT_EQ(s.kind, placement_slot::empty);
      } else {
        EXPECT_NE(s.kind, placement_slot::empty);
        EXPECT_EQ(s.group, g);
        EXPECT_EQ(s.member, member);
      }
    }

  // Cells off the grid are empty.
  EXPECT_EQ(p.at(p.rows(), 0).kind, placement_slot::empty);
  EXPECT_EQ(p.at(0, c.columns).kind, placement_slot::empty);
  EXPECT_EQ(p.at(p.rows() + 12345, 0).kind, placement_slot::empty);

  // Column blocks as documented: all of block_columns cells but the last, which takes the
  // remainder (1 to 2 blocks wide); a grid narrower than two blocks is one block.
  const std::uint64_t blocks = p.blocks();
  if (c.columns >= 2ull * c.block_columns) {
    EXPECT_EQ(blocks, c.columns / c.block_columns);
    EXPECT_EQ(p.block_columns(), c.block_columns);
  } else {
    EXPECT_EQ(blocks, 1u);
  }
  std::uint64_t width_sum = 0;
  for (std::uint32_t b = 0; b < blocks; ++b) {
    EXPECT_EQ(p.block_x(b), width_sum);
    width_sum += p.block_width(b);
  }
  EXPECT_EQ(width_sum, c.columns);

  // Waste: besides virtual frames, each band x block unit may end in fewer than K+M unused
  // cells (too few for another group), and the last band may have unused group slots.
  const std::uint64_t virtual_frames = outer ? groups * k - c.data_frames : 0;
  EXPECT_EQ(empty, cells.size() - c.data_frames - parity);
  ASSERT_GE(empty, virtual_frames);
  const std::uint64_t band_cells = static_cast<std::uint64_t>(p.band_rows()) * c.columns;
  EXPECT_LT(empty - virtual_frames, band_cells + p.bands() * blocks * (n - 1))
      << "empty " << empty << ", virtual " << virtual_frames;
  if (groups > 0) {
    // No band is wholly empty and no unit could take one more group slot.
    EXPECT_GT(band_cells, 0u);
    EXPECT_LT(band_cells - static_cast<std::uint64_t>(p.groups_per_band()) * n, blocks * n);
    EXPECT_LT((p.bands() - 1) * p.groups_per_band(), groups);
  } else {
    EXPECT_EQ(p.rows(), 0u);
  }

  // Groups are numbered band by band, block by block: each band x block unit holds one
  // contiguous run of group numbers, and the runs follow each other in that order.
  if (groups > 0) {
    std::vector<std::uint64_t> lo(p.bands() * blocks, ~0ull), hi(p.bands() * blocks, 0);
    for (std::uint64_t i = 0; i < cells.size(); ++i) {
      const placement_slot& s = cells[i];
      if (s.kind == placement_slot::empty) continue;
      const std::uint64_t row = i / c.columns;
      const auto col = static_cast<std::uint32_t>(i % c.columns);
      std::uint32_t block = 0;
      while (block + 1 < blocks && col >= p.block_x(block + 1)) ++block;
      const std::uint64_t unit = row / p.band_rows() * blocks + block;
      lo[unit] = std::min(lo[unit], s.group);
      hi[unit] = std::max(hi[unit], s.group);
    }
    std::uint64_t next = 0;
    for (std::uint64_t u = 0; u < lo.size(); ++u) {
      if (lo[u] == ~0ull) continue;  // a unit of the last band holding only virtual frames, or none
      EXPECT_EQ(lo[u], next) << "unit " << u << " starts at group " << lo[u];
      next = hi[u] + 1;
    }
    EXPECT_EQ(next, groups);
  }
}

TEST(Placement, BijectionFixedCases)
{
  for (const layout_case& c : fixed_cases()) check_bijection(c);
}

TEST(Placement, BijectionRandomCases)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  for (const layout_case& c : random_cases(seed, 40)) check_bijection(c);
}

// Counts one group's members in a set of cells; `touched` lists groups to reset afterwards.
struct group_counter {
  std::vector<std::uint32_t> count;
  std::vector<std::uint64_t> touched;
  std::uint32_t worst = 0;
  std::uint64_t worst_group = 0;

  explicit group_counter(std::uint64_t groups) : count(groups, 0) {}
  void add(const placement_slot& s)
  {
    if (s.kind == placement_slot::empty) return;  // virtual frames are never on the plate
    if (count[s.group]++ == 0) touched.push_back(s.group);
    if (count[s.group] > worst) {
      worst = count[s.group];
      worst_group = s.group;
    }
  }
  std::uint32_t reset()
  {
    std::uint32_t most = 0;
    for (std::uint64_t g : touched) {
      most = std::max(most, count[g]);
      count[g] = 0;
    }
    touched.clear();
    return most;
  }
};

void check_loss_guarantees(const layout_case& c, std::mt19937_64& rng)
{
  SCOPED_TRACE(describe(c));
  const frame_placement p = c.make();
  if (c.m == 0 || p.groups() == 0) return;
  const std::vector<placement_slot> cells = scan(p);
  const std::uint64_t rows = p.rows();
  const std::uint32_t cols = c.columns;
  const auto m = static_cast<std::uint32_t>(c.m);
  ASSERT_EQ(p.window(), c.window);
  group_counter counter(p.groups());

  // (b) a scratch across one whole row.
  for (std::uint64_t r = 0; r < rows; ++r) {
    for (std::uint32_t col = 0; col < cols; ++col) counter.add(cells[r * cols + col]);
    ASSERT_LE(counter.reset(), m) << "row " << r << " holds too many members of group " << counter.worst_group;
  }

  // (a) every w x w square of cells, anywhere (clipped at the grid's edges).
  const std::uint64_t w = c.window;
  for (std::uint64_t r0 = 0; r0 < rows; ++r0)
    for (std::uint32_t c0 = 0; c0 < cols; ++c0) {
      for (std::uint64_t r = r0; r < std::min(rows, r0 + w); ++r)
        for (std::uint64_t col = c0; col < std::min<std::uint64_t>(cols, c0 + w); ++col)
          counter.add(cells[r * cols + col]);
      ASSERT_LE(counter.reset(), m) << "window at row " << r0 << " col " << c0 << " holds too many members of group "
                                    << counter.worst_group;
    }

  // (a) dust disks: the window is the number of cells a disk can touch across, so a physical
  // disk is at most w - 1 cell pitches wide. Random centres, open disk against unit cells.
  const double radius = 0.5 * static_cast<double>(w - 1);
  std::uniform_real_distribution<double> ux(-radius, static_cast<double>(cols) + radius);
  std::uniform_real_distribution<double> uy(-radius, static_cast<double>(rows) + radius);
  for (int trial = 0; trial < 3000 && radius > 0; ++trial) {
    const double cx = ux(rng), cy = uy(rng);
    std::uint64_t touched_rows = 0, touched_cols = 0;
    std::int64_t rmin = INT64_MAX, rmax = INT64_MIN, cmin = INT64_MAX, cmax = INT64_MIN;
    const auto r_lo = static_cast<std::int64_t>(std::floor(cy - radius)) - 1;
    const auto r_hi = static_cast<std::int64_t>(std::ceil(cy + radius)) + 1;
    const auto c_lo = static_cast<std::int64_t>(std::floor(cx - radius)) - 1;
    const auto c_hi = static_cast<std::int64_t>(std::ceil(cx + radius)) + 1;
    for (std::int64_t r = std::max<std::int64_t>(0, r_lo);
         r <= std::min<std::int64_t>(static_cast<std::int64_t>(rows) - 1, r_hi); ++r)
      for (std::int64_t col = std::max<std::int64_t>(0, c_lo); col <= std::min<std::int64_t>(cols - 1, c_hi); ++col) {
        // Distance from the centre to the unit square [col, col+1) x [r, r+1).
        const double dx = std::max({static_cast<double>(col) - cx, 0.0, cx - static_cast<double>(col + 1)});
        const double dy = std::max({static_cast<double>(r) - cy, 0.0, cy - static_cast<double>(r + 1)});
        if (dx * dx + dy * dy >= radius * radius) continue;
        counter.add(cells[static_cast<std::uint64_t>(r) * cols + static_cast<std::uint64_t>(col)]);
        rmin = std::min(rmin, r), rmax = std::max(rmax, r), cmin = std::min(cmin, col), cmax = std::max(cmax, col);
      }
    if (rmax >= rmin)
      touched_rows = static_cast<std::uint64_t>(rmax - rmin + 1),
      touched_cols = static_cast<std::uint64_t>(cmax - cmin + 1);
    ASSERT_LE(touched_rows, w);  // the model itself: a disk w - 1 wide touches at most w cells across
    ASSERT_LE(touched_cols, w);
    ASSERT_LE(counter.reset(), m) << "disk at (" << cx << ", " << cy << ") r " << radius << " hits group "
                                  << counter.worst_group << " too often";
  }
}

TEST(Placement, RowWindowAndDiskLossBruteForce)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed ^ 0x5eed0001u);
  for (const layout_case& c : fixed_cases()) check_loss_guarantees(c, rng);
  for (const layout_case& c : random_cases(seed + 1, 40)) check_loss_guarantees(c, rng);
}

// P[Bin(n, p) > m], summed directly.
double binomial_tail_above(int n, double p, int m)
{
  double tail = 0;
  for (int x = m + 1; x <= n; ++x)
    tail += std::exp(std::lgamma(n + 1.0) - std::lgamma(x + 1.0) - std::lgamma(n - x + 1.0) + x * std::log(p) +
                     (n - x) * std::log1p(-p));
  return tail;
}

// (c) Random loss of codes at half the parity rate, M / (2 (K + M)): the fraction of groups
// losing more than M members follows the binomial tail of the members each group has on the
// plate (the placement must not make losses of one group correlated — with independent cell
// losses it cannot, but a placement bug that put two members in one cell would show here).
TEST(Placement, RandomLossFollowsBinomialTail)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed ^ 0x5eed0002u);
  struct stat_case {
    layout_case layout;
    int plates;
  };
  for (const stat_case& sc : {stat_case{{30, 20 * 200, 20, 4, 3}, 60}, stat_case{{61, 239 * 40 - 17, 239, 16, 4}, 200},
                              stat_case{{17, 10 * 300, 10, 2, 1}, 60}}) {
    const layout_case& c = sc.layout;
    SCOPED_TRACE(describe(c));
    const frame_placement p = c.make();
    const std::vector<placement_slot> cells = scan(p);
    const double rate = static_cast<double>(c.m) / (2.0 * (c.k + c.m));
    std::bernoulli_distribution lost(rate);
    // The members each group has on the plate (virtual frames excluded) and its tail.
    std::vector<int> present(p.groups(), 0);
    for (const placement_slot& s : cells)
      if (s.kind != placement_slot::empty) ++present[s.group];
    double expected = 0;
    for (int np : present) expected += binomial_tail_above(np, rate, c.m);
    expected /= static_cast<double>(p.groups());

    std::uint64_t failed = 0, samples = 0;
    std::vector<int> lost_count(p.groups());
    for (int trial = 0; trial < sc.plates; ++trial) {
      std::fill(lost_count.begin(), lost_count.end(), 0);
      for (const placement_slot& s : cells)
        if (s.kind != placement_slot::empty && lost(rng)) ++lost_count[s.group];
      for (int x : lost_count) failed += x > c.m;
      samples += p.groups();
    }
    if (c.k == 239 && c.m == 16) {
      EXPECT_NEAR(binomial_tail_above(255, 16.0 / 510.0, 16), 3.2e-3, 0.15e-3);  // the figure in FORMAT.md
    }
    const double observed = static_cast<double>(failed) / static_cast<double>(samples);
    const double slack = 5.0 / static_cast<double>(samples) + 0.002;
    std::cout << "[ loss     ] " << describe(c) << ": rate " << rate << ", groups losing > M: observed " << observed
              << " over " << samples << " groups, binomial tail " << expected << "\n";
    EXPECT_LE(observed, 3.0 * expected + slack);
    EXPECT_GE(observed, expected / 3.0 - slack);  // the simulation does lose codes
  }
}

// (c) continued: on a small plate of random bodies, every group that lost at most M members is
// restored bit-exact by the outer decoder; one that lost more is reported (recover == false)
// and nothing is written.
TEST(Placement, RandomLossOuterDecodeRecoversEveryRecoverableGroup)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed ^ 0x5eed0003u);
  const int k = 10, m = 4;
  const std::size_t width = 40;
  const std::uint64_t data_frames = 10 * 12 - 3;  // a short last group: 3 virtual frames
  const frame_placement p(11, data_frames, k, m, 2);
  const std::vector<placement_slot> cells = scan(p);
  const plate::outer_encoder enc({k, m}, width);
  const plate::outer_decoder dec({k, m}, width);
  const double rate = static_cast<double>(m) / (2.0 * (k + m));
  std::bernoulli_distribution lost(rate);

  std::uint64_t recovered = 0, refused = 0;
  for (int trial = 0; trial < 150; ++trial) {
    // Bodies of every data frame (virtual ones zero) and every group's parity.
    std::vector<bytes> data(p.groups() * k, bytes(width, 0));
    for (std::uint64_t i = 0; i < data_frames; ++i)
      for (auto& b : data[i]) b = static_cast<std::uint8_t>(rng());
    std::vector<bytes> parity(p.parity_frames(), bytes(width));
    for (std::uint64_t g = 0; g < p.groups(); ++g) {
      std::vector<const std::uint8_t*> dp(k);
      std::vector<std::uint8_t*> pp(m);
      for (int j = 0; j < k; ++j) dp[j] = data[g * k + j].data();
      for (int j = 0; j < m; ++j) pp[j] = parity[g * m + j].data();
      enc.encode(dp.data(), pp.data());
    }
    std::vector<char> data_lost(data.size(), 0), parity_lost(parity.size(), 0);
    for (const placement_slot& s : cells) {
      if (s.kind == placement_slot::empty || !lost(rng)) continue;
      (s.kind == placement_slot::data ? data_lost : parity_lost)[s.index] = 1;
    }
    for (std::uint64_t g = 0; g < p.groups(); ++g) {
      std::vector<const std::uint8_t*> frames(k + m);
      std::vector<bytes> restored(k, bytes(width, 0xA5));
      std::vector<std::uint8_t*> restore(k);
      int missing = 0;
      for (int j = 0; j < k; ++j) {
        const std::uint64_t i = g * k + j;
        frames[j] = data_lost[i] ? nullptr : data[i].data();
        missing += data_lost[i];
        restore[j] = restored[j].data();
      }
      for (int j = 0; j < m; ++j) {
        frames[k + j] = parity_lost[g * m + j] ? nullptr : parity[g * m + j].data();
        missing += parity_lost[g * m + j];
      }
      const bool ok = dec.recover(frames.data(), restore.data());
      if (missing <= m) {
        ASSERT_TRUE(ok) << "trial " << trial << " group " << g << " lost " << missing;
        for (int j = 0; j < k; ++j)
          if (data_lost[g * k + j]) {
            ASSERT_EQ(restored[j], data[g * k + j]) << "trial " << trial << " group " << g << " row " << j;
          }
        ++recovered;
      } else {
        ASSERT_FALSE(ok) << "trial " << trial << " group " << g << " lost " << missing;
        for (int j = 0; j < k; ++j) ASSERT_EQ(restored[j], bytes(width, 0xA5)) << "refused recover wrote row " << j;
        ++refused;
      }
    }
  }
  std::cout << "[ loss     ] 10+4 at rate " << rate << ": " << recovered << " groups restored, " << refused
            << " beyond M reported\n";
  EXPECT_GT(recovered, 0u);
  EXPECT_GT(refused, 0u);  // the beyond-M path was exercised
}

TEST(Placement, RejectsBadArguments)
{
  EXPECT_THROW(frame_placement(0, 10, 4, 2, 1), qrplate::invalid_argument);
  EXPECT_THROW(frame_placement(10, 10, 0, 2, 1), qrplate::invalid_argument);
  EXPECT_THROW(frame_placement(10, 10, 4, -1, 1), qrplate::invalid_argument);
  EXPECT_THROW(frame_placement(10, 10, 250, 7, 1), qrplate::invalid_argument);
}

// Windows wide against M: the class either refuses (qrplate::invalid_argument, the caller then
// tries a smaller window) or its layout holds up under the brute force. At least some are met.
TEST(Placement, StringentWindowsAreMetOrRefused)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed ^ 0x5eed0004u);
  int met = 0, refused = 0;
  for (const layout_case& c :
       {layout_case{10, 10, 4, 1, 2}, layout_case{10, 100, 4, 1, 100}, layout_case{1, 50, 1, 1, 3},
        layout_case{3, 400, 8, 2, 6}, layout_case{40, 2000, 239, 16, 40}, layout_case{7, 700, 60, 4, 9},
        layout_case{200, 3000, 100, 3, 12}}) {
    try {
      const frame_placement p = c.make();
      if (p.rows() * p.columns() > 400000) {
        ++met;  // too large to brute-force here; the bijection still is
        check_bijection(c);
        continue;
      }
    } catch (const qrplate::invalid_argument&) {
      ++refused;
      continue;
    }
    ++met;
    check_bijection(c);
    check_loss_guarantees(c, rng);
  }
  std::cout << "[ windows  ] stringent cases: " << met << " met, " << refused << " refused\n";
  EXPECT_GT(met, 0);
}

// ---------------------------------------------------------------------------------------------
// Geometry

TEST(Geometry, ParsePlateSize)
{
  auto expect_size = [](const char* text, double w, double h) {
    SCOPED_TRACE(text);
    const plate::plate_size_nm s = plate::parse_plate_size(text);
    EXPECT_DOUBLE_EQ(s.width, w);
    EXPECT_DOUBLE_EQ(s.height, h);
  };
  expect_size("A4", 210e6, 297e6);
  expect_size("a4", 210e6, 297e6);
  expect_size("A3", 297e6, 420e6);
  expect_size("A5", 148e6, 210e6);
  expect_size("500x300um", 500e3, 300e3);
  expect_size("2x3mm", 2e6, 3e6);
  expect_size("2.5x0.5mm", 2.5e6, 0.5e6);
  expect_size("1000x2000nm", 1000, 2000);
  for (const char* bad : {"", "A6", "A", "500x300", "x300um", "500xum", "500x300 um", "500*300um", "-5x3mm", "0x3mm",
                          "5x3cm", "1x2x3mm", "nanx3mm", "infx3mm", "5x3mmm", "mm", "5 x 3mm", "0x0nm"}) {
    SCOPED_TRACE(std::string("'") + bad + "'");
    EXPECT_THROW(plate::parse_plate_size(bad), qrplate::invalid_argument);
  }
}

// The published capacity: an A4 plate at 49 nm of version 40-L codes holds about 2.2 TB.
TEST(Geometry, A4At49nmHoldsAbout2TB)
{
  plate::geometry_options o;
  o.version = 40;
  o.ecc = qrplate::ecc_level::L;
  o.module_nm = 49;
  o.plate = plate::parse_plate_size("A4");
  const std::uint64_t frames = plate::plate_capacity_frames(o);
  EXPECT_GT(frames, 7.3e8);  // docs/FORMAT.md: "740 million data frames"
  EXPECT_LT(frames, 7.5e8);
  const double bytes_total = static_cast<double>(frames) * plate::frame_data_bytes(40, qrplate::ecc_level::L);
  std::cout << "[ A4       ] " << frames << " data frames, " << bytes_total / 1e12 << " TB\n";
  EXPECT_GE(bytes_total, 2.1e12);
  EXPECT_LE(bytes_total, 2.3e12);

  const plate::plate_geometry g = plate::make_geometry(o, frames);
  // 210 mm / (181 modules * 49 nm) by 297 mm / (181 * 49 nm), less the margins and header strips.
  const double cells = static_cast<double>(g.columns) * static_cast<double>(g.rows);
  EXPECT_GT(cells, 7.8e8);
  EXPECT_LT(cells, 8.0e8);
  EXPECT_EQ(g.width, static_cast<std::uint64_t>(210e6 / 49));
  EXPECT_EQ(g.height, static_cast<std::uint64_t>(297e6 / 49));
  EXPECT_EQ(g.placement.data_frames(), frames);
  EXPECT_LE(g.placement.rows(), g.rows);
  EXPECT_EQ(g.capacity_frames, frames);
  // The figures docs/FORMAT.md publishes for this plate.
  EXPECT_EQ(g.columns, 23677u);
  EXPECT_EQ(g.rows, 33486u);
  EXPECT_EQ(g.placement.band_rows(), 16u);
  EXPECT_EQ(g.placement.window(), 13u);
  // placement.hpp: blocks of 1024 columns, the last taking the remainder: 22 x 1024 + 1149.
  EXPECT_EQ(g.placement.blocks(), 23677u / 1024u);
  EXPECT_EQ(g.placement.block_width(g.placement.blocks() - 1), 23677u - 22u * 1024u);
  EXPECT_EQ(g.placement.k(), 239);
  EXPECT_EQ(g.placement.m(), 16);
  // Outer-code overhead plus band waste stay small: at least 90% of the cells carry data.
  EXPECT_GE(static_cast<double>(frames), 0.9 * cells);
  EXPECT_GE(g.header_copies, 1u);
  EXPECT_THROW(plate::make_geometry(o, frames + 1), qrplate::invalid_argument);
}

// The layout contract of geometry.hpp, checked on the numbers of a geometry.
void check_layout(const plate::plate_geometry& g, const plate::geometry_options& o)
{
  EXPECT_EQ(g.version, o.version);
  EXPECT_EQ(g.ecc, o.ecc);
  EXPECT_EQ(g.quiet, o.quiet);
  EXPECT_EQ(g.code_size, 4 * o.version + 17);
  EXPECT_EQ(g.pitch, g.code_size + o.quiet);
  EXPECT_GT(g.width, 0u);
  EXPECT_GT(g.height, 0u);
  EXPECT_LE(g.width, 0xFFFFFFFFull);  // a TIFF side is 32-bit
  EXPECT_LE(g.height, 0xFFFFFFFFull);
  EXPECT_EQ(g.placement.columns(), g.columns);
  EXPECT_LE(g.placement.rows(), g.rows);
  ASSERT_GE(g.header_copies, 1u);
  EXPECT_LE(g.header_copies, static_cast<std::uint32_t>(plate::max_header_copies));
  EXPECT_EQ(g.grid_x, static_cast<std::uint64_t>(plate::plate_margin));
  // Header strips: copies inside the plate, light margin around, no overlap between copies.
  EXPECT_EQ(g.header_y(0), static_cast<std::uint64_t>(plate::plate_margin));
  EXPECT_EQ(g.header_y(1) + plate::header_size + plate::plate_margin, g.height);
  for (std::uint32_t i = 0; i < g.header_copies; ++i) {
    EXPECT_GE(g.header_x(0, i), static_cast<std::uint64_t>(plate::plate_margin));
    EXPECT_LE(g.header_x(0, i) + plate::header_size + plate::plate_margin, g.width);
    EXPECT_GE(g.header_x(1, i), static_cast<std::uint64_t>(plate::plate_margin));
    EXPECT_LE(g.header_x(1, i) + plate::header_size + plate::plate_margin, g.width);
    if (i > 0) {
      EXPECT_GE(g.header_x(0, i), g.header_x(0, i - 1) + plate::header_size + plate::header_quiet);
      EXPECT_GE(g.header_x(1, i - 1), g.header_x(1, i) + plate::header_size + plate::header_quiet);
    }
  }
  // Code cells stay clear of the header strips (with a quiet zone between) and of the margins.
  EXPECT_LE(g.header_y(0) + plate::header_size + plate::header_quiet, g.grid_y);
  if (g.rows > 0 && g.columns > 0) {
    EXPECT_LE(g.cell_y(g.rows - 1) + static_cast<std::uint64_t>(g.code_size) + plate::header_quiet, g.header_y(1));
    EXPECT_LE(g.cell_x(g.columns - 1) + static_cast<std::uint64_t>(g.code_size) + plate::plate_margin, g.width);
  }
}

TEST(Geometry, AutoSizedPlatesHoldTheFrames)
{
  struct auto_case {
    int version;
    qrplate::ecc_level ecc;
    int quiet, k, m;
    std::uint64_t frames;
  };
  using qrplate::ecc_level;
  for (const auto_case& c :
       {auto_case{40, ecc_level::L, 4, 239, 16, 1}, auto_case{40, ecc_level::L, 4, 239, 16, 239},
        auto_case{40, ecc_level::L, 4, 239, 16, 240}, auto_case{40, ecc_level::L, 4, 239, 16, 100000},
        auto_case{10, ecc_level::M, 4, 103, 7, 103}, auto_case{5, ecc_level::M, 4, 20, 4, 181},
        auto_case{5, ecc_level::M, 4, 1, 0, 181}, auto_case{1, ecc_level::L, 1, 1, 0, 0},
        auto_case{2, ecc_level::H, 2, 1, 1, 7}, auto_case{20, ecc_level::Q, 4, 200, 56, 5000},
        auto_case{3, ecc_level::L, 4, 239, 16, 33333}}) {
    plate::geometry_options o;
    o.version = c.version;
    o.ecc = c.ecc;
    o.quiet = c.quiet;
    o.k = c.k;
    o.m = c.m;
    SCOPED_TRACE("v" + std::to_string(c.version) + " quiet " + std::to_string(c.quiet) + " " + std::to_string(c.k) +
                 "+" + std::to_string(c.m) + " frames " + std::to_string(c.frames));
    const plate::plate_geometry g = plate::make_geometry(o, c.frames);
    EXPECT_EQ(g.placement.data_frames(), c.frames);
    EXPECT_GE(g.rows, 1u);
    check_layout(g, o);
    // Auto-sized means tight: the plate is exactly margins + header strips + the grid it needs
    // (but never narrower than one header code).
    const std::uint64_t grid_w = 2 * plate::plate_margin + static_cast<std::uint64_t>(g.columns) * g.pitch - c.quiet;
    EXPECT_EQ(g.width, std::max<std::uint64_t>(grid_w, 2 * plate::plate_margin + plate::header_size));
    EXPECT_EQ(g.rows, std::max<std::uint64_t>(g.placement.rows(), 1));
    // Near square for large payloads of big codes. (Not asserted for small codes: there the dust
    // window can make the smallest-area plate a tall one, e.g. v3 at 33333 frames is 1:2.9.)
    if (c.frames >= 10000 && c.version >= 20) {
      const double aspect = static_cast<double>(g.width) / static_cast<double>(g.height);
      EXPECT_GT(aspect, 0.5);
      EXPECT_LT(aspect, 2.0);
    }
  }
}

TEST(Geometry, FixedPlatesLayoutAndCapacity)
{
  struct fixed_case {
    const char* size;
    double module_nm;
    int version;
    int quiet;
    int k, m;
  };
  for (const fixed_case& c : {fixed_case{"500x300um", 49, 10, 4, 239, 16}, fixed_case{"2x3mm", 49, 40, 4, 239, 16},
                              fixed_case{"2x3mm", 100, 25, 2, 239, 16}, fixed_case{"40x60um", 49, 5, 4, 20, 4},
                              fixed_case{"A5", 1000, 40, 4, 239, 16}, fixed_case{"300x200um", 49, 2, 4, 1, 0}}) {
    plate::geometry_options o;
    o.version = c.version;
    o.quiet = c.quiet;
    o.k = c.k;
    o.m = c.m;
    o.module_nm = c.module_nm;
    o.plate = plate::parse_plate_size(c.size);
    SCOPED_TRACE(std::string(c.size) + " at " + std::to_string(c.module_nm) + " nm, v" + std::to_string(c.version));
    const std::uint64_t cap = plate::plate_capacity_frames(o);
    ASSERT_GT(cap, 0u);
    for (std::uint64_t frames : {std::uint64_t{0}, std::uint64_t{1}, cap / 2, cap}) {
      SCOPED_TRACE("frames " + std::to_string(frames));
      const plate::plate_geometry g = plate::make_geometry(o, frames);
      EXPECT_EQ(g.width, static_cast<std::uint64_t>(o.plate->width / c.module_nm));
      EXPECT_EQ(g.height, static_cast<std::uint64_t>(o.plate->height / c.module_nm));
      EXPECT_EQ(g.placement.data_frames(), frames);
      EXPECT_EQ(g.capacity_frames, cap);
      check_layout(g, o);
      // The grid uses the plate: one more column or row would not fit.
      EXPECT_GT(g.cell_x(g.columns) + static_cast<std::uint64_t>(g.code_size) + plate::plate_margin, g.width);
      EXPECT_GT(g.cell_y(g.rows) + static_cast<std::uint64_t>(g.code_size) + plate::header_quiet, g.header_y(1));
    }
    EXPECT_THROW(plate::make_geometry(o, cap + 1), qrplate::invalid_argument);
  }
}

TEST(Geometry, DustWindowCoversA100umDisk)
{
  EXPECT_EQ(plate::dust_window_cells(181, 49), 13u);  // docs/FORMAT.md: v40 at 49 nm
  EXPECT_EQ(plate::dust_window_cells(33, 49), 63u);   // and v3
  for (int pitch : {18, 41, 61, 181, 185})
    for (double nm : {10.0, 49.0, 100.0, 1000.0, 50000.0}) {
      const std::uint32_t w = plate::dust_window_cells(pitch, nm);
      const double pitch_um = pitch * nm / 1000.0;
      // A disk of diameter d touches at most floor(d / pitch) + 2 cells across (fewer when it
      // divides exactly): the window must cover that, and not by more than one cell.
      const double d_cells = plate::dust_diameter_um / pitch_um;
      EXPECT_GE(static_cast<double>(w), std::ceil(d_cells) + 1) << "pitch " << pitch << " nm " << nm;
      EXPECT_GE(static_cast<double>(w - 1) * pitch_um, plate::dust_diameter_um) << "pitch " << pitch << " nm " << nm;
      EXPECT_LE(static_cast<double>(w), std::floor(d_cells) + 2) << "pitch " << pitch << " nm " << nm;
    }
}

TEST(Geometry, RejectsWhatCannotBeMade)
{
  plate::geometry_options o;
  o.version = 10;
  // Wider than a TIFF can be.
  o.plate = plate::plate_size_nm{1e12, 1e6};
  EXPECT_THROW(plate::make_geometry(o, 1), qrplate::invalid_argument);
  // Too small for a header code: no capacity, and make_geometry refuses.
  o.plate = plate::parse_plate_size("2x2um");
  EXPECT_EQ(plate::plate_capacity_frames(o), 0u);
  EXPECT_THROW(plate::make_geometry(o, 0), qrplate::invalid_argument);
  // Bad options.
  plate::geometry_options bad;
  bad.version = 41;
  EXPECT_THROW(plate::make_geometry(bad, 1), qrplate::invalid_argument);
  bad = {};
  bad.quiet = 0;
  EXPECT_THROW(plate::make_geometry(bad, 1), qrplate::invalid_argument);
  bad = {};
  bad.k = 250;
  bad.m = 7;
  EXPECT_THROW(plate::make_geometry(bad, 1), qrplate::invalid_argument);
  bad = {};
  EXPECT_THROW(plate::plate_capacity_frames(bad), qrplate::invalid_argument);  // no plate size
}

}  // namespace
