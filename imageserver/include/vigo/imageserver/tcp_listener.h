// SPDX-License-Identifier: Apache-2.0
// TcpListener: plain TCP for tests and local tools. It binds loopback
// addresses only (127.0.0.0/8 or ::1) and refuses any other address
// (kPermissionDenied): on a network the image server is reached through ssh
// (--stdio) instead. Each accepted connection is served on its own thread by
// Server::serve, at most max_connections at once (further ones wait in the
// backlog). Thread-safe: run() on one thread, stop via its stop_token.
#pragma once

#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>

#include "vigo/imageserver/server.h"
#include "vigo/common/unique_fd.h"

namespace vigo::imageserver {

class TcpListener {
 public:
  // "127.0.0.1:PORT" or "[::1]:PORT"; port 0 picks a free one (see port()).
  static TcpListener bind(const std::string& address);

  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Accepts until stop is requested, then closes the connections and returns.
  void run(Server& server, const std::optional<std::string>& user, std::stop_token stop,
           std::size_t max_connections = 64);

 private:
  TcpListener(UniqueFd fd, std::uint16_t port) : fd_(std::move(fd)), port_(port) {}
  UniqueFd fd_;
  std::uint16_t port_ = 0;
};

}  // namespace vigo::imageserver
