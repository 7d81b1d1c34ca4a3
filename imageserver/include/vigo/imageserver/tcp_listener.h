// SPDX-License-Identifier: Apache-2.0
// TcpListener: serves the wire protocol on TCP. Each accepted connection is
// served on its own thread, at most max_connections at once (further ones
// wait in the backlog).
//
// Plain (bind): for tests and local tools. It binds loopback addresses only
// (127.0.0.0/8 or ::1) and refuses any other address (kPermissionDenied): on
// a network the image server is reached through ssh (--stdio) or TLS.
// Connections are served by Server::serve as `user`.
//
// TLS (bind_tls): any address. Each connection is handed to
// serve_tls_connection (tls_connection.h): a handshake that requires a client
// certificate from the context's CA, whose subject CN becomes the
// connection's user; refusals are logged and do not affect other
// connections. run() must then be given no user.
//
// Thread-safe: run() on one thread, stop via its stop_token (open
// connections are cut, their threads joined).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "vigo/common/tls.h"
#include "vigo/common/unique_fd.h"
#include "vigo/imageserver/server.h"

namespace vigo::imageserver {

struct TlsListenOptions {
  std::shared_ptr<const tls::Context> context;  // a server context
  std::chrono::milliseconds handshake_timeout = tls::kDefaultHandshakeTimeout;
};

class TcpListener {
 public:
  // "127.0.0.1:PORT" or "[::1]:PORT"; port 0 picks a free one (see port()).
  // Errors name the option --listen.
  static TcpListener bind(const std::string& address);
  // "ADDRESS:PORT" or "[ADDRESS]:PORT", any IPv4/IPv6 address (0.0.0.0 for
  // all). Errors name the option --listen-tls.
  static TcpListener bind_tls(const std::string& address, TlsListenOptions tls);

  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Accepts until stop is requested, then closes the connections and returns.
  void run(Server& server, const std::optional<std::string>& user, std::stop_token stop,
           std::size_t max_connections = 64);

 private:
  TcpListener(UniqueFd fd, std::uint16_t port, std::optional<TlsListenOptions> tls)
      : fd_(std::move(fd)), port_(port), tls_(std::move(tls)) {}
  void serve_one(Server& server, int socket, const std::optional<std::string>& user) const;

  UniqueFd fd_;
  std::uint16_t port_ = 0;
  std::optional<TlsListenOptions> tls_;
};

}  // namespace vigo::imageserver
