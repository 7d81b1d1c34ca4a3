// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/wire_client.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace vigo::wire {

WireClient::WireClient(int in_fd, int out_fd) : in_fd_(in_fd), out_fd_(out_fd) {
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw_errno("pipe2");
  reader_ = std::thread{[this] { read_loop(); }};
}

WireClient::~WireClient() {
  (void)!::write(wake_[1], "x", 1);
  reader_.join();
  ::close(wake_[0]);
  ::close(wake_[1]);
  ::close(in_fd_);
  if (out_fd_ != in_fd_) ::close(out_fd_);
}

HelloReply WireClient::hello(std::string peer) {
  Hello h;
  h.peer = std::move(peer);
  return decode_hello_reply(call(MessageType::kHello, encode(h)));
}

std::future<std::vector<std::uint8_t>> WireClient::start(MessageType type, std::span<const std::uint8_t> payload) {
  std::uint64_t id;
  std::future<std::vector<std::uint8_t>> fut;
  {
    std::lock_guard lock{mu_};
    if (broken_) throw Error{ErrorCode::kUnavailable, "connection closed: " + broken_reason_};
    id = next_id_++;
    Pending& p = pending_[id];
    p.expected_type = reply_type(type);
    fut = p.promise.get_future();
  }
  try {
    std::lock_guard lock{write_mu_};
    write_frame(out_fd_, static_cast<std::uint8_t>(type), id, payload);
  } catch (const Error& e) {
    std::lock_guard lock{mu_};
    auto it = pending_.find(id);
    if (it != pending_.end()) {
      it->second.promise.set_exception(std::make_exception_ptr(e));
      pending_.erase(it);
    }
  }
  return fut;
}

void WireClient::fail_all(const Error& error) {
  std::lock_guard lock{mu_};
  broken_ = true;
  broken_reason_ = error.what();
  for (auto& [id, p] : pending_) {
    p.promise.set_exception(
        std::make_exception_ptr(Error{ErrorCode::kUnavailable, std::string{"connection closed: "} + error.what()}));
  }
  pending_.clear();
}

void WireClient::read_loop() {
  while (true) {
    pollfd fds[2] = {{in_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      fail_all(Error{ErrorCode::kInternal, "poll failed"});
      return;
    }
    if (fds[1].revents != 0) {
      fail_all(Error{ErrorCode::kUnavailable, "client shut down"});
      return;
    }
    std::optional<Frame> f;
    try {
      f = read_frame(in_fd_);
    } catch (const Error& e) {
      fail_all(e);
      return;
    }
    if (!f) {
      fail_all(Error{ErrorCode::kUnavailable, "server closed the stream"});
      return;
    }
    if (f->header.id == 0 && f->header.type == static_cast<std::uint8_t>(MessageType::kError)) {
      // A connection-level error: the server closes the stream after it.
      try {
        fail_all(decode_error(f->payload));
      } catch (const Error& e) {
        fail_all(e);
      }
      return;
    }
    std::lock_guard lock{mu_};
    auto it = pending_.find(f->header.id);
    if (it == pending_.end()) continue;  // not ours: ignore
    if (f->header.type == static_cast<std::uint8_t>(MessageType::kError)) {
      try {
        it->second.promise.set_exception(std::make_exception_ptr(RemoteError{decode_error_reply(f->payload)}));
      } catch (const Error& e) {
        it->second.promise.set_exception(std::make_exception_ptr(e));
      }
    } else if (f->header.type != it->second.expected_type) {
      it->second.promise.set_exception(std::make_exception_ptr(
          Error{ErrorCode::kInternal, "unexpected reply type " + std::string{type_name(f->header.type)}}));
    } else {
      it->second.promise.set_value(std::move(f->payload));
    }
    pending_.erase(it);
  }
}

}  // namespace vigo::wire
