// SPDX-License-Identifier: Apache-2.0
// HttpsServer: HTTP/1.1 over TLS (Boost.Beast, OpenSSL) in front of one
// Handler, a plain function from Request to Response.
//
// Each connection is a C++20 coroutine on the I/O threads: TLS handshake
// (at most handshake_timeout), then requests one at a time, in order: read
// (header at most header_limit bytes, body at most body_limit; the first
// request within read_timeout, each later one within idle_timeout), run the
// handler on the handler pool (so a handler that waits on the database never
// stalls the I/O threads), write the response. A pipelining client gets its
// answers in order; what it sent ahead waits in a read buffer bounded by
// header_limit + body_limit, so no client can queue unbounded work. After
// max_requests_per_connection the connection is closed (Connection: close);
// beyond max_connections a new connection is closed at once.
//
// A response with a stream (http.h: an event stream) is sent with chunked
// transfer encoding as the stream produces it, and its connection closes
// when the stream ends; each write must finish within read_timeout.
//
// Malformed requests are answered by the server itself with a JSON error
// and the connection closed: 400 (bad syntax or target), 413 (body too
// large), 431 (header too large). A handler that throws gets 500 (its
// message is logged, not sent).
//
// TLS 1.2 or newer; certificate chain and key from PEM files, checked at
// construction (kInvalidArgument naming api.cert / api.key).
//
// Thread-safe: start() once, stop() from any thread (also the destructor):
// it stops accepting, lets requests in progress finish (at most drain
// seconds), then closes every connection and joins the threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "vigo/web/http.h"

namespace vigo::web {

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: a free port (port() tells which)
  std::filesystem::path cert_file, key_file;
  int io_threads = 2;
  int handler_threads = 8;
  std::size_t header_limit = 16 * 1024;
  std::size_t body_limit = 1024 * 1024;
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds idle_timeout{60};
  std::uint32_t max_requests_per_connection = 10'000;
  std::uint32_t max_connections = 1024;
  std::chrono::seconds drain{10};
};

using Handler = std::function<Response(const Request&)>;

struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;  // over max_connections
  std::uint64_t connections_open = 0;
  std::uint64_t handshake_failures = 0;
  std::uint64_t bad_requests = 0;  // answered by the server (400, 413, 431)
  std::uint64_t requests = 0;      // handed to the handler
  std::uint64_t event_streams_open = 0;  // streamed responses in progress
};

class HttpsServer {
 public:
  // Loads the certificate and binds; throws vigo::Error naming what is wrong.
  HttpsServer(ServerOptions options, Handler handler);
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  void start();
  void stop();
  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigo::web
