// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/chunk_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "vigo/common/digest.h"
#include "vigo/common/error.h"
#include "vigo/common/file_util.h"
#include "vigo/common/log.h"

namespace vigo::vfs {
namespace fs = std::filesystem;

struct ChunkCache::Handle::File {
  explicit File(int f) : fd(f) {}
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() { ::close(fd); }
  int fd;
};

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

Hash hash_from_hex(const std::string& hex) {
  Hash h{};
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return h;
}

}  // namespace

std::string to_hex(const Hash& hash) { return vigo::to_hex(hash); }

ChunkCache::ChunkCache(ChunkCacheOptions options)
    : options_(std::move(options)), records_(options_.dir / "verified") {
  if (options_.dir.empty()) throw invalid_argument("cache.dir", "must be set");
  if (options_.quota_bytes < (64ULL << 20)) throw invalid_argument("cache.quota", "must be at least 64 MiB");
  if (!(options_.low_watermark > 0 && options_.low_watermark < options_.high_watermark &&
        options_.high_watermark <= 1.0)) {
    throw invalid_argument("cache.watermarks", "need 0 < low < high <= 1");
  }
  scan();
  syncer_ = std::jthread{[this](std::stop_token stop) { sync_committed(stop); }};
}

ChunkCache::~ChunkCache() {
  syncer_.request_stop();
  sync_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  sync_round();  // what was committed since the thread's last round
}

void ChunkCache::sync_committed(std::stop_token stop) {
  for (;;) {
    {
      std::unique_lock lock{sync_mu_};
      sync_cv_.wait(lock, stop, [&] { return !unsynced_.empty(); });
      if (stop.stop_requested()) return;
      // Let a burst of commits gather into one round.
      sync_cv_.wait_for(lock, stop, std::chrono::milliseconds{200}, [] { return false; });
      if (stop.stop_requested()) return;
    }
    sync_round();
  }
}

void ChunkCache::sync_round() {
  std::vector<std::pair<Hash, FileStamp>> batch;
  {
    std::lock_guard lock{sync_mu_};
    batch.swap(unsynced_);
  }
  if (batch.empty()) return;
  const int dir = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = dir >= 0 && ::syncfs(dir) == 0;
  if (dir >= 0) ::close(dir);
  if (!synced) {
    // No record then: those chunks are hashed again at their first open
    // after a restart, which is safe, only slower.
    log::warn("cannot sync the chunk cache", {{"error", std::strerror(errno)}});
    return;
  }
  for (const auto& [hash, stamp] : batch) record(hash, stamp);
  std::lock_guard lock{sync_mu_};
  for (const auto& [hash, stamp] : batch) {
    const auto it = unsynced_keys_.find(to_hex(hash));
    if (it != unsynced_keys_.end() && --it->second == 0) unsynced_keys_.erase(it);
  }
}

void ChunkCache::scan() {
  fs::create_directories(options_.dir / "chunks");
  fs::create_directories(options_.dir / "tmp");
  // Half-written chunks of a previous life are never visible: drop them,
  // and a rewrite of the records that did not finish (its temporary file
  // is beside `verified`).
  for (const auto& e : fs::directory_iterator(options_.dir / "tmp")) fs::remove_all(e.path());
  for (const auto& e : fs::directory_iterator(options_.dir)) {
    if (e.is_regular_file() && is_temp_name(e.path().filename().string())) fs::remove(e.path());
  }
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
  // The stamps of chunks verified by earlier processes (the last record of a
  // chunk wins).
  std::unordered_map<std::string, FileStamp> stamps;
  for (const auto& [hash, stamp] : records_.read_new()) stamps[to_hex(hash)] = stamp;
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.when < b.when; });
  {
    std::lock_guard lock{mu_};
    for (const Found& f : found) {
      lru_.push_front(f.key);
      Entry e{f.size, 0, false, std::nullopt, lru_.begin()};
      if (auto it = stamps.find(f.key); it != stamps.end()) e.stamp = it->second;
      index_[f.key] = e;
      stats_.bytes += f.size;
      ++stats_.chunks;
    }
  }
  rewrite_records();
}

void ChunkCache::rewrite_records() {
  std::vector<VerifiedRecords::Record> records;
  {
    // Chunks not yet synced get no record (sync_round writes theirs).
    std::lock_guard sync_lock{sync_mu_};
    std::lock_guard lock{mu_};
    records.reserve(index_.size());
    for (const auto& [key, e] : index_) {
      if (!e.stamp || unsynced_keys_.contains(key)) continue;
      records.emplace_back(hash_from_hex(key), *e.stamp);
    }
  }
  records_.rewrite(records);
}

void ChunkCache::record(const Hash& hash, const FileStamp& stamp) {
  const std::uint64_t count = records_.append(hash, stamp);
  bool compact = false;
  {
    std::lock_guard lock{mu_};
    compact = count > 2 * index_.size() + 4096;
  }
  if (compact) rewrite_records();
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

void ChunkCache::forget_file(const std::string& key) {
  if (auto it = file_index_.find(key); it != file_index_.end()) {
    files_.erase(it->second);
    file_index_.erase(it);
  }
}

void ChunkCache::remember_file(const std::string& key, const std::shared_ptr<const File>& file) {
  if (options_.fd_cache == 0) return;
  forget_file(key);
  files_.emplace_front(key, file);
  file_index_[key] = files_.begin();
  while (files_.size() > options_.fd_cache) {
    file_index_.erase(files_.back().first);
    files_.pop_back();  // closed when the last handle using it goes
  }
}

std::optional<ChunkCache::Handle> ChunkCache::open(const Hash& hash) { return open_counted(hash, true); }

bool ChunkCache::contains(const Hash& hash) const {
  const std::string key = to_hex(hash);
  std::lock_guard lock{mu_};
  return index_.contains(key);
}

std::optional<ChunkCache::Handle> ChunkCache::open_counted(const Hash& hash, bool count) {
  const std::string key = to_hex(hash);
  std::optional<FileStamp> known;
  std::shared_ptr<const File> file;
  {
    std::lock_guard lock{mu_};
    auto it = index_.find(key);
    if (it == index_.end()) {
      if (count) ++stats_.misses;
      return std::nullopt;
    }
    ++it->second.pins;
    known = it->second.stamp;
    touch(key, it->second);
    if (auto f = file_index_.find(key); f != file_index_.end()) file = f->second->second;
  }
  const fs::path path = path_of(hash);
  if (!file) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) file = std::make_shared<const File>(fd);
  }
  struct stat st{};
  bool ok = file && ::fstat(file->fd, &st) == 0;
  const FileStamp now = stamp_of(st);
  const bool trusted = ok && known && *known == now;
  bool hashed = false;
  if (ok && !trusted) {
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
    try {
      ok = pread_all(file->fd, 0, bytes, key) == bytes.size() && sha256_of(bytes) == hash;
    } catch (const Error&) {
      ok = false;
    }
    hashed = true;
  }
  std::unique_lock lock{mu_};
  auto it = index_.find(key);
  if (!ok || it == index_.end()) {
    forget_file(key);
    if (it != index_.end() && it->second.stamp && it->second.stamp != known) {
      // While we checked an old copy, a fresh one was committed (commit
      // verifies and stamps it): use that one.
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
  if (hashed) {
    ++stats_.rehashed;
  } else if (!it->second.seen) {
    ++stats_.trusted;
  }
  it->second.seen = true;
  it->second.stamp = now;
  remember_file(key, file);
  if (count) ++stats_.hits;
  lock.unlock();
  if (hashed) record(hash, now);
  return Handle{this, key, std::move(file), static_cast<std::uint64_t>(st.st_size)};
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
  const int fd = ::open(final_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + final_path.string());
  auto file = std::make_shared<const File>(fd);
  // The stamp is taken after the rename (which changes the ctime): these
  // are the bytes checked above, as they are on disk from now on.
  struct stat st{};
  if (::fstat(fd, &st) != 0) throw_errno("stat " + final_path.string());
  const FileStamp stamp = stamp_of(st);
  {
    // Queued for the syncer before the index has it: a compaction of the
    // records from now on leaves it out until its sync round.
    std::lock_guard lock{sync_mu_};
    unsynced_.emplace_back(hash, stamp);
    ++unsynced_keys_[key];
  }
  sync_cv_.notify_one();
  {
    std::lock_guard lock{mu_};
    auto [it, inserted] = index_.try_emplace(key);
    if (inserted) {
      lru_.push_front(key);
      it->second = Entry{raw.size(), 0, true, stamp, lru_.begin()};
      stats_.bytes += raw.size();
      ++stats_.chunks;
      ++stats_.commits;
    } else {
      touch(key, it->second);
      it->second.seen = true;
      it->second.stamp = stamp;  // these bytes were checked above, whatever was there before
    }
    ++it->second.pins;
    remember_file(key, file);
  }
  Handle handle{this, key, std::move(file), raw.size()};
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
      forget_file(*it);
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
  ChunkCacheStats s;
  {
    std::lock_guard lock{mu_};
    s = stats_;
  }
  std::lock_guard lock{sync_mu_};
  s.unsynced = unsynced_keys_.size();
  return s;
}

ChunkCache::Handle::Handle(Handle&& other) noexcept
    : cache_(std::exchange(other.cache_, nullptr)),
      key_(std::move(other.key_)),
      file_(std::move(other.file_)),
      size_(other.size_) {}

ChunkCache::Handle::~Handle() {
  if (cache_ != nullptr) cache_->unpin(key_);
}

std::size_t ChunkCache::Handle::read(std::uint64_t offset, std::span<std::uint8_t> out) const {
  return pread_all(file_->fd, offset, out, key_);
}

}  // namespace vigo::vfs
