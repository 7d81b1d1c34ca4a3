// SPDX-License-Identifier: Apache-2.0
// vigo-bench-neighbor-replay: vigo-fs's neighbour prefetch (NeighborPrefetch,
// the class vigo-fs runs) replayed on chunk orders, without a mount: how
// many first reads of a chunk would still miss, how many chunks it asks for,
// and how many of those the reads never touch.
//
// Orders replayed:
//   - boot: a working-set profile (a "VWS1" file, working_set.h), the order
//     in which a cold boot first read its chunks; bench/vfs/data holds the
//     test guest's, recorded by bench/instantiation (2026-12-03);
//   - region: 64 contiguous chunks in a shuffled order, --seeds times;
//   - random: --reads uniform random reads over 1,024 chunks (a 1 GiB
//     image), --seeds times, as bench/vfs's random cells read.
// A chunk asked for counts as cached from the next read on (the link is
// taken as fast enough; on the WAN some of those reads would wait for a
// chunk under way instead). Prints a Markdown table; min / mean / max over
// the seeds.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "vigo/vfs/neighbor_prefetch.h"
#include "vigo/vfs/working_set.h"

namespace {

using vigo::vfs::NeighborPrefetch;

struct Outcome {
  std::size_t first_reads = 0;  // distinct chunks the order reads
  std::size_t misses = 0;       // of those, not fetched ahead
  std::size_t asked = 0;        // chunks fetched ahead
  std::size_t never_read = 0;   // of those, never read by the order
};

Outcome replay(const std::vector<std::uint32_t>& order, std::uint32_t chunk_count) {
  NeighborPrefetch n;
  std::set<std::uint32_t> cached, asked;
  Outcome o;
  for (const std::uint32_t i : order) {
    const bool miss = !cached.contains(i);
    o.misses += miss ? 1 : 0;
    cached.insert(i);
    const auto d = n.on_read(i, {miss}, chunk_count, [&](std::uint32_t j) { return cached.contains(j); });
    for (const std::uint32_t j : d.fetch) {
      asked.insert(j);
      cached.insert(j);
    }
  }
  const std::set<std::uint32_t> read(order.begin(), order.end());
  o.first_reads = read.size();
  o.asked = asked.size();
  for (const std::uint32_t j : asked) o.never_read += read.contains(j) ? 0 : 1;
  return o;
}

void row(const std::string& name, const std::vector<Outcome>& runs) {
  auto stat = [&](auto field) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(static_cast<double>(r.*field));
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    char buf[64];
    if (v.size() == 1) {
      std::snprintf(buf, sizeof buf, "%.0f", mean);
    } else {
      std::snprintf(buf, sizeof buf, "%.0f / %.1f / %.0f", *lo, mean, *hi);
    }
    return std::string{buf};
  };
  std::printf("| %s | %zu | %s | %s | %s | %s |\n", name.c_str(), runs.size(), stat(&Outcome::first_reads).c_str(),
              stat(&Outcome::misses).c_str(), stat(&Outcome::asked).c_str(), stat(&Outcome::never_read).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Replay chunk orders through vigo-fs's neighbour prefetch"};
  std::string profile;
  int seeds = 20;
  std::vector<int> reads{200, 400, 2000, 4000};
  app.add_option("--profile", profile, "a working-set profile (VWS1) to replay as the boot order")->required();
  app.add_option("--seeds", seeds, "runs of each shuffled or random order")->check(CLI::Range(1, 10000));
  app.add_option("--reads", reads, "random reads per run (several: one row each)")->check(CLI::Range(1, 10000000));
  CLI11_PARSE(app, argc, argv);
  try {
    std::ifstream in{profile, std::ios::binary};
    if (!in) throw std::runtime_error("cannot open " + profile);
    const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>{in}, {}};
    if (bytes.size() < 8) throw std::runtime_error(profile + " is not a working-set profile (too short)");
    std::uint32_t chunk_count = 0;
    for (int k = 0; k < 4; ++k) chunk_count |= std::uint32_t{bytes[4 + static_cast<std::size_t>(k)]} << (8 * k);
    const auto boot = vigo::vfs::decode_working_set(bytes, chunk_count);

    std::printf("NeighborPrefetch: reach %u, near %u, recent %zu, history %zu (min %zu), in flight %zu\n\n",
                NeighborPrefetch::kReach, NeighborPrefetch::kNear, NeighborPrefetch::kRecent,
                NeighborPrefetch::kHistory, NeighborPrefetch::kMinHistory, NeighborPrefetch::kMaxInFlight);
    std::printf("| order | runs | chunks read | misses | fetched ahead | fetched, never read |\n|---|---|---|---|---|---|\n");
    row("boot (" + profile.substr(profile.find_last_of('/') + 1) + ", " + std::to_string(chunk_count) + " chunks)",
        {replay(boot, chunk_count)});
    std::vector<Outcome> region;
    for (int s = 0; s < seeds; ++s) {
      std::vector<std::uint32_t> order(64);
      std::iota(order.begin(), order.end(), 200u);
      std::shuffle(order.begin(), order.end(), std::mt19937{static_cast<unsigned>(s)});
      region.push_back(replay(order, 1024));
    }
    row("region of 64 chunks, shuffled", region);
    for (const int r : reads) {
      std::vector<Outcome> random;
      for (int s = 0; s < seeds; ++s) {
        std::mt19937 gen{static_cast<unsigned>(s)};
        std::vector<std::uint32_t> order(static_cast<std::size_t>(r));
        for (auto& c : order) c = static_cast<std::uint32_t>(gen() % 1024);
        random.push_back(replay(order, 1024));
      }
      row(std::to_string(r) + " random reads over 1,024 chunks", random);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vigo-bench-neighbor-replay: %s\n", e.what());
    return 1;
  }
  return 0;
}
