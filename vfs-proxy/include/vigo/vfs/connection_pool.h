// SPDX-License-Identifier: Apache-2.0
// ConnectionPool: vigo-fs's connections to the image server. Each
// connection is one run of the server command (normally `ssh ... vigo-imaged
// --stdio ...`), started as a vigo::Subprocess on two pipes and spoken to
// with a wire::WireClient (HELLO first). Several connections carry requests
// in parallel (one ssh channel is window-limited), each with `lanes`
// requests in flight at most.
//
// Requests are urgent (a read is waiting), background (read-ahead,
// working-set replay) or idle (lazy fills of chunks that random reads only
// took a range of). A request may name an affinity (a chunk hash): every
// request of one chunk then goes to the same connection, its home, so the
// server process that loaded the chunk serves the next request from its
// memory. With two or more connections, connection 0 is no chunk's home and
// carries urgent requests only. A connection with a free lane takes:
//   - urgent requests first, in order: on their home connection, or on any
//     other while the home is down, or busy (every lane in flight, or a
//     background request in flight) and the other is not;
//   - background and idle requests only on their home connection (any, if
//     it is down) and at most one per connection at a time, so an urgent
//     reply waits behind at most one chunk on a connection and background
//     bytes in flight stay near a chunk per connection;
//   - idle requests only when no urgent request is queued or in flight and
//     none finished within `idle_quiet`; at most `idle_queue` wait (the
//     oldest is dropped with kResourceExhausted).
//
// Who sends, and who runs the callback (no thread hand-over on the common
// path): submit() sends the request itself, on the caller's thread, when a
// connection may take it now; otherwise it is queued and the connection's
// sender thread (one per connection, which also connects and reconnects)
// sends it when a lane frees up. A reply is handled on the connection's
// reader thread: a request routed with `quick` runs its callback there; the
// others (decompressing, hashing and committing a chunk) are handed to a
// few completion threads, so a slow callback never holds up the replies
// behind it. promote() moves a queued background or idle request up (a read
// now waits for it). When a connection breaks (the command exits, the
// stream ends), its requests go back to the front of their queue and run on
// another or a new connection; the broken one is restarted with exponential
// backoff (initial .. max). Every request has a deadline (submit time +
// request_timeout; for an idle request, the time it is sent +
// request_timeout): a request not answered by then (queued, in flight, or
// waiting for any connection to come up) completes with kTimeout, within
// about 100 ms of it, and a connection that let a request time out is
// restarted. An error reply from the server (not found, invalid) completes
// the request with that error.
//
// Callbacks run on a reader, completion, or reaper thread, on the thread
// that calls submit() when the pool is stopping or a failed send leaves a
// request past its deadline, and on the destructor's thread. They must be
// quick (a `quick` one especially: the replies behind it wait) and must not
// wait for a reply of the pool (call()). Thread-safe.
// The destructor stops the commands, joins every thread, and completes
// whatever is still queued or in flight with kUnavailable. Threads created
// here block SIGINT/SIGTERM/SIGHUP/SIGQUIT, so those reach the FUSE loop's
// handlers.
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
#include "vigo/common/subprocess.h"
#include "vigo/common/wire.h"
#include "vigo/common/wire_client.h"

namespace vigo::vfs {

struct PoolOptions {
  std::vector<std::string> server_argv;  // the command that speaks the protocol on stdin/stdout
  int connections = 4;
  int lanes = 4;  // requests in flight per connection
  std::chrono::milliseconds request_timeout{30000};
  // How long a new connection (the server command, e.g. an ssh handshake,
  // then HELLO) may take: at least this, and at least request_timeout. Kept
  // apart from the read timeout: a loaded machine can take longer to set up
  // ssh than a short read timeout, and a connection given up halfway is
  // started again from nothing, so it would never come up.
  std::chrono::milliseconds connect_timeout{15000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  std::filesystem::path command_stderr;  // where the command's stderr goes; empty: /dev/null
  std::chrono::milliseconds idle_quiet{100};  // idle requests wait this long after urgent ones
  std::size_t idle_queue = 4096;              // idle requests queued at most
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
  std::uint64_t background_in_flight = 0;  // background and idle requests in flight
  std::uint64_t diverted = 0;  // urgent requests served away from their busy home connection
  std::uint64_t promoted = 0;
  std::uint64_t idle_dropped = 0;
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
  enum class Priority { kUrgent, kBackground, kIdle };
  struct Routing {
    Priority priority = Priority::kUrgent;
    std::optional<std::uint64_t> affinity;  // e.g. the first bytes of a chunk hash
    std::uint64_t ticket = 0;               // from new_ticket(), for promote(); 0: none
    bool quick = false;  // the callback is quick (e.g. a FUSE reply): run it on the reader thread
  };

  explicit ConnectionPool(PoolOptions options);  // validates; starts connecting
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  void submit(wire::MessageType type, std::vector<std::uint8_t> payload, Callback done, Routing routing);
  void submit(wire::MessageType type, std::vector<std::uint8_t> payload, Callback done) {
    submit(type, std::move(payload), std::move(done), Routing{});
  }
  [[nodiscard]] std::uint64_t new_ticket() { return next_ticket_.fetch_add(1) + 1; }
  // Raises the queued request with this ticket to `to` (only upwards);
  // false if it is not queued (running, done, or never submitted).
  bool promote(std::uint64_t ticket, Priority to);
  // submit() and wait (for the few calls that may block: listing images).
  [[nodiscard]] Outcome call(wire::MessageType type, std::vector<std::uint8_t> payload);

  [[nodiscard]] PoolStats stats() const;

 private:
  struct Request;
  struct Connection;
  struct Dispatch;
  struct Completion;
  using Clock = std::chrono::steady_clock;

  void sender(Connection& c);     // connects c, and sends what it may take while a lane is free
  void completer();               // runs the callbacks of replies that are not `quick`
  void reaper();                  // deadlines, exited commands, retired clients
  // The connection's client (connecting, with backoff, if needed); null when stopping.
  std::shared_ptr<wire::WireClient> connected(Connection& c);
  // Takes a request c may send now (a free lane, c up) and counts it in
  // flight; false if there is none. REQUIRES(mu_). Sets *quiet_until when
  // only the idle quiet time holds an idle request back.
  bool take_now(Connection& c, Clock::time_point now, Dispatch& out, Clock::time_point* quiet_until);
  // Waits for take_now() on c; false when stopping or c went down.
  bool take(Connection& c, Dispatch& out);
  // Sends submitted requests from the calling thread while a connection may
  // take one now; false if none could (REQUIRES(!mu_)). Sets *urgent_left to
  // whether urgent requests are still queued when it stops.
  bool send_now(const std::vector<Connection*>& takers, bool* urgent_left = nullptr);
  void send(Dispatch&& d);
  void on_reply(Connection& c, std::uint64_t seq, wire::WireClient::Reply reply);
  // Finds (and removes) a request a lane of c may take now; REQUIRES(mu_).
  bool pick(Connection& c, Clock::time_point now, Request& out, Clock::time_point* quiet_until);
  [[nodiscard]] int home_of(const Request& r) const;
  [[nodiscard]] bool busy(const Connection& c) const;  // REQUIRES(mu_)
  [[nodiscard]] bool has_work_for(const Connection& c) const;  // REQUIRES(mu_): something queued c might take
  void push(Request&& r, bool front);                  // REQUIRES(mu_): into its queue
  void done_running(Connection* c, const Request& r);   // REQUIRES(mu_): counters after it ran
  // Which connections may take r now that it is queued (REQUIRES(mu_)), and
  // waking the sender of each of them (after the lock is let go).
  [[nodiscard]] std::vector<Connection*> takers_of(const Request& r) const;
  void wake(const std::vector<Connection*>& connections);
  [[nodiscard]] std::vector<Connection*> all_connections() const;
  void watch_processes();  // restarts connections whose command exited
  void expire_in_flight(Clock::time_point now);  // in-flight requests past their deadline
  void finish(Connection& c, Request&& r, Outcome outcome);
  void requeue_or_fail(Connection& c, Request&& r, const Error& why);
  // Takes c down if `client` is still its client (null: whichever it has),
  // fails the client's requests in flight (they go back to the queues) and
  // stops its command; the client is destroyed later by the reaper, never
  // on its own reader thread.
  void mark_broken(Connection& c, const wire::WireClient* client, const std::string& why);

  PoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // the reaper's (and the destructor's); senders wait on their connection's work_cv
  std::deque<Request> urgent_;                   // GUARDED_BY(mu_)
  std::vector<std::deque<Request>> background_;  // GUARDED_BY(mu_), per home connection
  std::vector<std::deque<Request>> idle_;        // GUARDED_BY(mu_), per home connection
  std::size_t idle_queued_ = 0;                  // GUARDED_BY(mu_)
  int urgent_running_ = 0;                       // GUARDED_BY(mu_)
  Clock::time_point last_urgent_{};              // GUARDED_BY(mu_): last urgent submit or finish
  std::uint64_t next_seq_ = 0;                   // GUARDED_BY(mu_): names requests in flight
  std::deque<Completion> completions_;           // GUARDED_BY(mu_): replies for the completers
  std::condition_variable completion_cv_;
  bool completers_stop_ = false;                 // GUARDED_BY(mu_): set once no reply can arrive
  // A broken connection, taken apart by the reaper: its command is reaped
  // (SIGKILL if SIGTERM did not end it by kill_at) before its client is
  // destroyed. The client's destructor joins its reader thread, which may
  // be blocked inside a frame from a stopped command until that exits.
  struct Ending {
    std::shared_ptr<wire::WireClient> client;
    std::unique_ptr<Subprocess> process;  // sent SIGTERM; null: none left to wait for
    Clock::time_point kill_at;
  };
  std::vector<Ending> ending_;  // GUARDED_BY(mu_)
  std::atomic<std::uint64_t> next_ticket_{0};
  bool stopping_ = false;           // GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};   // the same, readable without mu_
  PoolStats stats_;                 // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::thread> threads_;     // senders and the reaper
  std::vector<std::thread> completers_;  // stopped last: replies still arrive while clients shut down
};

}  // namespace vigo::vfs
