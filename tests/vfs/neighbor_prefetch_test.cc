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

// Reads chunks as a guest would through vigo-fs: a chunk not cached is a
// miss whose own fill lands after the next read (a range read answers it
// first); what is asked for here lands before the next read.
struct Reader {
  bool fills_land = true;  // false: lazy fills that wait out the whole run (16 random readers)
  NeighborPrefetch n;
  std::set<std::uint32_t> cached, asked;
  std::vector<std::uint32_t> landing;  // misses whose fill lands after the next read
  std::size_t misses = 0, asked_twice = 0, asked_while_filling = 0;

  Fetch read(std::uint32_t first, std::uint32_t count, std::uint32_t chunks = 1) {
    std::vector<bool> missed;
    std::vector<std::uint32_t> filling;
    for (std::uint32_t c = first; c < first + chunks; ++c) {
      missed.push_back(!cached.contains(c));
      misses += missed.back() ? 1 : 0;
      if (missed.back()) filling.push_back(c);
    }
    auto d = n.on_read(first, missed, count, [&](std::uint32_t j) { return cached.contains(j); });
    for (const std::uint32_t j : d.fetch) {
      asked_twice += asked.insert(j).second ? 0 : 1;
      asked_while_filling += std::count(landing.begin(), landing.end(), j) + std::count(filling.begin(), filling.end(), j);
      cached.insert(j);
    }
    if (fills_land) cached.insert(landing.begin(), landing.end());
    landing = filling;
    return d.fetch;
  }
};

NeighborPrefetch::Decision one(NeighborPrefetch& n, std::uint32_t i, std::uint32_t count, bool missed,
                               bool available = false) {
  return n.on_read(i, {missed}, count, [&](std::uint32_t) { return available; });
}

TEST(NeighborPrefetchTest, MissesFarApartAskForNothing) {
  Reader r;
  for (const std::uint32_t i : {10u, 50u, 90u, 130u, 170u, 210u}) EXPECT_TRUE(r.read(i, 1000).empty()) << i;
  EXPECT_FALSE(r.n.clustered());
}

TEST(NeighborPrefetchTest, ClusteredMissesAskForThreeOnEachSideNearestFirst) {
  Reader r;
  EXPECT_TRUE(r.read(100, 1000).empty());  // far from anything before it
  EXPECT_TRUE(r.read(20, 1000).empty());   // far
  EXPECT_TRUE(r.read(22, 1000).empty());   // near 20, but 3 events are too few to judge
  // Near 20: 2 of 4. 20 and 22 are recent (their reads fill them).
  EXPECT_EQ(r.read(18, 1000), (Fetch{19, 17, 16, 21, 15}));
  EXPECT_TRUE(r.n.clustered());
  EXPECT_TRUE(r.read(60, 1000).empty());  // far: 2 of 5
  EXPECT_FALSE(r.n.clustered());
  // A read of cached chunks not asked for is no event.
  EXPECT_TRUE(one(r.n, 100, 1000, false, true).fetch.empty());
  EXPECT_EQ(r.asked_while_filling, 0u);
}

TEST(NeighborPrefetchTest, AReadOfTwoChunksIsOneEventAndItsOwnChunksAreNeverAsked) {
  // Reads across a chunk boundary, spread over the image: the second chunk
  // of a read is not near the first (one event, judged as a whole).
  Reader r;
  std::mt19937 gen{13};
  for (int i = 0; i < 500; ++i) (void)r.read(static_cast<std::uint32_t>(gen() % 99999), 100000, 2);
  EXPECT_TRUE(r.asked.empty());
  EXPECT_FALSE(r.n.clustered());
  // Clustered two-chunk reads ask for what lies beyond the pair.
  Reader c;
  for (const std::uint32_t i : {500u, 100u, 103u}) (void)c.read(i, 1000, 2);  // 103 near 101
  EXPECT_EQ(c.read(97, 1000, 2), (Fetch{99, 96, 95, 94}));  // near 100; 100 and 101 recent
  EXPECT_EQ(c.asked_while_filling, 0u);
}

TEST(NeighborPrefetchTest, TheImageEndsAndCachedChunksAreNotAskedFor) {
  Reader r;
  r.cached = {3};
  for (const std::uint32_t i : {0u, 5u, 1u}) (void)r.read(i, 6);  // 5 far from 0; 1 near 0
  EXPECT_EQ(r.read(4, 6), (Fetch{2}));  // near 5: 2 of 4; 5 recent, 3 cached, 6 past the end, 1 recent
  Reader low;
  for (const std::uint32_t i : {10u, 4u, 2u}) (void)low.read(i, 20);
  EXPECT_EQ(low.read(1, 20), (Fetch{0, 3}));  // near 2: 2 and 4 are recent, then 0 and 3; -1 is before the start
}

TEST(NeighborPrefetchTest, UniformRandomReadsAskForAlmostNothing) {
  // Random reads over a 1 GiB image (1,024 chunks of 1 MiB), 4,000 of them,
  // as the benchmark's LAN cells do: they land near one of the last 16
  // about one time in twelve.
  Reader r;
  std::mt19937 gen{7};
  for (int i = 0; i < 4000; ++i) (void)r.read(static_cast<std::uint32_t>(gen() % 1024), 1024);
  EXPECT_LE(r.asked.size(), 4u);
  Reader big;
  for (int i = 0; i < 1000; ++i) (void)big.read(static_cast<std::uint32_t>(gen() % 100000), 100000);
  EXPECT_TRUE(big.asked.empty());
  // 16 random readers' lazy fills wait for a pause that never comes: every
  // read of a chunk read before misses again. Those repeats must not make
  // the reads look clustered (20 runs, as the benchmark's cells).
  std::size_t most = 0;
  for (unsigned seed = 0; seed < 20; ++seed) {
    Reader lazy;
    lazy.fills_land = false;
    std::mt19937 g{seed};
    for (int i = 0; i < 4000; ++i) (void)lazy.read(static_cast<std::uint32_t>(g() % 1024), 1024);
    most = std::max(most, lazy.asked.size());
  }
  EXPECT_LE(most, 4u);
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
  EXPECT_EQ(r.asked_while_filling, 0u);
  // Fetched for nothing: at most the chunks just outside the region.
  std::size_t outside = 0;
  for (const std::uint32_t j : r.asked) outside += (j < 200 || j >= 264) ? 1 : 0;
  EXPECT_LE(outside, 2 * NeighborPrefetch::kReach);
}

TEST(NeighborPrefetchTest, AReaderThatTurnsClusteredIsServedAtOnce) {
  // Spread reads first (nothing asked for), then a region: judged on what
  // it does now, not on a budget its spread phase used up.
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

TEST(NeighborPrefetchTest, AChunkMissedAgainIsNearOnce) {
  // A boot reads a chunk's inodes a few reads apart: each a round trip
  // while the chunk is only range-read. Reading a recent chunk again is
  // near, once per chunk.
  NeighborPrefetch n;
  for (const std::uint32_t i : {100u, 100u, 300u}) EXPECT_TRUE(one(n, i, 1000, true).fetch.empty()) << i;
  EXPECT_FALSE(n.clustered());  // 100 far, 100 near, 300 far
  (void)one(n, 300, 1000, true);
  EXPECT_TRUE(n.clustered());  // ... 300 near: two of four
}

TEST(NeighborPrefetchTest, ManyMissesOfOneChunkCountOnce) {
  // A range-first read misses until its chunk arrives whole: many misses of
  // one chunk neither make nor break a cluster.
  NeighborPrefetch n;
  for (int k = 0; k < 10; ++k) EXPECT_TRUE(one(n, 500, 1000, true).fetch.empty());
  for (const std::uint32_t i : {700u, 900u}) (void)one(n, i, 1000, true);
  EXPECT_FALSE(n.clustered());  // 500 far, 500 near (once), 700 far, 900 far
  for (const std::uint32_t i : {10u, 12u, 14u}) (void)one(n, i, 1000, true);
  EXPECT_FALSE(n.clustered());  // ... 10 far, 12 near, 14 near: three of seven
  (void)one(n, 16, 1000, true);
  EXPECT_TRUE(n.clustered());  // four of eight
  for (int k = 0; k < 40; ++k) (void)one(n, 16, 1000, true);
  EXPECT_TRUE(n.clustered());
}

TEST(NeighborPrefetchTest, AtMostSixteenInFlight) {
  // Nothing asked for ever arrives: the asking stops at kMaxInFlight.
  NeighborPrefetch n;
  std::size_t most = 0;
  for (std::uint32_t i = 0; i < 40; ++i) {
    (void)one(n, 100 + 2 * i, 1000, true);  // near the one before; the odd chunks between are never read
    EXPECT_LE(n.pending(), NeighborPrefetch::kMaxInFlight);
    most = std::max(most, n.pending());
  }
  EXPECT_EQ(most, NeighborPrefetch::kMaxInFlight);
}

TEST(NeighborPrefetchTest, AChunkReadAfterItWasAskedForCountsOnceAndLateReadsAsWasted) {
  Reader r;
  for (const std::uint32_t i : {100u, 20u, 22u}) (void)r.read(i, 1000);
  EXPECT_EQ(r.read(18, 1000), (Fetch{19, 17, 16, 21, 15}));
  auto d = one(r.n, 19, 1000, false, true);
  EXPECT_EQ(d.used, 1u);
  d = one(r.n, 19, 1000, false, true);
  EXPECT_EQ(d.used, 0u);
  EXPECT_TRUE(d.fetch.empty());
  EXPECT_EQ(r.n.used(), 1u);
  // 17, 16, 21 and 15 go unread for kWindow events: wasted.
  for (std::uint32_t i = 0; i <= NeighborPrefetch::kWindow; ++i) (void)r.read(5000 + 10 * i, 10000);
  EXPECT_GE(r.n.wasted(), 4u);
  EXPECT_EQ(r.n.used(), 1u);
}

}  // namespace
}  // namespace vigo::vfs
