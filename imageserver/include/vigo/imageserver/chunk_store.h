// SPDX-License-Identifier: Apache-2.0
// ChunkStore: content-addressed chunks on disk, one file per chunk at
// <dir>/<first 2 hex of the hash>/<64 hex>, shared by every image and
// checkpoint (identical chunks are stored once). A chunk file is a 16-byte
// header ("VGC1", u8 encoding 0 raw / 1 zstd, u8 hash algorithm, u16 0,
// u32 raw length, u32 stored length; little-endian) and the stored bytes.
// Chunks are stored zstd-compressed only when that saves at least
// min_saving of the raw size.
//
// Writes are atomic and durable: a temporary file in the chunk's directory,
// fsync, rename, fsync of the directory; a leftover temporary file (a crash
// mid-write) is never read and remove_temp_files() deletes it. put() verifies
// what it wrote decodes back to the same bytes.
//
// Verification: a chunk's bytes are checked against its SHA-256 once, and
// the chunk file's identity at that moment (inode, size, mtime, ctime) is
// recorded in <dir>/verified (common/verified_records.h), shared by every
// vigo-imaged process on the store: each ssh session is a process of its
// own, so a record kept in memory would be lost with the session. put()
// records what it wrote; a read of a chunk with no record, or whose file
// changed since (its ctime moved), reads and hashes the whole chunk and
// records it. A read of a recorded, unchanged chunk trusts it: a range of a
// raw chunk reads just the header and the range (both asked of the disk at
// once), a whole chunk is sent as
// stored without being decompressed or hashed. A corrupt chunk is kInternal
// "corrupt chunk ...". Raw chunks decoded for whole-chunk reads are kept in
// a bounded in-memory LRU cache.
//
// Liveness (which chunks may be removed) is the catalog's business
// (image_catalog.h). Thread-safe (the cache is guarded by a mutex; files are
// only ever replaced atomically).
#pragma once

#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "vigo/common/manifest.h"
#include "vigo/common/unique_fd.h"
#include "vigo/common/verified_records.h"
#include "vigo/common/wire_messages.h"

namespace vigo::imageserver {

[[nodiscard]] std::string hash_hex(const ChunkHash& hash);
// Parses 64 lowercase hex digits; kInvalidArgument otherwise.
[[nodiscard]] ChunkHash parse_hash(std::string_view hex);
[[nodiscard]] ChunkHash hash_chunk(std::span<const std::uint8_t> raw);

struct ChunkStoreOptions {
  int zstd_level = 3;
  double min_saving = 0.10;             // store compressed only if it saves >= 10%
  std::size_t cache_bytes = 64u << 20;  // verified raw chunks kept in memory
  // read_range asks the disk for the range while it reads the header
  // (off only to measure what that saves: vigo-bench-range-reads).
  bool overlap_range_reads = true;
};

struct StoredChunk {
  wire::ChunkEncoding encoding = wire::ChunkEncoding::kRaw;
  std::uint32_t raw_length = 0;
  std::vector<std::uint8_t> bytes;  // as stored (zstd frame or raw bytes)
};

// How reads were verified, since this ChunkStore was made.
struct ChunkStoreStats {
  std::uint64_t hashed = 0;   // loads that hashed the whole chunk (no record, or its file changed)
  std::uint64_t trusted = 0;  // loads that trusted a recorded, unchanged chunk file instead
};

struct PutResult {
  ChunkRef ref;
  bool written = false;  // false: the chunk was already there (dedup)
};

class ChunkStore {
 public:
  // Creates dir if needed.
  explicit ChunkStore(std::filesystem::path dir, ChunkStoreOptions options = {});
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;

  // Stores raw (at most kMaxChunkSize bytes) under its SHA-256.
  PutResult put(std::span<const std::uint8_t> raw);
  [[nodiscard]] bool contains(const ChunkHash& hash) const;
  // The raw bytes, verified (from the cache or from disk). kNotFound if absent.
  [[nodiscard]] std::shared_ptr<const std::vector<std::uint8_t>> read(const ChunkHash& hash);
  // Bytes [offset, offset + length) of the raw chunk, cut at its end
  // (kInvalidArgument for an offset past it); *raw_length is the chunk's
  // size. A verified raw-stored chunk reads only its header and the range;
  // one that is not yet verified is read and hashed in a buffer the calling
  // thread keeps and is not added to the cache: a range is what a proxy
  // asks for before it has the chunk, and a new 1 MiB cache entry costs
  // more in page faults than the read and the hash together.
  [[nodiscard]] std::vector<std::uint8_t> read_range(const ChunkHash& hash, std::uint64_t offset,
                                                     std::uint32_t length, std::uint32_t* raw_length);
  // The stored form, for sending as is; verified as read() does (a
  // verified, unchanged chunk file is sent without decoding it).
  [[nodiscard]] StoredChunk read_stored(const ChunkHash& hash);
  // Unlinks the chunk; returns the bytes freed (0 if it was absent).
  std::uint64_t remove(const ChunkHash& hash);
  // Every chunk on disk (temporary files excluded).
  [[nodiscard]] std::vector<ChunkHash> list() const;
  // Deletes leftover temporary files; the caller guarantees no put() runs.
  std::size_t remove_temp_files();
  [[nodiscard]] std::filesystem::path path_of(const ChunkHash& hash) const;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] ChunkStoreStats stats() const;

 private:
  struct Loaded {
    StoredChunk stored;
    std::shared_ptr<const std::vector<std::uint8_t>> raw;
  };
  Loaded load(const ChunkHash& hash, bool want_stored);
  // Whether the chunk's file, as it is now, is the one whose bytes were verified.
  bool trusted(const ChunkHash& hash, const FileStamp& now);
  void note_verified(const ChunkHash& hash, const FileStamp& stamp);
  void compact_records();
  void count_hashed();
  static UniqueFd open_chunk(const std::filesystem::path& path, const ChunkHash& hash);
  std::shared_ptr<const std::vector<std::uint8_t>> cached(const ChunkHash& hash);
  void remember(const ChunkHash& hash, std::shared_ptr<const std::vector<std::uint8_t>> raw);
  void forget(const ChunkHash& hash);

  std::filesystem::path dir_;
  ChunkStoreOptions options_;

  struct HashOf {
    std::size_t operator()(const ChunkHash& h) const noexcept;
  };
  using LruList = std::list<std::pair<ChunkHash, std::shared_ptr<const std::vector<std::uint8_t>>>>;
  mutable std::mutex mu_;
  LruList lru_;                                                     // GUARDED_BY(mu_); front = newest
  std::unordered_map<ChunkHash, LruList::iterator, HashOf> index_;  // GUARDED_BY(mu_)
  std::size_t cached_bytes_ = 0;                                    // GUARDED_BY(mu_)
  std::unordered_map<ChunkHash, FileStamp, HashOf> stamps_;         // GUARDED_BY(mu_): verified files
  VerifiedRecords records_;                                         // <dir>/verified
  ChunkStoreStats stats_;                                           // GUARDED_BY(mu_)
};

}  // namespace vigo::imageserver
