// SPDX-License-Identifier: Apache-2.0
// DataInodes: the inode table of vigo-fs's read-write user-data tree,
// mounted at /data. The server names files by path (relative to the user's
// tree, "" being its root); the kernel names them by inode. This table maps
// one to the other:
//   - the tree's root is kDataRootIno, always known, never forgotten;
//   - any other path gets an inode (from kFirstDataIno up, never reused)
//     when a lookup, create or mkdir returns it to the kernel, with the
//     kernel's lookup count; forget() drops the count and the inode at zero;
//   - renamed() moves a path and everything below it; removed() detaches a
//     path (an open file whose name went away keeps its inode, but has no
//     path any more: operations on it fail with ESTALE).
// There are no hard links in the protocol, so a path has one inode at most.
// Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace vigo::vfs {

inline constexpr std::uint64_t kDataRootIno = 4;
inline constexpr const char* kDataName = "data";
// Image inodes count up from 16 (ImageTree); data inodes live far above.
inline constexpr std::uint64_t kFirstDataIno = 1ull << 48;
// What a directory listing shows for a name not looked up yet (readers skip
// entries whose inode is 0; the kernel looks a name up before using it).
inline constexpr std::uint64_t kUnknownDataIno = kFirstDataIno - 1;

[[nodiscard]] inline bool is_data_ino(std::uint64_t ino) { return ino == kDataRootIno || ino >= kFirstDataIno; }

// "parent/name", or "name" under the root ("").
[[nodiscard]] std::string join_data_path(const std::string& parent, const std::string& name);

class DataInodes {
 public:
  // The inode of path (new if unknown), with `lookups` more kernel references.
  std::uint64_t remember(const std::string& path, std::uint64_t lookups = 1);
  // The inode the kernel knows for a path; nullopt if none.
  [[nodiscard]] std::optional<std::uint64_t> find(const std::string& path) const;
  // The current path of an inode; nullopt if unknown or detached.
  [[nodiscard]] std::optional<std::string> path(std::uint64_t ino) const;
  // The kernel dropped `lookups` references.
  void forget(std::uint64_t ino, std::uint64_t lookups);
  // A rename on the server succeeded: `to` (and what was below it) is gone,
  // `from` and everything below it now live under `to`.
  void renamed(const std::string& from, const std::string& to);
  // An unlink or rmdir on the server succeeded.
  void removed(const std::string& path);
  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    std::optional<std::string> path;
    std::uint64_t lookups = 0;
  };
  void detach_locked(const std::string& path);  // REQUIRES(mu_)

  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, Entry> entries_;  // GUARDED_BY(mu_)
  std::map<std::string, std::uint64_t> by_path_;      // GUARDED_BY(mu_), ordered: subtrees are ranges
  std::uint64_t next_ino_ = kFirstDataIno;            // GUARDED_BY(mu_)
};

}  // namespace vigo::vfs
