// SPDX-License-Identifier: Apache-2.0
// ConnectionPool, the connections' life: start and stop of the pool,
// connecting (the server command, HELLO, backoff), taking a broken
// connection apart, and the reaper (deadlines, exited commands, broken
// connections' commands and clients). The queues and the sending are in
// connection_pool.cc.
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <future>

#include "connection_pool_parts.h"
#include "vigo/common/file_util.h"
#include "vigo/common/log.h"
#include "vigo/common/subprocess.h"

namespace vigo::vfs {

using namespace std::chrono_literals;

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
  background_.resize(connections_.size());
  idle_.resize(connections_.size());
  for (auto& c : connections_) threads_.emplace_back([this, conn = c.get()] { sender(*conn); });
  threads_.emplace_back([this] { reaper(); });
  for (int i = 0; i < std::max(2, options_.lanes); ++i) completers_.emplace_back([this] { completer(); });
}

ConnectionPool::~ConnectionPool() {
  {
    std::lock_guard lock{mu_};
    stopping_ = true;
  }
  stop_ = true;
  cv_.notify_all();
  for (auto& c : connections_) c->work_cv.notify_all();
  std::vector<std::unique_ptr<Subprocess>> processes;
  std::vector<std::shared_ptr<wire::WireClient>> clients;
  for (auto& c : connections_) {
    std::lock_guard lock{c->mu};
    if (c->process) processes.push_back(std::move(c->process));
    if (c->client) clients.push_back(std::move(c->client));
    c->down = true;
    c->cv.notify_all();
  }
  for (auto& p : processes) p->terminate(2s);
  // Requests in flight fail now (kUnavailable: the pool is stopping).
  for (auto& client : clients) client->abort("vigo-fs is stopping");
  for (auto& t : threads_) t.join();
  {
    std::lock_guard lock{mu_};
    for (auto& e : ending_) {
      processes.push_back(std::move(e.process));
      clients.push_back(std::move(e.client));
    }
    ending_.clear();
    for (auto& c : connections_) clients.push_back(std::move(c->live));
  }
  // Every command ended first (a reader may be inside a frame from a
  // stopped one), then the clients: joins the reader threads, so no reply
  // is handled after this.
  for (auto& p : processes) {
    if (p) p->terminate(1s);
  }
  clients.clear();
  {
    std::lock_guard lock{mu_};
    completers_stop_ = true;
  }
  completion_cv_.notify_all();
  for (auto& t : completers_) t.join();  // they run the completions still queued first
  std::deque<Request> left;
  {
    std::lock_guard lock{mu_};
    auto drain = [&](std::deque<Request>& q) {
      for (auto& r : q) left.push_back(std::move(r));
      q.clear();
    };
    drain(urgent_);
    for (auto& q : background_) drain(q);
    for (auto& q : idle_) drain(q);
  }
  for (auto& r : left) r.done(Outcome{{}, Error{ErrorCode::kUnavailable, "vigo-fs is stopping"}});
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
      // Chunks come through from_server in 1 MiB frames: with the default
      // 64 KiB pipe, ssh writes each in many pieces and spends twice the CPU.
      (void)widen_pipe(from_server[0]);
      (void)widen_pipe(to_server[1]);
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
      const auto deadline = Clock::now() + std::max(options_.request_timeout, options_.connect_timeout);
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
      if (process) process->terminate(1s);  // first: ends a reply the reader may be inside
      client.reset();
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
        c.live = client;
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

void ConnectionPool::mark_broken(Connection& c, const wire::WireClient* client, const std::string& why) {
  std::unique_ptr<Subprocess> process;
  std::shared_ptr<wire::WireClient> dead;
  {
    std::lock_guard lock{c.mu};
    if (!c.client || (client != nullptr && c.client.get() != client)) return;  // somebody else noticed first
    dead = std::move(c.client);
    c.down = true;
    process = std::move(c.process);
    c.next_attempt = Clock::now() + options_.backoff_initial;
  }
  {
    std::lock_guard lock{mu_};
    if (c.live == dead) c.live.reset();  // nobody sends on it now (a newer client stays)
  }
  log::warn("connection to the image server lost", {{"connection", c.index}, {"error", why}});
  dead->abort(why);  // its requests in flight go back to the queues, now
  if (process) process->signal(SIGTERM);  // ends the stream; the reaper kills it if it lingers
  {
    std::lock_guard lock{mu_};
    // Destroyed by the reaper: this may be its reader thread.
    ending_.push_back(Ending{std::move(dead), std::move(process), Clock::now() + 1s});
  }
  c.work_cv.notify_all();   // its sender goes and reconnects
  wake(all_connections());  // the requests it was home to may go to any other
}

void ConnectionPool::expire_in_flight(Clock::time_point now) {
  std::vector<Request> expired;
  std::vector<std::pair<Connection*, const wire::WireClient*>> stuck;
  {
    std::lock_guard lock{mu_};
    for (auto& c : connections_) {
      for (auto it = c->in_flight.begin(); it != c->in_flight.end();) {
        if (it->second.request.deadline > now) {
          ++it;
          continue;
        }
        done_running(c.get(), it->second.request);
        ++stats_.timeouts;
        stuck.emplace_back(c.get(), it->second.client);
        expired.push_back(std::move(it->second.request));
        it = c->in_flight.erase(it);
      }
    }
  }
  // A connection that let a request time out is restarted (its other
  // requests go elsewhere).
  for (auto& [c, client] : stuck) mark_broken(*c, client, "a request timed out");
  for (auto& r : expired) r.done(Outcome{{}, Error{ErrorCode::kTimeout, "the image server did not answer in time"}});
}

void ConnectionPool::watch_processes() {
  for (auto& c : connections_) {
    const wire::WireClient* client = nullptr;
    {
      std::lock_guard lock{c->mu};
      if (c->process && !c->process->running()) client = c->client.get();
    }
    if (client != nullptr) mark_broken(*c, client, "the server command exited");
  }
}

void ConnectionPool::reaper() {
  NoInlineSend never_sends_here;
  std::unique_lock lk{mu_};
  auto watched = Clock::now();
  while (!stopping_) {
    cv_.wait_for(lk, 100ms);
    if (Clock::now() - watched >= 100ms) {
      std::vector<Ending> ending;
      ending.swap(ending_);
      lk.unlock();
      // Broken connections: the command reaped once it exits (killed if it
      // ignores SIGTERM for a second, as a stopped ssh does), then the
      // client destroyed, which joins its reader thread; no lock held.
      std::erase_if(ending, [](Ending& e) {
        if (e.process && !e.process->try_wait()) {
          if (Clock::now() >= e.kill_at) e.process->signal(SIGKILL);
          return false;
        }
        e.client.reset();
        return true;
      });
      watch_processes();  // notices a dead connection even while nothing is asked of it
      expire_in_flight(Clock::now());
      lk.lock();
      for (auto& e : ending) ending_.push_back(std::move(e));
      watched = Clock::now();
    }
    const auto now = Clock::now();
    std::vector<Request> expired;
    std::vector<std::deque<Request>*> queues{&urgent_};
    for (auto& q : background_) queues.push_back(&q);  // idle requests have no deadline while queued
    for (auto* q : queues) {
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
