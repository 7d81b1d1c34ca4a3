// SPDX-License-Identifier: Apache-2.0
// ChunkCache: the proxy's local disk cache of image chunks, by content hash
// (SHA-256 of the raw bytes), shared by every image and mount on the host.
//
// Layout under the cache directory:
//   chunks/<2 hex>/<64 hex>   one raw chunk per file, immutable
//   tmp/                      chunks being written (removed at start)
//   verified                  the verified-chunk records (below)
// Contract:
//   - commit() verifies the bytes against the hash, writes them to tmp/ and
//     renames them into place: a chunk is visible whole or not at all, also
//     after kill -9. It does not wait for the disk (a fetch path that
//     fsynced every chunk twice spent most of a LAN resume doing so):
//     durability comes in groups. A syncer thread takes the chunks
//     committed since its last round, syncs the filesystem (syncfs) and
//     only then appends their records (below). After a power loss a chunk
//     whose bytes did not reach the disk has no record, so its first open
//     hashes it, finds the damage, removes it and reports a miss: a half
//     chunk is never served. The destructor runs a last round.
//   - open() returns a pinned handle (an open descriptor); a pinned chunk is
//     never evicted. Nothing unverified is ever served: every open compares
//     the file's identity (inode, size, mtime, ctime: its FileStamp, from
//     fstat) with the stamp recorded when its bytes were last checked
//     against the hash. Equal: the bytes are trusted without reading them.
//     Different or unknown (a chunk of an old cache, a file written to
//     since): the whole chunk is hashed again; a chunk that fails is
//     removed and open() reports a miss, so the caller fetches it again.
//     Writing to a file through the filesystem changes its ctime, which
//     nobody can set back, so such damage is caught at the next open, also
//     across restarts; damage that bypasses the filesystem (the disk or
//     its block device changed underneath) is not (docs/vfs-proxy.md).
//   - The stamps are durable: the syncer (for commits) and every successful
//     re-hash append a record to `verified` (common/verified_records.h: no
//     fsync; a lost or torn record only costs a re-hash). The constructor
//     reads the records, keeps those of chunks on disk, and rewrites the
//     file compacted; it is compacted again when it grows past twice the
//     index.
//   - Up to fd_cache recently opened chunk files stay open, so a hit costs
//     an fstat and a pread, not an open and a close.
//   - A size quota with LRU eviction: when the cached bytes pass the high
//     watermark, least recently used unpinned chunks go until the low one.
//   - Warm after a restart: the constructor indexes what is on disk.
// Thread-safe (one mutex around the index; file I/O outside it).
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vigo/common/verified_records.h"

namespace vigo::vfs {

using Hash = std::array<std::uint8_t, 32>;

struct ChunkCacheOptions {
  std::filesystem::path dir;
  std::uint64_t quota_bytes = 8ULL << 30;
  double high_watermark = 0.95;  // fraction of the quota that starts eviction
  double low_watermark = 0.80;   // fraction eviction goes down to
  std::size_t fd_cache = 64;     // chunk files kept open (0: none)
};

struct ChunkCacheStats {
  std::uint64_t chunks = 0;
  std::uint64_t bytes = 0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t commits = 0;
  std::uint64_t evictions = 0;
  std::uint64_t corrupt = 0;  // chunks that failed verification and were dropped
  std::uint64_t rehashed = 0;  // opens that hashed the whole chunk (no matching stamp)
  std::uint64_t trusted = 0;   // first opens in this process vouched for by a durable stamp
  std::uint64_t unsynced = 0;  // chunks committed but not yet synced (the syncer's next round)
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
    struct File;  // an open descriptor, closed when the last user lets go
    Handle(ChunkCache* cache, std::string key, std::shared_ptr<const File> file, std::uint64_t size)
        : cache_(cache), key_(std::move(key)), file_(std::move(file)), size_(size) {}
    ChunkCache* cache_;
    std::string key_;
    std::shared_ptr<const File> file_;
    std::uint64_t size_;
  };

  explicit ChunkCache(ChunkCacheOptions options);
  ~ChunkCache();
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
  using File = Handle::File;
  struct Entry {
    std::uint64_t size = 0;
    int pins = 0;
    bool seen = false;                 // opened or committed in this process
    std::optional<FileStamp> stamp;   // the file as it was when its bytes were last verified
    std::list<std::string>::iterator lru;  // position in lru_ (front = most recent)
  };
  std::optional<Handle> open_counted(const Hash& hash, bool count);
  void unpin(const std::string& key);
  void touch(const std::string& key, Entry& e);  // REQUIRES(mu_)
  void forget_file(const std::string& key);       // REQUIRES(mu_): drops it from files_
  void remember_file(const std::string& key, const std::shared_ptr<const File>& file);  // REQUIRES(mu_)
  void evict_if_needed();                          // takes mu_
  void scan();
  // The verified-chunk records (the file `verified`).
  void record(const Hash& hash, const FileStamp& stamp);  // appends one (and takes mu_ to see if it should compact)
  void sync_committed(std::stop_token stop);                // the syncer thread
  void sync_round();                                        // syncfs, then the pending records
  void rewrite_records();                                   // compacts from the index; takes sync_mu_ then mu_

  ChunkCacheOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> index_;  // GUARDED_BY(mu_), key = hex hash
  std::list<std::string> lru_;                    // GUARDED_BY(mu_)
  ChunkCacheStats stats_;                         // GUARDED_BY(mu_)
  std::uint64_t tmp_serial_ = 0;                  // GUARDED_BY(mu_)
  // Recently opened chunk files, most recent first (at most fd_cache).
  std::list<std::pair<std::string, std::shared_ptr<const File>>> files_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, decltype(files_)::iterator> file_index_;  // GUARDED_BY(mu_)
  VerifiedRecords records_;  // `verified`
  // Commits whose records wait for the next sync round.
  mutable std::mutex sync_mu_;
  std::condition_variable_any sync_cv_;
  std::vector<std::pair<Hash, FileStamp>> unsynced_;  // GUARDED_BY(sync_mu_)
  // Hex keys committed and not yet recorded (with how many commits): a
  // compaction of the records leaves them out. Lock order: sync_mu_, mu_.
  std::unordered_map<std::string, int> unsynced_keys_;  // GUARDED_BY(sync_mu_)
  std::jthread syncer_;  // last member: stopped before the rest goes
};

[[nodiscard]] std::string to_hex(const Hash& hash);

}  // namespace vigo::vfs
