// SPDX-License-Identifier: Apache-2.0
#include "relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <sstream>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/common/system.h"

namespace vigo::bench {
namespace {

// epoll keys: the three fixed descriptors, then (connection id << 1) | side.
constexpr std::uint64_t kListenerKey = 0, kTimerKey = 2, kSignalKey = 4;

constexpr std::size_t kReadBytes = 64 << 10;

void set_buffers(int fd, int bytes) {
  // Before listen/connect, so that TCP picks its window scale accordingly.
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0) throw_errno("setsockopt SO_RCVBUF");
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) != 0) throw_errno("setsockopt SO_SNDBUF");
}

void set_nodelay(int fd) {
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

timespec to_timespec(WanLink::Clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

std::string link_json(const WanLink& l) {
  const LinkStats& s = l.stats();
  std::ostringstream o;
  o << "{\"bytes\":" << s.bytes << ",\"segments\":" << s.segments
    << ",\"busy_ms\":" << static_cast<double>(s.busy.count()) / 1e6 << ",\"max_in_link\":" << s.max_in_link
    << ",\"capacity\":" << l.capacity() << "}";
  return o.str();
}

}  // namespace

struct Relay::Conn {
  // Flow s carries bytes from fd[s] to fd[1 - s] over links_[s].
  struct Flow {
    std::size_t held = 0;           // in the link, or arrived and not yet written
    std::vector<std::uint8_t> out;  // arrived, not yet written (from out_at)
    std::size_t out_at = 0;
    bool eof = false;          // the source ended; its FIN is in the link
    bool fin_arrived = false;  // ... and has arrived
    bool shut = false;         // the destination was shut down for writing
    [[nodiscard]] bool pending() const { return out_at < out.size(); }
  };
  std::uint64_t id = 0;
  UniqueFd fd[2];  // 0: accepted client, 1: to the target
  std::uint32_t armed[2] = {0, 0};
  bool registered[2] = {false, false};
  bool hup[2] = {false, false};  // saw EPOLLHUP while it could not be read
  Flow flow[2];
  bool dead = false;
};

Relay::Relay(RelayOptions options) : options_(options), links_{WanLink{options.link}, WanLink{options.link}} {
  if (options_.target_port == 0) throw invalid_argument("target", "a port is required");
  if (options_.socket_buffer_bytes < 4096) throw invalid_argument("socket-buffer", "must be at least 4096 bytes");
  flow_cap_ = links_[0].capacity();
  listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener_.valid()) throw_errno("socket");
  const int one = 1;
  (void)::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  set_buffers(listener_.get(), options_.socket_buffer_bytes);  // inherited by accepted sockets
  sockaddr_in a = loopback_address(options_.listen_port);
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    throw_errno("bind 127.0.0.1:" + std::to_string(options_.listen_port));
  }
  if (::listen(listener_.get(), 128) != 0) throw_errno("listen");
  socklen_t len = sizeof a;
  if (::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) throw_errno("getsockname");
  port_ = ntohs(a.sin_port);
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) throw_errno("epoll_create1");
  timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer_.valid()) throw_errno("timerfd_create");
}

Relay::~Relay() = default;

void Relay::accept_all() {
  while (true) {
    UniqueFd client{::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)};
    if (!client.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      std::cerr << "vigo-wan-relay: accept: " << std::strerror(errno) << "\n";
      return;
    }
    ++accepted_;
    UniqueFd target{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    sockaddr_in a = loopback_address(options_.target_port);
    bool ok = target.valid();
    if (ok) {
      set_buffers(target.get(), options_.socket_buffer_bytes);
      // Loopback: the handshake is immediate, a blocking connect costs nothing.
      ok = ::connect(target.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    if (!ok) {
      ++failed_connects_;
      std::cerr << "vigo-wan-relay: connect 127.0.0.1:" << options_.target_port << ": " << std::strerror(errno) << "\n";
      continue;  // closing the client tells it
    }
    const int flags = ::fcntl(target.get(), F_GETFL);
    (void)::fcntl(target.get(), F_SETFL, flags | O_NONBLOCK);
    set_nodelay(client.get());
    set_nodelay(target.get());
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd[0] = std::move(client);
    c->fd[1] = std::move(target);
    conns_.emplace(c->id, std::move(c));
  }
}

void Relay::read_side(Conn& c, int side) {
  Conn::Flow& f = c.flow[side];
  WanLink& link = links_[side];
  const std::size_t want = std::min({link.room(), flow_cap_ - std::min(flow_cap_, f.held), kReadBytes});
  if (f.eof || want == 0) return;
  std::uint8_t buf[kReadBytes];
  const ssize_t n = ::read(c.fd[side].get(), buf, want);
  const auto entered = Clock::now();  // the bytes enter the link when we have them
  if (n > 0) {
    link.push(c.id, std::span<const std::uint8_t>{buf, static_cast<std::size_t>(n)}, entered);
    f.held += static_cast<std::size_t>(n);
  } else if (n == 0) {
    f.eof = true;
    link.push_fin(c.id, entered);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    reset(c);
  }
}

void Relay::flush(Conn& c, int flow) {
  Conn::Flow& f = c.flow[flow];
  const int dest = c.fd[1 - flow].get();
  while (f.pending()) {
    const ssize_t n = ::send(dest, f.out.data() + f.out_at, f.out.size() - f.out_at, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      f.out_at += static_cast<std::size_t>(n);
      f.held -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    reset(c);
    return;
  }
  if (!f.pending()) {
    f.out.clear();
    f.out_at = 0;
  } else if (f.out_at >= (256u << 10)) {
    f.out.erase(f.out.begin(), f.out.begin() + static_cast<std::ptrdiff_t>(f.out_at));
    f.out_at = 0;
  }
  if (!f.pending() && f.fin_arrived && !f.shut) {
    (void)::shutdown(dest, SHUT_WR);
    f.shut = true;
  }
}

void Relay::deliver(Clock::time_point now) {
  for (int flow = 0; flow < 2; ++flow) {
    std::vector<Conn*> touched;
    for (WanLink::Segment& s : links_[flow].pop_due(now)) {
      auto it = conns_.find(s.conn);
      if (it == conns_.end() || it->second->dead) continue;  // reset while its bytes were on the wire
      Conn::Flow& f = it->second->flow[flow];
      if (s.fin) {
        f.fin_arrived = true;
      } else {
        f.out.insert(f.out.end(), s.data.begin(), s.data.end());
      }
      if (touched.empty() || touched.back() != it->second.get()) touched.push_back(it->second.get());
    }
    for (Conn* c : touched) {
      if (!c->dead) flush(*c, flow);
    }
  }
}

void Relay::update_interest(Conn& c) {
  for (int side = 0; side < 2; ++side) {
    if (c.dead) return;
    const Conn::Flow& in = c.flow[side];       // read from this side
    const Conn::Flow& out = c.flow[1 - side];  // written to this side
    std::uint32_t want = 0;
    if (!in.eof && links_[side].room() > 0 && in.held < flow_cap_) want |= EPOLLIN;
    if (out.pending()) want |= EPOLLOUT;
    // Nothing left to read from it nor to write to it: stop watching (a
    // socket shut down both ways reports EPOLLHUP forever). Likewise while a
    // hung-up socket cannot be read because its link is full.
    const bool finished = in.eof && out.shut;
    const bool watch = !finished && (want != 0 || !c.hup[side]);
    const int fd = c.fd[side].get();
    if (!watch) {
      if (c.registered[side]) {
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        c.registered[side] = false;
      }
      continue;
    }
    if (c.registered[side] && c.armed[side] == want) continue;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = (c.id << 1) | static_cast<std::uint64_t>(side);
    if (::epoll_ctl(epoll_.get(), c.registered[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw_errno("epoll_ctl");
    }
    c.registered[side] = true;
    c.armed[side] = want;
  }
}

void Relay::arm_timer() {
  std::optional<Clock::time_point> next;
  for (const WanLink& l : links_) {
    if (auto t = l.next_arrival(); t && (!next || *t < *next)) next = t;
  }
  itimerspec spec{};
  if (next) {
    spec.it_value = to_timespec(*next);
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;  // 0 would disarm
  }
  if (::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) throw_errno("timerfd_settime");
}

void Relay::reset(Conn& c) {
  if (c.dead) return;
  ++resets_;
  const linger abort{1, 0};  // close with RST, as a broken path would look
  for (auto& fd : c.fd) {
    if (!fd.valid()) continue;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    fd.reset();  // also leaves the epoll set
  }
  c.dead = true;
}

void Relay::reap() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    Conn& c = *it->second;
    if (c.dead || (c.flow[0].shut && c.flow[1].shut)) {
      it = conns_.erase(it);  // closes what is left
    } else {
      ++it;
    }
  }
}

std::string Relay::stats_json() const {
  std::ostringstream o;
  o << "{\"connections\":" << accepted_ << ",\"failed_connects\":" << failed_connects_ << ",\"resets\":" << resets_
    << ",\"up\":" << link_json(links_[0]) << ",\"down\":" << link_json(links_[1]) << "}";
  return o.str();
}

int Relay::run() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGUSR1}) sigaddset(&set, s);
  if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) throw Error{ErrorCode::kInternal, "pthread_sigmask"};
  signals_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signals_.valid()) throw_errno("signalfd");
  for (auto [fd, key] : {std::pair{listener_.get(), kListenerKey}, std::pair{timer_.get(), kTimerKey},
                         std::pair{signals_.get(), kSignalKey}}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = key;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl");
  }
  epoll_event events[64];
  while (!stop_) {
    for (auto& [id, c] : conns_) update_interest(*c);
    arm_timer();
    const int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const std::uint64_t key = events[i].data.u64;
      if (key == kListenerKey) {
        accept_all();
      } else if (key == kTimerKey) {
        std::uint64_t expirations = 0;
        (void)::read(timer_.get(), &expirations, sizeof expirations);
      } else if (key == kSignalKey) {
        signalfd_siginfo si{};
        while (::read(signals_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
          if (si.ssi_signo == SIGUSR1) {
            std::cout << stats_json() << std::endl;
          } else {
            stop_ = true;
          }
        }
      } else {
        auto it = conns_.find(key >> 1);
        if (it == conns_.end() || it->second->dead) continue;
        Conn& c = *it->second;
        const int side = static_cast<int>(key & 1);
        const std::uint32_t ev = events[i].events;
        if ((ev & EPOLLERR) != 0) {
          reset(c);
          continue;
        }
        if ((ev & EPOLLOUT) != 0) flush(c, 1 - side);
        if (!c.dead && (ev & (EPOLLIN | EPOLLHUP)) != 0) {
          if ((c.armed[side] & EPOLLIN) != 0) {
            read_side(c, side);
          } else if ((ev & EPOLLHUP) != 0) {
            c.hup[side] = true;  // readable again when its link has room
          }
        }
      }
    }
    deliver(Clock::now());
    reap();
  }
  return 0;
}

}  // namespace vigo::bench
