// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/upload_store.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>

#include "vigo/common/error.h"

namespace vigo::web {
namespace fs = std::filesystem;

struct UploadStore::Entry {
  std::int64_t owner = 0;
  fs::path path;
  std::mutex mutex;            // one piece at a time
  std::uint64_t size = 0;      // GUARDED_BY(mutex)
  bool gone = false;           // taken or removed; GUARDED_BY(mutex)
  Clock::time_point last;      // GUARDED_BY(UploadStore::mutex_)
};

namespace {

std::string random_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw Error{ErrorCode::kInternal, "no random bytes for an upload id"};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace

UploadStore::UploadStore(UploadOptions options) : options_(std::move(options)) {
  if (options_.dir.empty()) throw invalid_argument("api.upload_dir", "must be set");
  std::error_code ec;
  fs::remove_all(options_.dir, ec);  // uploads do not survive a restart
  fs::create_directories(options_.dir, ec);
  if (ec) throw invalid_argument("api.upload_dir", options_.dir.string() + ": " + ec.message());
  fs::permissions(options_.dir, fs::perms::owner_all, ec);
}

UploadStore::~UploadStore() {
  std::error_code ec;
  for (const auto& [id, e] : uploads_) fs::remove(e->path, ec);
}

std::string UploadStore::create(std::int64_t owner, Clock::time_point now) {
  expire(now);
  std::lock_guard lock{mutex_};
  const auto open = std::count_if(uploads_.begin(), uploads_.end(), [&](const auto& kv) { return kv.second->owner == owner; });
  if (open >= options_.max_per_owner) {
    throw Error{ErrorCode::kResourceExhausted, "you have " + std::to_string(open) +
                                                   " uploads open already; finish or delete one first"};
  }
  auto e = std::make_shared<Entry>();
  const std::string id = random_id();
  e->owner = owner;
  e->path = options_.dir / id;
  e->last = now;
  const int fd = ::open(e->path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("creating upload file " + e->path.string());
  ::close(fd);
  uploads_.emplace(id, std::move(e));
  return id;
}

std::shared_ptr<UploadStore::Entry> UploadStore::find(const std::string& id, std::int64_t owner) {
  std::lock_guard lock{mutex_};
  const auto it = uploads_.find(id);
  if (it == uploads_.end() || it->second->owner != owner) {
    throw Error{ErrorCode::kNotFound, "no upload '" + id + "'", "upload"};
  }
  return it->second;
}

std::uint64_t UploadStore::append(const std::string& id, std::int64_t owner, std::uint64_t offset,
                                  std::string_view bytes, Clock::time_point now) {
  const auto e = find(id, owner);
  std::lock_guard piece{e->mutex};
  if (e->gone) throw Error{ErrorCode::kNotFound, "no upload '" + id + "'", "upload"};
  if (offset != e->size) {
    throw Error{ErrorCode::kConflict,
                "the upload has " + std::to_string(e->size) + " bytes; send the piece at that offset", "offset"};
  }
  if (bytes.size() > options_.max_bytes - e->size) {
    throw Error{ErrorCode::kResourceExhausted,
                "an upload may hold at most " + std::to_string(options_.max_bytes) + " bytes", "offset"};
  }
  const int fd = ::open(e->path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("opening upload file " + e->path.string());
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(e->size + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      // Nothing of a failed piece counts: cut the file back.
      (void)::ftruncate(fd, static_cast<off_t>(e->size));
      ::close(fd);
      throw_errno("writing upload file " + e->path.string(), err);
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  e->size += bytes.size();
  {
    std::lock_guard lock{mutex_};
    e->last = now;
  }
  return e->size;
}

std::uint64_t UploadStore::size(const std::string& id, std::int64_t owner) {
  const auto e = find(id, owner);
  std::lock_guard piece{e->mutex};
  return e->size;
}

fs::path UploadStore::take(const std::string& id, std::int64_t owner) {
  const auto e = find(id, owner);
  std::lock_guard piece{e->mutex};
  if (e->gone) throw Error{ErrorCode::kNotFound, "no upload '" + id + "'", "upload"};
  e->gone = true;
  std::lock_guard lock{mutex_};
  uploads_.erase(id);
  return e->path;
}

void UploadStore::remove(const std::string& id, std::int64_t owner) {
  const fs::path path = take(id, owner);
  std::error_code ec;
  fs::remove(path, ec);
}

std::size_t UploadStore::expire(Clock::time_point now) {
  std::vector<std::shared_ptr<Entry>> idle;
  {
    std::lock_guard lock{mutex_};
    for (auto it = uploads_.begin(); it != uploads_.end();) {
      if (now - it->second->last > options_.idle_timeout) {
        idle.push_back(it->second);
        it = uploads_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& e : idle) {
    std::lock_guard piece{e->mutex};
    e->gone = true;
    std::error_code ec;
    fs::remove(e->path, ec);
  }
  return idle.size();
}

}  // namespace vigo::web
