// SPDX-License-Identifier: Apache-2.0
// Working-set prefetch: record which chunks a cold start of an image
// version needs, in the order it first needs them; store that profile with
// the version on the image server (PUT_PROFILE); on a later cold start of
// the same version, fetch the profile's chunks ahead of the reads, in the
// background, in that order (GET_PROFILE).
//
// Per image version, the first open() in this process asks the server for
// a profile and meanwhile records every chunk a read touches:
//   - a profile exists: recording stops and the replay starts: up to
//     `depth` chunks in flight (background priority, so demand reads go
//     first), cached ones skipped; a chunk a read is already fetching is
//     joined, never fetched twice;
//   - none exists: recording goes on until no new chunk was touched for
//     `idle`, or `window` after the first read, then the profile is stored.
//     A version is recorded once per process; an existing profile is never
//     replaced (delete the version's profile on the server to record anew).
// Any failure (server unreachable, a bad profile) only ends the prefetch
// for that version, logged; reads are never affected.
//
// The profile's bytes (opaque to the server, at most wire::kMaxProfile):
//   "VWS1", u32 chunk count of the manifest, u32 n, n x u32 chunk index,
// little-endian, indices distinct and below the chunk count.
//
// Thread-safe. One thread ends recordings (it wakes every 100 ms); replays
// run on the pool's callbacks. The pool and the fetcher must outlive this
// object; the destructor stores recordings that have chunks, waiting at
// most the pool's request timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "vigo/common/manifest.h"
#include "vigo/vfs/connection_pool.h"
#include "vigo/vfs/fetcher.h"

namespace vigo::vfs {

[[nodiscard]] std::vector<std::uint8_t> encode_working_set(std::uint32_t chunk_count,
                                                           const std::vector<std::uint32_t>& order);
// Throws kInvalidArgument (field "profile") for anything but a valid
// profile of a manifest with chunk_count chunks.
[[nodiscard]] std::vector<std::uint32_t> decode_working_set(std::span<const std::uint8_t> bytes,
                                                            std::uint32_t chunk_count);

struct WorkingSetOptions {
  bool enabled = true;
  std::chrono::milliseconds idle{30000};    // recording ends after this long without a new chunk
  std::chrono::milliseconds window{120000};  // or this long after the first read
  std::uint32_t depth = 8;                   // replay: chunks in flight per version
};

// One image version's recording or replay, as the status file shows it.
struct WorkingSetStatus {
  std::string image;  // name@version
  std::string state;  // probing, recording, storing, stored, replaying, replayed, off, failed
  std::uint32_t chunks = 0;          // recorded, or in the profile
  std::uint32_t prefetched = 0;      // replay: fetched ahead of the reads
  std::uint32_t already_cached = 0;  // replay: found in the cache
  std::uint32_t failed = 0;          // replay: fetches that failed
  std::string error;
};

class WorkingSets {
 public:
  class Version;

  WorkingSets(ConnectionPool& pool, Fetcher& fetcher, WorkingSetOptions options);
  ~WorkingSets();
  WorkingSets(const WorkingSets&) = delete;
  WorkingSets& operator=(const WorkingSets&) = delete;

  // At each open of an image version (its manifest known); the handle is
  // what touched() takes.
  std::shared_ptr<Version> opened(const std::shared_ptr<const Manifest>& manifest);
  // A read touched chunks [first, last] of the version.
  void touched(Version& version, std::uint64_t first, std::uint64_t last);

  [[nodiscard]] std::vector<WorkingSetStatus> status() const;

 private:
  struct Context;  // what the pool's callbacks share with this object (they may outlive it)
  void run();      // the recording-ending thread

  std::shared_ptr<Context> ctx_;
  std::thread thread_;
};

}  // namespace vigo::vfs
