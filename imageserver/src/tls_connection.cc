// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/tls_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>

#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/common/names.h"
#include "vigo/common/wire.h"

namespace vigo::imageserver {
namespace {

// "ADDRESS:PORT" of the socket's peer, for the log.
std::string peer_of(int socket) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(socket, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  std::uint16_t port = 0;
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
    return std::string{"["} + host + "]:" + std::to_string(port);
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
  port = ntohs(a->sin_port);
  return std::string{host} + ":" + std::to_string(port);
}

// After a refused handshake: stop sending, then read and drop what the
// client still sends until it closes (at most a second or 1 MiB), so that
// closing does not reset the connection before the client has read our
// alert.
void linger_close(int socket) {
  (void)::shutdown(socket, SHUT_WR);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{1};
  std::size_t dropped = 0;
  char buf[16384];
  while (dropped < (1u << 20)) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return;
    pollfd p{socket, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::read(socket, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
    if (n > 0) dropped += static_cast<std::size_t>(n);
  }
}

}  // namespace

void serve_tls_connection(Server& server, int socket, const tls::Context& context,
                          std::chrono::milliseconds handshake_timeout) {
  const std::string peer = peer_of(socket);
  std::string user;
  std::optional<tls::Stream> stream;
  try {
    stream.emplace(tls::Stream::accept(context, socket, handshake_timeout));
  } catch (const std::exception& e) {
    log::warn("imaged: TLS connection refused", {{"peer", peer}, {"reason", e.what()}});
    linger_close(socket);
    return;
  }
  try {
    user = stream->peer_common_name();
    validate_name("client certificate CN", user);
  } catch (const Error& e) {
    // A trusted certificate that names no valid user: tell the client why
    // (an error frame with id 0 fails its HELLO), then close.
    log::warn("imaged: TLS connection refused", {{"peer", peer}, {"reason", e.what()}});
    try {
      tls::Bridge bridge{std::move(*stream)};
      const Error refusal{ErrorCode::kPermissionDenied, std::string{"refused: "} + e.what()};
      wire::write_frame(bridge.fd(), static_cast<std::uint8_t>(wire::MessageType::kError), 0,
                        wire::encode_error(refusal));
      bridge.finish();
    } catch (const std::exception& failure) {
      log::debug("imaged: could not tell the client", {{"peer", peer}, {"error", failure.what()}});
    }
    return;
  }
  log::info("imaged: TLS connection", {{"peer", peer}, {"user", user}, {"protocol", stream->protocol()}});
  try {
    tls::Bridge bridge{std::move(*stream)};
    const ConnectionStats stats = server.serve(bridge.fd(), bridge.fd(), user);
    bridge.finish();
    log::info("imaged: TLS connection closed",
              {{"peer", peer}, {"user", user}, {"requests", stats.requests}, {"errors", stats.errors}});
  } catch (const std::exception& e) {
    log::warn("imaged: TLS connection failed", {{"peer", peer}, {"user", user}, {"error", e.what()}});
  }
}

}  // namespace vigo::imageserver
