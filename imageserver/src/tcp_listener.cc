// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/tcp_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/common/log.h"

namespace vigo::imageserver {

TcpListener TcpListener::bind(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) throw invalid_argument("listen address", "'" + address + "' must be HOST:PORT");
  std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || p != port_text.data() + port_text.size() || port > 65535) {
    throw invalid_argument("listen address", "'" + port_text + "' is not a port number");
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = family = AF_INET6;
    a6->sin6_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) {
      throw invalid_argument("listen address", "'" + host + "' is not an IPv6 address");
    }
    if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) {
      throw Error{ErrorCode::kPermissionDenied, "plain TCP listens on loopback only, not " + host, "listen address"};
    }
    len = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) {
      throw invalid_argument("listen address", "'" + host + "' is not an IPv4 address");
    }
    if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) {
      throw Error{ErrorCode::kPermissionDenied, "plain TCP listens on loopback only, not " + host, "listen address"};
    }
    len = sizeof *a4;
  }
  UniqueFd fd{::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd.valid()) throw_errno("socket");
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) throw_errno("bind " + address);
  if (::listen(fd.get(), 64) != 0) throw_errno("listen " + address);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw_errno("getsockname");
  const std::uint16_t bound = family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                                 : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return TcpListener{std::move(fd), bound};
}

void TcpListener::run(Server& server, const std::optional<std::string>& user, std::stop_token stop,
                      std::size_t max_connections) {
  std::mutex mu;
  std::condition_variable cv;
  std::set<int> open;                  // GUARDED_BY(mu): sockets being served
  std::map<int, std::thread> threads;  // GUARDED_BY(mu): by socket
  std::vector<std::thread> finished;   // GUARDED_BY(mu): to be joined
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock{mu};
      for (auto& t : finished) t.join();
      finished.clear();
      if (!cv.wait_for(lock, std::chrono::milliseconds{200}, [&] { return open.size() < max_connections; })) continue;
    }
    pollfd pfd{fd_.get(), POLLIN, 0};
    const int r = ::poll(&pfd, 1, 200);
    if (r <= 0) continue;
    const int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        log::warn("imaged: accept failed", {{"errno", errno}});
      }
      continue;
    }
    const int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard lock{mu};
    open.insert(c);
    threads.emplace(c, [&, c] {
      try {
        (void)server.serve(c, c, user);
      } catch (const std::exception& e) {
        log::warn("imaged: connection failed", {{"error", e.what()}});
      }
      std::lock_guard l{mu};
      open.erase(c);
      finished.push_back(std::move(threads.at(c)));
      threads.erase(c);
      ::close(c);
      cv.notify_all();
    });
  }
  {
    std::lock_guard lock{mu};
    for (int c : open) ::shutdown(c, SHUT_RDWR);  // wakes their readers
  }
  while (true) {
    std::unique_lock lock{mu};
    for (auto& t : finished) t.join();
    finished.clear();
    if (threads.empty()) break;
    cv.wait_for(lock, std::chrono::milliseconds{50});
  }
}

}  // namespace vigo::imageserver
