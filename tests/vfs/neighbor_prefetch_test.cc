// SPDX-License-Identifier: Apache-2.0
// NeighborPrefetch: the chunks next to random reads, fetched ahead while the
// reads cluster, and not while they are spread over the image.
#include "vigo/vfs/neighbor_prefetch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace vigo::vfs {
namespace {

using Fetch = std::vector<std::uint32_t>;

// Reads chunks as a guest would: a chunk not cached is a miss; what is
// asked for arrives (is cached) before the next read.
struct Reader {
  NeighborPrefetch n;
  std::set<std::uint32_t> cached, asked;
  std::size_t misses = 0, asked_twice = 0;

  Fetch read(std::uint32_t i, std::uint32_t count) {
    const bool miss = !cached.contains(i);
    misses += miss ? 1 : 0;
    cached.insert(i);
    auto d = n.on_read(i, count, miss, [&](std::uint32_t j) { return cached.contains(j); });
    for (const std::uint32_t j : d.fetch) {
      asked_twice += asked.insert(j).second ? 0 : 1;
      cached.insert(j);
    }
    return d.fetch;
  }
};

TEST(NeighborPrefetchTest, MissesFarApartAskForNothing) {
  Reader r;
  for (const std::uint32_t i : {10u, 50u, 90u, 130u, 170u, 210u}) EXPECT_TRUE(r.read(i, 1000).empty()) << i;
  EXPECT_FALSE(r.n.clustered());
}

TEST(NeighborPrefetchTest, ClusteredMissesAskForTwoOnEachSideNearestFirst) {
  Reader r;
  EXPECT_TRUE(r.read(100, 1000).empty());  // far from anything before it
  EXPECT_TRUE(r.read(20, 1000).empty());   // far
  EXPECT_TRUE(r.read(22, 1000).empty());   // near 20, but 1 of 3 events
  EXPECT_EQ(r.read(18, 1000), (Fetch{19, 17, 16}));  // near 20: 2 of 4 (20 is cached)
  EXPECT_TRUE(r.n.clustered());
  EXPECT_TRUE(r.read(60, 1000).empty());  // far: 2 of 5
  EXPECT_FALSE(r.n.clustered());
  // A plain hit of a chunk not asked for is no event.
  EXPECT_TRUE(r.n.on_read(100, 1000, false, [](std::uint32_t) { return true; }).fetch.empty());
}

TEST(NeighborPrefetchTest, TheImageEndsAndCachedChunksAreNotAskedFor) {
  Reader r;
  r.cached = {3};
  for (const std::uint32_t i : {0u, 5u, 1u}) (void)r.read(i, 6);  // 5 far from 0; 1 near 0
  EXPECT_EQ(r.read(4, 6), (Fetch{2}));  // near 5: 2 of 4; 5 and 3 cached, 6 past the end
  Reader low;
  for (const std::uint32_t i : {10u, 3u, 1u}) (void)low.read(i, 20);
  EXPECT_EQ(low.read(0, 20), (Fetch{2}));  // near 1: 1 cached, -1 and -2 before the start
}

TEST(NeighborPrefetchTest, UniformRandomReadsAskForAlmostNothing) {
  // Random reads over a 1 GiB image (1,024 chunks of 1 MiB), 4,000 of them,
  // as the benchmark's LAN cells do: they land near one of the last 32
  // about one time in eight.
  Reader r;
  std::mt19937 gen{7};
  for (int i = 0; i < 4000; ++i) (void)r.read(static_cast<std::uint32_t>(gen() % 1024), 1024);
  EXPECT_LE(r.asked.size(), 4u);
  Reader big;
  for (int i = 0; i < 1000; ++i) (void)big.read(static_cast<std::uint32_t>(gen() % 100000), 100000);
  EXPECT_TRUE(big.asked.empty());
}

TEST(NeighborPrefetchTest, ARegionReadInRandomOrderIsCoveredOnce) {
  // A region of 64 chunks read in a random order, as a boot reads its files.
  std::vector<std::uint32_t> order(64);
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = 200 + i;
  std::shuffle(order.begin(), order.end(), std::mt19937{3});
  Reader r;
  for (const std::uint32_t i : order) (void)r.read(i, 1000);
  // Without it every one of the 64 chunks is a miss (a round trip each).
  EXPECT_LE(r.misses, 40u);
  EXPECT_GE(r.n.used(), 20u);
  EXPECT_EQ(r.asked_twice, 0u);
  // Fetched for nothing: at most the chunks just outside the region.
  std::size_t outside = 0;
  for (const std::uint32_t j : r.asked) outside += (j < 200 || j >= 264) ? 1 : 0;
  EXPECT_LE(outside, 2 * NeighborPrefetch::kReach);
}

TEST(NeighborPrefetchTest, AReaderThatTurnsClusteredIsServedAtOnce) {
  // Spread reads first (nothing asked for), then a region: judged on what
  // it does now, not on a budget its random phase used up.
  Reader r;
  std::mt19937 gen{5};
  for (int i = 0; i < 500; ++i) (void)r.read(static_cast<std::uint32_t>(gen() % 100000), 100000);
  EXPECT_TRUE(r.asked.empty());
  std::vector<std::uint32_t> order(32);
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = 50000 + i;
  std::shuffle(order.begin(), order.end(), std::mt19937{9});
  const std::size_t before = r.misses;
  for (const std::uint32_t i : order) (void)r.read(i, 100000);
  EXPECT_LE(r.misses - before, 24u);
  // And back to spread reads: it stops asking within kHistory of them.
  for (int i = 0; i < 100; ++i) (void)r.read(static_cast<std::uint32_t>(gen() % 100000), 100000);
  EXPECT_FALSE(r.n.clustered());
}

TEST(NeighborPrefetchTest, RepeatedMissesOfOneChunkDoNotCount) {
  // A range-first read misses until its chunk arrives whole: many misses of
  // one chunk neither make nor break a cluster.
  NeighborPrefetch n;
  const auto none = [](std::uint32_t) { return false; };
  for (int k = 0; k < 10; ++k) EXPECT_TRUE(n.on_read(500, 1000, true, none).fetch.empty());
  EXPECT_FALSE(n.clustered());
  for (const std::uint32_t i : {10u, 12u, 14u}) (void)n.on_read(i, 1000, true, none);
  EXPECT_TRUE(n.clustered());  // 500 far, 10 far, 12 near, 14 near
  for (int k = 0; k < 40; ++k) (void)n.on_read(14, 1000, true, none);
  EXPECT_TRUE(n.clustered());
}

TEST(NeighborPrefetchTest, AtMostSixteenInFlight) {
  // Nothing asked for ever arrives: the asking stops at kMaxInFlight.
  NeighborPrefetch n;
  const auto none = [](std::uint32_t) { return false; };
  std::size_t most = 0;
  for (std::uint32_t i = 0; i < 40; ++i) {
    (void)n.on_read(100 + 2 * i, 1000, true, none);
    EXPECT_LE(n.pending(), NeighborPrefetch::kMaxInFlight);
    most = std::max(most, n.pending());
  }
  EXPECT_EQ(most, NeighborPrefetch::kMaxInFlight);
}

TEST(NeighborPrefetchTest, AChunkReadAfterItWasAskedForCountsOnceAndLateReadsAsWasted) {
  Reader r;
  for (const std::uint32_t i : {100u, 20u, 22u}) (void)r.read(i, 1000);
  EXPECT_EQ(r.read(18, 1000), (Fetch{19, 17, 16}));
  auto d = r.n.on_read(19, 1000, false, [](std::uint32_t) { return true; });
  EXPECT_TRUE(d.used);
  d = r.n.on_read(19, 1000, false, [](std::uint32_t) { return true; });
  EXPECT_FALSE(d.used);
  EXPECT_TRUE(d.fetch.empty());
  EXPECT_EQ(r.n.used(), 1u);
  // 17 and 16 go unread for kWindow events: wasted.
  for (std::uint32_t i = 0; i <= NeighborPrefetch::kWindow; ++i) (void)r.read(5000 + 10 * i, 10000);
  EXPECT_GE(r.n.wasted(), 2u);
  EXPECT_EQ(r.n.used(), 1u);
}

}  // namespace
}  // namespace vigo::vfs
