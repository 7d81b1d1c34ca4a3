// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/user_data.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vigo/common/file_util.h"
#include "vigo/common/names.h"

namespace vigo::imageserver {
namespace {

constexpr std::size_t kMaxPageBytes = 1u << 20;
constexpr std::uint32_t kMaxPageEntries = 4096;

[[noreturn]] void fail(std::string_view what, std::string_view path, int e = errno) {
  ErrorCode code = ErrorCode::kInternal;
  std::string why;
  switch (e) {
    case ENOENT:
      code = ErrorCode::kNotFound;
      break;
    case EEXIST:
      code = ErrorCode::kAlreadyExists;
      break;
    case ENOTEMPTY:
      code = ErrorCode::kConflict;
      break;
    case EACCES:
    case EPERM:
      code = ErrorCode::kPermissionDenied;
      break;
    case ELOOP:
    case EXDEV:
      code = ErrorCode::kPermissionDenied;
      why = " (the path crosses a symlink or leaves the user's tree)";
      break;
    case EISDIR:
    case ENOTDIR:
    case EINVAL:
    case ENAMETOOLONG:
      code = ErrorCode::kInvalidArgument;
      break;
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case EFBIG:
    case ENOMEM:
      code = ErrorCode::kResourceExhausted;
      break;
    default:
      break;
  }
  char buf[256];
  const char* text = strerror_r(e, buf, sizeof buf);
  throw FsError{code, std::string{what} + " '" + std::string{path} + "': " + text + why, e};
}

Error bad_path(std::string_view why) { return invalid_argument("path", why); }

wire::FileKind kind_of(mode_t mode) {
  if (S_ISREG(mode)) return wire::FileKind::kFile;
  if (S_ISDIR(mode)) return wire::FileKind::kDirectory;
  if (S_ISLNK(mode)) return wire::FileKind::kSymlink;
  return wire::FileKind::kOther;
}

wire::Attr to_attr(const struct stat& st) {
  wire::Attr a;
  a.kind = kind_of(st.st_mode);
  a.mode = st.st_mode & 07777;
  a.size = static_cast<std::uint64_t>(st.st_size);
  a.mtime_ns = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
  a.ctime_ns = st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec;
  a.nlink = static_cast<std::uint32_t>(st.st_nlink);
  return a;
}

}  // namespace

UserPath check_user_path(std::string_view path) {
  if (path.size() > wire::kMaxPath) throw bad_path("longer than 4096 bytes");
  if (path.find('\0') != std::string_view::npos) throw bad_path("contains a NUL byte");
  if (path.starts_with('/')) throw bad_path("must be relative to the user's tree");
  UserPath out;
  if (path.empty()) return out;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = path.find('/', start);
    const std::string_view name = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (name.empty()) throw bad_path("has an empty component");
    if (name == "." || name == "..") throw bad_path("may not contain '.' or '..'");
    if (name.size() > wire::kMaxNameBytes) throw bad_path("has a name longer than 255 bytes");
    if (slash == std::string_view::npos) {
      out.parent = std::string{path.substr(0, start == 0 ? 0 : start - 1)};
      out.leaf = std::string{name};
      return out;
    }
    start = slash + 1;
  }
}

UserData::UserData(const std::filesystem::path& data_root, const std::string& user) {
  validate_name("user", user);
  make_dirs(data_root, 0711);
  dir_ = data_root / user;
  if (::mkdir(dir_.c_str(), 0700) == 0) {
    fsync_dir(data_root);
  } else if (errno != EEXIST) {
    throw_errno("mkdir " + dir_.string());
  }
  const int fd = ::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("open user tree " + dir_.string());
  root_.reset(fd);
}

UniqueFd UserData::open_beneath(std::string_view path, int flags, std::uint32_t mode) const {
  open_how how{};
  // RESOLVE_NO_SYMLINKS also refuses a symlink as the last component (ELOOP);
  // O_NOFOLLOW would turn that into ENOTDIR for directories, so it is left out.
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) != 0 ? (mode & 0777) : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const std::string p = path.empty() ? "." : std::string{path};
  long fd;
  do {
    fd = ::syscall(SYS_openat2, root_.get(), p.c_str(), &how, sizeof how);
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd < 0) {
    if (errno == ENOSYS) throw Error{ErrorCode::kUnavailable, "openat2 is not available (Linux 5.6 or later needed)"};
    fail("open", path);
  }
  return UniqueFd{static_cast<int>(fd)};
}

UniqueFd UserData::open_parent(const UserPath& p) const { return open_beneath(p.parent, O_PATH | O_DIRECTORY); }

wire::Attr UserData::stat(std::string_view path) const {
  const UserPath p = check_user_path(path);
  struct stat st {};
  if (p.leaf.empty()) {
    if (::fstat(root_.get(), &st) != 0) fail("stat", path);
  } else {
    UniqueFd parent = open_parent(p);
    if (::fstatat(parent.get(), p.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) fail("stat", path);
  }
  return to_attr(st);
}

wire::DirPage UserData::read_dir(std::string_view path, std::uint32_t start) const {
  (void)check_user_path(path);
  UniqueFd fd = open_beneath(path, O_RDONLY | O_DIRECTORY);
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) fail("read directory", path);
  const int dfd = fd.release();
  std::vector<std::pair<std::string, wire::FileKind>> all;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    const std::string_view name{e->d_name};
    if (name == "." || name == "..") continue;
    wire::FileKind kind = wire::FileKind::kOther;
    if (e->d_type == DT_REG)
      kind = wire::FileKind::kFile;
    else if (e->d_type == DT_DIR)
      kind = wire::FileKind::kDirectory;
    else if (e->d_type == DT_LNK)
      kind = wire::FileKind::kSymlink;
    else if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) kind = kind_of(st.st_mode);
    }
    all.emplace_back(std::string{name}, kind);
  }
  const int e = errno;
  ::closedir(d);
  if (e != 0) fail("read directory", path, e);
  std::sort(all.begin(), all.end());  // a stable order makes `start` meaningful
  wire::DirPage page;
  std::size_t bytes = 0;
  std::uint32_t i = start;
  for (; i < all.size() && page.entries.size() < kMaxPageEntries && bytes < kMaxPageBytes; ++i) {
    bytes += all[i].first.size() + 5;
    page.entries.push_back({all[i].first, all[i].second});
  }
  page.more = i < all.size();
  page.next = i;
  return page;
}

std::vector<std::uint8_t> UserData::read(std::string_view path, std::uint64_t offset, std::uint32_t length) const {
  (void)check_user_path(path);
  if (length > wire::kMaxData) throw invalid_argument("length", "exceeds 8 MiB");
  if (offset > static_cast<std::uint64_t>(INT64_MAX)) throw invalid_argument("offset", "too large");
  UniqueFd fd = open_beneath(path, O_RDONLY);
  std::vector<std::uint8_t> out(length);
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t r = ::pread(fd.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail("read", path);
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  out.resize(done);
  return out;
}

std::uint32_t UserData::write(std::string_view path, std::uint64_t offset, std::span<const std::uint8_t> data) {
  (void)check_user_path(path);
  if (data.size() > wire::kMaxData) throw invalid_argument("data", "exceeds 8 MiB");
  if (offset > static_cast<std::uint64_t>(INT64_MAX) - data.size()) throw invalid_argument("offset", "too large");
  UniqueFd fd = open_beneath(path, O_WRONLY);
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t w = ::pwrite(fd.get(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("write", path);
    }
    done += static_cast<std::size_t>(w);
  }
  return static_cast<std::uint32_t>(done);
}

void UserData::create(std::string_view path, std::uint32_t mode, std::uint8_t flags) {
  const UserPath p = check_user_path(path);
  if (p.leaf.empty()) throw bad_path("names the tree's root");
  int oflags = O_WRONLY | O_CREAT;
  if ((flags & wire::kCreateExclusive) != 0) oflags |= O_EXCL;
  if ((flags & wire::kCreateTruncate) != 0) oflags |= O_TRUNC;
  UniqueFd fd = open_beneath(path, oflags, mode);
  UniqueFd parent = open_beneath(p.parent, O_RDONLY | O_DIRECTORY);
  if (::fsync(parent.get()) != 0) fail("fsync parent of", path);
}

void UserData::mkdir(std::string_view path, std::uint32_t mode) {
  const UserPath p = check_user_path(path);
  if (p.leaf.empty()) throw bad_path("names the tree's root");
  UniqueFd parent = open_beneath(p.parent, O_RDONLY | O_DIRECTORY);
  if (::mkdirat(parent.get(), p.leaf.c_str(), mode & 0777) != 0) fail("mkdir", path);
  if (::fsync(parent.get()) != 0) fail("fsync parent of", path);
}

void UserData::unlink(std::string_view path) {
  const UserPath p = check_user_path(path);
  if (p.leaf.empty()) throw bad_path("names the tree's root");
  UniqueFd parent = open_beneath(p.parent, O_RDONLY | O_DIRECTORY);
  if (::unlinkat(parent.get(), p.leaf.c_str(), 0) != 0) fail("unlink", path);
  if (::fsync(parent.get()) != 0) fail("fsync parent of", path);
}

void UserData::rmdir(std::string_view path) {
  const UserPath p = check_user_path(path);
  if (p.leaf.empty()) throw bad_path("names the tree's root");
  UniqueFd parent = open_beneath(p.parent, O_RDONLY | O_DIRECTORY);
  if (::unlinkat(parent.get(), p.leaf.c_str(), AT_REMOVEDIR) != 0) fail("rmdir", path);
  if (::fsync(parent.get()) != 0) fail("fsync parent of", path);
}

void UserData::rename(std::string_view from, std::string_view to, std::uint8_t flags) {
  const UserPath a = check_user_path(from);
  const UserPath b = check_user_path(to);
  if (a.leaf.empty() || b.leaf.empty()) throw bad_path("names the tree's root");
  UniqueFd pa = open_beneath(a.parent, O_RDONLY | O_DIRECTORY);
  UniqueFd pb = open_beneath(b.parent, O_RDONLY | O_DIRECTORY);
  const unsigned rflags = (flags & wire::kRenameNoReplace) != 0 ? RENAME_NOREPLACE : 0;
  if (::renameat2(pa.get(), a.leaf.c_str(), pb.get(), b.leaf.c_str(), rflags) != 0) fail("rename", from);
  if (::fsync(pb.get()) != 0) fail("fsync parent of", to);
  if (a.parent != b.parent && ::fsync(pa.get()) != 0) fail("fsync parent of", from);
}

void UserData::truncate(std::string_view path, std::uint64_t size) {
  (void)check_user_path(path);
  if (size > static_cast<std::uint64_t>(INT64_MAX)) throw invalid_argument("size", "too large");
  UniqueFd fd = open_beneath(path, O_WRONLY);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) fail("truncate", path);
}

void UserData::fsync(std::string_view path) {
  (void)check_user_path(path);
  UniqueFd fd = open_beneath(path, O_RDONLY);
  if (::fsync(fd.get()) != 0) fail("fsync", path);
}

wire::Attr UserData::set_attr(const wire::SetAttr& r) {
  const UserPath p = check_user_path(r.path);
  UniqueFd parent = open_parent(p);
  const char* leaf = p.leaf.empty() ? "." : p.leaf.c_str();
  if ((r.which & wire::kSetMode) != 0 && ::fchmodat(parent.get(), leaf, r.mode & 0777, AT_SYMLINK_NOFOLLOW) != 0) {
    fail("chmod", r.path);
  }
  if ((r.which & (wire::kSetAtime | wire::kSetMtime)) != 0) {
    timespec times[2];
    times[0] = (r.which & wire::kSetAtime) != 0 ? timespec{r.atime_ns / 1'000'000'000, r.atime_ns % 1'000'000'000}
                                                : timespec{0, UTIME_OMIT};
    times[1] = (r.which & wire::kSetMtime) != 0 ? timespec{r.mtime_ns / 1'000'000'000, r.mtime_ns % 1'000'000'000}
                                                : timespec{0, UTIME_OMIT};
    if (times[0].tv_nsec < 0 || times[1].tv_nsec < 0) throw invalid_argument("time", "must not be negative");
    if (::utimensat(parent.get(), leaf, times, AT_SYMLINK_NOFOLLOW) != 0) fail("set times of", r.path);
  }
  return stat(r.path);
}

}  // namespace vigo::imageserver
