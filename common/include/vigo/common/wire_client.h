// SPDX-License-Identifier: Apache-2.0
// WireClient: the client side of the wire protocol over one byte stream (the
// pipes of an `ssh host vigo-imaged --stdio`, or a socket). Many requests may
// be in flight: call() can be used from many threads at once, or start() /
// wait() from one; a reader thread matches replies to requests by id.
//
// Owns both descriptors (closes them in the destructor, which also stops the
// reader). When the stream breaks, every waiting and later request fails with
// kUnavailable. An error reply is thrown as the vigo::Error it carries.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "vigo/common/wire.h"

namespace vigo::wire {

class WireClient {
 public:
  // in_fd: replies arrive here; out_fd: requests go here (may be the same).
  WireClient(int in_fd, int out_fd);
  ~WireClient();
  WireClient(const WireClient&) = delete;
  WireClient& operator=(const WireClient&) = delete;

  // Must be the first request; throws if the server refuses.
  HelloReply hello(std::string peer = "vigo-client");

  // Sends a request; the future yields the reply's payload or throws.
  [[nodiscard]] std::future<std::vector<std::uint8_t>> start(MessageType type, std::span<const std::uint8_t> payload);
  std::vector<std::uint8_t> call(MessageType type, std::span<const std::uint8_t> payload) {
    return start(type, payload).get();
  }

 private:
  struct Pending {
    std::uint8_t expected_type = 0;
    std::promise<std::vector<std::uint8_t>> promise;
  };
  void read_loop();
  void fail_all(const Error& error);

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
