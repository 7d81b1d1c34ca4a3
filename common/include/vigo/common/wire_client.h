// SPDX-License-Identifier: Apache-2.0
// WireClient: the client side of the wire protocol over one byte stream (the
// pipes of an `ssh host vigo-imaged --stdio`, or a socket). Many requests may
// be in flight: a reader thread matches replies to requests by id.
//
//   - send(): the request goes out on the calling thread; its handler runs
//     exactly once, with the reply or the failure, on the reader thread (or
//     on the thread that calls abort(), for the requests it fails; the
//     destructor fails the rest on the reader thread before joining it). A
//     handler must be quick (the next reply waits for it), must not throw,
//     and must not drop the last reference to the client. If the
//     request cannot be sent, send() throws and the handler never runs.
//   - start() / call(): the same with a future, for callers that wait.
//
// Owns both descriptors (closes them in the destructor, which also stops the
// reader). When the stream breaks, or abort() is called, every waiting and
// later request fails with kUnavailable. An error reply is the vigo::Error it
// carries (RemoteError through a future). Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "vigo/common/wire.h"

namespace vigo::wire {

class WireClient {
 public:
  // What came back for a request sent with send().
  struct Reply {
    std::vector<std::uint8_t> payload;
    std::optional<Error> error;  // set: no payload, and why
    bool remote = false;         // the error is the server's answer (an error reply), not a broken stream
    std::int32_t sys_errno = 0;  // for a remote error: the server's errno behind it (0: none)
  };
  using ReplyHandler = std::function<void(Reply)>;

  // in_fd: replies arrive here; out_fd: requests go here (may be the same).
  WireClient(int in_fd, int out_fd);
  ~WireClient();
  WireClient(const WireClient&) = delete;
  WireClient& operator=(const WireClient&) = delete;

  // Must be the first request; throws if the server refuses.
  HelloReply hello(std::string peer = "vigo-client");

  // Sends a request; `done` gets its reply (see the header comment).
  void send(MessageType type, std::span<const std::uint8_t> payload, ReplyHandler done);
  // Sends a request; the future yields the reply's payload or throws.
  [[nodiscard]] std::future<std::vector<std::uint8_t>> start(MessageType type, std::span<const std::uint8_t> payload);
  std::vector<std::uint8_t> call(MessageType type, std::span<const std::uint8_t> payload) {
    return start(type, payload).get();
  }
  // Fails every request in flight (their handlers run on this thread) and
  // every later one with kUnavailable: `why`. The stream stays open until
  // the destructor; replies that still arrive are dropped.
  void abort(const std::string& why);

 private:
  struct Pending {
    std::uint8_t expected_type = 0;
    ReplyHandler done;
  };
  void read_loop();
  void fail_all(const Error& error);
  // Runs the handler of request `id` (if it still waits) with a reply of frame type `type`.
  void deliver(std::uint64_t id, std::uint8_t type, Reply reply);

  int in_fd_;
  int out_fd_;
  int wake_[2] = {-1, -1};  // a pipe that wakes the reader for shutdown
  std::mutex write_mu_;     // serializes frames on out_fd_
  std::mutex mu_;
  std::uint64_t next_id_ = 1;                 // GUARDED_BY(mu_)
  std::map<std::uint64_t, Pending> pending_;  // GUARDED_BY(mu_)
  bool broken_ = false;                       // GUARDED_BY(mu_)
  std::string broken_reason_;                 // GUARDED_BY(mu_)
  std::thread reader_;
};

}  // namespace vigo::wire
