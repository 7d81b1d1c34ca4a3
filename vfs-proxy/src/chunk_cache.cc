// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/chunk_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <cerrno>
#include <vector>

#include "vigo/common/digest.h"
#include "vigo/common/error.h"
#include "vigo/common/file_util.h"

namespace vigo::vfs {
namespace fs = std::filesystem;
namespace {

Hash sha256_of(std::span<const std::uint8_t> bytes) {
  return vigo::sha256(std::string_view{reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

bool is_hex_name(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::size_t pread_all(int fd, std::uint64_t offset, std::span<std::uint8_t> out, const std::string& what) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read cached chunk " + what);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

}  // namespace

std::string to_hex(const Hash& hash) { return vigo::to_hex(hash); }

ChunkCache::ChunkCache(ChunkCacheOptions options) : options_(std::move(options)) {
  if (options_.dir.empty()) throw invalid_argument("cache.dir", "must be set");
  if (options_.quota_bytes < (64ULL << 20)) throw invalid_argument("cache.quota", "must be at least 64 MiB");
  if (!(options_.low_watermark > 0 && options_.low_watermark < options_.high_watermark &&
        options_.high_watermark <= 1.0)) {
    throw invalid_argument("cache.watermarks", "need 0 < low < high <= 1");
  }
  scan();
}

void ChunkCache::scan() {
  fs::create_directories(options_.dir / "chunks");
  fs::create_directories(options_.dir / "tmp");
  // Half-written chunks of a previous life are never visible: drop them.
  for (const auto& e : fs::directory_iterator(options_.dir / "tmp")) fs::remove_all(e.path());
  struct Found {
    std::string key;
    std::uint64_t size;
    fs::file_time_type when;
  };
  std::vector<Found> found;
  for (const auto& sub : fs::directory_iterator(options_.dir / "chunks")) {
    if (!sub.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(sub.path())) {
      const std::string name = f.path().filename().string();
      if (!f.is_regular_file() || !is_hex_name(name) || name.substr(0, 2) != sub.path().filename().string()) {
        fs::remove_all(f.path());  // not ours: a stray file can never pass as a chunk
        continue;
      }
      found.push_back({name, f.file_size(), f.last_write_time()});
    }
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.when < b.when; });
  std::lock_guard lock{mu_};
  for (const Found& f : found) {
    lru_.push_front(f.key);
    index_[f.key] = Entry{f.size, 0, false, lru_.begin()};
    stats_.bytes += f.size;
    ++stats_.chunks;
  }
}

fs::path ChunkCache::path_of(const Hash& hash) const {
  const std::string hex = to_hex(hash);
  return options_.dir / "chunks" / hex.substr(0, 2) / hex;
}

void ChunkCache::touch(const std::string& key, Entry& e) {
  lru_.erase(e.lru);
  lru_.push_front(key);
  e.lru = lru_.begin();
}

std::optional<ChunkCache::Handle> ChunkCache::open(const Hash& hash) { return open_counted(hash, true); }

bool ChunkCache::contains(const Hash& hash) const {
  const std::string key = to_hex(hash);
  std::lock_guard lock{mu_};
  return index_.contains(key);
}

std::optional<ChunkCache::Handle> ChunkCache::open_counted(const Hash& hash, bool count) {
  const std::string key = to_hex(hash);
  bool verify = false;
  {
    std::lock_guard lock{mu_};
    auto it = index_.find(key);
    if (it == index_.end()) {
      if (count) ++stats_.misses;
      return std::nullopt;
    }
    ++it->second.pins;
    verify = !it->second.verified;
    touch(key, it->second);
  }
  const fs::path path = path_of(hash);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st{};
  bool ok = fd >= 0 && ::fstat(fd, &st) == 0;
  if (ok && verify) {
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
    try {
      ok = pread_all(fd, 0, bytes, key) == bytes.size() && sha256_of(bytes) == hash;
    } catch (const Error&) {
      ok = false;
    }
  }
  std::unique_lock lock{mu_};
  auto it = index_.find(key);
  if (!ok || it == index_.end()) {
    if (fd >= 0) ::close(fd);
    if (it != index_.end() && it->second.verified) {
      // While we checked an old copy, a fresh one was committed (commit
      // verifies): use that one.
      --it->second.pins;
      lock.unlock();
      return open_counted(hash, count);
    }
    if (it != index_.end()) {
      // Damaged or vanished: drop it so the caller fetches it again.
      stats_.bytes -= it->second.size;
      --stats_.chunks;
      lru_.erase(it->second.lru);
      index_.erase(it);
      std::error_code ec;
      fs::remove(path, ec);
      ++stats_.corrupt;
    }
    // Gone already: another reader found it damaged, dropped and counted it.
    if (count) ++stats_.misses;
    return std::nullopt;
  }
  it->second.verified = true;
  if (count) ++stats_.hits;
  return Handle{this, key, fd, static_cast<std::uint64_t>(st.st_size)};
}

ChunkCache::Handle ChunkCache::commit(const Hash& hash, std::span<const std::uint8_t> raw) {
  if (sha256_of(raw) != hash) {
    throw Error{ErrorCode::kInvalidArgument, "chunk " + to_hex(hash) + ": bytes do not match the hash", "chunk"};
  }
  if (auto existing = open_counted(hash, false)) return std::move(*existing);
  const std::string key = to_hex(hash);
  const fs::path final_path = path_of(hash);
  std::uint64_t serial = 0;
  {
    std::lock_guard lock{mu_};
    serial = ++tmp_serial_;
  }
  const fs::path tmp = options_.dir / "tmp" / (key + "." + std::to_string(::getpid()) + "." + std::to_string(serial));
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) throw_errno("create " + tmp.string());
  try {
    write_all(out, raw, tmp.string());
    if (::fsync(out) != 0) throw_errno("fsync " + tmp.string());
  } catch (...) {
    ::close(out);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(out);
  fs::create_directories(final_path.parent_path());
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw_errno("rename " + final_path.string(), e);
  }
  fsync_dir(final_path.parent_path());
  const int fd = ::open(final_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + final_path.string());
  {
    std::lock_guard lock{mu_};
    auto [it, inserted] = index_.try_emplace(key);
    if (inserted) {
      lru_.push_front(key);
      it->second = Entry{raw.size(), 0, true, lru_.begin()};
      stats_.bytes += raw.size();
      ++stats_.chunks;
      ++stats_.commits;
    } else {
      touch(key, it->second);
      it->second.verified = true;  // these bytes were checked above, whatever was there before
    }
    ++it->second.pins;
  }
  Handle handle{this, key, fd, raw.size()};
  evict_if_needed();
  return handle;
}

void ChunkCache::evict_if_needed() {
  std::vector<std::string> victims;
  {
    std::lock_guard lock{mu_};
    const auto high = static_cast<std::uint64_t>(options_.high_watermark * static_cast<double>(options_.quota_bytes));
    if (stats_.bytes <= high) return;
    const auto low = static_cast<std::uint64_t>(options_.low_watermark * static_cast<double>(options_.quota_bytes));
    for (auto it = lru_.end(); it != lru_.begin() && stats_.bytes > low;) {
      --it;
      auto e = index_.find(*it);
      if (e->second.pins > 0) continue;
      victims.push_back(*it);
      stats_.bytes -= e->second.size;
      --stats_.chunks;
      ++stats_.evictions;
      index_.erase(e);
      it = lru_.erase(it);
    }
  }
  for (const std::string& key : victims) {
    std::error_code ec;
    fs::remove(options_.dir / "chunks" / key.substr(0, 2) / key, ec);
  }
}

void ChunkCache::unpin(const std::string& key) {
  std::lock_guard lock{mu_};
  if (auto it = index_.find(key); it != index_.end() && it->second.pins > 0) --it->second.pins;
}

ChunkCacheStats ChunkCache::stats() const {
  std::lock_guard lock{mu_};
  return stats_;
}

ChunkCache::Handle::Handle(Handle&& other) noexcept
    : cache_(std::exchange(other.cache_, nullptr)),
      key_(std::move(other.key_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_) {}

ChunkCache::Handle::~Handle() {
  if (fd_ >= 0) ::close(fd_);
  if (cache_ != nullptr) cache_->unpin(key_);
}

std::size_t ChunkCache::Handle::read(std::uint64_t offset, std::span<std::uint8_t> out) const {
  return pread_all(fd_, offset, out, key_);
}

}  // namespace vigo::vfs
