// SPDX-License-Identifier: Apache-2.0
// Stream::pump: one poll() loop over the TLS socket and the plain
// descriptors. Each round tries every step that has room or data (plain
// read, SSL_write, close_notify, SSL_read, plain write) until none makes
// progress, then polls for exactly what the blocked steps wait for (an
// SSL call may want the socket readable to write, or writable to read).
// SSL_read is retried until it wants the socket or the buffer is full, so
// nothing OpenSSL already decrypted (SSL_pending) waits for a poll.
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>

#include "tls_internal.h"
#include "vigo/common/tls.h"

namespace vigo::tls {
namespace {

using Clock = std::chrono::steady_clock;

// A fixed window of bytes: filled at the tail, drained from the head.
class Buffer {
 public:
  static constexpr std::size_t kCapacity = std::size_t{16} << 10;  // one TLS record

  [[nodiscard]] bool empty() const { return begin_ == end_; }
  [[nodiscard]] std::size_t size() const { return end_ - begin_; }
  [[nodiscard]] std::size_t room() {
    if (end_ == kCapacity && begin_ > 0) {  // SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows this
      std::memmove(data_.data(), data_.data() + begin_, size());
      end_ -= begin_;
      begin_ = 0;
    }
    return kCapacity - end_;
  }
  [[nodiscard]] std::uint8_t* head() { return data_.data() + begin_; }
  [[nodiscard]] std::uint8_t* tail() { return data_.data() + end_; }
  void produced(std::size_t n) { end_ += n; }
  void consumed(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) clear();
  }
  void clear() { begin_ = end_ = 0; }

 private:
  std::array<std::uint8_t, kCapacity> data_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// Makes a descriptor non-blocking for a scope and puts its flags back.
class NonBlockingScope {
 public:
  explicit NonBlockingScope(int fd) : fd_(fd), flags_(::fcntl(fd, F_GETFL)) {
    if (flags_ < 0) throw_errno("fcntl F_GETFL");
    if ((flags_ & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, flags_ | O_NONBLOCK) != 0) throw_errno("fcntl F_SETFL");
  }
  ~NonBlockingScope() { (void)::fcntl(fd_, F_SETFL, flags_); }
  NonBlockingScope(const NonBlockingScope&) = delete;
  NonBlockingScope& operator=(const NonBlockingScope&) = delete;

 private:
  int fd_;
  int flags_;
};

bool is_socket(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

// What an SSL call that did not complete waits for, as poll events; throws
// (after marking the stream failed) for anything but WANT_READ/WANT_WRITE.
short wanted_events(SSL* ssl, int ret, bool& failed, const char* what) {
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
      return POLLIN;
    case SSL_ERROR_WANT_WRITE:
      return POLLOUT;
    default:
      failed = true;
      throw internal::ssl_failure(ssl, ret, what);
  }
}

}  // namespace

void Stream::pump(int in_fd, int out_fd, PumpEnd end, std::chrono::milliseconds linger, int stop_fd) {
  const NonBlockingScope in_scope{in_fd};
  const NonBlockingScope out_scope{out_fd};
  const bool out_socket = is_socket(out_fd);
  Buffer up;                                 // plain -> TLS
  Buffer down;                               // TLS -> plain
  bool in_open = true;                       // in_fd may still give bytes
  bool sent_close = false;                   // our close_notify is out (nothing more to send)
  bool peer_open = true;                     // the peer's close_notify has not arrived
  bool out_open = true;                      // someone still reads out_fd
  bool out_shut = false;                     // out_fd got shutdown(SHUT_WR)
  int write_retry = 0;                       // an SSL_write to repeat with this length
  std::optional<Clock::time_point> give_up;  // kBothClosed: stop waiting for the peer's close then
  unsigned busy_rounds = 0;                  // rounds without a poll()

  while (true) {
    bool progress = false;
    short tls_events = 0;

    if (in_open && up.room() > 0) {
      const ssize_t n = ::read(in_fd, up.tail(), up.room());
      if (n > 0) {
        up.produced(static_cast<std::size_t>(n));
        progress = true;
      } else if (n == 0 || errno == ECONNRESET) {  // a reset: the writer closed with our bytes unread
        in_open = false;
        progress = true;
      } else if (errno == EINTR) {
        progress = true;
      } else if (errno != EAGAIN) {
        throw_errno("TLS bridge: reading the plain side");
      }
    }
    if (!up.empty()) {
      const int len = write_retry > 0 ? write_retry : static_cast<int>(up.size());
      ERR_clear_error();
      const int r = SSL_write(ssl_, up.head(), len);
      if (r > 0) {
        up.consumed(static_cast<std::size_t>(r));
        write_retry = 0;
        progress = true;
      } else {
        tls_events = static_cast<short>(tls_events | wanted_events(ssl_, r, failed_, "TLS write failed"));
        write_retry = len;
      }
    }
    if (!in_open && up.empty() && !sent_close) {
      ERR_clear_error();
      const int r = SSL_shutdown(ssl_);  // 0: sent; 1: the peer's had come already
      if (r >= 0) {
        sent_close = true;
        progress = true;
        if (linger != std::chrono::milliseconds::max()) give_up = Clock::now() + linger;
      } else {
        tls_events = static_cast<short>(tls_events | wanted_events(ssl_, r, failed_, "TLS close_notify failed"));
      }
    }
    if (peer_open && down.room() > 0) {
      ERR_clear_error();
      const int r = SSL_read(ssl_, down.tail(), static_cast<int>(down.room()));
      if (r > 0) {
        down.produced(static_cast<std::size_t>(r));
        progress = true;
      } else if (SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) {
        peer_open = false;
        progress = true;
      } else {
        tls_events = static_cast<short>(tls_events | wanted_events(ssl_, r, failed_, "TLS read failed"));
      }
    }
    bool out_waits = false;
    if (out_open && !down.empty()) {
      const ssize_t n = out_socket ? ::send(out_fd, down.head(), down.size(), MSG_NOSIGNAL)
                                   : ::write(out_fd, down.head(), down.size());
      if (n > 0) {
        down.consumed(static_cast<std::size_t>(n));
        progress = true;
      } else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        out_open = false;  // the reader is gone: drop what it would have got
        progress = true;
      } else if (n < 0 && errno == EINTR) {
        progress = true;
      } else if (n < 0 && errno != EAGAIN) {
        throw_errno("TLS bridge: writing the plain side");
      } else {
        out_waits = true;
      }
    }
    if (!out_open) down.clear();
    if (!peer_open && down.empty() && out_open && !out_shut) {
      if (out_socket) (void)::shutdown(out_fd, SHUT_WR);  // the plain reader sees the end too
      out_shut = true;
    }

    const bool peer_done = !peer_open && down.empty();
    if (peer_done && (end == PumpEnd::kPeerClosed || sent_close)) break;
    if (progress) {
      // A busy stream still looks at stop_fd now and then.
      if (stop_fd >= 0 && ++busy_rounds % 64 == 0) {
        pollfd p{stop_fd, POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) break;
      }
      continue;
    }

    pollfd fds[4] = {{-1, 0, 0}, {-1, 0, 0}, {-1, 0, 0}, {stop_fd, POLLIN, 0}};
    if (in_open && up.room() > 0) fds[0] = {in_fd, POLLIN, 0};
    if (out_waits) fds[1] = {out_fd, POLLOUT, 0};
    if (tls_events != 0) fds[2] = {socket_, tls_events, 0};
    if (fds[0].fd < 0 && fds[1].fd < 0 && fds[2].fd < 0) {
      throw Error{ErrorCode::kInternal, "TLS bridge: stalled with nothing to wait for"};
    }
    int timeout_ms = -1;
    if (give_up) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*give_up - Clock::now()).count();
      if (left <= 0) return;  // our close_notify is out; the peer's never came
      timeout_ms = static_cast<int>(std::min<std::int64_t>(left, 60000));
    }
    if (::poll(fds, 4, timeout_ms) < 0 && errno != EINTR) throw_errno("poll");
    if (stop_fd >= 0 && fds[3].revents != 0) break;
  }
  close_notify();
}

}  // namespace vigo::tls
