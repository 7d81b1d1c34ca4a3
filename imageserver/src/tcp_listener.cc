// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/tcp_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/imageserver/host_port.h"
#include "vigo/imageserver/tls_connection.h"

namespace vigo::imageserver {

namespace {

struct Endpoint {
  sockaddr_storage address{};
  socklen_t length = 0;
  int family = AF_INET;
  bool loopback = false;
};

Endpoint parse_endpoint(const std::string& field, const std::string& text) {
  const HostPort hp = split_host_port(field, text);
  Endpoint e;
  if (hp.bracketed) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&e.address);
    a6->sin6_family = e.family = AF_INET6;
    a6->sin6_port = htons(hp.port);
    if (::inet_pton(AF_INET6, hp.host.c_str(), &a6->sin6_addr) != 1) {
      throw invalid_argument(field, "'" + hp.host + "' is not an IPv6 address");
    }
    e.loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    e.length = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&e.address);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(hp.port);
    if (::inet_pton(AF_INET, hp.host.c_str(), &a4->sin_addr) != 1) {
      throw invalid_argument(field, "'" + hp.host + "' is not an IPv4 address");
    }
    e.loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    e.length = sizeof *a4;
  }
  return e;
}

// A listening socket on e; the port it got.
std::pair<UniqueFd, std::uint16_t> listen_on(Endpoint e, const std::string& text) {
  UniqueFd fd{::socket(e.family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd.valid()) throw_errno("socket");
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&e.address), e.length) != 0) throw_errno("bind " + text);
  if (::listen(fd.get(), 64) != 0) throw_errno("listen " + text);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&e.address), &e.length) != 0) throw_errno("getsockname");
  const std::uint16_t bound = e.family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&e.address)->sin6_port)
                                                   : ntohs(reinterpret_cast<sockaddr_in*>(&e.address)->sin_port);
  return {std::move(fd), bound};
}

}  // namespace

TcpListener TcpListener::bind(const std::string& address) {
  const Endpoint e = parse_endpoint("--listen", address);
  if (!e.loopback) {
    const std::string host = split_host_port("--listen", address).host;
    throw Error{ErrorCode::kPermissionDenied,
                "plain TCP listens on loopback only, not " + host + " (use --listen-tls or ssh on a network)",
                "--listen"};
  }
  auto [fd, port] = listen_on(e, address);
  return TcpListener{std::move(fd), port, std::nullopt};
}

TcpListener TcpListener::bind_tls(const std::string& address, TlsListenOptions tls) {
  if (!tls.context || tls.context->role() != tls::Role::kServer) {
    throw Error{ErrorCode::kInternal, "a TLS listener needs a server context"};
  }
  auto [fd, port] = listen_on(parse_endpoint("--listen-tls", address), address);
  return TcpListener{std::move(fd), port, std::move(tls)};
}

void TcpListener::serve_one(Server& server, int socket, const std::optional<std::string>& user) const {
  if (tls_) {
    serve_tls_connection(server, socket, *tls_->context, tls_->handshake_timeout);
  } else {
    (void)server.serve(socket, socket, user);
  }
}

void TcpListener::run(Server& server, const std::optional<std::string>& user, std::stop_token stop,
                      std::size_t max_connections) {
  if (tls_ && user) {
    throw invalid_argument("--user", "not allowed with TLS: the client certificate's CN is the user");
  }
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
        serve_one(server, c, user);
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
