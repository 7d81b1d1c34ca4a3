// SPDX-License-Identifier: Apache-2.0
// The contents of vigo-fs's /.vigo-status file: one JSON object of counters
// (reads served from the cache and from the network, bytes fetched, fetches
// and their mean latency, how long misses waited and the time any did,
// connections up, reconnects, the cache's size) and
// "working_sets": per image version, its recording or prefetch progress.
// Stateless, thread-safe.
#pragma once

#include <string>
#include <vector>

#include "vigo/vfs/chunk_cache.h"
#include "vigo/vfs/connection_pool.h"
#include "vigo/vfs/fetcher.h"
#include "vigo/vfs/working_set.h"

namespace vigo::vfs {

[[nodiscard]] std::string status_json(const FetcherStats& fetcher, const PoolStats& pool,
                                      const ChunkCacheStats& cache,
                                      const std::vector<WorkingSetStatus>& working_sets);

}  // namespace vigo::vfs
