// SPDX-License-Identifier: Apache-2.0
// ProxyFs: mounting, the loop, the callback table, and the tree's metadata
// (lookup, getattr, directories). Reads are in fuse_read.cc.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <cstring>

#include "open_file.h"
#include "vigo/common/log.h"
#include "vigo/vfs/proxy_fs.h"

namespace vigo::vfs {
namespace {

ProxyFs& fs(fuse_req_t req) { return *static_cast<ProxyFs*>(fuse_req_userdata(req)); }

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops ops{};
  ops.init = [](void* userdata, fuse_conn_info* conn) { static_cast<ProxyFs*>(userdata)->init(conn); };
  ops.lookup = [](fuse_req_t req, fuse_ino_t parent, const char* name) { fs(req).lookup(req, parent, name); };
  ops.getattr = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info*) { fs(req).getattr(req, ino); };
  ops.opendir = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { fs(req).opendir(req, ino, fi); };
  ops.readdir = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    fs(req).readdir(req, ino, size, off, fi);
  };
  ops.releasedir = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) { fs(req).release(req, fi); };
  ops.open = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { fs(req).open(req, ino, fi); };
  ops.read = [](fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    fs(req).read(req, size, off, fi);
  };
  ops.release = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) { fs(req).release(req, fi); };
  ops.forget = [](fuse_req_t req, fuse_ino_t ino, std::uint64_t nlookup) {
    fs(req).forget(ino, nlookup);
    fuse_reply_none(req);
  };
  ops.forget_multi = [](fuse_req_t req, std::size_t count, fuse_forget_data* forgets) {
    for (std::size_t i = 0; i < count; ++i) fs(req).forget(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
  };
  ops.setattr = [](fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
    fs(req).setattr(req, ino, attr, to_set);
  };
  ops.create = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
    fs(req).create(req, parent, name, mode, fi);
  };
  ops.write = [](fuse_req_t req, fuse_ino_t, const char* buf, std::size_t size, off_t off, fuse_file_info* fi) {
    fs(req).write(req, buf, size, off, fi);
  };
  ops.flush = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) { fs(req).flush(req, fi); };
  ops.fsync = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) { fs(req).fsync(req, fi); };
  // The server makes directory changes durable before it answers.
  ops.fsyncdir = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); };
  ops.mkdir = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    fs(req).mkdir(req, parent, name, mode);
  };
  ops.unlink = [](fuse_req_t req, fuse_ino_t parent, const char* name) { fs(req).remove(req, parent, name, false); };
  ops.rmdir = [](fuse_req_t req, fuse_ino_t parent, const char* name) { fs(req).remove(req, parent, name, true); };
  ops.rename = [](fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
                  unsigned int flags) { fs(req).rename(req, parent, name, new_parent, new_name, flags); };
  return ops;
}();

}  // namespace

ProxyFs::ProxyFs(FsOptions options, ChunkCache& cache)
    : options_(std::move(options)),
      cache_(cache),
      tree_(
          [this] {
            Outcome o = pool_->call(wire::MessageType::kListImages, {});
            if (!o.ok()) throw *o.error;
            return wire::decode_image_list(o.bytes);
          },
          options_.list_ttl) {
  if (options_.max_read < 4096 || options_.max_read > (1u << 20)) {
    throw invalid_argument("max-read", "must be 4096..1048576");
  }
}

ProxyFs::~ProxyFs() {
  if (session_ == nullptr) return;
  if (handlers_) fuse_remove_signal_handlers(session_);
  if (mounted_) fuse_session_unmount(session_);
  fuse_session_destroy(session_);
}

void ProxyFs::mount() {
  std::string opts = "default_permissions,fsname=vigo-fs,subtype=vigo,max_read=" + std::to_string(options_.max_read);
  if (options_.allow_other) opts += ",allow_other";
  const char* argv[] = {"vigo-fs", "-o", opts.c_str()};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  session_ = fuse_session_new(&args, &kOps, sizeof kOps, this);
  if (session_ == nullptr) throw Error{ErrorCode::kInvalidArgument, "cannot create the FUSE session (options: " + opts + ")"};
  if (fuse_set_signal_handlers(session_) != 0) throw Error{ErrorCode::kInternal, "cannot install signal handlers"};
  handlers_ = true;
  if (fuse_session_mount(session_, options_.mountpoint.c_str()) != 0) {
    throw Error{ErrorCode::kUnavailable, "cannot mount on " + options_.mountpoint.string() +
                                             " (does it exist? is /dev/fuse usable? allow_other needs "
                                             "user_allow_other in /etc/fuse.conf unless root)"};
  }
  mounted_ = true;
}

int ProxyFs::serve(ConnectionPool& pool, Fetcher& fetcher, WorkingSets& working_sets) {
  pool_ = &pool;
  fetcher_ = &fetcher;
  working_sets_ = &working_sets;
  fuse_loop_config* config = fuse_loop_cfg_create();
  const int rc = fuse_session_loop_mt(session_, config);
  fuse_loop_cfg_destroy(config);
  return rc;
}

void ProxyFs::init(fuse_conn_info* conn) {
  // max_pages follows max_write in libfuse; a read-only filesystem never
  // sees a write, so this only lets reads be as large as max_read.
  conn->max_write = options_.max_read;
  conn->max_read = options_.max_read;
  conn->max_readahead = options_.max_read;
  conn->max_background = options_.max_background;
  conn->congestion_threshold = options_.max_background * 3 / 4;
  if ((conn->capable & FUSE_CAP_ASYNC_READ) != 0) conn->want |= FUSE_CAP_ASYNC_READ;
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;  // the data never changes
}

namespace {

// "MAJOR:MINOR" of the filesystem mounted at `mountpoint`, from
// /proc/self/mountinfo (a stat() of the mount would ask this filesystem
// itself, from inside one of its own callbacks); empty if not found.
std::string mount_device(const std::string& mountpoint) {
  std::ifstream in{"/proc/self/mountinfo"};
  std::string line;
  std::string found;
  while (std::getline(in, line)) {
    // id parent MAJOR:MINOR root mountpoint ... (mountpoint octal-escaped)
    std::istringstream fields{line};
    std::string id, parent, dev, root, point;
    if (!(fields >> id >> parent >> dev >> root >> point)) continue;
    if (point == mountpoint) found = dev;  // the last one: mounts stack
  }
  return found;
}

}  // namespace

void ProxyFs::after_init() {
  // Checked on every lookup and getattr: a plain load once it is done.
  if (options_.kernel_readahead_kb == 0 || readahead_set_.load(std::memory_order_relaxed) ||
      readahead_set_.exchange(true)) {
    return;
  }
  // The kernel applies the smaller of its own and INIT's read-ahead when
  // INIT's reply arrives, and offers only its default (128 KiB) in INIT:
  // a larger value can be set only afterwards, through sysfs.
  const std::string dev = mount_device(options_.mountpoint.string());
  if (dev.empty()) {
    log::warn("cannot find the mount in /proc/self/mountinfo", {{"mount", options_.mountpoint.string()}});
    return;
  }
  const std::string file = "/sys/class/bdi/" + dev + "/read_ahead_kb";
  std::ofstream out{file};
  out << options_.kernel_readahead_kb << '\n';
  out.flush();
  if (!out) log::warn("cannot raise the kernel's read-ahead (not root?)", {{"file", file}});
}

bool ProxyFs::attr_of(fuse_ino_t ino, struct stat* st, double* timeout) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_blksize = 1 << 20;
  if (ino == kDataRootIno) {  // answered here: it exists even when the server refuses its contents
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    *timeout = options_.immutable_timeout_s;
    return true;
  }
  const auto node = tree_.node(ino);
  if (!node) return false;
  *timeout = options_.immutable_timeout_s;
  switch (node->kind) {
    case Node::Kind::kRoot:
    case Node::Kind::kImages:
      st->st_mode = S_IFDIR | 0555;
      st->st_nlink = 2;
      *timeout = options_.latest_timeout_s;
      return true;
    case Node::Kind::kStatus:
      st->st_mode = S_IFREG | 0444;
      st->st_nlink = 1;
      *timeout = 0;
      return true;
    case Node::Kind::kImage:
      break;
  }
  st->st_mode = S_IFREG | 0444;
  st->st_nlink = 1;
  if (node->version == 0) *timeout = options_.latest_timeout_s;
  std::uint64_t size = 0;
  if (auto m = node->version != 0 ? cached_manifest(node->name + "@" + std::to_string(node->version)) : nullptr) {
    size = m->size;  // a version's size never changes
  } else {
    auto e = tree_.entry(*node, node->version == 0);
    if (!e) return false;
    size = e->size;
  }
  st->st_size = static_cast<off_t>(size);
  st->st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
  return true;
}

void ProxyFs::lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  after_init();
  if (is_data_ino(parent)) {
    data_lookup(req, parent, name);
    return;
  }
  try {
    const auto ino = parent == kRootIno && std::strcmp(name, kDataName) == 0 ? std::optional{kDataRootIno}
                                                                               : tree_.lookup(parent, name);
    fuse_entry_param e{};
    double timeout = 0;
    if (!ino || !attr_of(*ino, &e.attr, &timeout)) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    e.ino = *ino;
    e.entry_timeout = e.attr_timeout = timeout;
    fuse_reply_entry(req, &e);
  } catch (const Error& err) {
    log::warn("lookup failed", {{"name", name}, {"error", err.what()}});
    fuse_reply_err(req, EIO);
  }
}

void ProxyFs::getattr(fuse_req_t req, fuse_ino_t ino) {
  after_init();
  if (ino != kDataRootIno && is_data_ino(ino)) {
    data_getattr(req, ino);
    return;
  }
  try {
    struct stat st;
    double timeout = 0;
    if (!attr_of(ino, &st, &timeout)) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    fuse_reply_attr(req, &st, timeout);
  } catch (const Error& err) {
    fuse_reply_err(req, EIO);
  }
}

void ProxyFs::opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (is_data_ino(ino)) {
    data_opendir(req, ino, fi);
    return;
  }
  const auto node = tree_.node(ino);
  if (!node || (node->kind != Node::Kind::kRoot && node->kind != Node::Kind::kImages)) {
    fuse_reply_err(req, node ? ENOTDIR : ENOENT);
    return;
  }
  std::vector<std::pair<std::string, std::uint64_t>> entries{{".", ino}, {"..", kRootIno}};
  try {
    if (node->kind == Node::Kind::kRoot) {
      entries.emplace_back(kImagesName, kImagesIno);
      entries.emplace_back(kStatusName, kStatusIno);
      entries.emplace_back(kDataName, kDataRootIno);
    } else {
      for (auto& e : tree_.list_images()) entries.push_back(std::move(e));
    }
  } catch (const Error& err) {
    log::warn("listing images failed", {{"error", err.what()}});
    fuse_reply_err(req, EIO);
    return;
  }
  auto f = std::make_unique<OpenFile>();
  f->kind = OpenFile::Kind::kDirectory;
  for (const auto& [name, entry_ino] : entries) {
    const bool dir = entry_ino == kRootIno || entry_ino == kImagesIno || entry_ino == kDataRootIno;
    f->add_dirent(req, name, entry_ino, dir ? S_IFDIR : S_IFREG);
  }
  fi->fh = reinterpret_cast<std::uint64_t>(f.release());
  fi->keep_cache = 0;
  if (fuse_reply_open(req, fi) != 0) delete open_file(fi);  // the opener went away
}

void ProxyFs::readdir(fuse_req_t req, fuse_ino_t, std::size_t size, off_t off, fuse_file_info* fi) {
  const std::string& text = open_file(fi)->text;
  if (off < 0 || static_cast<std::size_t>(off) >= text.size()) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  // Whole records only: walk from off while they fit.
  std::size_t end = static_cast<std::size_t>(off);
  while (end < text.size()) {
    // struct fuse_dirent: u64 ino, u64 off, u32 namelen, u32 type, name, padded to 8 bytes.
    std::uint32_t namelen = 0;
    std::memcpy(&namelen, text.data() + end + 16, sizeof namelen);
    const std::size_t rec = (24 + namelen + 7) & ~std::size_t{7};
    if (end + rec - static_cast<std::size_t>(off) > size) break;
    end += rec;
  }
  fuse_reply_buf(req, text.data() + off, end - static_cast<std::size_t>(off));
}

void ProxyFs::release(fuse_req_t req, fuse_file_info* fi) {
  delete open_file(fi);
  fuse_reply_err(req, 0);
}

// The rest of the write side exists only under /data: elsewhere the tree is
// read-only.
void ProxyFs::setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set) {
  if (ino != kDataRootIno && is_data_ino(ino)) {
    data_setattr(req, ino, attr, to_set);
  } else {
    fuse_reply_err(req, EROFS);
  }
}

void ProxyFs::create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  if (is_data_ino(parent)) {
    data_create(req, parent, name, mode, fi);
  } else {
    fuse_reply_err(req, EROFS);
  }
}

void ProxyFs::write(fuse_req_t req, const char* buf, std::size_t size, off_t off, fuse_file_info* fi) {
  if (open_file(fi)->kind == OpenFile::Kind::kData) {
    data_write(req, buf, size, off, fi);
  } else {
    fuse_reply_err(req, EBADF);
  }
}

void ProxyFs::flush(fuse_req_t req, fuse_file_info* fi) {
  if (open_file(fi)->kind == OpenFile::Kind::kData) {
    data_sync(req, fi, true);  // close(2) returns once the data is durable
  } else {
    fuse_reply_err(req, 0);
  }
}

void ProxyFs::fsync(fuse_req_t req, fuse_file_info* fi) {
  if (open_file(fi)->kind == OpenFile::Kind::kData) {
    data_sync(req, fi, false);
  } else {
    fuse_reply_err(req, 0);
  }
}

void ProxyFs::mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  if (is_data_ino(parent)) {
    data_mkdir(req, parent, name, mode);
  } else {
    fuse_reply_err(req, EROFS);
  }
}

void ProxyFs::remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool directory) {
  if (is_data_ino(parent)) {
    data_remove(req, parent, name, directory);
  } else {
    fuse_reply_err(req, EROFS);
  }
}

void ProxyFs::rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
                     unsigned int flags) {
  if (is_data_ino(parent)) {
    data_rename(req, parent, name, new_parent, new_name, flags);
  } else {
    fuse_reply_err(req, EROFS);
  }
}

void ProxyFs::forget(fuse_ino_t ino, std::uint64_t nlookup) {
  if (is_data_ino(ino)) data_.forget(ino, nlookup);  // image inodes are kept (ImageTree)
}

}  // namespace vigo::vfs
