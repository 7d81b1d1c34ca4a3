// SPDX-License-Identifier: Apache-2.0
// ProxyFs: the read-write user-data tree under /data. Every operation is
// one or two requests to the image server (DATA_* messages, paths relative
// to the user's tree); the reply to the kernel is sent from the pool's
// thread when the server's answer arrives, except setattr and opendir,
// which may need several requests and wait on the FUSE thread. The server's
// errno (ENOTEMPTY, EEXIST, ...) becomes the caller's errno; a lost
// connection or a timeout is EIO. Attributes and names are cached by the
// kernel for data_timeout_s only: another client may change the tree.
// Data is durable on the server when fsync() or close() returns (flush and
// fsync send DATA_FSYNC).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "open_file.h"
#include "vigo/common/log.h"
#include "vigo/common/wire_messages.h"
#include "vigo/vfs/proxy_fs.h"

namespace vigo::vfs {
namespace {

using wire::MessageType;

int errno_of(const Outcome& o) { return vfs::errno_of(*o.error, o.sys_errno); }

void fill_stat(const wire::Attr& a, fuse_ino_t ino, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  switch (a.kind) {
    case wire::FileKind::kDirectory: st->st_mode = S_IFDIR; break;
    case wire::FileKind::kSymlink: st->st_mode = S_IFLNK; break;
    default: st->st_mode = S_IFREG; break;
  }
  st->st_mode |= a.mode & 07777;
  st->st_nlink = a.nlink;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_size = static_cast<off_t>(a.size);
  st->st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st->st_blksize = 1 << 16;
  st->st_mtim.tv_sec = a.mtime_ns / 1'000'000'000;
  st->st_mtim.tv_nsec = a.mtime_ns % 1'000'000'000;
  st->st_atim = st->st_mtim;
  st->st_ctim.tv_sec = a.ctime_ns / 1'000'000'000;
  st->st_ctim.tv_nsec = a.ctime_ns % 1'000'000'000;
}

std::int64_t to_ns(const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

std::int64_t now_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return to_ns(t);
}

// A name the server will accept (it checks again): ENAMETOOLONG early.
int check_name(const char* name) {
  const std::size_t n = std::strlen(name);
  if (n == 0 || std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) return EINVAL;
  if (n > wire::kMaxNameBytes) return ENAMETOOLONG;
  return 0;
}

}  // namespace

template <typename OnReply>
void ProxyFs::ask(fuse_req_t req, MessageType type, std::vector<std::uint8_t> payload, OnReply on_reply) {
  pool_->submit(type, std::move(payload), [req, on_reply = std::move(on_reply)](Outcome o) mutable {
    if (!o.ok()) {
      if (o.sys_errno == 0 && o.error->code() != ErrorCode::kNotFound) {
        log::warn("data request failed", {{"error", o.error->what()}});
      }
      fuse_reply_err(req, errno_of(o));
      return;
    }
    try {
      on_reply(o.bytes);
    } catch (const Error& e) {
      log::warn("bad reply to a data request", {{"error", e.what()}});
      fuse_reply_err(req, EIO);
    }
  }, ConnectionPool::Routing{ConnectionPool::Priority::kUrgent, std::nullopt, 0, true});  // a FUSE reply: quick
}

std::optional<std::string> ProxyFs::child_path(fuse_req_t req, fuse_ino_t parent, const char* name) {
  const auto dir = data_.path(parent);
  if (!dir) {
    fuse_reply_err(req, ESTALE);
    return std::nullopt;
  }
  if (const int e = check_name(name); e != 0) {
    fuse_reply_err(req, e);
    return std::nullopt;
  }
  std::string path = join_data_path(*dir, name);
  if (path.size() > wire::kMaxPath) {
    fuse_reply_err(req, ENAMETOOLONG);
    return std::nullopt;
  }
  return path;
}

std::optional<std::string> ProxyFs::data_path(fuse_req_t req, fuse_ino_t ino) {
  auto path = data_.path(ino);
  if (!path) fuse_reply_err(req, ESTALE);
  return path;
}

void ProxyFs::reply_data_entry(fuse_req_t req, const std::string& path, const wire::Attr& attr,
                               fuse_file_info* created) {
  fuse_entry_param e{};
  e.ino = data_.remember(path);
  fill_stat(attr, e.ino, &e.attr);
  e.entry_timeout = e.attr_timeout = options_.data_timeout_s;
  const int rc = created != nullptr ? fuse_reply_create(req, &e, created) : fuse_reply_entry(req, &e);
  if (rc != 0) {  // the caller went away: the kernel holds no reference
    data_.forget(e.ino, 1);
    if (created != nullptr) delete open_file(created);
  }
}

void ProxyFs::data_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto path = child_path(req, parent, name);
  if (!path) return;
  ask(req, MessageType::kDataStat, wire::encode(wire::PathRequest{*path}),
      [this, req, path = *path](std::span<const std::uint8_t> bytes) {
        reply_data_entry(req, path, wire::decode_attr(bytes), nullptr);
      });
}

void ProxyFs::data_getattr(fuse_req_t req, fuse_ino_t ino) {
  auto path = data_path(req, ino);
  if (!path) return;
  ask(req, MessageType::kDataStat, wire::encode(wire::PathRequest{*path}),
      [this, req, ino](std::span<const std::uint8_t> bytes) {
        struct stat st;
        fill_stat(wire::decode_attr(bytes), ino, &st);
        fuse_reply_attr(req, &st, options_.data_timeout_s);
      });
}

void ProxyFs::data_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set) {
  auto path = data_path(req, ino);
  if (!path) return;
  if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0) {
    fuse_reply_err(req, EPERM);  // files belong to the user whose tree this is
    return;
  }
  // Up to two requests (truncate, then the rest): this one waits.
  if ((to_set & FUSE_SET_ATTR_SIZE) != 0) {
    if (attr->st_size < 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    Outcome o = pool_->call(MessageType::kDataTruncate,
                            wire::encode(wire::Truncate{*path, static_cast<std::uint64_t>(attr->st_size)}));
    if (!o.ok()) {
      fuse_reply_err(req, errno_of(o));
      return;
    }
  }
  wire::SetAttr m;
  m.path = *path;
  if ((to_set & FUSE_SET_ATTR_MODE) != 0) {
    m.which |= wire::kSetMode;
    m.mode = attr->st_mode & 07777;
  }
  if ((to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) != 0) {
    m.which |= wire::kSetAtime;
    m.atime_ns = (to_set & FUSE_SET_ATTR_ATIME_NOW) != 0 ? now_ns() : to_ns(attr->st_atim);
  }
  if ((to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) != 0) {
    m.which |= wire::kSetMtime;
    m.mtime_ns = (to_set & FUSE_SET_ATTR_MTIME_NOW) != 0 ? now_ns() : to_ns(attr->st_mtim);
  }
  // With nothing (else) to set, DATA_SETATTR still returns the attributes.
  ask(req, MessageType::kDataSetAttr, wire::encode(m), [this, req, ino](std::span<const std::uint8_t> bytes) {
    struct stat st;
    fill_stat(wire::decode_attr(bytes), ino, &st);
    fuse_reply_attr(req, &st, options_.data_timeout_s);
  });
}

void ProxyFs::data_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto path = data_path(req, ino);
  if (!path) return;
  // The whole listing, page by page, on this thread; readdir serves it.
  auto f = std::make_unique<OpenFile>();
  f->kind = OpenFile::Kind::kDirectory;
  f->add_dirent(req, ".", ino, S_IFDIR);
  f->add_dirent(req, "..", ino == kDataRootIno ? kRootIno : ino, S_IFDIR);
  wire::ReadDir page_req{*path, 0};
  while (true) {
    Outcome o = pool_->call(MessageType::kDataReadDir, wire::encode(page_req));
    if (!o.ok()) {
      fuse_reply_err(req, errno_of(o));
      return;
    }
    wire::DirPage page;
    try {
      page = wire::decode_dir_page(o.bytes);
    } catch (const Error& e) {
      fuse_reply_err(req, EIO);
      return;
    }
    for (const auto& e : page.entries) {
      // Readdir hands out no references (no lookup count): ino is informational.
      f->add_dirent(req, e.name, data_.find(join_data_path(*path, e.name)).value_or(kUnknownDataIno),
                    e.kind == wire::FileKind::kDirectory ? S_IFDIR : S_IFREG);
    }
    if (!page.more) break;
    if (page.next <= page_req.start) {
      fuse_reply_err(req, EIO);  // a server that does not advance
      return;
    }
    page_req.start = page.next;
  }
  fi->fh = reinterpret_cast<std::uint64_t>(f.release());
  if (fuse_reply_open(req, fi) != 0) delete open_file(fi);
}

void ProxyFs::data_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto path = data_path(req, ino);
  if (!path) return;
  const bool truncate = (fi->flags & O_TRUNC) != 0 && (fi->flags & O_ACCMODE) != O_RDONLY;
  fi->keep_cache = 0;  // another client may have changed the file since the kernel cached it
  auto reply = [req, ino, truncate](fuse_file_info* out) {
    auto* f = new OpenFile;  // the kernel owns it from here; release() deletes it
    f->kind = OpenFile::Kind::kData;
    f->ino = ino;
    f->dirty = truncate;
    out->fh = reinterpret_cast<std::uint64_t>(f);
    if (fuse_reply_open(req, out) != 0) delete f;
  };
  if (!truncate) {
    reply(fi);
    return;
  }
  ask(req, MessageType::kDataTruncate, wire::encode(wire::Truncate{*path, 0}),
      [reply, fi_copy = *fi](std::span<const std::uint8_t>) mutable { reply(&fi_copy); });
}

void ProxyFs::data_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  auto path = child_path(req, parent, name);
  if (!path) return;
  wire::Create m{*path, static_cast<std::uint32_t>(mode & 07777), 0};
  if ((fi->flags & O_EXCL) != 0) m.flags |= wire::kCreateExclusive;
  if ((fi->flags & O_TRUNC) != 0) m.flags |= wire::kCreateTruncate;
  ask(req, MessageType::kDataCreate, wire::encode(m),
      [this, req, path = *path, fi_copy = *fi](std::span<const std::uint8_t> bytes) mutable {
        const wire::Attr attr = wire::decode_attr(bytes);
        auto* f = new OpenFile;
        f->kind = OpenFile::Kind::kData;
        f->dirty = true;  // the new name must be durable at close
        fi_copy.fh = reinterpret_cast<std::uint64_t>(f);
        fi_copy.keep_cache = 0;
        f->ino = data_.remember(path, 0);
        reply_data_entry(req, path, attr, &fi_copy);
      });
}

void ProxyFs::data_read(fuse_req_t req, std::size_t size, off_t off, fuse_file_info* fi) {
  auto path = data_path(req, open_file(fi)->ino);
  if (!path) return;
  const auto length = static_cast<std::uint32_t>(std::min<std::size_t>(size, wire::kMaxData));
  ask(req, MessageType::kDataRead, wire::encode(wire::Read{*path, static_cast<std::uint64_t>(off), length}),
      [req](std::span<const std::uint8_t> bytes) {
        fuse_reply_buf(req, reinterpret_cast<const char*>(bytes.data()), bytes.size());
      });
}

void ProxyFs::data_write(fuse_req_t req, const char* buf, std::size_t size, off_t off, fuse_file_info* fi) {
  OpenFile& f = *open_file(fi);
  auto path = data_path(req, f.ino);
  if (!path) return;
  if (off < 0 || size > wire::kMaxData) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  f.dirty = true;
  wire::Write m{*path, static_cast<std::uint64_t>(off), std::vector<std::uint8_t>(buf, buf + size)};
  ask(req, MessageType::kDataWrite, wire::encode(m), [req](std::span<const std::uint8_t> bytes) {
    wire::FieldReader r{bytes};
    const std::uint32_t written = r.u32("bytes written");
    r.expect_end("write reply");
    fuse_reply_write(req, written);
  });
}

void ProxyFs::data_sync(fuse_req_t req, fuse_file_info* fi, bool only_if_dirty) {
  OpenFile& f = *open_file(fi);
  if (only_if_dirty && !f.dirty.exchange(false)) {
    fuse_reply_err(req, 0);
    return;
  }
  auto path = data_path(req, f.ino);
  if (!path) return;
  ask(req, MessageType::kDataFsync, wire::encode(wire::PathRequest{*path}),
      [req](std::span<const std::uint8_t>) { fuse_reply_err(req, 0); });
}

void ProxyFs::data_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  auto path = child_path(req, parent, name);
  if (!path) return;
  ask(req, MessageType::kDataMkdir, wire::encode(wire::Create{*path, static_cast<std::uint32_t>(mode & 07777), 0}),
      [this, req, path = *path](std::span<const std::uint8_t> bytes) {
        reply_data_entry(req, path, wire::decode_attr(bytes), nullptr);
      });
}

void ProxyFs::data_remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool directory) {
  auto path = child_path(req, parent, name);
  if (!path) return;
  ask(req, directory ? MessageType::kDataRmdir : MessageType::kDataUnlink, wire::encode(wire::PathRequest{*path}),
      [this, req, path = *path](std::span<const std::uint8_t>) {
        data_.removed(path);
        fuse_reply_err(req, 0);
      });
}

void ProxyFs::data_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                          const char* new_name, unsigned int flags) {
  if ((flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) != 0) {
    fuse_reply_err(req, EINVAL);  // RENAME_EXCHANGE and RENAME_WHITEOUT are not offered
    return;
  }
  if (!is_data_ino(new_parent)) {
    fuse_reply_err(req, EXDEV);
    return;
  }
  auto from = child_path(req, parent, name);
  if (!from) return;
  auto to = child_path(req, new_parent, new_name);
  if (!to) return;
  wire::Rename m{*from, *to, (flags & RENAME_NOREPLACE) != 0 ? wire::kRenameNoReplace : std::uint8_t{0}};
  ask(req, MessageType::kDataRename, wire::encode(m), [this, req, from = *from, to = *to](std::span<const std::uint8_t>) {
    data_.renamed(from, to);
    fuse_reply_err(req, 0);
  });
}

}  // namespace vigo::vfs
