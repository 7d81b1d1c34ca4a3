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

void WireClient::send(MessageType type, std::span<const std::uint8_t> payload, ReplyHandler done) {
  std::uint64_t id;
  {
    std::lock_guard lock{mu_};
    if (broken_) throw Error{ErrorCode::kUnavailable, "connection closed: " + broken_reason_};
    id = next_id_++;
    pending_[id] = Pending{reply_type(type), std::move(done)};
  }
  try {
    std::lock_guard lock{write_mu_};
    write_frame(out_fd_, static_cast<std::uint8_t>(type), id, payload);
  } catch (const Error&) {
    std::lock_guard lock{mu_};
    // Still waiting: it was never sent, so its handler never runs. Gone: the
    // stream broke meanwhile and fail_all() has run (or runs) the handler.
    if (pending_.erase(id) == 1) throw;
  }
}

std::future<std::vector<std::uint8_t>> WireClient::start(MessageType type, std::span<const std::uint8_t> payload) {
  auto promise = std::make_shared<std::promise<std::vector<std::uint8_t>>>();
  auto fut = promise->get_future();
  try {
    send(type, payload, [promise](Reply r) {
      if (!r.error) {
        promise->set_value(std::move(r.payload));
      } else if (r.remote) {
        promise->set_exception(std::make_exception_ptr(RemoteError{ErrorReply{*r.error, r.sys_errno}}));
      } else {
        promise->set_exception(std::make_exception_ptr(*r.error));
      }
    });
  } catch (const Error& e) {
    promise->set_exception(std::make_exception_ptr(e));
  }
  return fut;
}

void WireClient::abort(const std::string& why) { fail_all(Error{ErrorCode::kUnavailable, why}); }

void WireClient::fail_all(const Error& error) {
  std::map<std::uint64_t, Pending> failed;
  {
    std::lock_guard lock{mu_};
    if (!broken_) {
      broken_ = true;
      broken_reason_ = error.what();
    }
    failed.swap(pending_);
  }
  const Error closed{ErrorCode::kUnavailable, std::string{"connection closed: "} + error.what()};
  for (auto& [id, p] : failed) p.done(Reply{{}, closed, false, 0});  // outside the lock: a handler may send
}

void WireClient::deliver(std::uint64_t id, std::uint8_t type, Reply reply) {
  Pending p;
  {
    std::lock_guard lock{mu_};
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // not ours, or failed already: ignore
    p = std::move(it->second);
    pending_.erase(it);
  }
  if (!reply.error && type != p.expected_type) {
    reply = Reply{{}, Error{ErrorCode::kInternal, "unexpected reply type " + std::string{type_name(type)}}, false, 0};
  }
  p.done(std::move(reply));  // outside the lock: a handler may send
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
    Reply reply;
    if (f->header.type == static_cast<std::uint8_t>(MessageType::kError)) {
      try {
        ErrorReply e = decode_error_reply(f->payload);
        reply.error = std::move(e.error);
        reply.remote = true;
        reply.sys_errno = e.sys_errno;
      } catch (const Error& e) {
        reply.error = e;
      }
    } else {
      reply.payload = std::move(f->payload);
    }
    deliver(f->header.id, f->header.type, std::move(reply));
  }
}

}  // namespace vigo::wire
