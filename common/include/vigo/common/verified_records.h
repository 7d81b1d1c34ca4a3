// SPDX-License-Identifier: Apache-2.0
// Verified-file records: durable notes that a content-addressed file's bytes
// were checked against their SHA-256, together with the file's identity at
// that moment (its FileStamp: inode, size, mtime and ctime, from fstat). A
// file whose stamp still matches holds the bytes that were hashed: writing
// to a file through the filesystem changes its ctime, which nobody can set
// back. Damage that bypasses the filesystem (the disk or its block device
// changed underneath) is not caught this way. The proxy's chunk cache and
// the image server's chunk store keep such records so that a chunk is
// hashed once, not at every open.
//
// The file is a sequence of 72-byte records: "VGV1", the 32-byte hash, the
// stamp (little-endian u64 ino, u64 size, i64 mtime_ns, i64 ctime_ns), then
// the first 4 bytes of the SHA-256 of everything before, so a torn or
// foreign record never parses; reading stops at the first one that does
// not. The last record of a hash wins. An append is one write(2) on an
// O_APPEND descriptor, so several processes may append to one file.
// Nothing is fsynced by append(): a lost or torn record costs a re-hash,
// never a wrong answer. rewrite() replaces the file atomically (a process
// still appending to the old one loses those records: again only a
// re-hash).
//
// Failures to read or write are logged once per object and otherwise
// ignored: without records every file is hashed again, which is slower and
// as safe. Thread-safe.
#pragma once

#include <sys/stat.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <utility>
#include <vector>

namespace vigo {

// What identifies a file's current contents without reading them.
struct FileStamp {
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

[[nodiscard]] FileStamp stamp_of(const struct stat& st);

class VerifiedRecords {
 public:
  using Hash = std::array<std::uint8_t, 32>;
  using Record = std::pair<Hash, FileStamp>;

  // Touches nothing on disk until the first call.
  explicit VerifiedRecords(std::filesystem::path file);
  ~VerifiedRecords();
  VerifiedRecords(const VerifiedRecords&) = delete;
  VerifiedRecords& operator=(const VerifiedRecords&) = delete;

  // The records added to the file since the last call, by anyone (from the
  // start at the first call, and again from the start when the file was
  // replaced since). An absent file has none.
  [[nodiscard]] std::vector<Record> read_new();
  // Appends one record (creating the file if needed). Returns how many
  // records the file holds as far as this object knows.
  std::uint64_t append(const Hash& hash, const FileStamp& stamp);
  // Replaces the file, atomically and durably, by exactly these records.
  void rewrite(const std::vector<Record>& records);
  // Whether the last read_new() met a record that does not parse (a torn
  // write): the records after it stay unread until a rewrite().
  [[nodiscard]] bool damaged();

 private:
  bool open_for_append();  // REQUIRES(mu_)
  void warn_once(const char* what, const std::string& error);  // REQUIRES(mu_)

  const std::filesystem::path file_;
  std::mutex mu_;
  int append_fd_ = -1;           // GUARDED_BY(mu_): O_APPEND, the file as of the last open
  std::uint64_t read_ino_ = 0;   // GUARDED_BY(mu_): the file read_new() last read
  std::uint64_t read_bytes_ = 0;  // GUARDED_BY(mu_): how far it read (whole records)
  std::uint64_t count_ = 0;      // GUARDED_BY(mu_)
  bool warned_ = false;          // GUARDED_BY(mu_)
  bool damaged_ = false;         // GUARDED_BY(mu_)
};

}  // namespace vigo
