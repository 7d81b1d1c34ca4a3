// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/connection_pool.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <future>
#include <unordered_map>

#include "vigo/common/log.h"
#include "vigo/common/subprocess.h"

namespace vigo::vfs {

using namespace std::chrono_literals;

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

bool is_transport_error(const Error& e) {
  return e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kTimeout;
}

namespace {

// Set while a reply is handled, and on the reaper thread: requests
// submitted then (from a quick callback, a requeue, an expired request's
// callback) are not written on a reader thread, which must keep reading
// replies, nor on the reaper, which must never block on a stalled pipe (it
// is what kills a stalled command); the connection's sender writes them.
thread_local bool t_handling_reply = false;

class HandlingReply {
 public:
  HandlingReply() : was_(t_handling_reply) { t_handling_reply = true; }
  ~HandlingReply() { t_handling_reply = was_; }
  HandlingReply(const HandlingReply&) = delete;
  HandlingReply& operator=(const HandlingReply&) = delete;

 private:
  bool was_;
};

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

int ConnectionPool::home_of(const Request& r) const {
  const int n = static_cast<int>(connections_.size());
  if (!r.routing.affinity) return -1;
  if (n == 1) return 0;
  return 1 + static_cast<int>(*r.routing.affinity % static_cast<std::uint64_t>(n - 1));  // 0 is urgent-only
}

bool ConnectionPool::busy(const Connection& c) const {
  return static_cast<int>(c.in_flight.size()) >= options_.lanes || c.background > 0;
}

bool ConnectionPool::has_work_for(const Connection& c) const {
  if (!urgent_.empty()) return true;
  // Its own queues, and those of a connection that is down (pick()).
  for (std::size_t k = 0; k < connections_.size(); ++k) {
    if (static_cast<int>(k) != c.index && !connections_[k]->down) continue;
    if (!background_[k].empty() || !idle_[k].empty()) return true;
  }
  return false;
}

void ConnectionPool::push(Request&& r, bool front) {
  if (r.routing.priority == Priority::kUrgent) {
    front ? urgent_.push_front(std::move(r)) : urgent_.push_back(std::move(r));
    return;
  }
  int home = home_of(r);
  if (home < 0) home = connections_.size() > 1 ? 1 : 0;
  auto& q = (r.routing.priority == Priority::kIdle ? idle_ : background_)[static_cast<std::size_t>(home)];
  if (r.routing.priority == Priority::kIdle) ++idle_queued_;
  front ? q.push_front(std::move(r)) : q.push_back(std::move(r));
}

void ConnectionPool::submit(wire::MessageType type, std::vector<std::uint8_t> payload, Callback done,
                            Routing routing) {
  Request r{type, std::make_shared<const std::vector<std::uint8_t>>(std::move(payload)), std::move(done), routing,
            Clock::now() + options_.request_timeout};
  std::optional<Request> dropped;
  std::vector<Connection*> takers;
  bool queued = false;
  {
    std::lock_guard lock{mu_};
    if (stopping_) {
      // answered below, outside the lock
    } else {
      if (routing.priority == Priority::kUrgent) last_urgent_ = Clock::now();
      takers = takers_of(r);
      push(std::move(r), false);
      queued = true;
      ++stats_.queued;
      if (idle_queued_ > options_.idle_queue) {
        // Drop the oldest idle request (a fill: the chunk is fetched again when read).
        std::deque<Request>* oldest = nullptr;
        for (auto& q : idle_) {
          if (!q.empty() && (oldest == nullptr || q.front().deadline < oldest->front().deadline)) oldest = &q;
        }
        dropped = std::move(oldest->front());
        oldest->pop_front();
        --idle_queued_;
        --stats_.queued;
        ++stats_.idle_dropped;
      }
    }
  }
  if (queued) {
    // Sent from here when a connection may take it now: no thread hand-over.
    // Otherwise (no free lane, the idle quiet time, a reader thread) the
    // senders take it; an idle request may wait for its quiet time, which
    // only a sender keeps track of.
    const bool sent = !t_handling_reply && send_now(takers);
    if (!sent || routing.priority == Priority::kIdle) {
      wake(takers);
    } else if (still_urgent_queued()) {
      // send_now() used the free lanes for older requests: this one may now
      // go to a connection it was not offered to (its home turned busy).
      wake(all_connections());
    }
  }
  if (dropped) dropped->done(Outcome{{}, Error{ErrorCode::kResourceExhausted, "too many idle requests queued"}});
  if (!queued) r.done(Outcome{{}, Error{ErrorCode::kUnavailable, "vigo-fs is stopping"}});
}

bool ConnectionPool::still_urgent_queued() const {
  std::lock_guard lock{mu_};
  return !urgent_.empty();
}

bool ConnectionPool::send_now(const std::vector<Connection*>& takers) {
  bool sent = false;
  while (true) {
    Dispatch d;
    {
      std::lock_guard lock{mu_};
      if (stopping_) break;
      const auto now = Clock::now();
      Clock::time_point quiet_until{};
      bool got = false;
      for (Connection* c : takers) {
        if ((got = take_now(*c, now, d, &quiet_until))) break;
      }
      if (!got) break;
    }
    send(std::move(d));
    sent = true;
  }
  return sent;
}

bool ConnectionPool::promote(std::uint64_t ticket, Priority to) {
  if (ticket == 0) return false;
  std::vector<Connection*> takers;
  auto move_up = [&] {
    std::lock_guard lock{mu_};
    auto rank = [](Priority p) { return p == Priority::kUrgent ? 0 : p == Priority::kBackground ? 1 : 2; };
    for (auto* queues : {&background_, &idle_}) {
      for (auto& q : *queues) {
        for (auto it = q.begin(); it != q.end(); ++it) {
          if (it->routing.ticket != ticket) continue;
          if (rank(to) >= rank(it->routing.priority)) return false;
          Request r = std::move(*it);
          q.erase(it);
          if (r.routing.priority == Priority::kIdle) {
            --idle_queued_;
            r.deadline = Clock::now() + options_.request_timeout;
          }
          r.routing.priority = to;
          if (to == Priority::kUrgent) last_urgent_ = Clock::now();
          takers = takers_of(r);
          push(std::move(r), false);
          ++stats_.promoted;
          return true;
        }
      }
    }
    return false;
  };
  if (!move_up()) return false;
  wake(takers);
  return true;
}

Outcome ConnectionPool::call(wire::MessageType type, std::vector<std::uint8_t> payload) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto future = promise->get_future();
  submit(type, std::move(payload), [promise](Outcome o) { promise->set_value(std::move(o)); },
         Routing{Priority::kUrgent, std::nullopt, 0, true});
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

std::vector<ConnectionPool::Connection*> ConnectionPool::all_connections() const {
  std::vector<Connection*> out;
  out.reserve(connections_.size());
  for (const auto& c : connections_) out.push_back(c.get());
  return out;
}

std::vector<ConnectionPool::Connection*> ConnectionPool::takers_of(const Request& r) const {
  int home = home_of(r);
  if (r.routing.priority == Priority::kUrgent) {
    if (home < 0) return all_connections();
    const Connection& h = *connections_[static_cast<std::size_t>(home)];
    // Another connection takes it only while its home is down or busy (pick()).
    if (h.down || busy(h)) return all_connections();
    return {connections_[static_cast<std::size_t>(home)].get()};
  }
  if (home < 0) home = connections_.size() > 1 ? 1 : 0;  // the queue push() puts it in
  if (connections_[static_cast<std::size_t>(home)]->down) return all_connections();
  return {connections_[static_cast<std::size_t>(home)].get()};
}

void ConnectionPool::wake(const std::vector<Connection*>& connections) {
  for (Connection* c : connections) c->work_cv.notify_one();  // its one sender
}

bool ConnectionPool::pick(Connection& c, Clock::time_point now, Request& out, Clock::time_point* quiet_until) {
  const bool several = connections_.size() > 1;
  for (auto it = urgent_.begin(); it != urgent_.end(); ++it) {
    const int home = home_of(*it);
    bool ok = home < 0 || home == c.index;
    bool diverted = false;
    if (!ok) {
      const Connection& h = *connections_[static_cast<std::size_t>(home)];
      ok = h.down || (busy(h) && !busy(c));
      diverted = !h.down;
    }
    if (!ok) continue;
    out = std::move(*it);
    urgent_.erase(it);
    if (diverted) ++stats_.diverted;
    ++urgent_running_;
    return true;
  }
  if (c.background > 0 || (several && c.index == 0)) return false;
  auto take_from = [&](std::vector<std::deque<Request>>& queues) {
    for (std::size_t k = 0; k < queues.size(); ++k) {
      if (queues[k].empty()) continue;
      if (static_cast<int>(k) != c.index && !connections_[k]->down) continue;
      out = std::move(queues[k].front());
      queues[k].pop_front();
      return true;
    }
    return false;
  };
  if (take_from(background_)) return true;
  if (idle_queued_ == 0) return false;
  if (!urgent_.empty() || urgent_running_ > 0) return false;  // a finishing urgent request wakes the lanes
  if (now < last_urgent_ + options_.idle_quiet) {
    *quiet_until = last_urgent_ + options_.idle_quiet;
    return false;
  }
  if (!take_from(idle_)) return false;
  --idle_queued_;
  out.deadline = now + options_.request_timeout;
  return true;
}

bool ConnectionPool::take_now(Connection& c, Clock::time_point now, Dispatch& out, Clock::time_point* quiet_until) {
  if (!c.live || static_cast<int>(c.in_flight.size()) >= options_.lanes) return false;
  Request r;
  if (!pick(c, now, r, quiet_until)) return false;
  if (r.routing.priority != Priority::kUrgent) {
    ++c.background;
    ++stats_.background_in_flight;
  }
  --stats_.queued;
  ++stats_.in_flight;
  out = Dispatch{&c, c.live, ++next_seq_, r.type, r.payload};
  c.in_flight.emplace(out.seq, Connection::InFlight{std::move(r), c.live.get()});
  return true;
}

bool ConnectionPool::take(Connection& c, Dispatch& out) {
  std::unique_lock lk{mu_};
  while (true) {
    if (stopping_ || !c.live) return false;
    const auto now = Clock::now();
    Clock::time_point quiet_until{};
    if (take_now(c, now, out, &quiet_until)) return true;
    // Woken by wake() when a request this connection may take is queued,
    // or a lane of it frees up with requests queued; the bounded wait is
    // only a safety net (the sender looks again every second).
    auto until = now + 1s;
    if (quiet_until != Clock::time_point{}) until = std::min(until, quiet_until);
    c.work_cv.wait_until(lk, until);
  }
}

void ConnectionPool::done_running(Connection* c, const Request& r) {
  if (c != nullptr && r.routing.priority != Priority::kUrgent) --c->background;
  if (r.routing.priority == Priority::kUrgent) {
    --urgent_running_;
    last_urgent_ = Clock::now();
  } else {
    --stats_.background_in_flight;
  }
  --stats_.in_flight;
}

void ConnectionPool::finish(Connection& c, Request&& r, Outcome outcome) {
  std::vector<Connection*> to_wake;
  // A quick callback, or a failure (cheap for every caller), runs here; the
  // rest goes to a completion thread.
  const bool here = r.routing.quick || !outcome.ok();
  {
    std::lock_guard lock{mu_};
    done_running(&c, r);
    if (outcome.error && outcome.error->code() == ErrorCode::kTimeout) ++stats_.timeouts;
    // The last urgent request done: the senders that hold idle requests
    // start counting the quiet time.
    if (urgent_running_ == 0 && urgent_.empty() && idle_queued_ > 0) {
      for (std::size_t k = 0; k < idle_.size(); ++k) {
        if (!idle_[k].empty()) to_wake.push_back(connections_[k].get());
      }
    }
    // A lane of c is free: its sender takes what waited for one.
    if (has_work_for(c) && std::find(to_wake.begin(), to_wake.end(), &c) == to_wake.end()) to_wake.push_back(&c);
    if (!here) completions_.push_back(Completion{std::move(r), std::move(outcome)});
  }
  wake(to_wake);
  if (here) {
    r.done(std::move(outcome));
  } else {
    completion_cv_.notify_one();
  }
}

void ConnectionPool::completer() {
  std::unique_lock lk{mu_};
  while (true) {
    completion_cv_.wait(lk, [&] { return !completions_.empty() || completers_stop_; });
    if (completions_.empty()) return;
    Completion x = std::move(completions_.front());
    completions_.pop_front();
    lk.unlock();
    x.request.done(std::move(x.outcome));
    lk.lock();
  }
}

void ConnectionPool::requeue_or_fail(Connection& c, Request&& r, const Error& why) {
  std::optional<Error> failure;
  {
    std::lock_guard lock{mu_};
    done_running(&c, r);
    if (stopping_) {
      failure = Error{ErrorCode::kUnavailable, "vigo-fs is stopping"};
    } else if (Clock::now() >= r.deadline) {
      failure = Error{ErrorCode::kTimeout, std::string{"image server unreachable: "} + why.what()};
      ++stats_.timeouts;
    } else {
      ++stats_.retries;
      ++stats_.queued;
      if (r.routing.priority == Priority::kIdle) r.routing.priority = Priority::kBackground;  // keeps its deadline
      push(std::move(r), true);
    }
  }
  if (!failure) wake(all_connections());  // c is likely down: any other may take it
  if (failure) r.done(Outcome{{}, *failure});
}

void ConnectionPool::send(Dispatch&& d) {
  Connection& c = *d.connection;
  const wire::WireClient* client = d.client.get();
  try {
    d.client->send(d.type, *d.payload, [this, &c, seq = d.seq](wire::WireClient::Reply reply) {
      on_reply(c, seq, std::move(reply));
    });
    return;
  } catch (const Error& e) {
    // Not sent, so no reply will come: the request goes elsewhere.
    mark_broken(c, client, e.what());
    std::optional<Request> r;
    {
      std::lock_guard lock{mu_};
      if (auto it = c.in_flight.find(d.seq); it != c.in_flight.end()) {
        r = std::move(it->second.request);
        c.in_flight.erase(it);
      }
    }
    if (r) requeue_or_fail(c, std::move(*r), e);
  }
}

void ConnectionPool::on_reply(Connection& c, std::uint64_t seq, wire::WireClient::Reply reply) {
  HandlingReply handling;
  std::optional<Connection::InFlight> f;
  {
    std::lock_guard lock{mu_};
    auto it = c.in_flight.find(seq);
    if (it == c.in_flight.end()) return;  // timed out meanwhile: the reaper completed it
    f = std::move(it->second);
    c.in_flight.erase(it);
  }
  if (reply.error && !reply.remote && is_transport_error(*reply.error)) {
    mark_broken(c, f->client, reply.error->what());
    requeue_or_fail(c, std::move(f->request), *reply.error);
    return;
  }
  Outcome o;
  if (reply.error) {
    o.error = std::move(reply.error);
    o.sys_errno = reply.sys_errno;
  } else {
    o.bytes = std::move(reply.payload);
  }
  finish(c, std::move(f->request), std::move(o));
}

void ConnectionPool::sender(Connection& c) {
  while (true) {
    if (!connected(c)) return;  // stopping
    Dispatch d;
    if (!take(c, d)) continue;  // stopping (connected() says so) or the connection went down
    send(std::move(d));
  }
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
  HandlingReply never_sends_here;
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
