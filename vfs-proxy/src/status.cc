// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/status.h"

#include <nlohmann/json.hpp>

namespace vigo::vfs {
namespace {

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }
double mean_ms(std::uint64_t ns, std::uint64_t n) { return n == 0 ? 0.0 : ms(ns) / static_cast<double>(n); }

}  // namespace

std::string status_json(const FetcherStats& f, const PoolStats& p, const ChunkCacheStats& c,
                        const std::vector<WorkingSetStatus>& working_sets) {
  nlohmann::json j;
  j["hits"] = f.hits;
  j["misses"] = f.misses;
  j["fetches"] = f.fetches;
  j["range_fetches"] = f.range_fetches;
  j["chunk_fetches"] = f.chunk_fetches;
  j["bytes_fetched"] = f.bytes_fetched;
  j["mean_fetch_ms"] = mean_ms(f.fetch_ns, f.fetches);
  j["fetch_errors"] = f.errors;
  j["chunks_in_flight"] = f.in_flight;
  j["fills"] = f.fills;
  j["joined_fetches"] = f.joined;
  j["neighbor_prefetches"] = f.neighbor_prefetches;
  j["neighbor_used"] = f.neighbor_used;
  j["range_waits"] = f.range_waits;
  j["range_wait_ms"] = mean_ms(f.range_wait_ns, f.range_waits);
  j["whole_waits"] = f.whole_waits;
  j["whole_wait_ms"] = mean_ms(f.whole_wait_ns, f.whole_waits);
  j["joined_waits"] = f.joined_waits;
  j["joined_wait_ms"] = mean_ms(f.joined_wait_ns, f.joined_waits);
  j["max_wait_ms"] = ms(f.max_wait_ns);
  j["stalled_ms"] = ms(f.stalled_ns);
  j["connections_up"] = p.connections_up;
  j["connects"] = p.connects;
  j["reconnects"] = p.reconnects;
  j["connect_failures"] = p.connect_failures;
  j["retries"] = p.retries;
  j["timeouts"] = p.timeouts;
  j["requests_queued"] = p.queued;
  j["requests_in_flight"] = p.in_flight;
  j["background_in_flight"] = p.background_in_flight;
  j["diverted"] = p.diverted;
  j["promoted"] = p.promoted;
  j["fills_dropped"] = p.idle_dropped;
  j["cache_chunks"] = c.chunks;
  j["cache_bytes"] = c.bytes;
  j["cache_corrupt"] = c.corrupt;
  j["cache_evictions"] = c.evictions;
  j["cache_rehashed"] = c.rehashed;
  j["cache_trusted"] = c.trusted;
  j["cache_unsynced"] = c.unsynced;
  j["working_sets"] = nlohmann::json::array();
  for (const auto& w : working_sets) {
    nlohmann::json e{{"image", w.image},
                     {"state", w.state},
                     {"chunks", w.chunks},
                     {"prefetched", w.prefetched},
                     {"already_cached", w.already_cached},
                     {"failed", w.failed}};
    if (!w.error.empty()) e["error"] = w.error;
    j["working_sets"].push_back(std::move(e));
  }
  return j.dump(2) + "\n";
}

}  // namespace vigo::vfs
