// SPDX-License-Identifier: Apache-2.0
// ConnectionPool: vigo-fs's connections to the image server. Each
// connection is one run of the server command (normally `ssh ... vigo-imaged
// --stdio ...`), started as a vigo::Subprocess on two pipes and spoken to
// with a wire::WireClient (HELLO first). Several connections carry requests
// in parallel (one ssh channel is window-limited), each with `lanes`
// requests in flight at most.
//
// Requests go into a queue (urgent ones ahead of background ones; background
// ones use at most half the lanes) and a lane thread of a connected
// connection takes them. When a connection breaks (the command exits, the
// stream ends), its requests go back to the front of the queue and run on
// another or a new connection; the broken one is restarted with exponential
// backoff (initial .. max). Every request has a deadline (submit time +
// request_timeout): a request not answered by then — queued, in flight, or
// waiting for any connection to come up — completes with kTimeout, and a
// connection that let a request time out is restarted. An error reply from
// the server (not found, invalid) completes the request with that error.
//
// Callbacks run on a lane thread (or on the caller's thread when the pool is
// stopping); they must be quick and must not call back into wait-for-reply
// paths of the pool. Thread-safe. The destructor stops the commands, joins
// every thread, and completes whatever is still queued with kUnavailable.
// Threads created here block SIGINT/SIGTERM/SIGHUP/SIGQUIT, so those reach the
// FUSE loop's handlers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <atomic>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/common/wire.h"
#include "vigo/common/wire_client.h"

namespace vigo::vfs {

struct PoolOptions {
  std::vector<std::string> server_argv;  // the command that speaks the protocol on stdin/stdout
  int connections = 4;
  int lanes = 4;  // requests in flight per connection
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  std::filesystem::path command_stderr;  // where the command's stderr goes; empty: /dev/null
};

struct PoolStats {
  std::uint64_t connections_up = 0;
  std::uint64_t connects = 0;       // successful HELLOs, first ones included
  std::uint64_t reconnects = 0;     // successful HELLOs after a connection broke
  std::uint64_t connect_failures = 0;
  std::uint64_t retries = 0;        // requests moved to another connection
  std::uint64_t timeouts = 0;
  std::uint64_t queued = 0;
  std::uint64_t in_flight = 0;
};

// The bytes of a reply, or why there is none.
struct Outcome {
  std::vector<std::uint8_t> bytes;
  std::optional<Error> error;
  std::int32_t sys_errno = 0;  // the server's errno behind a filesystem error (0: none)
  [[nodiscard]] bool ok() const { return !error; }
};

// True for failures of the transport (retry elsewhere), false for answers.
[[nodiscard]] bool is_transport_error(const Error& e);

class ConnectionPool {
 public:
  using Callback = std::function<void(Outcome)>;
  enum class Priority { kUrgent, kBackground };

  explicit ConnectionPool(PoolOptions options);  // validates; starts connecting
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  void submit(wire::MessageType type, std::vector<std::uint8_t> payload, Callback done,
              Priority priority = Priority::kUrgent);
  // submit() and wait (for the few calls that may block: listing images).
  [[nodiscard]] Outcome call(wire::MessageType type, std::vector<std::uint8_t> payload);

  [[nodiscard]] PoolStats stats() const;

 private:
  struct Request;
  struct Connection;
  using Clock = std::chrono::steady_clock;

  void lane(Connection& c);
  void reaper();
  // The connection's client (connecting, with backoff, if needed); null when stopping.
  std::shared_ptr<wire::WireClient> connected(Connection& c);
  void serve(Connection& c, const std::shared_ptr<wire::WireClient>& client, Request&& r);
  // The next request for a lane of c; false when stopping or c went down.
  bool take(Connection& c, Request& out);
  void watch_processes();  // restarts connections whose command exited
  void finish(Request&& r, Outcome outcome);
  void requeue_or_fail(Request&& r, const Error& why);
  void mark_broken(Connection& c, const std::shared_ptr<wire::WireClient>& client, const std::string& why);

  PoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> urgent_;      // GUARDED_BY(mu_)
  std::deque<Request> background_;  // GUARDED_BY(mu_)
  int background_running_ = 0;      // GUARDED_BY(mu_)
  bool stopping_ = false;           // GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};   // the same, readable without mu_
  PoolStats stats_;                 // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::thread> threads_;
};

}  // namespace vigo::vfs
