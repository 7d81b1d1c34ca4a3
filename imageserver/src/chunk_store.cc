// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "vigo/common/file_util.h"
#include "vigo/common/compress.h"
#include "vigo/common/digest.h"
#include "vigo/common/error.h"
#include "vigo/common/wire.h"

namespace vigo::imageserver {
namespace fs = std::filesystem;
namespace {

constexpr std::uint8_t kMagic[4] = {'V', 'G', 'C', '1'};
constexpr std::size_t kHeaderBytes = 16;

std::vector<std::uint8_t> encode_header(wire::ChunkEncoding enc, std::uint32_t raw, std::uint32_t stored) {
  return wire::FieldWriter{kHeaderBytes}
      .fixed(kMagic)
      .u8(static_cast<std::uint8_t>(enc))
      .u8(kHashSha256)
      .u16(0)
      .u32(raw)
      .u32(stored)
      .take();
}

Error corrupt(const ChunkHash& hash, std::string_view why) {
  return Error{ErrorCode::kInternal, "corrupt chunk " + hash_hex(hash) + ": " + std::string{why}};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string hash_hex(const ChunkHash& hash) { return to_hex(hash); }

ChunkHash parse_hash(std::string_view hex) {
  ChunkHash out{};
  if (hex.size() != 64) throw invalid_argument("chunk hash", "must be 64 lowercase hex digits");
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) throw invalid_argument("chunk hash", "must be 64 lowercase hex digits");
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

ChunkHash hash_chunk(std::span<const std::uint8_t> raw) {
  return sha256({reinterpret_cast<const char*>(raw.data()), raw.size()});
}

std::size_t ChunkStore::HashOf::operator()(const ChunkHash& h) const noexcept {
  std::size_t v;
  std::memcpy(&v, h.data(), sizeof v);  // already uniformly distributed
  return v;
}

ChunkStore::ChunkStore(fs::path dir, ChunkStoreOptions options)
    : dir_(std::move(dir)), options_(options), records_(dir_ / "verified") {
  make_dirs(dir_);
}

fs::path ChunkStore::path_of(const ChunkHash& hash) const {
  const std::string hex = hash_hex(hash);
  return dir_ / hex.substr(0, 2) / hex;
}

bool ChunkStore::contains(const ChunkHash& hash) const {
  struct stat st {};
  return ::stat(path_of(hash).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

PutResult ChunkStore::put(std::span<const std::uint8_t> raw) {
  if (raw.size() > kMaxChunkSize) throw invalid_argument("chunk", "larger than the maximum chunk size");
  PutResult result;
  result.ref.hash = hash_chunk(raw);
  result.ref.raw_length = static_cast<std::uint32_t>(raw.size());
  const fs::path path = path_of(result.ref.hash);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && static_cast<std::size_t>(st.st_size) >= kHeaderBytes) {
    result.ref.stored_length = static_cast<std::uint32_t>(st.st_size - kHeaderBytes);
    return result;
  }
  std::vector<std::uint8_t> compressed;
  if (!raw.empty()) compressed = zstd_compress(raw, options_.zstd_level);
  const bool use_zstd = !raw.empty() && static_cast<double>(compressed.size()) <=
                                            static_cast<double>(raw.size()) * (1.0 - options_.min_saving);
  const std::span<const std::uint8_t> body = use_zstd ? std::span<const std::uint8_t>{compressed} : raw;
  if (use_zstd) {
    // Verify on write: what goes to disk must come back as the same bytes.
    if (zstd_decompress(compressed, raw.size()) != std::vector<std::uint8_t>(raw.begin(), raw.end())) {
      throw Error{ErrorCode::kInternal, "zstd round trip mismatch for chunk " + hash_hex(result.ref.hash)};
    }
  }
  std::vector<std::uint8_t> file = encode_header(use_zstd ? wire::ChunkEncoding::kZstd : wire::ChunkEncoding::kRaw,
                                                 result.ref.raw_length, static_cast<std::uint32_t>(body.size()));
  file.insert(file.end(), body.begin(), body.end());
  make_dirs(path.parent_path());
  write_file_atomic(path.parent_path(), path.filename().string(), file);
  // The stamp is taken after the rename, which changes the ctime.
  if (::stat(path.c_str(), &st) == 0) note_verified(result.ref.hash, stamp_of(st));
  result.ref.stored_length = static_cast<std::uint32_t>(body.size());
  result.written = true;
  return result;
}

// Opens a chunk file for reading, never through a symlink; kNotFound if absent.
UniqueFd ChunkStore::open_chunk(const fs::path& path, const ChunkHash& hash) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) throw Error{ErrorCode::kNotFound, "no such chunk: " + hash_hex(hash), "hash"};
    throw_errno("open chunk " + path.string());
  }
  return UniqueFd{fd};
}

ChunkStore::Loaded ChunkStore::load(const ChunkHash& hash, bool want_stored) {
  const fs::path path = path_of(hash);
  UniqueFd fd = open_chunk(path, hash);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat chunk " + path.string());
  std::vector<std::uint8_t> file = read_all(fd.get(), kHeaderBytes + kMaxChunkSize + 4096, "chunk " + hash_hex(hash));
  if (file.size() < kHeaderBytes) throw corrupt(hash, "shorter than its header");
  wire::FieldReader r{std::span<const std::uint8_t>{file}.first(kHeaderBytes)};
  if (std::memcmp(r.fixed("magic", 4).data(), kMagic, 4) != 0) throw corrupt(hash, "bad magic");
  const std::uint8_t enc = r.u8("encoding");
  const std::uint8_t algo = r.u8("hash algorithm");
  (void)r.u16("reserved");
  const std::uint32_t raw_len = r.u32("raw length");
  const std::uint32_t stored_len = r.u32("stored length");
  if (enc > 1 || algo != kHashSha256 || raw_len > kMaxChunkSize) throw corrupt(hash, "bad header");
  if (stored_len != file.size() - kHeaderBytes) throw corrupt(hash, "stored length does not match the file size");
  const auto body = std::span<const std::uint8_t>{file}.subspan(kHeaderBytes);
  Loaded out;
  out.stored.encoding = static_cast<wire::ChunkEncoding>(enc);
  out.stored.raw_length = raw_len;
  auto decode = [&] {
    if (out.stored.encoding == wire::ChunkEncoding::kRaw) {
      if (body.size() != raw_len) throw corrupt(hash, "raw length does not match");
      return std::vector<std::uint8_t>(body.begin(), body.end());
    }
    try {
      return zstd_decompress(body, raw_len);
    } catch (const Error& e) {
      throw corrupt(hash, e.what());
    }
  };
  // The bytes read are the file fstat saw: chunk files are only ever replaced whole.
  const FileStamp stamp = stamp_of(st);
  if (file.size() != stamp.size || !trusted(hash, stamp)) {
    std::vector<std::uint8_t> raw = decode();
    count_hashed();
    if (hash_chunk(raw) != hash) throw corrupt(hash, "content does not match its hash");
    note_verified(hash, stamp);
    auto shared = std::make_shared<const std::vector<std::uint8_t>>(std::move(raw));
    remember(hash, shared);
    out.raw = std::move(shared);
  } else if (!want_stored) {
    // Verified and unchanged: decoded, not hashed again.
    out.raw = cached(hash);
    if (!out.raw) {
      auto shared = std::make_shared<const std::vector<std::uint8_t>>(decode());
      remember(hash, shared);
      out.raw = std::move(shared);
    }
  }
  if (want_stored) {
    file.erase(file.begin(), file.begin() + kHeaderBytes);
    out.stored.bytes = std::move(file);
  }
  return out;
}

std::vector<std::uint8_t> ChunkStore::read_range(const ChunkHash& hash, std::uint64_t offset, std::uint32_t length,
                                                 std::uint32_t* raw_length) {
  // How many bytes the range holds in a chunk of raw_size bytes.
  auto range_length = [&](std::uint64_t raw_size) -> std::size_t {
    if (offset > raw_size) {
      throw invalid_argument("chunk offset", std::to_string(offset) + " is past the chunk's end (" +
                                                 std::to_string(raw_size) + " bytes)");
    }
    return std::min<std::uint64_t>(length, raw_size - offset);
  };
  auto cut = [&](std::span<const std::uint8_t> raw) {
    const std::size_t n = range_length(raw.size());
    *raw_length = static_cast<std::uint32_t>(raw.size());
    return std::vector<std::uint8_t>(raw.begin() + static_cast<std::ptrdiff_t>(offset),
                                     raw.begin() + static_cast<std::ptrdiff_t>(offset + n));
  };
  if (auto hit = cached(hash)) return cut(*hit);
  const fs::path path = path_of(hash);
  UniqueFd fd = open_chunk(path, hash);
  // Every read below is one pread of exactly what is needed. Without this,
  // the header read at offset 0 of a freshly opened file opens the kernel's
  // initial read-ahead window there (perf showed vigo-imaged in
  // page_cache_ra_unbounded under cold range reads): a cold 4 KiB range
  // read would read tens of KiB of chunk file from the disk.
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM);
  // The range (where a raw chunk keeps it) is asked of the disk now, so
  // that its read overlaps the header's instead of waiting behind it: a
  // cold range read costs one disk round trip, not two
  // (vigo-bench-range-reads). For a compressed chunk these are a few KiB of the file
  // the general path then reads whole anyway.
  if (options_.overlap_range_reads && offset < kMaxChunkSize) {
    (void)::posix_fadvise(fd.get(), static_cast<off_t>(kHeaderBytes + offset), length, POSIX_FADV_WILLNEED);
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat chunk " + path.string());
  std::array<std::uint8_t, kHeaderBytes> head{};
  if (st.st_size < static_cast<off_t>(kHeaderBytes) || st.st_size > static_cast<off_t>(kHeaderBytes + kMaxChunkSize) ||
      read_full(fd.get(), head.data(), head.size(), "chunk " + path.string()) != head.size()) {
    return cut(*read(hash));  // not a plain chunk file: the general path says what is wrong
  }
  wire::FieldReader r{head};
  if (std::memcmp(r.fixed("magic", 4).data(), kMagic, 4) != 0 ||
      r.u8("encoding") != static_cast<std::uint8_t>(wire::ChunkEncoding::kRaw)) {
    return cut(*read(hash));  // compressed (or damaged): decoded whole, and cached, by the general path
  }
  const std::uint8_t algo = r.u8("hash algorithm");
  (void)r.u16("reserved");
  const std::uint32_t raw_len = r.u32("raw length");
  const std::uint32_t stored_len = r.u32("stored length");
  if (algo != kHashSha256 || raw_len != stored_len || static_cast<off_t>(kHeaderBytes + raw_len) != st.st_size) {
    throw corrupt(hash, "bad header");
  }
  const FileStamp stamp = stamp_of(st);
  if (trusted(hash, stamp)) {
    // Verified and unchanged: the range is all that is read.
    std::vector<std::uint8_t> out(range_length(raw_len));
    pread_exact(fd.get(), out.data(), out.size(), kHeaderBytes + offset, "chunk " + path.string());
    *raw_length = raw_len;
    return out;
  }
  thread_local std::vector<std::uint8_t> body;  // reused: its pages stay mapped
  body.resize(raw_len);
  if (read_full(fd.get(), body.data(), body.size(), "chunk " + path.string()) != body.size()) {
    throw corrupt(hash, "shorter than its header says");
  }
  count_hashed();
  if (hash_chunk(body) != hash) throw corrupt(hash, "content does not match its hash");
  note_verified(hash, stamp);
  return cut(body);
}

std::shared_ptr<const std::vector<std::uint8_t>> ChunkStore::read(const ChunkHash& hash) {
  if (auto hit = cached(hash)) return hit;
  return load(hash, false).raw;
}

StoredChunk ChunkStore::read_stored(const ChunkHash& hash) { return std::move(load(hash, true).stored); }

std::uint64_t ChunkStore::remove(const ChunkHash& hash) {
  forget(hash);
  {
    std::lock_guard lock{mu_};
    stamps_.erase(hash);
  }
  const fs::path path = path_of(hash);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return 0;
    throw_errno("unlink chunk " + path.string());
  }
  return static_cast<std::uint64_t>(st.st_size);
}

std::vector<ChunkHash> ChunkStore::list() const {
  std::vector<ChunkHash> out;
  for (const auto& sub : fs::directory_iterator(dir_)) {
    if (!sub.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(sub.path())) {
      const std::string name = f.path().filename().string();
      if (is_temp_name(name) || !f.is_regular_file()) continue;
      try {
        out.push_back(parse_hash(name));
      } catch (const Error&) {
        // Not a chunk file (someone else's); never ours to list or remove.
      }
    }
  }
  return out;
}

std::size_t ChunkStore::remove_temp_files() {
  std::size_t removed = 0;
  for (const auto& sub : fs::directory_iterator(dir_)) {
    // A rewrite of the records leaves its temporary file in dir_ itself.
    if (is_temp_name(sub.path().filename().string()) && fs::remove(sub.path())) ++removed;
    if (!sub.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(sub.path())) {
      if (is_temp_name(f.path().filename().string()) && fs::remove(f.path())) ++removed;
    }
  }
  return removed;
}

std::shared_ptr<const std::vector<std::uint8_t>> ChunkStore::cached(const ChunkHash& hash) {
  std::lock_guard lock{mu_};
  auto it = index_.find(hash);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void ChunkStore::remember(const ChunkHash& hash, std::shared_ptr<const std::vector<std::uint8_t>> raw) {
  const std::size_t size = raw->size();
  if (size > options_.cache_bytes) return;
  std::lock_guard lock{mu_};
  if (index_.contains(hash)) return;
  lru_.emplace_front(hash, std::move(raw));
  index_[hash] = lru_.begin();
  cached_bytes_ += size;
  while (cached_bytes_ > options_.cache_bytes) {
    cached_bytes_ -= lru_.back().second->size();
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

bool ChunkStore::trusted(const ChunkHash& hash, const FileStamp& now) {
  {
    std::lock_guard lock{mu_};
    if (const auto it = stamps_.find(hash); it != stamps_.end() && it->second == now) {
      ++stats_.trusted;
      return true;
    }
  }
  // Another process of this store (another session) may have verified it
  // since this one last looked.
  const auto fresh = records_.read_new();
  std::lock_guard lock{mu_};
  for (const auto& [h, stamp] : fresh) stamps_[h] = stamp;
  const auto it = stamps_.find(hash);
  const bool ok = it != stamps_.end() && it->second == now;
  if (ok) ++stats_.trusted;
  return ok;
}

void ChunkStore::count_hashed() {
  std::lock_guard lock{mu_};
  ++stats_.hashed;
}

ChunkStoreStats ChunkStore::stats() const {
  std::lock_guard lock{mu_};
  return stats_;
}

void ChunkStore::note_verified(const ChunkHash& hash, const FileStamp& stamp) {
  std::size_t known = 0;
  {
    std::lock_guard lock{mu_};
    stamps_[hash] = stamp;
    known = stamps_.size();
  }
  const std::uint64_t count = records_.append(hash, stamp);
  if (count > 2 * known + 4096 || records_.damaged()) compact_records();
}

void ChunkStore::compact_records() {
  const auto fresh = records_.read_new();
  std::vector<VerifiedRecords::Record> known;
  {
    std::lock_guard lock{mu_};
    for (const auto& [h, stamp] : fresh) stamps_[h] = stamp;
    known.assign(stamps_.begin(), stamps_.end());
  }
  // Chunks removed since (by any process) lose their records; the files
  // are looked at without holding mu_, which every read takes.
  std::vector<VerifiedRecords::Record> keep;
  keep.reserve(known.size());
  for (auto& record : known) {
    struct stat st {};
    if (::stat(path_of(record.first).c_str(), &st) == 0) {
      keep.push_back(record);
    } else {
      std::lock_guard lock{mu_};
      stamps_.erase(record.first);
    }
  }
  records_.rewrite(keep);
}

void ChunkStore::forget(const ChunkHash& hash) {
  std::lock_guard lock{mu_};
  auto it = index_.find(hash);
  if (it == index_.end()) return;
  cached_bytes_ -= it->second->second->size();
  lru_.erase(it->second);
  index_.erase(it);
}

}  // namespace vigo::imageserver
