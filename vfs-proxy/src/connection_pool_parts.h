// SPDX-License-Identifier: Apache-2.0
// ConnectionPool's insides, shared by its two source files:
// connection_pool.cc (queues, sending, replies) and connection_pool_links.cc
// (connecting, taking broken connections apart, deadlines, start and stop).
// Not part of the pool's interface.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "vigo/vfs/connection_pool.h"

namespace vigo::vfs {

struct ConnectionPool::Request {
  wire::MessageType type = wire::MessageType::kHello;
  std::shared_ptr<const std::vector<std::uint8_t>> payload;  // shared: a sender writes it while a reply may requeue it
  Callback done;
  Routing routing;
  Clock::time_point deadline;  // idle requests: set when a lane takes them
};

struct ConnectionPool::Connection {
  struct InFlight {
    Request request;
    const wire::WireClient* client = nullptr;  // the one it went out on (identity only)
  };
  int index = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<wire::WireClient> client;  // GUARDED_BY(mu); null while down
  std::unique_ptr<Subprocess> process;       // GUARDED_BY(mu)
  bool connecting = false;                   // GUARDED_BY(mu)
  bool ever_connected = false;               // GUARDED_BY(mu)
  Clock::time_point next_attempt{};          // GUARDED_BY(mu)
  std::chrono::milliseconds backoff{0};      // GUARDED_BY(mu)
  std::atomic<bool> down{true};              // client is null
  // The connection's sender waits here (with the pool's mu_) for a request
  // it may send: a request queued wakes the sender of each connection that
  // may take it, a reply the sender of its own connection when something is
  // queued, never every thread of the pool (waking all lanes per request made
  // context switches most of vigo-fs's CPU time under 16 parallel cold reads).
  std::condition_variable work_cv;
  std::shared_ptr<wire::WireClient> live;  // GUARDED_BY(pool mu_): client, for whoever sends
  std::unordered_map<std::uint64_t, InFlight> in_flight;  // GUARDED_BY(pool mu_): by sequence number
  int background = 0;  // GUARDED_BY(pool mu_): background or idle requests in flight
};

struct ConnectionPool::Dispatch {
  Connection* connection = nullptr;
  std::shared_ptr<wire::WireClient> client;
  std::uint64_t seq = 0;
  wire::MessageType type = wire::MessageType::kHello;
  std::shared_ptr<const std::vector<std::uint8_t>> payload;
};

struct ConnectionPool::Completion {
  Request request;
  Outcome outcome;
};

// Set while a reply is handled, and on the reaper thread: requests
// submitted then (from a quick callback, a requeue, an expired request's
// callback) are not written on a reader thread, which must keep reading
// replies, nor on the reaper, which must never block on a stalled pipe (it
// is what kills a stalled command); the connection's sender writes them.
inline thread_local bool t_no_inline_send = false;

class NoInlineSend {
 public:
  NoInlineSend() : was_(t_no_inline_send) { t_no_inline_send = true; }
  ~NoInlineSend() { t_no_inline_send = was_; }
  NoInlineSend(const NoInlineSend&) = delete;
  NoInlineSend& operator=(const NoInlineSend&) = delete;

 private:
  bool was_;
};

}  // namespace vigo::vfs
