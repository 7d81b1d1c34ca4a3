// SPDX-License-Identifier: Apache-2.0
// Relay: a TCP relay on loopback that makes the way between its clients and
// one target port look like a WAN. It listens on 127.0.0.1, connects every
// accepted connection to 127.0.0.1:target, and carries each direction over
// its own WanLink (delay + rate + bounded queue, shared by all connections).
//
// Single-threaded: one epoll loop; link arrivals wake it through a timerfd
// armed at the next arrival (steady_clock == CLOCK_MONOTONIC), so nothing
// busy-waits. A socket is read only while its link and its connection's
// share have room (backpressure: the sender's TCP stalls, nothing is
// dropped). The relay's own socket receive buffers are kept small so that
// data does not pile up, unaccounted, in front of the link. An end of
// stream travels through the link like data (shutdown(SHUT_WR) on the other
// side once everything before it was written); a reset or write error closes
// both sides at once. SIGINT/SIGTERM end run(); SIGUSR1 prints the counters.
// Only loopback addresses are ever used.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>

#include "vigo/common/unique_fd.h"
#include "wan_link.h"

namespace vigo::bench {

struct RelayOptions {
  std::uint16_t listen_port = 0;       // 0: any free port (see port())
  std::uint16_t target_port = 0;       // on 127.0.0.1
  LinkOptions link;                    // the same for both directions
  int socket_buffer_bytes = 64 << 10;  // SO_RCVBUF/SO_SNDBUF of the relay's sockets
};

class Relay {
 public:
  // Binds and listens (throws vigo::Error naming what failed).
  explicit Relay(RelayOptions options);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Serves until SIGINT or SIGTERM (blocked in the calling thread and taken
  // through a signalfd). Returns 0.
  int run();
  // One JSON object: connections, and per direction bytes, link busy time,
  // queue high-water mark.
  [[nodiscard]] std::string stats_json() const;

 private:
  struct Conn;
  using Clock = WanLink::Clock;

  void accept_all();
  void read_side(Conn& c, int side);
  void flush(Conn& c, int flow);  // writes flow's arrived bytes to its destination
  void deliver(Clock::time_point now);
  void update_interest(Conn& c);
  void arm_timer();
  void reset(Conn& c);  // abortive close of both sides
  void reap();          // forgets finished connections

  RelayOptions options_;
  std::uint16_t port_ = 0;
  UniqueFd listener_, epoll_, timer_, signals_;
  WanLink links_[2];  // 0: client -> target, 1: target -> client
  std::map<std::uint64_t, std::unique_ptr<Conn>> conns_;
  std::uint64_t next_id_ = 16;
  std::size_t flow_cap_ = 0;  // bytes one direction of one connection may hold
  std::uint64_t accepted_ = 0, failed_connects_ = 0, resets_ = 0;
  bool stop_ = false;
};

}  // namespace vigo::bench
