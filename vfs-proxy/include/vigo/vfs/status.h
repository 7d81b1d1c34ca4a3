// SPDX-License-Identifier: Apache-2.0
// The contents of vigo-fs's /.vigo-status file: one JSON object of counters
// (reads served from the cache and from the network, bytes fetched, fetches
// and their mean latency, connections up, reconnects, the cache's size).
// Stateless, thread-safe.
#pragma once

#include <string>

#include "vigo/vfs/chunk_cache.h"
#include "vigo/vfs/connection_pool.h"
#include "vigo/vfs/fetcher.h"

namespace vigo::vfs {

[[nodiscard]] std::string status_json(const FetcherStats& fetcher, const PoolStats& pool,
                                      const ChunkCacheStats& cache);

}  // namespace vigo::vfs
