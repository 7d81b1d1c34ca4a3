// SPDX-License-Identifier: Apache-2.0
// ChunkCache: the proxy's local disk cache of image chunks, by content hash
// (SHA-256 of the raw bytes), shared by every image and mount on the host.
//
// Layout under the cache directory:
//   chunks/<2 hex>/<64 hex>   one raw chunk per file, immutable
//   tmp/                      chunks being written (removed at start)
// Contract:
//   - commit() verifies the bytes against the hash, writes them to tmp/,
//     fsyncs, renames into place and fsyncs the directory: a chunk is
//     visible whole or not at all, also after kill -9 or power loss.
//   - open() returns a pinned handle (an open descriptor); a pinned chunk is
//     never evicted. The first open of a chunk in this process verifies its
//     bytes once (so a chunk damaged while the proxy was down is caught);
//     later opens trust it. A chunk that fails verification is removed and
//     open() reports a miss, so the caller fetches it again.
//   - A size quota with LRU eviction: when the cached bytes pass the high
//     watermark, least recently used unpinned chunks go until the low one.
//   - Warm after a restart: the constructor indexes what is on disk.
// Thread-safe (one mutex around the index; file I/O outside it).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

namespace vigo::vfs {

using Hash = std::array<std::uint8_t, 32>;

struct ChunkCacheOptions {
  std::filesystem::path dir;
  std::uint64_t quota_bytes = 8ULL << 30;
  double high_watermark = 0.95;  // fraction of the quota that starts eviction
  double low_watermark = 0.80;   // fraction eviction goes down to
};

struct ChunkCacheStats {
  std::uint64_t chunks = 0;
  std::uint64_t bytes = 0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t commits = 0;
  std::uint64_t evictions = 0;
  std::uint64_t corrupt = 0;  // chunks that failed verification and were dropped
};

class ChunkCache {
 public:
  // A pinned, open cached chunk. Movable; unpins on destruction.
  class Handle {
   public:
    Handle(Handle&& other) noexcept;
    Handle& operator=(Handle&&) = delete;
    ~Handle();
    [[nodiscard]] std::uint64_t size() const { return size_; }
    // Reads up to out.size() bytes at offset; returns the count (short at the end).
    std::size_t read(std::uint64_t offset, std::span<std::uint8_t> out) const;

   private:
    friend class ChunkCache;
    Handle(ChunkCache* cache, std::string key, int fd, std::uint64_t size)
        : cache_(cache), key_(std::move(key)), fd_(fd), size_(size) {}
    ChunkCache* cache_;
    std::string key_;
    int fd_;
    std::uint64_t size_;
  };

  explicit ChunkCache(ChunkCacheOptions options);
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // The cached chunk, pinned; nullopt on a miss (or a chunk that failed verification).
  std::optional<Handle> open(const Hash& hash);
  // Whether the index has the chunk (no I/O, no verification, no hit counted).
  [[nodiscard]] bool contains(const Hash& hash) const;
  // Verifies and stores a chunk (kInvalidArgument if the bytes do not match
  // the hash; nothing is stored then) and returns it pinned. Committing a
  // chunk that is already there is cheap and returns the existing one.
  Handle commit(const Hash& hash, std::span<const std::uint8_t> raw);

  [[nodiscard]] ChunkCacheStats stats() const;
  [[nodiscard]] std::filesystem::path path_of(const Hash& hash) const;

 private:
  struct Entry {
    std::uint64_t size = 0;
    int pins = 0;
    bool verified = false;  // checked once in this process
    std::list<std::string>::iterator lru;  // position in lru_ (front = most recent)
  };
  std::optional<Handle> open_counted(const Hash& hash, bool count);
  void unpin(const std::string& key);
  void touch(const std::string& key, Entry& e);  // REQUIRES(mu_)
  void evict_if_needed();                          // takes mu_
  void scan();

  ChunkCacheOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> index_;  // GUARDED_BY(mu_), key = hex hash
  std::list<std::string> lru_;                    // GUARDED_BY(mu_)
  ChunkCacheStats stats_;                         // GUARDED_BY(mu_)
  std::uint64_t tmp_serial_ = 0;                  // GUARDED_BY(mu_)
};

[[nodiscard]] std::string to_hex(const Hash& hash);

}  // namespace vigo::vfs
