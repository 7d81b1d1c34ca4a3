// SPDX-License-Identifier: Apache-2.0
// ConnectionPool, the requests: the queues (urgent, background, idle), which
// connection takes what (pick), sending on the submitting or the sender
// thread, and replies (finish, requeue). The connections' life is in
// connection_pool_links.cc.
#include "vigo/vfs/connection_pool.h"

#include <algorithm>
#include <future>

#include "connection_pool_parts.h"
#include "vigo/common/log.h"

namespace vigo::vfs {

using namespace std::chrono_literals;

bool is_transport_error(const Error& e) {
  return e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kTimeout;
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
    bool urgent_left = false;
    const bool sent = !t_no_inline_send && send_now(takers, &urgent_left);
    if (!sent || routing.priority == Priority::kIdle) {
      wake(takers);
    } else if (urgent_left) {
      // send_now() used the free lanes for older requests: this one may now
      // go to a connection it was not offered to (its home turned busy).
      wake(all_connections());
    }
  }
  if (dropped) dropped->done(Outcome{{}, Error{ErrorCode::kResourceExhausted, "too many idle requests queued"}});
  if (!queued) r.done(Outcome{{}, Error{ErrorCode::kUnavailable, "vigo-fs is stopping"}});
}

bool ConnectionPool::send_now(const std::vector<Connection*>& takers, bool* urgent_left) {
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
      if (!got) {
        if (urgent_left != nullptr) *urgent_left = !urgent_.empty();
        break;
      }
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
  NoInlineSend handling;
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

}  // namespace vigo::vfs
