// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/clone_save_stream.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/common/unique_fd.h"

namespace vigo::scheduler {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kBlock = 1u << 20;
// The pipe's buffer: QEMU reads while the next block is fetched.
constexpr int kPipeBuffer = 1 << 20;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

CloneSaveStream::CloneSaveStream(const fs::path& parent, const CloneIdentity& identity, const fs::path& fifo)
    : CloneSaveStream(parent, read_save_file_header(parent), identity, fifo) {}

CloneSaveStream::CloneSaveStream(const fs::path& parent, const SaveFileHeader& header, const CloneIdentity& identity,
                                 const fs::path& fifo)
    : parent_(parent), fifo_(fifo) {
  ClonePrefix prefix = clone_save_prefix(header, identity);
  prefix_ = std::move(prefix.bytes);
  stream_offset_ = prefix.parent_stream_offset;
  std::error_code ec;
  const auto size = fs::file_size(parent, ec);
  if (ec) throw Error{ErrorCode::kNotFound, "save file " + parent.string() + ": " + ec.message()};
  // read_save_file_header checked that a stream follows; a file that has
  // shrunk since is reported by the writer.
  stream_bytes_ = size > stream_offset_ ? size - stream_offset_ : 0;
  if (::mkfifo(fifo.c_str(), 0600) != 0) {
    if (errno == EEXIST) throw Error{ErrorCode::kAlreadyExists, "clone save file " + fifo.string() + " already exists"};
    throw_errno("mkfifo " + fifo.string());
  }
  writer_ = std::jthread{[this](std::stop_token stop) {
    write_all(stop);
    finished_ = true;
  }};
}

CloneSaveStream::~CloneSaveStream() {
  (void)stop();
  std::error_code ec;
  fs::remove(fifo_, ec);
}

std::string CloneSaveStream::stop() {
  writer_.request_stop();
  if (writer_.joinable()) writer_.join();
  std::lock_guard lock{mu_};
  return error_;
}

void CloneSaveStream::write_all(std::stop_token stop) {
  // A reader that goes away makes write() fail with EPIPE; the SIGPIPE that
  // comes with it stays pending on this thread and dies with it.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  auto fail = [this](std::string what) {
    std::lock_guard lock{mu_};
    error_ = std::move(what);
  };

  // Wait for the reader: a non-blocking open for writing fails with ENXIO
  // until the FIFO has one.
  UniqueFd out;
  while (!stop.stop_requested()) {
    out = UniqueFd{::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)};
    if (out.valid()) break;
    if (errno != ENXIO && errno != EINTR) return fail(errno_text("open " + fifo_.string()));
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  if (!out.valid()) return;
  (void)::fcntl(out.get(), F_SETPIPE_SZ, kPipeBuffer);  // best effort: the default 64 KiB works too

  // Writes all of data, waiting for room (and for a stop) between writes.
  auto put = [&](const std::uint8_t* data, std::size_t n) -> bool {
    while (n > 0) {
      if (stop.stop_requested()) return false;
      const ssize_t w = ::write(out.get(), data, n);
      if (w > 0) {
        data += w;
        n -= static_cast<std::size_t>(w);
        written_ += static_cast<std::uint64_t>(w);
        continue;
      }
      if (w < 0 && errno == EPIPE) {
        fail("the restore stopped reading the save file after " + std::to_string(written_.load()) + " bytes");
        return false;
      }
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        fail(errno_text("write " + fifo_.string()));
        return false;
      }
      pollfd p{out.get(), POLLOUT, 0};
      (void)::poll(&p, 1, 100);
    }
    return true;
  };

  if (!put(reinterpret_cast<const std::uint8_t*>(prefix_.data()), prefix_.size())) return;
  UniqueFd in{::open(parent_.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!in.valid()) return fail(errno_text("open save file " + parent_.string()));
  (void)::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<std::uint8_t> buf(kBlock);
  std::uint64_t offset = stream_offset_, left = stream_bytes_;
  while (left > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
    const ssize_t r = ::pread(in.get(), buf.data(), want, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail(errno_text("read save file " + parent_.string()));
    if (r == 0) return fail("save file " + parent_.string() + " shrank while it was streamed");
    if (!put(buf.data(), static_cast<std::size_t>(r))) return;
    offset += static_cast<std::uint64_t>(r);
    left -= static_cast<std::uint64_t>(r);
  }
}

}  // namespace vigo::scheduler
