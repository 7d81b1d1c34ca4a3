// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/console_watch.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>

#include "vigo/common/error.h"
#include "vigo/common/unique_fd.h"

namespace vigo::scheduler {

ConsoleWatch::ConsoleWatch(std::filesystem::path file) : file_(std::move(file)) {
  inotify_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_ < 0) throw_errno("inotify_init1");
  // The directory: the file's creation and any write to it (IN_MODIFY on
  // a directory watch reports its files' writes too).
  if (::inotify_add_watch(inotify_, file_.parent_path().c_str(), IN_CREATE | IN_MODIFY | IN_MOVED_TO) < 0) {
    const int e = errno;
    ::close(inotify_);
    throw_errno("watch " + file_.parent_path().string(), e);
  }
}

ConsoleWatch::~ConsoleWatch() {
  if (inotify_ >= 0) ::close(inotify_);
}

void ConsoleWatch::read_new() {
  UniqueFd fd{::open(file_.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.get() < 0) return;  // not there yet
  char buf[65536];
  while (true) {
    const ssize_t n = ::pread(fd.get(), buf, sizeof buf, static_cast<off_t>(offset_));
    if (n <= 0) break;
    offset_ += static_cast<std::uint64_t>(n);
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<std::string> ConsoleWatch::wait_for(const std::string& needle,
                                                  std::chrono::steady_clock::time_point deadline,
                                                  std::stop_token stop) {
  while (true) {
    read_new();
    // Whole lines only: the guest may be in the middle of writing one.
    std::size_t start = 0;
    for (std::size_t nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n', start)) {
      std::string line = pending_.substr(start, nl - start);
      start = nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find(needle) != std::string::npos) {
        pending_.erase(0, start);
        return line;
      }
    }
    pending_.erase(0, start);
    if (pending_.size() > (1u << 20)) pending_.erase(0, pending_.size() - 4096);  // a runaway line
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline || stop.stop_requested()) return std::nullopt;
    // Sleep until the file changes, at most 100 ms at a time (so that a stop
    // request is seen).
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    pollfd p{inotify_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::clamp<long>(left, 1, 100))) > 0) {
      char events[4096];
      while (::read(inotify_, events, sizeof events) > 0) {
      }
    }
  }
}

std::string ConsoleWatch::tail(std::size_t bytes) const {
  UniqueFd fd{::open(file_.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.get() < 0) return {};
  const off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size <= 0) return {};
  const auto from = static_cast<off_t>(std::max<long long>(0, static_cast<long long>(size) - static_cast<long long>(bytes)));
  std::string out(static_cast<std::size_t>(size - from), '\0');
  const ssize_t n = ::pread(fd.get(), out.data(), out.size(), from);
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

}  // namespace vigo::scheduler
