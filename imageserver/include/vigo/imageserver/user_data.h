// SPDX-License-Identifier: Apache-2.0
// UserData: one user's read-write directory tree, <data root>/<user>/, the
// only tree a connection authenticated as that user can reach.
//
// Path safety: a path is relative to the tree ("" is its root), at most 4096
// bytes, of '/'-separated names of 1-255 bytes; NUL bytes, absolute paths,
// empty, "." and ".." components are refused (kInvalidArgument). Resolution
// uses openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS from a descriptor of the tree and *at() calls with
// AT_SYMLINK_NOFOLLOW on the last name, so no symlink is ever followed and
// nothing outside the tree is reachable even if its contents change under us
// (kPermissionDenied). The protocol offers no way to create a symlink.
//
// Durability: create, mkdir, unlink, rmdir and rename fsync the directories
// they change before returning; data written is durable once fsync() (the
// client's fsync or close) returns. Failures are FsError, carrying the errno.
// Thread-safe (only a directory descriptor is kept).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/common/wire_messages.h"
#include "vigo/common/unique_fd.h"

namespace vigo::imageserver {

// A vigo::Error from a system call on the user's tree, with its errno.
class FsError : public Error {
 public:
  FsError(ErrorCode code, std::string message, int sys_errno)
      : Error(code, std::move(message), "path"), sys_errno_(sys_errno) {}
  [[nodiscard]] int sys_errno() const { return sys_errno_; }

 private:
  int sys_errno_;
};

// The checked pieces of a path: its parent ("" for the root) and last name
// ("" when the path is the root itself).
struct UserPath {
  std::string parent;
  std::string leaf;
};
[[nodiscard]] UserPath check_user_path(std::string_view path);

class UserData {
 public:
  // Creates <data_root>/<user> (mode 0700) if needed; the user name follows
  // the name rule (names.h).
  UserData(const std::filesystem::path& data_root, const std::string& user);

  [[nodiscard]] wire::Attr stat(std::string_view path) const;
  [[nodiscard]] wire::DirPage read_dir(std::string_view path, std::uint32_t start) const;
  [[nodiscard]] std::vector<std::uint8_t> read(std::string_view path, std::uint64_t offset, std::uint32_t length) const;
  std::uint32_t write(std::string_view path, std::uint64_t offset, std::span<const std::uint8_t> data);
  void create(std::string_view path, std::uint32_t mode, std::uint8_t flags);
  void mkdir(std::string_view path, std::uint32_t mode);
  void unlink(std::string_view path);
  void rmdir(std::string_view path);
  void rename(std::string_view from, std::string_view to, std::uint8_t flags);
  void truncate(std::string_view path, std::uint64_t size);
  void fsync(std::string_view path);
  wire::Attr set_attr(const wire::SetAttr& request);

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  // openat2 below the tree; parent directory of a path as an O_PATH fd.
  [[nodiscard]] UniqueFd open_beneath(std::string_view path, int flags, std::uint32_t mode = 0) const;
  [[nodiscard]] UniqueFd open_parent(const UserPath& p) const;

  std::filesystem::path dir_;
  UniqueFd root_;
};

}  // namespace vigo::imageserver
