// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/verified_records.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "vigo/common/digest.h"
#include "vigo/common/error.h"
#include "vigo/common/file_util.h"
#include "vigo/common/log.h"
#include "vigo/common/unique_fd.h"

namespace vigo {
namespace {

constexpr std::size_t kRecordSize = 4 + 32 + 4 * 8 + 4;
using Bytes = std::array<std::uint8_t, kRecordSize>;

void put_u64(std::uint8_t* at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) at[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get_u64(const std::uint8_t* at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(at[i]) << (8 * i);
  return v;
}

std::array<std::uint8_t, 32> check_of(const std::uint8_t* r) {
  return sha256(std::string_view{reinterpret_cast<const char*>(r), 68});
}

Bytes encode(const VerifiedRecords::Hash& hash, const FileStamp& s) {
  Bytes r{};
  std::memcpy(r.data(), "VGV1", 4);
  std::memcpy(r.data() + 4, hash.data(), 32);
  put_u64(r.data() + 36, s.ino);
  put_u64(r.data() + 44, s.size);
  put_u64(r.data() + 52, static_cast<std::uint64_t>(s.mtime_ns));
  put_u64(r.data() + 60, static_cast<std::uint64_t>(s.ctime_ns));
  std::memcpy(r.data() + 68, check_of(r.data()).data(), 4);
  return r;
}

std::optional<VerifiedRecords::Record> decode(const std::uint8_t* r) {
  if (std::memcmp(r, "VGV1", 4) != 0) return std::nullopt;
  if (std::memcmp(r + 68, check_of(r).data(), 4) != 0) return std::nullopt;
  VerifiedRecords::Record out;
  std::memcpy(out.first.data(), r + 4, 32);
  out.second.ino = get_u64(r + 36);
  out.second.size = get_u64(r + 44);
  out.second.mtime_ns = static_cast<std::int64_t>(get_u64(r + 52));
  out.second.ctime_ns = static_cast<std::int64_t>(get_u64(r + 60));
  return out;
}

}  // namespace

FileStamp stamp_of(const struct stat& st) {
  FileStamp s;
  s.ino = static_cast<std::uint64_t>(st.st_ino);
  s.size = static_cast<std::uint64_t>(st.st_size);
  s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  s.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
  return s;
}

VerifiedRecords::VerifiedRecords(std::filesystem::path file) : file_(std::move(file)) {}

VerifiedRecords::~VerifiedRecords() {
  if (append_fd_ >= 0) ::close(append_fd_);
}

void VerifiedRecords::warn_once(const char* what, const std::string& error) {
  if (warned_) return;
  warned_ = true;
  log::warn(what, {{"file", file_.string()}, {"error", error}});
}

std::vector<VerifiedRecords::Record> VerifiedRecords::read_new() {
  std::lock_guard lock{mu_};
  std::vector<Record> out;
  const int fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno != ENOENT) warn_once("cannot read the verified-file records", std::strerror(errno));
    return out;
  }
  UniqueFd guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    warn_once("cannot read the verified-file records", "not a regular file");
    return out;
  }
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  if (static_cast<std::uint64_t>(st.st_ino) != read_ino_ || size < read_bytes_) {
    // Another file now (replaced since; or, rarely, one that reuses the
    // inode number and is shorter): read it from its start.
    read_ino_ = static_cast<std::uint64_t>(st.st_ino);
    read_bytes_ = 0;
  }
  if (size <= read_bytes_) return out;
  std::vector<std::uint8_t> bytes((size - read_bytes_) / kRecordSize * kRecordSize);
  try {
    pread_exact(fd, bytes.data(), bytes.size(), read_bytes_, file_.string());
  } catch (const Error& e) {
    warn_once("cannot read the verified-file records", e.what());
    return out;
  }
  std::size_t at = 0;
  for (; at + kRecordSize <= bytes.size(); at += kRecordSize) {
    auto r = decode(bytes.data() + at);
    if (!r) {
      // A torn or foreign record: nothing after it is trusted, and the
      // rest of this file is not read again (the next rewrite drops it).
      at = size - read_bytes_;
      damaged_ = true;
      break;
    }
    out.push_back(*r);
  }
  read_bytes_ += at;
  count_ = read_bytes_ / kRecordSize;
  return out;
}

bool VerifiedRecords::open_for_append() {
  if (append_fd_ >= 0) return true;
  append_fd_ = ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (append_fd_ < 0) warn_once("cannot write the verified-file records", std::strerror(errno));
  return append_fd_ >= 0;
}

std::uint64_t VerifiedRecords::append(const Hash& hash, const FileStamp& stamp) {
  std::lock_guard lock{mu_};
  if (!open_for_append()) return count_;
  const Bytes r = encode(hash, stamp);
  const ssize_t n = ::write(append_fd_, r.data(), r.size());
  if (n != static_cast<ssize_t>(r.size())) {
    warn_once("cannot append a verified-file record", n < 0 ? std::strerror(errno) : "short write");
    return count_;
  }
  return ++count_;
}

void VerifiedRecords::rewrite(const std::vector<Record>& records) {
  std::vector<std::uint8_t> bytes;
  bytes.reserve(records.size() * kRecordSize);
  for (const auto& [hash, stamp] : records) {
    const Bytes r = encode(hash, stamp);
    bytes.insert(bytes.end(), r.begin(), r.end());
  }
  std::lock_guard lock{mu_};
  try {
    write_file_atomic(file_.parent_path(), file_.filename().string(), bytes);
  } catch (const Error& e) {
    warn_once("cannot write the verified-file records", e.what());
    return;
  }
  if (append_fd_ >= 0) ::close(append_fd_);
  append_fd_ = -1;
  open_for_append();
  struct stat st {};
  if (append_fd_ >= 0 && ::fstat(append_fd_, &st) == 0) {
    // What was just written counts as read: read_new() returns only later records.
    read_ino_ = static_cast<std::uint64_t>(st.st_ino);
    read_bytes_ = bytes.size();
  }
  count_ = records.size();
  damaged_ = false;
}

bool VerifiedRecords::damaged() {
  std::lock_guard lock{mu_};
  return damaged_;
}

}  // namespace vigo
