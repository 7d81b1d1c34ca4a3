// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/connection_pool.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <future>

#include "vigo/common/log.h"
#include "vigo/common/subprocess.h"

namespace vigo::vfs {

using namespace std::chrono_literals;

struct ConnectionPool::Request {
  wire::MessageType type = wire::MessageType::kHello;
  std::vector<std::uint8_t> payload;
  Callback done;
  Priority priority = Priority::kUrgent;
  Clock::time_point deadline;
};

struct ConnectionPool::Connection {
  int index = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<wire::WireClient> client;  // GUARDED_BY(mu); null while down
  std::unique_ptr<Subprocess> process;       // GUARDED_BY(mu)
  bool connecting = false;                   // GUARDED_BY(mu)
  bool ever_connected = false;               // GUARDED_BY(mu)
  Clock::time_point next_attempt{};          // GUARDED_BY(mu)
  std::chrono::milliseconds backoff{0};      // GUARDED_BY(mu)
  std::atomic<bool> down{true};              // client is null: lanes stop taking requests
};

bool is_transport_error(const Error& e) {
  return e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kTimeout;
}

namespace {

// Blocks the stop signals in the calling thread while alive (new threads inherit the mask).
class BlockStopSignals {
 public:
  BlockStopSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~BlockStopSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

}  // namespace

ConnectionPool::ConnectionPool(PoolOptions options) : options_(std::move(options)) {
  if (options_.server_argv.empty()) throw invalid_argument("server", "empty command");
  if (options_.connections < 1 || options_.connections > 64) throw invalid_argument("connections", "must be 1..64");
  if (options_.lanes < 1 || options_.lanes > 32) throw invalid_argument("lanes", "must be 1..32");
  if (options_.request_timeout < 1ms) throw invalid_argument("read-timeout-ms", "must be positive");
  BlockStopSignals block;
  for (int i = 0; i < options_.connections; ++i) {
    auto c = std::make_unique<Connection>();
    c->index = i;
    c->backoff = options_.backoff_initial;
    connections_.push_back(std::move(c));
  }
  for (auto& c : connections_) {
    for (int l = 0; l < options_.lanes; ++l) threads_.emplace_back([this, conn = c.get()] { lane(*conn); });
  }
  threads_.emplace_back([this] { reaper(); });
}

ConnectionPool::~ConnectionPool() {
  {
    std::lock_guard lock{mu_};
    stopping_ = true;
  }
  stop_ = true;
  cv_.notify_all();
  std::vector<std::unique_ptr<Subprocess>> processes;
  for (auto& c : connections_) {
    std::lock_guard lock{c->mu};
    if (c->process) processes.push_back(std::move(c->process));
    c->cv.notify_all();
  }
  for (auto& p : processes) p->terminate(2s);  // ends the streams: waiting lanes wake up
  for (auto& t : threads_) t.join();
  std::deque<Request> left;
  {
    std::lock_guard lock{mu_};
    for (auto* q : {&urgent_, &background_}) {
      for (auto& r : *q) left.push_back(std::move(r));
      q->clear();
    }
  }
  for (auto& r : left) r.done(Outcome{{}, Error{ErrorCode::kUnavailable, "vigo-fs is stopping"}});
}

void ConnectionPool::submit(wire::MessageType type, std::vector<std::uint8_t> payload, Callback done,
                            Priority priority) {
  Request r{type, std::move(payload), std::move(done), priority, Clock::now() + options_.request_timeout};
  {
    std::lock_guard lock{mu_};
    if (!stopping_) {
      (priority == Priority::kUrgent ? urgent_ : background_).push_back(std::move(r));
      ++stats_.queued;
      cv_.notify_all();
      return;
    }
  }
  r.done(Outcome{{}, Error{ErrorCode::kUnavailable, "vigo-fs is stopping"}});
}

Outcome ConnectionPool::call(wire::MessageType type, std::vector<std::uint8_t> payload) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto future = promise->get_future();
  submit(type, std::move(payload), [promise](Outcome o) { promise->set_value(std::move(o)); });
  return future.get();  // every request completes by its deadline
}

PoolStats ConnectionPool::stats() const {
  std::uint64_t up = 0;
  for (const auto& c : connections_) {
    std::lock_guard lock{c->mu};
    if (c->client) ++up;
  }
  std::lock_guard lock{mu_};
  PoolStats s = stats_;
  s.connections_up = up;
  return s;
}

std::shared_ptr<wire::WireClient> ConnectionPool::connected(Connection& c) {
  std::unique_lock lk{c.mu};
  while (!stop_) {
    if (c.client) return c.client;
    if (c.connecting) {
      c.cv.wait_for(lk, 100ms);
      continue;
    }
    if (Clock::now() < c.next_attempt) {
      c.cv.wait_until(lk, c.next_attempt);
      continue;
    }
    c.connecting = true;
    lk.unlock();
    std::unique_ptr<Subprocess> process;
    std::shared_ptr<wire::WireClient> client;
    std::optional<Error> failure;
    try {
      int to_server[2], from_server[2];
      if (::pipe2(to_server, O_CLOEXEC) != 0) throw_errno("pipe2");
      if (::pipe2(from_server, O_CLOEXEC) != 0) {
        ::close(to_server[0]);
        ::close(to_server[1]);
        throw_errno("pipe2");
      }
      SpawnOptions o;
      o.argv = options_.server_argv;
      o.stdin_fd = to_server[0];
      o.stdout_fd = from_server[1];
      o.stderr_path = options_.command_stderr;
      try {
        process = std::make_unique<Subprocess>(Subprocess::spawn(o));
      } catch (...) {
        for (int fd : {to_server[0], to_server[1], from_server[0], from_server[1]}) ::close(fd);
        throw;
      }
      ::close(to_server[0]);
      ::close(from_server[1]);
      client = std::make_shared<wire::WireClient>(from_server[0], to_server[1]);
      wire::Hello hello;
      hello.peer = "vigo-fs";
      auto reply = client->start(wire::MessageType::kHello, wire::encode(hello));
      const auto deadline = Clock::now() + options_.request_timeout;
      while (reply.wait_for(100ms) != std::future_status::ready) {
        if (stop_) throw Error{ErrorCode::kUnavailable, "stopping"};
        if (Clock::now() >= deadline) throw Error{ErrorCode::kTimeout, "no HELLO reply from the server command"};
      }
      (void)wire::decode_hello_reply(reply.get());
    } catch (const Error& e) {
      failure = e;
    } catch (const std::exception& e) {
      failure = Error{ErrorCode::kInternal, e.what()};
    }
    if (failure) {
      client.reset();
      if (process) process->terminate(1s);
    }
    lk.lock();
    c.connecting = false;
    if (!failure && !stop_) {
      c.client = client;
      c.down = false;
      c.process = std::move(process);
      c.backoff = options_.backoff_initial;
      const bool again = c.ever_connected;
      c.ever_connected = true;
      {
        std::lock_guard lock{mu_};
        ++stats_.connects;
        if (again) ++stats_.reconnects;
      }
      log::info("connected to the image server", {{"connection", c.index}, {"reconnect", again}});
    } else if (failure) {
      c.next_attempt = Clock::now() + c.backoff;
      log::warn("cannot reach the image server",
                {{"connection", c.index}, {"error", failure->what()}, {"retry_ms", c.backoff.count()}});
      c.backoff = std::min(c.backoff * 2, options_.backoff_max);
      std::lock_guard lock{mu_};
      ++stats_.connect_failures;
    }
    c.cv.notify_all();
  }
  return nullptr;
}

void ConnectionPool::mark_broken(Connection& c, const std::shared_ptr<wire::WireClient>& client,
                                 const std::string& why) {
  std::unique_ptr<Subprocess> process;
  {
    std::lock_guard lock{c.mu};
    if (!client || c.client != client) return;  // somebody else noticed first
    c.client.reset();
    c.down = true;
    process = std::move(c.process);
    c.next_attempt = Clock::now() + options_.backoff_initial;
  }
  log::warn("connection to the image server lost", {{"connection", c.index}, {"error", why}});
  if (process) process->terminate(1s);  // ends the stream, so its other requests fail over now
  cv_.notify_all();                     // its idle lanes go and reconnect
}

bool ConnectionPool::take(Connection& c, Request& out) {
  std::unique_lock lk{mu_};
  const int background_limit = std::max(1, options_.connections * options_.lanes / 2);
  cv_.wait(lk, [&] {
    return stopping_ || c.down || !urgent_.empty() ||
           (!background_.empty() && background_running_ < background_limit);
  });
  if (stopping_ || c.down) return false;
  auto& q = urgent_.empty() ? background_ : urgent_;
  out = std::move(q.front());
  q.pop_front();
  if (out.priority == Priority::kBackground) ++background_running_;
  --stats_.queued;
  ++stats_.in_flight;
  return true;
}

void ConnectionPool::finish(Request&& r, Outcome outcome) {
  {
    std::lock_guard lock{mu_};
    if (r.priority == Priority::kBackground) --background_running_;
    --stats_.in_flight;
    if (outcome.error && outcome.error->code() == ErrorCode::kTimeout) ++stats_.timeouts;
  }
  cv_.notify_all();
  r.done(std::move(outcome));
}

void ConnectionPool::requeue_or_fail(Request&& r, const Error& why) {
  std::optional<Error> failure;
  {
    std::lock_guard lock{mu_};
    if (r.priority == Priority::kBackground) --background_running_;
    --stats_.in_flight;
    if (stopping_) {
      failure = Error{ErrorCode::kUnavailable, "vigo-fs is stopping"};
    } else if (Clock::now() >= r.deadline) {
      failure = Error{ErrorCode::kTimeout, std::string{"image server unreachable: "} + why.what()};
      ++stats_.timeouts;
    } else {
      ++stats_.retries;
      ++stats_.queued;
      (r.priority == Priority::kUrgent ? urgent_ : background_).push_front(std::move(r));
    }
  }
  cv_.notify_all();
  if (failure) r.done(Outcome{{}, *failure});
}

void ConnectionPool::serve(Connection& c, const std::shared_ptr<wire::WireClient>& client, Request&& r) {
  std::future<std::vector<std::uint8_t>> reply;
  try {
    reply = client->start(r.type, r.payload);
  } catch (const Error& e) {
    mark_broken(c, client, e.what());
    requeue_or_fail(std::move(r), e);
    return;
  }
  if (reply.wait_until(r.deadline) != std::future_status::ready) {
    mark_broken(c, client, "a request timed out");
    finish(std::move(r), Outcome{{}, Error{ErrorCode::kTimeout, "the image server did not answer in time"}});
    return;
  }
  try {
    finish(std::move(r), Outcome{reply.get(), std::nullopt});
  } catch (const wire::RemoteError& e) {
    finish(std::move(r), Outcome{{}, e, e.sys_errno()});
  } catch (const Error& e) {
    if (is_transport_error(e)) {
      mark_broken(c, client, e.what());
      requeue_or_fail(std::move(r), e);
    } else {
      finish(std::move(r), Outcome{{}, e});
    }
  } catch (const std::exception& e) {
    finish(std::move(r), Outcome{{}, Error{ErrorCode::kInternal, e.what()}});
  }
}

void ConnectionPool::lane(Connection& c) {
  while (true) {
    auto client = connected(c);
    if (!client) return;
    Request r;
    if (!take(c, r)) continue;  // stopping (connected() says so) or the connection went down
    serve(c, client, std::move(r));
  }
}

void ConnectionPool::watch_processes() {
  for (auto& c : connections_) {
    std::shared_ptr<wire::WireClient> client;
    {
      std::lock_guard lock{c->mu};
      if (c->process && !c->process->running()) client = c->client;
    }
    mark_broken(*c, client, "the server command exited");
  }
}

void ConnectionPool::reaper() {
  std::unique_lock lk{mu_};
  auto watched = Clock::now();
  while (!stopping_) {
    cv_.wait_for(lk, 100ms);
    if (Clock::now() - watched >= 100ms) {
      lk.unlock();
      watch_processes();  // notices a dead connection even while nothing is asked of it
      lk.lock();
      watched = Clock::now();
    }
    const auto now = Clock::now();
    std::vector<Request> expired;
    for (auto* q : {&urgent_, &background_}) {
      for (auto it = q->begin(); it != q->end();) {
        if (it->deadline <= now) {
          expired.push_back(std::move(*it));
          it = q->erase(it);
          --stats_.queued;
          ++stats_.timeouts;
        } else {
          ++it;
        }
      }
    }
    if (expired.empty()) continue;
    lk.unlock();
    for (auto& r : expired) r.done(Outcome{{}, Error{ErrorCode::kTimeout, "no connection to the image server"}});
    lk.lock();
  }
}

}  // namespace vigo::vfs
