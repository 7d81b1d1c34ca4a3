// SPDX-License-Identifier: Apache-2.0
// The reads vigo-bench-vfs times: sequential reads of a file (or of its
// first `limit` bytes) in `block`-sized preads, or `ops` random, block-aligned
// preads by `threads` readers, each with its own descriptor and its own
// seeded generator (seed + reader), so that every system under test reads
// the same offsets; with `loops` > 1 each reader goes over its offsets again
// (a warm cell long enough to time on a busy machine). Every byte read goes into an order-independent checksum,
// so runs on different systems can be checked to have read the same data.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace vigo::bench {

enum class Pattern { kSequential, kRandom };

struct LoadSpec {
  std::string file;
  Pattern pattern = Pattern::kSequential;
  std::size_t block = 1 << 20;
  std::uint64_t ops = 0;    // random: reads in total, shared by the readers
  int threads = 1;          // random: parallel readers
  std::uint64_t limit = 0;  // only the first `limit` bytes (0: the whole file)
  std::uint64_t seed = 1;
  int loops = 1;        // random: each reader reads its offsets this many times (warm cells)
  double think_ms = 0;  // random: pause after each read (diagnosis: lets background work finish)
};

struct LoadResult {
  std::uint64_t file_size = 0;
  std::uint64_t ops = 0;
  std::uint64_t bytes = 0;
  double seconds = 0;              // from the first read to the last reply
  double open_ms = 0;              // the first open, not in `seconds`
  std::vector<double> latency_ms;  // per read, sorted
  std::uint64_t checksum = 0;
};

// Throws std::runtime_error on any failed open or read and on a short read
// inside the file.
LoadResult run_load(const LoadSpec& spec);

// Whether a vigo-fs status (its .vigo-status JSON) shows nothing queued or
// in flight (no fetch, fill, read-ahead or prefetch) and no cached chunk
// waiting for its sync (so the disk is quiet too); false for no status.
bool fetches_idle(const nlohmann::json& status);

// Asks the kernel to drop its cached pages of a file, or of every regular
// file under a directory (posix_fadvise DONTNEED); returns the files done.
std::uint64_t evict_page_cache(const std::string& path);

// Nearest-rank percentile of sorted samples (q in [0, 1]); 0 when empty.
double percentile(const std::vector<double>& sorted, double q);

}  // namespace vigo::bench
