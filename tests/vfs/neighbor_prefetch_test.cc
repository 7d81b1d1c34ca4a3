// SPDX-License-Identifier: Apache-2.0
// NeighborPrefetch: the chunks next to random reads, fetched ahead within a
// budget that only reads of them earn.
#include "vigo/vfs/neighbor_prefetch.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace vigo::vfs {
namespace {

using Fetch = std::vector<std::uint32_t>;
const auto kNothingCached = [](std::uint32_t) { return false; };

TEST(NeighborPrefetchTest, AMissAsksForBothNeighboursAndAPlainHitForNothing) {
  NeighborPrefetch n;
  auto d = n.on_read(10, 100, true, kNothingCached);
  EXPECT_FALSE(d.used);
  EXPECT_EQ(d.fetch, (Fetch{11, 9}));
  d = n.on_read(50, 100, false, kNothingCached);  // a cache hit not asked for here
  EXPECT_FALSE(d.used);
  EXPECT_TRUE(d.fetch.empty());
}

TEST(NeighborPrefetchTest, TheImageEndsAndCachedChunksAreNotAskedFor) {
  NeighborPrefetch n;
  EXPECT_EQ(n.on_read(0, 5, true, kNothingCached).fetch, (Fetch{1}));
  NeighborPrefetch m;
  EXPECT_EQ(m.on_read(4, 5, true, kNothingCached).fetch, (Fetch{3}));
  NeighborPrefetch c;
  EXPECT_EQ(c.on_read(2, 5, true, [](std::uint32_t j) { return j == 3; }).fetch, (Fetch{1}));
}

TEST(NeighborPrefetchTest, UnreadNeighboursStopIt) {
  // Random reads over a large image: their neighbours are never read.
  NeighborPrefetch n;
  std::mt19937 gen{7};
  std::size_t asked = 0;
  for (int i = 0; i < 1000; ++i) asked += n.on_read(gen() % 100000, 100000, true, kNothingCached).fetch.size();
  EXPECT_EQ(asked, NeighborPrefetch::kStartBudget);
  EXPECT_EQ(n.used(), 0u);
}

TEST(NeighborPrefetchTest, ReadNeighboursEarnMoreAndARegionIsCoveredOnce) {
  // A region of 64 chunks read in a random order, as a boot reads its
  // files: each used neighbour extends the run, and no chunk is asked for twice.
  std::vector<std::uint32_t> order(64);
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = 200 + i;
  std::shuffle(order.begin(), order.end(), std::mt19937{3});
  NeighborPrefetch n;
  std::set<std::uint32_t> cached, asked;
  std::size_t misses = 0;
  for (const std::uint32_t i : order) {
    const bool hit = cached.contains(i);
    misses += hit ? 0 : 1;
    cached.insert(i);
    const auto d = n.on_read(i, 1000, !hit, [&](std::uint32_t j) { return cached.contains(j); });
    for (const std::uint32_t j : d.fetch) {
      EXPECT_TRUE(asked.insert(j).second) << j;
      cached.insert(j);  // as if it arrived before the next read
    }
    EXPECT_LE(n.pending(), NeighborPrefetch::kMaxPending);
  }
  // Without it every one of the 64 chunks is a miss (a round trip each).
  EXPECT_GE(n.used(), 16u);
  EXPECT_LE(misses, 48u);
  // What was fetched for nothing: at most the chunks just outside the region
  // and what the budget held pending.
  std::size_t wasted = 0;
  for (const std::uint32_t j : asked) wasted += (j < 200 || j >= 264) ? 1 : 0;
  EXPECT_LE(wasted, 2u);
}

TEST(NeighborPrefetchTest, ANeighbourReadOnlyLongAfterCountsAsWasted) {
  // Many random reads over a small image: every neighbour is read some
  // time, but not soon; that earns nothing.
  NeighborPrefetch n;
  std::mt19937 gen{11};
  std::size_t asked = 0;
  std::set<std::uint32_t> cached;
  for (int i = 0; i < 2000; ++i) {
    const std::uint32_t c = gen() % 1024;
    const bool hit = cached.contains(c);
    cached.insert(c);
    asked += n.on_read(c, 1024, !hit, [&](std::uint32_t j) { return cached.contains(j); }).fetch.size();
  }
  EXPECT_LE(asked, 4u);
  EXPECT_GE(n.wasted(), 2u);
}

TEST(NeighborPrefetchTest, AChunkReadAfterItWasAskedForCountsOnce) {
  NeighborPrefetch n;
  (void)n.on_read(10, 100, true, kNothingCached);  // asks 11 and 9
  auto d = n.on_read(11, 100, false, kNothingCached);
  EXPECT_TRUE(d.used);
  d = n.on_read(11, 100, false, kNothingCached);
  EXPECT_FALSE(d.used);
  EXPECT_TRUE(d.fetch.empty());
  EXPECT_EQ(n.used(), 1u);
}

}  // namespace
}  // namespace vigo::vfs
