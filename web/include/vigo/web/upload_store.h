// SPDX-License-Identifier: Apache-2.0
// UploadStore: files that clients send in pieces (PUT /v1/uploads/{id})
// before vigod publishes them as images, so that an image of any size
// travels in requests within the body limit and an interrupted upload
// resumes where it stopped.
//
// Each upload has a random id (128 bits, hex), an owner and a file in the
// store's directory. A piece is appended only at exactly the current size:
// a piece sent again at an old offset (a retry) or ahead of the end is
// refused with kConflict, and size() tells the client where to go on. An
// upload belongs to its owner alone: another user's id answers kNotFound,
// as a missing one. Limits: max_bytes per upload (kResourceExhausted,
// nothing written), max_per_owner uploads open per owner
// (kResourceExhausted); an upload idle for idle_timeout is dropped with
// its file. Uploads live in memory and in files: the directory is emptied
// when the store is made, so none survives a restart of vigod.
//
// Thread-safe; pieces of different uploads are written concurrently, two
// pieces of one upload one after the other.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace vigo::web {

struct UploadOptions {
  std::filesystem::path dir;
  std::uint64_t max_bytes = 64ULL << 30;
  int max_per_owner = 4;
  std::chrono::seconds idle_timeout{3600};
};

class UploadStore {
 public:
  using Clock = std::chrono::steady_clock;

  explicit UploadStore(UploadOptions options);
  ~UploadStore();
  UploadStore(const UploadStore&) = delete;
  UploadStore& operator=(const UploadStore&) = delete;

  // A new, empty upload of `owner`; its id.
  [[nodiscard]] std::string create(std::int64_t owner, Clock::time_point now = Clock::now());
  // Appends `bytes` at `offset` (== the current size); the new size.
  std::uint64_t append(const std::string& id, std::int64_t owner, std::uint64_t offset, std::string_view bytes,
                       Clock::time_point now = Clock::now());
  [[nodiscard]] std::uint64_t size(const std::string& id, std::int64_t owner);

  // Takes the upload out of the store, its file now the caller's (publish,
  // then delete it). kNotFound as above.
  [[nodiscard]] std::filesystem::path take(const std::string& id, std::int64_t owner);
  void remove(const std::string& id, std::int64_t owner);

  // Drops uploads idle since before now - idle_timeout; how many.
  std::size_t expire(Clock::time_point now = Clock::now());

 private:
  struct Entry;
  std::shared_ptr<Entry> find(const std::string& id, std::int64_t owner);

  UploadOptions options_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> uploads_;  // GUARDED_BY(mutex_)
};

}  // namespace vigo::web
