// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/tls_connect.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/common/unique_fd.h"
#include "vigo/imageserver/host_port.h"

namespace vigo::imageserver {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int e) {
  char buf[256];
  return strerror_r(e, buf, sizeof buf);
}

// One non-blocking connect() within the deadline: 0 or an errno.
int try_connect(int fd, const addrinfo& ai, Clock::time_point deadline) {
  if (::connect(fd, ai.ai_addr, ai.ai_addrlen) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  while (true) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return ETIMEDOUT;
    pollfd p{fd, POLLOUT, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno != EINTR) return errno;
    if (r > 0) break;
  }
  int error = 0;
  socklen_t len = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return errno;
  return error;
}

// A connected TCP socket to host:port (every address the name has, in order).
UniqueFd tcp_connect(const HostPort& hp, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(hp.port);
  if (const int r = ::getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &list); r != 0) {
    throw Error{ErrorCode::kUnavailable, "cannot resolve '" + hp.host + "': " + ::gai_strerror(r), "--tls"};
  }
  const auto deadline = Clock::now() + timeout;
  int last = 0;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd{::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol)};
    if (!fd.valid()) {
      last = errno;
      continue;
    }
    last = try_connect(fd.get(), *ai, deadline);
    if (last == 0) {
      ::freeaddrinfo(list);
      const int one = 1;
      ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
  }
  ::freeaddrinfo(list);
  const std::string where = hp.host + " port " + port;
  if (last == ETIMEDOUT) {
    throw Error{ErrorCode::kTimeout,
                "cannot connect to " + where + ": no answer in " + std::to_string(timeout.count()) + " ms"};
  }
  throw Error{ErrorCode::kUnavailable, "cannot connect to " + where + ": " + errno_text(last)};
}

}  // namespace

void connect_and_bridge(const ConnectOptions& o, int in_fd, int out_fd) {
  if (o.address.empty()) throw invalid_argument("--tls", "HOST:PORT is required");
  const HostPort hp = split_host_port("--tls", o.address);
  if (hp.host.empty()) throw invalid_argument("--tls", "'" + o.address + "' has no host");
  if (o.cert_file.empty()) throw invalid_argument("--tls-cert", "the client certificate is required");
  if (o.key_file.empty()) throw invalid_argument("--tls-key", "the client key is required");
  tls::ContextOptions co;
  co.role = tls::Role::kClient;
  co.cert_file = o.cert_file;
  co.key_file = o.key_file;
  co.ca_file = o.ca_file;
  const tls::Context context{co};  // errors name --tls-cert, --tls-key, --tls-ca
  const std::string name = o.server_name.empty() ? hp.host : o.server_name;

  const UniqueFd socket = tcp_connect(hp, o.timeout);
  tls::Stream stream = [&] {
    try {
      return tls::Stream::connect(context, socket.get(), name, o.timeout);
    } catch (const Error& e) {
      throw Error{e.code(), "cannot connect to " + o.address + ": " + e.what(), e.field()};
    }
  }();
  log::info("connected", {{"server", o.address}, {"protocol", stream.protocol()}});
  // From now on SIGTERM, SIGINT and SIGHUP (vigo-fs ending the command) close
  // the stream properly: the server sees close_notify, not a vanished peer.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, sig);
  if (::pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) throw Error{ErrorCode::kInternal, "pthread_sigmask"};
  const UniqueFd stop{::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK)};
  if (!stop.valid()) throw_errno("signalfd");
  try {
    stream.pump(in_fd, out_fd, tls::PumpEnd::kPeerClosed, std::chrono::milliseconds::max(), stop.get());
  } catch (const Error& e) {
    throw Error{e.code(), "connection to " + o.address + " failed: " + e.what(), e.field()};
  }
}

}  // namespace vigo::imageserver
