// SPDX-License-Identifier: Apache-2.0
// ProxyFs::OpenFile: what a FUSE file handle (fuse_file_info::fh) points
// to: an opened image (its manifest and read-ahead state), the status text
// taken at open, a directory listing taken at opendir, or a user-data file. Created by
// open/opendir, deleted by release/releasedir. Private to vfs-proxy/src.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

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
  std::int64_t prefetched_through = -1;     // GUARDED_BY(mu): last chunk read-ahead asked for
};

inline ProxyFs::OpenFile* open_file(fuse_file_info* fi) { return reinterpret_cast<ProxyFs::OpenFile*>(fi->fh); }

}  // namespace vigo::vfs
