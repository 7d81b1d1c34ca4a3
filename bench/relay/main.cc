// SPDX-License-Identifier: Apache-2.0
// vigo-wan-relay: a user-space WAN on loopback for benchmarks and tests
// (this machine has no tc netem). Listens on 127.0.0.1:--listen (0: a free
// port), forwards every connection to 127.0.0.1:--target, and gives each
// direction a one-way delay and a rate limit shared by all connections, with
// a bounded queue (relay.h, wan_link.h).
//
// Prints "listening on port N" once it accepts connections, and a JSON line
// of counters on SIGUSR1 and on exit (SIGINT/SIGTERM). Exit codes: 0, 2 bad
// arguments, 1 anything else.
#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <iostream>

#include "relay.h"
#include "vigo/common/error.h"

namespace {

struct Options {
  int listen_port = 0;
  int target_port = 0;
  double delay_ms = 20;
  double rate_mbit = 100;
  std::size_t buffer_kib = 64;
  std::size_t segment_kib = 16;
  int socket_buffer_kib = 64;
};

// Clear messages for values CLI11 accepted as numbers but the link cannot use.
std::string validate(const Options& o) {
  if (o.target_port < 1 || o.target_port > 65535) return "--target must be a port 1..65535";
  if (o.listen_port < 0 || o.listen_port > 65535) return "--listen must be a port 0..65535 (0: pick a free one)";
  if (!std::isfinite(o.delay_ms) || o.delay_ms < 0 || o.delay_ms > 10'000) return "--delay-ms must be 0..10000";
  if (!std::isfinite(o.rate_mbit) || o.rate_mbit < 0.01 || o.rate_mbit > 100'000) {
    return "--rate-mbit must be 0.01..100000 (Mbit/s per direction)";
  }
  if (o.buffer_kib < 1 || o.buffer_kib > (1u << 20)) return "--buffer-kib must be 1..1048576";
  if (o.segment_kib < 1 || o.segment_kib > 1024) return "--segment-kib must be 1..1024";
  if (o.segment_kib > o.buffer_kib) return "--segment-kib must not exceed --buffer-kib (a segment must fit the queue)";
  if (o.socket_buffer_kib < 4 || o.socket_buffer_kib > 65536) return "--socket-buffer-kib must be 4..65536";
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  Options o;
  CLI::App app{"vigo-wan-relay: emulates a WAN (delay, rate, bounded queue) between loopback TCP ports"};
  app.add_option("--listen", o.listen_port, "Port to listen on, on 127.0.0.1 (0: a free port, printed)");
  app.add_option("--target", o.target_port, "Port to forward to, on 127.0.0.1")->required();
  app.add_option("--delay-ms", o.delay_ms, "One-way delay per direction, ms (RTT = 2x)");
  app.add_option("--rate-mbit", o.rate_mbit, "Rate per direction, Mbit/s, shared by all connections");
  app.add_option("--buffer-kib", o.buffer_kib, "Queue per direction beyond delay x rate, KiB");
  app.add_option("--segment-kib", o.segment_kib, "Serialization granule, KiB");
  app.add_option("--socket-buffer-kib", o.socket_buffer_kib, "SO_RCVBUF/SO_SNDBUF of the relay's sockets, KiB");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints the help, or the error and a hint
    return rc == 0 ? 0 : 2;
  }
  if (const std::string bad = validate(o); !bad.empty()) {
    std::cerr << "vigo-wan-relay: " << bad << "\n";
    return 2;
  }
  try {
    vigo::bench::RelayOptions ro;
    ro.listen_port = static_cast<std::uint16_t>(o.listen_port);
    ro.target_port = static_cast<std::uint16_t>(o.target_port);
    ro.link.delay = std::chrono::nanoseconds{std::llround(o.delay_ms * 1e6)};
    ro.link.rate_bits_per_s = static_cast<std::uint64_t>(std::llround(o.rate_mbit * 1e6));
    ro.link.buffer_bytes = o.buffer_kib << 10;
    ro.link.segment_bytes = o.segment_kib << 10;
    ro.socket_buffer_bytes = o.socket_buffer_kib << 10;
    vigo::bench::Relay relay{ro};
    std::cout << "listening on port " << relay.port() << std::endl;
    const int rc = relay.run();
    std::cout << relay.stats_json() << std::endl;
    return rc;
  } catch (const vigo::Error& e) {
    std::cerr << "vigo-wan-relay: " << e.what() << "\n";
    return e.code() == vigo::ErrorCode::kInvalidArgument ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "vigo-wan-relay: " << e.what() << "\n";
    return 1;
  }
}
