// SPDX-License-Identifier: Apache-2.0
// Fetcher: image chunks for the FUSE read path, from the local ChunkCache
// or from the image server through the ConnectionPool.
//
//   - fetch(): the whole chunk into the cache. Concurrent fetches of one
//     chunk collapse into one GET_CHUNK (mode stored); the reply is
//     decompressed (zstd) to exactly the manifest's raw length and committed
//     with ChunkCache::commit, which verifies it against its SHA-256. A
//     chunk that does not verify is an error, never data. A caller that
//     joins a fetch under way at a lower priority raises it (promote).
//     Every request for a chunk has the chunk's hash as its affinity (one
//     connection, one server process, per chunk).
//   - cached(): a cache hit, or nullopt.
//   - read_miss(): bytes of one chunk that cached() did not have:
//       * a whole fetch of the chunk is under way: wait for it (urgent);
//       * the file is read sequentially, or the read is more than half a
//         chunk: fetch the whole chunk (urgent) and wait;
//       * otherwise (range first): GET_CHUNK mode range for just the bytes
//         (urgent), and a fill of the whole chunk: for spread random reads
//         a lazy one at idle priority (ConnectionPool: only once no urgent
//         request has run for a while, one per connection), so a burst of
//         random reads never queues behind whole chunks; for clustered
//         reads (NeighborPrefetch) one at background priority, since the
//         reads around will want the rest of the chunk soon (a lazy fill
//         already queued is raised). Range bytes are never cached: only a
//         whole chunk can be verified against its hash.
//   - prefetch(): fetch() in the background if the chunk is not cached
//     (sequential read-ahead, and the neighbours of random reads:
//     prefetch_neighbor); a lazy fill of it already queued is raised to
//     background.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/common/manifest.h"
#include "vigo/vfs/chunk_cache.h"
#include "vigo/vfs/collapser.h"
#include "vigo/vfs/connection_pool.h"

namespace vigo::vfs {

struct FetcherStats {
  std::uint64_t hits = 0;           // reads served from the cache
  std::uint64_t misses = 0;         // reads that needed the network
  std::uint64_t fetches = 0;        // GET_CHUNK replies received (range and whole)
  std::uint64_t range_fetches = 0;
  std::uint64_t chunk_fetches = 0;  // whole chunks committed to the cache
  std::uint64_t bytes_fetched = 0;  // GET_CHUNK payload bytes received
  std::uint64_t fetch_ns = 0;       // total latency of those replies
  std::uint64_t errors = 0;         // failed fetches (network, verification)
  std::uint64_t in_flight = 0;      // whole-chunk fetches under way (lazy fills queued included)
  std::uint64_t fills = 0;          // fills asked for after a range read (lazy, or background while reads cluster)
  std::uint64_t joined = 0;         // misses that waited for a whole fetch under way
  std::uint64_t neighbor_prefetches = 0;  // chunks fetched ahead next to random reads (NeighborPrefetch)
  std::uint64_t neighbor_used = 0;        // of those, read since
  // Misses (pieces of reads) waiting for the network, by how they were
  // served, and how long they waited in all (read_miss to its bytes).
  std::uint64_t range_waits = 0, range_wait_ns = 0;    // range first
  std::uint64_t whole_waits = 0, whole_wait_ns = 0;    // an urgent whole fetch they started
  std::uint64_t joined_waits = 0, joined_wait_ns = 0;  // a whole fetch already under way
  std::uint64_t max_wait_ns = 0;
  // Time during which at least one miss was waiting (the union of the
  // waits): what the network cost readers, however many waited at once.
  std::uint64_t stalled_ns = 0;
};

class Fetcher {
 public:
  // The whole verified chunk, or why not.
  struct ChunkResult {
    std::shared_ptr<const std::vector<std::uint8_t>> raw;
    std::optional<Error> error;
  };
  using ChunkCallback = std::function<void(const ChunkResult&)>;
  using ReadCallback = std::function<void(Outcome)>;

  Fetcher(ChunkCache& cache, ConnectionPool& pool) : cache_(cache), pool_(pool) {}
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  void fetch(const ChunkRef& ref, ChunkCallback done,
             ConnectionPool::Priority priority = ConnectionPool::Priority::kUrgent);
  // The cached chunk (a hit is counted), or nullopt.
  std::optional<ChunkCache::Handle> cached(const ChunkRef& ref);
  // How the file around a read is being read (ProxyFs decides).
  enum class ReadPattern {
    kSpread,      // random reads over the image: range first, lazy fill
    kClustered,   // random reads within a region: range first, fill in the background
    kSequential,  // a sequential run: the whole chunk, no range first
  };
  // Bytes [offset, offset + length) of a chunk cached() did not have
  // (offset + length <= raw_length).
  void read_miss(const ChunkRef& ref, std::uint32_t offset, std::uint32_t length, ReadPattern pattern,
                 ReadCallback done);
  void prefetch(const ChunkRef& ref);
  // prefetch() of a chunk next to a random read (NeighborPrefetch), counted;
  // neighbor_used(n) counts n of them that reads then touched.
  void prefetch_neighbor(const ChunkRef& ref);
  void neighbor_used(std::uint64_t n) { neighbor_used_ += n; }
  // Working-set prefetch: false if the chunk is cached (done is not
  // called); otherwise fetches it in the background, or joins the fetch
  // under way, and calls done when it is cached (or failed).
  bool warm(const ChunkRef& ref, ChunkCallback done);

  [[nodiscard]] FetcherStats stats() const;

 private:
  struct HashKey {
    std::size_t operator()(const ChunkHash& h) const noexcept {
      std::size_t v;
      static_assert(sizeof v <= sizeof h);
      std::memcpy(&v, h.data(), sizeof v);
      return v;
    }
  };
  void on_chunk(const ChunkRef& ref, std::chrono::steady_clock::time_point started, Outcome outcome);
  // The cached chunk, or nullopt on a miss or an unreadable cache file (logged).
  std::optional<ChunkCache::Handle> open_cached(const ChunkHash& hash);
  void count_fetch(std::size_t bytes, std::chrono::steady_clock::time_point started);
  // A miss starts or ends its wait (the stall time and the wait counters).
  enum class Served { kRange, kWhole, kJoined };
  void begin_wait(std::chrono::steady_clock::time_point started);
  void end_wait(Served how, std::chrono::steady_clock::time_point started);

  // Joins the whole fetch of the chunk (starting it if needed) at priority.
  void join_whole(const ChunkRef& ref, ChunkCallback done, ConnectionPool::Priority priority);
  // Asks the pool for the whole chunk (the round of whole_ for it is open).
  void request_whole(const ChunkRef& ref, ConnectionPool::Priority priority);
  static std::uint64_t affinity_of(const ChunkHash& hash);

  struct Ticket {
    std::uint64_t id = 0;
    ConnectionPool::Priority priority = ConnectionPool::Priority::kUrgent;
  };

  ChunkCache& cache_;
  ConnectionPool& pool_;
  Collapser<ChunkHash, ChunkResult, HashKey> whole_;
  std::mutex tickets_mu_;
  std::unordered_map<ChunkHash, Ticket, HashKey> tickets_;  // GUARDED_BY(tickets_mu_): whole fetches queued or running
  std::atomic<std::uint64_t> hits_{0}, misses_{0}, fetches_{0}, range_fetches_{0}, chunk_fetches_{0},
      bytes_fetched_{0}, fetch_ns_{0}, errors_{0}, fills_{0}, joined_{0}, neighbor_prefetches_{0}, neighbor_used_{0};
  mutable std::mutex waits_mu_;
  struct Waits {
    std::uint64_t count[3] = {0, 0, 0};
    std::uint64_t ns[3] = {0, 0, 0};
    std::uint64_t max_ns = 0;
    int waiting = 0;                                // misses waiting now
    std::chrono::steady_clock::time_point since{};  // when `waiting` last left 0
    std::uint64_t stalled_ns = 0;                   // closed stalls
  } waits_;  // GUARDED_BY(waits_mu_)
};

}  // namespace vigo::vfs
