// SPDX-License-Identifier: Apache-2.0
// ProxyFs::OpenFile: what a FUSE file handle (fuse_file_info::fh) points
// to: an opened image (its manifest and read-ahead state), the status text
// taken at open, a directory listing taken at opendir, or a user-data file. Created by
// open/opendir, deleted by release/releasedir. Private to vfs-proxy/src.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "vigo/common/error.h"
#include "vigo/vfs/neighbor_prefetch.h"
#include "vigo/vfs/proxy_fs.h"

namespace vigo::vfs {

struct ProxyFs::OpenFile {
  enum class Kind { kImage, kStatus, kDirectory, kData };
  Kind kind = Kind::kImage;
  std::uint64_t ino = 0;                     // kData: the file's inode (its path may change)
  std::atomic<bool> dirty{false};            // kData: written since the last DATA_FSYNC
  std::shared_ptr<const Manifest> manifest;  // kImage
  std::shared_ptr<WorkingSets::Version> working_set;  // kImage: its recording or replay
  std::string text;                          // kStatus: JSON; kDirectory: fuse_add_direntry records
  std::mutex mu;
  std::uint64_t next_offset = 0;            // GUARDED_BY(mu): where a sequential read goes next
  int near_reads = 0;                       // GUARDED_BY(mu): reads in a row that started near next_offset
  std::int64_t prefetched_through = -1;     // GUARDED_BY(mu): last chunk read-ahead asked for in this run
  std::shared_ptr<SharedNeighborPrefetch> neighbors;  // kImage: its version's, shared by every open file of it

  // kDirectory: appends one readdir record (fuse_add_direntry) to text.
  void add_dirent(fuse_req_t req, const std::string& name, std::uint64_t entry_ino, mode_t type) {
    struct stat st{};
    st.st_ino = entry_ino;
    st.st_mode = type;
    const std::size_t need = fuse_add_direntry(req, nullptr, 0, name.c_str(), nullptr, 0);
    const std::size_t at = text.size();
    text.resize(at + need);
    fuse_add_direntry(req, text.data() + at, need, name.c_str(), &st, static_cast<off_t>(at + need));
  }
};

// The errno a FUSE caller gets for a failed request: the server's own
// (filesystem errors carry it), else by error code; transport failures and
// anything unexpected are EIO.
inline int errno_of(const Error& e, std::int32_t sys_errno = 0) {
  if (sys_errno > 0) return sys_errno;
  switch (e.code()) {
    case ErrorCode::kNotFound: return ENOENT;
    case ErrorCode::kAlreadyExists: return EEXIST;
    case ErrorCode::kPermissionDenied: return EACCES;
    case ErrorCode::kInvalidArgument: return EINVAL;
    default: return EIO;
  }
}

inline ProxyFs::OpenFile* open_file(fuse_file_info* fi) { return reinterpret_cast<ProxyFs::OpenFile*>(fi->fh); }

}  // namespace vigo::vfs
