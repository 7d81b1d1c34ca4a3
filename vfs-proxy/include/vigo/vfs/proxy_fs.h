// SPDX-License-Identifier: Apache-2.0
// ProxyFs: vigo-fs's FUSE filesystem (libfuse3 low-level API):
// /images/<name>, /images/<name>@<version> (ImageTree, read-only),
// /.vigo-status, and /data/..., the connection user's read-write data tree
// on the server (DataInodes; src/fuse_data.cc has its contract).
//
// Lifecycle: mount() creates the session, installs libfuse's SIGINT/SIGTERM/
// SIGHUP handlers (they call fuse_session_exit) and mounts; serve() runs
// the multi-threaded loop until the filesystem is unmounted (fusermount3 -u)
// or a signal arrives; the destructor unmounts. ProxyFs is the one context
// object, reached from every callback through the session's userdata.
//
// open() of an image fetches its manifest (GET_MANIFEST) once per version
// and keeps it; read() maps the range to chunks (map_read), replies at once
// when every piece is in the ChunkCache, and otherwise asks the Fetcher for
// the missing pieces; the reply (fuse_reply_buf) is then sent from whichever
// thread completes the last piece, so no FUSE thread waits on the network.
// Lookups, getattr and directory listings may wait for a LIST_IMAGES refresh
// (at most once per list_ttl, bounded by the request timeout). Sequential
// reads of a file prefetch the next readahead_chunks chunks; every read is
// reported to WorkingSets (record a cold start, or replay its profile). Any network
// or verification failure of a read is EIO. Immutable versions are opened
// with keep_cache and have long entry/attribute timeouts; the latest alias
// has short ones. Thread-safe.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vigo/common/manifest.h"
#include "vigo/common/wire_messages.h"
#include "vigo/vfs/chunk_cache.h"
#include "vigo/vfs/connection_pool.h"
#include "vigo/vfs/data_inodes.h"
#include "vigo/vfs/fetcher.h"
#include "vigo/vfs/image_tree.h"
#include "vigo/vfs/neighbor_prefetch.h"
#include "vigo/vfs/working_set.h"

namespace vigo::vfs {

struct FsOptions {
  std::filesystem::path mountpoint;
  bool allow_other = false;
  std::uint32_t max_read = 1u << 20;  // largest read the kernel sends (and read-ahead window)
  std::uint32_t readahead_chunks = 4;
  bool neighbor_prefetch = true;  // fetch the chunks next to random reads ahead (NeighborPrefetch)
  std::uint32_t max_background = 64;
  // The kernel's read-ahead for the mount (/sys/class/bdi/<dev>/read_ahead_kb):
  // it caps the size of the kernel's FUSE reads (default 128 KiB). 0: leave it.
  std::uint32_t kernel_readahead_kb = 4096;
  std::chrono::milliseconds list_ttl{3000};
  double immutable_timeout_s = 3600;  // entry/attr timeout of name@version and the directories
  double latest_timeout_s = 1;        // of the latest alias
  double data_timeout_s = 1;          // of names and attributes under /data
};

class ProxyFs {
 public:
  ProxyFs(FsOptions options, ChunkCache& cache);
  ~ProxyFs();  // unmounts if mounted
  ProxyFs(const ProxyFs&) = delete;
  ProxyFs& operator=(const ProxyFs&) = delete;

  void mount();  // throws vigo::Error naming the mountpoint
  // Serves requests until unmounted or signalled; pool, fetcher and
  // working sets must outlive the call. Returns 0, or libfuse's error.
  int serve(ConnectionPool& pool, Fetcher& fetcher, WorkingSets& working_sets);

  // FUSE callbacks (fuse_ops.cc, fuse_read.cc).
  void init(fuse_conn_info* conn);
  void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void getattr(fuse_req_t req, fuse_ino_t ino);
  void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off, fuse_file_info* fi);
  void release(fuse_req_t req, fuse_file_info* fi);
  void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void read(fuse_req_t req, std::size_t size, off_t off, fuse_file_info* fi);
  // The user-data tree (fuse_data.cc); the callbacks above hand data inodes
  // to the data_* versions.
  void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set);
  void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
  void write(fuse_req_t req, const char* buf, std::size_t size, off_t off, fuse_file_info* fi);
  void flush(fuse_req_t req, fuse_file_info* fi);
  void fsync(fuse_req_t req, fuse_file_info* fi);
  void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
  void remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool directory);
  void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
              unsigned int flags);
  void forget(fuse_ino_t ino, std::uint64_t nlookup);

 struct OpenFile;  // what fuse_file_info::fh points to (src/open_file.h)

 private:
  // Attributes of an inode and its timeout; false if it does not exist.
  bool attr_of(fuse_ino_t ino, struct stat* st, double* timeout);
  void open_image(fuse_req_t req, const Node& node, fuse_file_info* fi);
  void reply_open(fuse_req_t req, fuse_file_info* fi, std::shared_ptr<const Manifest> m, bool immutable);
  // Whether the read continues the file's sequential run; if so, prefetches
  // the next readahead_chunks chunks.
  bool read_ahead(OpenFile& f, std::uint64_t off, std::size_t size);
  // A non-sequential read touched chunks first, first + 1, ...; missed[k]:
  // chunk first + k was not cached. The neighbours NeighborPrefetch picks
  // to fetch ahead (the caller asks for them); *clustered: whether the
  // image's reads now cluster (the read's own misses are then filled in
  // the background, not lazily).
  std::vector<std::uint32_t> choose_neighbors(OpenFile& f, std::size_t first, const std::vector<bool>& missed,
                                              bool* clustered);
  std::shared_ptr<const Manifest> cached_manifest(const std::string& key);
  // Once the kernel has processed INIT (before it sends any other request),
  // raises the mount's read-ahead to kernel_readahead_kb.
  void after_init();

  // User data (fuse_data.cc).
  template <typename OnReply>
  void ask(fuse_req_t req, wire::MessageType type, std::vector<std::uint8_t> payload, OnReply on_reply);
  // The path of parent/name, or nullopt after replying with the errno.
  std::optional<std::string> child_path(fuse_req_t req, fuse_ino_t parent, const char* name);
  std::optional<std::string> data_path(fuse_req_t req, fuse_ino_t ino);
  void reply_data_entry(fuse_req_t req, const std::string& path, const wire::Attr& attr, fuse_file_info* created);
  void data_lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void data_getattr(fuse_req_t req, fuse_ino_t ino);
  void data_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set);
  void data_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void data_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void data_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
  void data_read(fuse_req_t req, std::size_t size, off_t off, fuse_file_info* fi);
  void data_write(fuse_req_t req, const char* buf, std::size_t size, off_t off, fuse_file_info* fi);
  void data_sync(fuse_req_t req, fuse_file_info* fi, bool only_if_dirty);
  void data_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
  void data_remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool directory);
  void data_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
                   unsigned int flags);

  FsOptions options_;
  ChunkCache& cache_;
  ConnectionPool* pool_ = nullptr;  // set by serve()
  Fetcher* fetcher_ = nullptr;      // set by serve()
  WorkingSets* working_sets_ = nullptr;  // set by serve()
  ImageTree tree_;
  DataInodes data_;
  fuse_session* session_ = nullptr;
  bool mounted_ = false;
  bool handlers_ = false;
  std::atomic<bool> readahead_set_{false};
  std::mutex manifests_mu_;
  std::map<std::string, std::shared_ptr<const Manifest>> manifests_;  // GUARDED_BY(manifests_mu_), "name@v"
  std::mutex neighbors_mu_;
  std::map<std::string, std::shared_ptr<SharedNeighborPrefetch>> neighbors_;  // GUARDED_BY(neighbors_mu_), "name@v"
};

}  // namespace vigo::vfs
