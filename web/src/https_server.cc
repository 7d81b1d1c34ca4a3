// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/https_server.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/web/api_error.h"
#include "vigo/web/beast_request.h"

namespace vigo::web {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using net::awaitable;
using net::use_awaitable;
constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

using Stream = beast::ssl_stream<beast::tcp_stream>;

std::string error_body(std::string_view code, std::string_view message) {
  return nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump(
             -1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

// The server's own answer to a request it could not read.
struct ReadFailure {
  http::status status;
  std::string_view code;
  std::string message;
};

std::optional<ReadFailure> classify(const beast::error_code& ec) {
  if (ec == http::error::body_limit) {
    return ReadFailure{http::status::payload_too_large, "payload_too_large", "the request body is too large"};
  }
  if (ec == http::error::header_limit) {
    return ReadFailure{http::status::request_header_fields_too_large, "header_too_large",
                       "the request header is too large"};
  }
  // Beast's parse errors; partial_message is a client that went mid-request.
  if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
      ec != http::error::partial_message && ec != http::error::end_of_stream) {
    return ReadFailure{http::status::bad_request, "bad_request", "malformed HTTP request: " + ec.message()};
  }
  return std::nullopt;  // the connection went (timeout, reset, TLS): nothing to answer
}

}  // namespace

struct HttpsServer::Impl {
  // Order matters: the io_context goes first (its destructor destroys the
  // suspended sessions, which use the counters, the TLS context and the
  // handler pool), the acceptor with it.
  ServerOptions options;
  Handler handler;
  std::atomic<std::uint64_t> accepted{0}, refused{0}, open{0}, handshake_failures{0}, bad_requests{0},
      requests{0}, busy{0}, streams{0};
  ssl::context tls{ssl::context::tls_server};
  net::thread_pool handlers;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::uint16_t bound_port = 0;
  std::vector<std::thread> io_threads;
  std::once_flag stopped;
  bool started = false;

  Impl(ServerOptions o, Handler h)
      : options(std::move(o)), handler(std::move(h)), handlers(static_cast<std::size_t>(std::max(1, options.handler_threads))) {
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    beast::error_code ec;
    tls.use_certificate_chain_file(options.cert_file.string(), ec);
    if (ec) throw invalid_argument("api.cert", options.cert_file.string() + ": " + ec.message());
    tls.use_private_key_file(options.key_file.string(), ssl::context::pem, ec);
    if (ec) throw invalid_argument("api.key", options.key_file.string() + ": " + ec.message());
    if (SSL_CTX_check_private_key(tls.native_handle()) != 1) {
      throw invalid_argument("api.key", options.key_file.string() + " does not belong to " + options.cert_file.string());
    }
    const auto address = net::ip::make_address(options.address, ec);
    if (ec) throw invalid_argument("api.listen", "'" + options.address + "' is not an IP address");
    const tcp::endpoint endpoint{address, options.port};
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint, ec);
    if (ec) {
      throw Error{ErrorCode::kUnavailable,
                  "cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " + ec.message(),
                  "api.listen"};
    }
    acceptor.listen(net::socket_base::max_listen_connections);
    bound_port = acceptor.local_endpoint().port();
  }

  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
      if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;  // e.g. EMFILE: try the next one
      ++accepted;
      if (open.load() >= options.max_connections) {
        ++refused;
        beast::error_code ignored;
        socket.close(ignored);
        continue;
      }
      socket.set_option(tcp::no_delay(true));
      net::co_spawn(ioc, session(std::move(socket)), net::detached);
    }
  }

  // Runs the handler on the handler pool; never throws.
  Response call(const Request& request) {
    ++requests;
    ++busy;
    Response out;
    try {
      out = handler(request);
    } catch (const std::exception& e) {
      log::error("request handler failed", {{"method", request.method}, {"path", request.path}, {"error", e.what()}});
      out = Response::text(500, error_body("internal", "internal error"), "application/json");
    }
    --busy;
    return out;
  }

  // The headers every answer carries, and the handler's own.
  template <class Body>
  static void set_headers(http::response<Body>& res, const Response& r) {
    res.set(http::field::server, "vigod");
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : r.headers) res.set(name, value);
  }

  static http::response<http::string_body> to_message(const Response& r, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    set_headers(res, r);
    res.body() = r.body;
    res.keep_alive(keep_alive);
    res.prepare_payload();
    if (r.head_length) res.content_length(*r.head_length);  // a HEAD: the GET's length, no body
    return res;
  }

  // Sends a streamed response: the header, then each piece the stream
  // produces as one chunk, until the stream ends, a write fails (the client
  // went) or takes longer than read_timeout.
  awaitable<void> write_stream(Stream& stream, const Response& r, unsigned version) {
    ++streams;
    struct Done {
      std::atomic<std::uint64_t>& streams;
      ~Done() { --streams; }
    } done{streams};
    auto& lowest = beast::get_lowest_layer(stream);
    http::response<http::empty_body> res{static_cast<http::status>(r.status), version};
    set_headers(res, r);
    res.chunked(true);
    res.keep_alive(false);
    http::response_serializer<http::empty_body> serializer{res};
    lowest.expires_after(options.read_timeout);
    if (auto [ec, n] = co_await http::async_write_header(stream, serializer, kNoThrow); ec) co_return;
    lowest.expires_never();
    net::steady_timer timer{co_await net::this_coro::executor};
    std::string piece;
    for (;;) {
      piece.clear();
      const bool more = r.stream->poll(piece);
      lowest.expires_after(options.read_timeout);
      if (!piece.empty()) {
        if (auto [ec, n] = co_await net::async_write(stream, http::make_chunk(net::buffer(piece)), kNoThrow); ec) {
          co_return;
        }
      }
      if (!more) {
        co_await net::async_write(stream, http::make_chunk_last(), kNoThrow);
        co_return;
      }
      lowest.expires_never();
      timer.expires_after(r.stream->poll_interval());
      if (auto [ec] = co_await timer.async_wait(kNoThrow); ec) co_return;
    }
  }

  awaitable<void> session(tcp::socket socket) {
    ++open;
    struct Closer {
      std::atomic<std::uint64_t>& open;
      ~Closer() { --open; }
    } closer{open};
    beast::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    const std::string peer = ec ? std::string{"?"} : remote.address().to_string() + ":" + std::to_string(remote.port());
    Stream stream{std::move(socket), tls};
    auto& lowest = beast::get_lowest_layer(stream);

    lowest.expires_after(options.handshake_timeout);
    if (auto [hs] = co_await stream.async_handshake(ssl::stream_base::server, kNoThrow); hs) {
      ++handshake_failures;
      co_return;
    }
    beast::flat_buffer buffer{options.header_limit + options.body_limit + 4096};
    for (std::uint32_t n = 0; n < options.max_requests_per_connection; ++n) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      parser.body_limit(options.body_limit);
      lowest.expires_after(n == 0 ? options.read_timeout : options.idle_timeout);
      auto [read_ec, bytes] = co_await http::async_read(stream, buffer, parser, kNoThrow);
      (void)bytes;
      if (read_ec) {
        if (read_ec == http::error::end_of_stream) break;
        const auto failure = classify(read_ec);
        if (!failure) co_return;  // timed out or gone: just close
        ++bad_requests;
        Response r = Response::text(static_cast<int>(failure->status), error_body(failure->code, failure->message),
                                    "application/json");
        auto res = to_message(r, 11, false);
        lowest.expires_after(options.read_timeout);
        co_await http::async_write(stream, res, kNoThrow);
        break;
      }
      const auto& msg = parser.get();
      const bool last = n + 1 >= options.max_requests_per_connection;
      const bool keep_alive = msg.keep_alive() && !last;
      Response response;
      std::optional<Request> request;
      try {
        request = to_request(msg, peer);
      } catch (const Error& e) {
        ++bad_requests;
        response = error_response(e);
      }
      if (request) {
        response = co_await net::co_spawn(
            handlers, [this, &request]() -> awaitable<Response> { co_return call(*request); }, use_awaitable);
      }
      if (response.stream) {
        co_await write_stream(stream, response, msg.version());
        co_return;  // a stream ends its connection
      }
      auto res = to_message(response, msg.version(), keep_alive && request.has_value());
      lowest.expires_after(options.read_timeout);
      if (auto [write_ec, written] = co_await http::async_write(stream, res, kNoThrow); write_ec) co_return;
      if (!res.keep_alive()) break;
    }
    lowest.expires_after(std::chrono::seconds{5});
    co_await stream.async_shutdown(kNoThrow);
  }
};

HttpsServer::HttpsServer(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpsServer::~HttpsServer() { stop(); }

void HttpsServer::start() {
  if (impl_->started) return;
  impl_->started = true;
  net::co_spawn(impl_->ioc, impl_->accept_loop(), net::detached);
  for (int i = 0; i < std::max(1, impl_->options.io_threads); ++i) {
    impl_->io_threads.emplace_back([this] { impl_->ioc.run(); });
  }
}

void HttpsServer::stop() {
  std::call_once(impl_->stopped, [this] {
    auto& i = *impl_;
    net::post(i.ioc, [&i] {
      beast::error_code ignored;
      i.acceptor.close(ignored);
    });
    // Requests in progress finish (their responses are written) first.
    const auto deadline = std::chrono::steady_clock::now() + i.options.drain;
    while (i.busy.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    if (i.busy.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds{50});  // their writes
    i.ioc.stop();
    for (auto& t : i.io_threads) t.join();
    i.handlers.join();
  });
}

std::uint16_t HttpsServer::port() const { return impl_->bound_port; }

ServerStats HttpsServer::stats() const {
  const auto& i = *impl_;
  return ServerStats{i.accepted.load(), i.refused.load(), i.open.load(), i.handshake_failures.load(),
                     i.bad_requests.load(), i.requests.load(), i.streams.load()};
}

}  // namespace vigo::web
