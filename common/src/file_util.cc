// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/file_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "vigo/common/digest.h"
#include "vigo/common/error.h"

namespace vigo {

UniqueFd open_or_throw(const std::filesystem::path& path, int flags, std::string_view what, mode_t mode) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) throw_errno("open " + std::string{what} + " " + path.string());
  return UniqueFd{fd};
}

UniqueFd open_at_or_throw(int dirfd, const std::string& name, int flags, std::string_view what, mode_t mode) {
  const int fd = ::openat(dirfd, name.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) throw_errno("open " + std::string{what} + " " + name);
  return UniqueFd{fd};
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::uint8_t> read_all(int fd, std::size_t max_bytes, std::string_view what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat " + std::string{what});
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    throw invalid_argument(std::string{what},
                           std::to_string(st.st_size) + " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  std::vector<std::uint8_t> out(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t r = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + std::string{what});
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  out.resize(done);
  return out;
}

void write_all(int fd, std::span<const std::uint8_t> data, std::string_view what) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("write " + std::string{what});
    }
    done += static_cast<std::size_t>(w);
  }
}

bool widen_pipe(int fd) {
  const int now = ::fcntl(fd, F_GETPIPE_SZ);  // fails (EBADF) unless fd is a pipe
  if (now < 0) return false;
  if (now >= kWidePipeBytes) return true;
  return ::fcntl(fd, F_SETPIPE_SZ, kWidePipeBytes) >= kWidePipeBytes;
}

std::size_t read_full(int fd, std::uint8_t* out, std::size_t n, std::string_view what) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::read(fd, out + done, n - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + std::string{what});
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return done;
}

void pread_exact(int fd, std::uint8_t* out, std::size_t n, std::uint64_t offset, std::string_view what) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + std::string{what});
    }
    if (r == 0) throw Error{ErrorCode::kConflict, std::string{what} + ": file shrank while being read"};
    done += static_cast<std::size_t>(r);
  }
}

void fsync_or_throw(int fd, std::string_view what) {
  if (::fsync(fd) != 0) throw_errno("fsync " + std::string{what});
}

void fsync_dir(const std::filesystem::path& dir) {
  UniqueFd fd = open_or_throw(dir, O_RDONLY | O_DIRECTORY, "directory");
  fsync_or_throw(fd.get(), dir.string());
}

void make_dirs(const std::filesystem::path& dir, mode_t mode) {
  if (dir.empty() || std::filesystem::is_directory(dir)) return;
  make_dirs(dir.parent_path(), mode);
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) throw_errno("mkdir " + dir.string());
  fsync_dir(dir.parent_path().empty() ? "." : dir.parent_path());
}

std::string temp_name() { return ".tmp-" + to_hex(random_bytes(8)); }

bool is_temp_name(std::string_view name) { return name.starts_with(".tmp-"); }

void write_file_atomic(const std::filesystem::path& dir, const std::string& name, std::span<const std::uint8_t> data,
                       Replace replace) {
  UniqueFd dfd = open_or_throw(dir, O_RDONLY | O_DIRECTORY, "directory");
  const std::string tmp = temp_name();
  UniqueFd fd = open_at_or_throw(dfd.get(), tmp, O_WRONLY | O_CREAT | O_EXCL, "temporary file", 0644);
  try {
    write_all(fd.get(), data, (dir / tmp).string());
    fsync_or_throw(fd.get(), (dir / tmp).string());
    fd.reset();
    const unsigned flags = replace == Replace::kNever ? RENAME_NOREPLACE : 0;
    if (::renameat2(dfd.get(), tmp.c_str(), dfd.get(), name.c_str(), flags) != 0) {
      throw_errno("rename into " + (dir / name).string());
    }
  } catch (...) {
    ::unlinkat(dfd.get(), tmp.c_str(), 0);
    throw;
  }
  fsync_or_throw(dfd.get(), dir.string());
}

}  // namespace vigo
