// SPDX-License-Identifier: Apache-2.0
// vigo-wan-relay, the WAN emulator of bench/vfs, as a real process between
// real loopback sockets. Checks the properties the benchmark relies on:
// bytes arrive intact and in order both ways, a round trip takes at least
// twice the one-way delay (plus serialization), a transfer never beats the
// link rate (also when connections share it), a receiver that stops reading
// stops the sender (bounded buffering, nothing lost), and bad options are
// refused. Only lower bounds on time and upper bounds on rate are asserted:
// a busy machine can only make the relay slower, never break them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "support/pg_fixture.h"
#include "imageserver/store_test_util.h"
#include "support/text_file.h"
#include "vigo/common/subprocess.h"
#include "vigo/common/system.h"
#include "vigo/common/unique_fd.h"

namespace vigo::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string relay_path() {
  if (const char* env = std::getenv("VIGO_WAN_RELAY"); env != nullptr && *env != '\0') return env;
  return VIGO_WAN_RELAY_PATH;
}

UniqueFd connect_to(std::uint16_t port) {
  UniqueFd fd = connect_loopback(port);
  const int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void send_all(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw std::runtime_error("send: " + std::string{std::strerror(errno)});
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Reads until end of stream (or `max` bytes); `last` gets the time of the last byte.
std::vector<std::uint8_t> recv_until(int fd, std::size_t max, Clock::time_point* last = nullptr) {
  std::vector<std::uint8_t> out;
  std::uint8_t buf[64 << 10];
  while (out.size() < max) {
    const ssize_t r = ::recv(fd, buf, std::min(sizeof buf, max - out.size()), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw std::runtime_error("recv: " + std::string{std::strerror(errno)});
    if (r == 0) break;
    out.insert(out.end(), buf, buf + r);
    if (last != nullptr) *last = Clock::now();
  }
  return out;
}

// A listening socket on a free loopback port: the relay's target.
class Target {
 public:
  Target() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a = loopback_address(0);
    socklen_t len = sizeof a;
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_.get(), 16) != 0 ||
        ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("target socket: " + std::string{std::strerror(errno)});
    }
    port_ = ntohs(a.sin_port);
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  UniqueFd accept() {
    UniqueFd c{::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC)};
    if (!c.valid()) throw std::runtime_error("accept: " + std::string{std::strerror(errno)});
    const int one = 1;
    ::setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
  }

 private:
  UniqueFd fd_;
  std::uint16_t port_ = 0;
};

class Relay {
 public:
  explicit Relay(std::uint16_t target, std::vector<std::string> extra = {}) {
    SpawnOptions o;
    o.argv = {relay_path(), "--target", std::to_string(target)};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    o.stdout_path = dir_.path() / "relay.out";
    o.stderr_path = dir_.path() / "relay.err";
    process_ = std::make_unique<Subprocess>(Subprocess::spawn(o));
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline && process_->running()) {
      const std::string out = read_text_file(dir_.path() / "relay.out");
      if (const auto at = out.find("listening on port ");
          at != std::string::npos && out.find('\n', at) != std::string::npos) {
        port_ = static_cast<std::uint16_t>(std::stoi(out.substr(at + 18)));
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    throw std::runtime_error("the relay did not start: " + read_text_file(dir_.path() / "relay.err"));
  }
  ~Relay() {
    if (process_) process_->terminate(5s);
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Stops it; returns its exit status and leaves the counters in stats().
  int stop() {
    const int rc = process_->terminate(5s);
    process_.reset();
    return rc;
  }
  [[nodiscard]] std::string stats() const { return read_text_file(dir_.path() / "relay.out"); }

 private:
  TempDir dir_{"vigo-relay"};
  std::unique_ptr<Subprocess> process_;
  std::uint16_t port_ = 0;
};

class WanRelayTest : public ::testing::Test {};

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

TEST_F(WanRelayTest, CarriesLargeRandomTransfersIntactAndInOrderBothWays) {
  Target target;
  Relay relay{target.port(), {"--delay-ms", "2", "--rate-mbit", "800"}};
  constexpr std::size_t kBytes = 12 << 20;
  // Two connections at once, each sending different bytes each way, so that
  // interleaving on the shared links would show as corruption.
  struct Pair {
    UniqueFd client, server;
    std::vector<std::uint8_t> up, down, got_up, got_down;
  };
  std::vector<Pair> pairs(2);
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    pairs[i].client = connect_to(relay.port());
    pairs[i].server = target.accept();
    pairs[i].up = random_data(kBytes + i * 4099, 10 + i);
    pairs[i].down = random_data(kBytes - i * 7919, 20 + i);
  }
  std::vector<std::thread> threads;
  for (Pair& p : pairs) {
    threads.emplace_back([&p] {
      send_all(p.client.get(), p.up.data(), p.up.size());
      ::shutdown(p.client.get(), SHUT_WR);
    });
    threads.emplace_back([&p] {
      send_all(p.server.get(), p.down.data(), p.down.size());
      ::shutdown(p.server.get(), SHUT_WR);
    });
    threads.emplace_back([&p] { p.got_up = recv_until(p.server.get(), SIZE_MAX); });
    threads.emplace_back([&p] { p.got_down = recv_until(p.client.get(), SIZE_MAX); });
  }
  for (auto& t : threads) t.join();
  for (const Pair& p : pairs) {
    ASSERT_EQ(p.got_up.size(), p.up.size());
    EXPECT_TRUE(p.got_up == p.up) << "client -> target bytes differ";
    ASSERT_EQ(p.got_down.size(), p.down.size());
    EXPECT_TRUE(p.got_down == p.down) << "target -> client bytes differ";
  }
  EXPECT_EQ(relay.stop(), 0);
  EXPECT_NE(relay.stats().find("\"connections\":2"), std::string::npos) << relay.stats();
}

TEST_F(WanRelayTest, ARoundTripTakesAtLeastTwiceTheDelayPlusSerialization) {
  Target target;
  Relay relay{target.port()};  // defaults: 20 ms each way, 100 Mbit/s
  UniqueFd client = connect_to(relay.port());
  UniqueFd server = target.accept();
  // Echoes each message once it has all of it (1-byte pings, then 64 KiB
  // blocks), so that a block crosses the link twice, one after the other.
  std::thread echo{[&] {
    for (std::size_t size : {1, 1, 1, 1, 1, 64 << 10, 64 << 10, 64 << 10}) {
      const auto msg = recv_until(server.get(), size);
      if (msg.size() != size) return;
      send_all(server.get(), msg.data(), msg.size());
    }
  }};
  double min_small = 1e9, min_large = 1e9;
  for (int i = 0; i < 5; ++i) {  // one byte: the RTT itself
    const std::uint8_t ping = static_cast<std::uint8_t>(i);
    const auto t0 = Clock::now();
    send_all(client.get(), &ping, 1);
    const auto got = recv_until(client.get(), 1);
    min_small = std::min(min_small, ms_between(t0, Clock::now()));
    ASSERT_EQ(got, std::vector<std::uint8_t>{ping});
  }
  // 64 KiB each way: RTT plus 2 x 64 KiB / 12.5 MB/s = 40 + 10.5 ms.
  const auto block = random_data(64 << 10, 3);
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    send_all(client.get(), block.data(), block.size());
    const auto got = recv_until(client.get(), block.size());
    min_large = std::min(min_large, ms_between(t0, Clock::now()));
    ASSERT_TRUE(got == block);
  }
  ::shutdown(client.get(), SHUT_WR);
  echo.join();
  EXPECT_GE(min_small, 40.0);
  EXPECT_GE(min_large, 40.0 + 2 * (64 << 10) * 8 / 100e6 * 1e3);
  std::cout << "[ info ] ping-pong RTT " << min_small << " ms; 64 KiB each way " << min_large << " ms\n";
}

TEST_F(WanRelayTest, BulkTransfersNeverExceedTheLinkRateEvenWhenConnectionsShareIt) {
  Target target;
  Relay relay{target.port(), {"--delay-ms", "5", "--rate-mbit", "100"}};
  constexpr double kRate = 100e6 / 8;  // bytes per second
  constexpr std::size_t kEach = 5 << 20;
  UniqueFd c1 = connect_to(relay.port()), c2 = connect_to(relay.port());
  UniqueFd s1 = target.accept(), s2 = target.accept();
  const auto data = random_data(kEach, 4);
  Clock::time_point last1, last2;
  std::size_t got1 = 0, got2 = 0;
  const auto t0 = Clock::now();
  std::thread w1{[&] {
    send_all(c1.get(), data.data(), data.size());
    ::shutdown(c1.get(), SHUT_WR);
  }};
  std::thread w2{[&] {
    send_all(c2.get(), data.data(), data.size());
    ::shutdown(c2.get(), SHUT_WR);
  }};
  std::thread r1{[&] { got1 = recv_until(s1.get(), SIZE_MAX, &last1).size(); }};
  std::thread r2{[&] { got2 = recv_until(s2.get(), SIZE_MAX, &last2).size(); }};
  for (auto* t : {&w1, &w2, &r1, &r2}) t->join();
  ASSERT_EQ(got1, kEach);
  ASSERT_EQ(got2, kEach);
  const double seconds = ms_between(t0, std::max(last1, last2)) / 1e3;
  const double rate = 2.0 * kEach / seconds;
  std::cout << "[ info ] two connections together: " << rate / 1e6 << " MB/s (link " << kRate / 1e6 << ")\n";
  EXPECT_LE(rate, kRate * 1.01);

  // One connection alone, the other direction: the same bound.
  Clock::time_point last;
  std::size_t got = 0;
  const auto t1 = Clock::now();
  std::thread w{[&] {
    send_all(s1.get(), data.data(), data.size());
    ::shutdown(s1.get(), SHUT_WR);
  }};
  got = recv_until(c1.get(), SIZE_MAX, &last).size();
  w.join();
  ASSERT_EQ(got, kEach);
  const double down = kEach / (ms_between(t1, last) / 1e3);
  std::cout << "[ info ] one connection downstream: " << down / 1e6 << " MB/s\n";
  EXPECT_LE(down, kRate * 1.01);
}

TEST_F(WanRelayTest, AReceiverThatStopsReadingStopsTheSenderAndLosesNothing) {
  Target target;
  Relay relay{target.port(), {"--delay-ms", "5", "--rate-mbit", "1000"}};
  UniqueFd client = connect_to(relay.port());
  UniqueFd server = target.accept();
  const auto data = random_data(48 << 20, 5);
  const int flags = ::fcntl(client.get(), F_GETFL);
  ::fcntl(client.get(), F_SETFL, flags | O_NONBLOCK);
  // Write until nothing more is taken for a whole second.
  std::size_t sent = 0;
  auto quiet_since = Clock::now();
  while (sent < data.size() && Clock::now() - quiet_since < 1s) {
    const ssize_t w =
        ::send(client.get(), data.data() + sent, std::min<std::size_t>(64 << 10, data.size() - sent), MSG_NOSIGNAL);
    if (w > 0) {
      sent += static_cast<std::size_t>(w);
      quiet_since = Clock::now();
    } else {
      pollfd p{client.get(), POLLOUT, 0};
      ::poll(&p, 1, 50);
    }
  }
  // Kernel buffers on both sides plus the link's (delay x rate + queue):
  // a few MiB, far from the 48 MiB offered.
  std::cout << "[ info ] taken before the sender stalled: " << sent / 1024 << " KiB\n";
  EXPECT_LT(sent, std::size_t{24} << 20);
  ::fcntl(client.get(), F_SETFL, flags);
  std::thread rest{[&] {
    send_all(client.get(), data.data() + sent, data.size() - sent);
    ::shutdown(client.get(), SHUT_WR);
  }};
  const auto got = recv_until(server.get(), SIZE_MAX);
  rest.join();
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST_F(WanRelayTest, ClosesTheClientWhenTheTargetIsDown) {
  std::uint16_t unused = 0;
  {
    Target t;  // bound, then closed: nobody listens there
    unused = t.port();
  }
  Relay relay{unused};
  UniqueFd client = connect_to(relay.port());
  pollfd p{client.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  std::uint8_t b;
  EXPECT_LE(::recv(client.get(), &b, 1, 0), 0);  // end of stream or reset
}

TEST_F(WanRelayTest, RefusesBadOptionsWithClearMessages) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "--target"},
      {{"--target", "0"}, "--target must be a port"},
      {{"--target", "80", "--rate-mbit", "0"}, "--rate-mbit must be"},
      {{"--target", "80", "--delay-ms", "-1"}, "--delay-ms must be"},
      {{"--target", "80", "--buffer-kib", "0"}, "--buffer-kib must be"},
      {{"--target", "80", "--listen", "70000"}, "--listen must be"},
      {{"--target", "80", "--delay-ms", "fast"}, "--delay-ms"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv{relay_path()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const RunResult r = run_command(argv, 10s);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace vigo::testing
