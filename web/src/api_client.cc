// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/api_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <poll.h>

#include <optional>

#include "vigo/common/error.h"
#include "vigo/web/api_error.h"

namespace vigo::web {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

struct Url {
  std::string host, port;
};

Url parse_url(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  if (url.rfind(kScheme, 0) != 0) throw invalid_argument("api.url", "'" + url + "' must start with https://");
  std::string rest = url.substr(kScheme.size());
  if (const auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  Url u;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    const auto close = rest.find(']');
    if (close == std::string::npos) throw invalid_argument("api.url", "'" + url + "' has an unclosed '['");
    u.host = rest.substr(1, close - 1);
    u.port = close + 1 < rest.size() && rest[close + 1] == ':' ? rest.substr(close + 2) : "443";
  } else {
    const auto colon = rest.rfind(':');
    u.host = rest.substr(0, colon);
    u.port = colon == std::string::npos ? "443" : rest.substr(colon + 1);
  }
  if (u.host.empty()) throw invalid_argument("api.url", "'" + url + "' names no host");
  if (u.port.empty() || u.port.size() > 5 || u.port.find_first_not_of("0123456789") != std::string::npos) {
    throw invalid_argument("api.url", "'" + url + "' has a bad port");
  }
  return u;
}

}  // namespace

struct ApiClient::Impl {
  ApiClientOptions options;
  Url url;
  net::io_context ioc;
  ssl::context tls{ssl::context::tls_client};
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;

  explicit Impl(ApiClientOptions o) : options(std::move(o)), url(parse_url(options.url)) {
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls.set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    if (options.ca_file.empty()) {
      tls.set_default_verify_paths(ec);
    } else {
      tls.load_verify_file(options.ca_file.string(), ec);
    }
    if (ec) throw invalid_argument("api.ca", options.ca_file.string() + ": " + ec.message());
  }

  void connect() {
    stream.reset();
    buffer.clear();
    stream.emplace(ioc, tls);
    SSL* ssl = stream->native_handle();
    beast::error_code ec;
    (void)net::ip::make_address(url.host, ec);  // an IP address, or a name
    if (!ec) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str());
    } else {
      SSL_set1_host(ssl, url.host.c_str());
      SSL_set_tlsext_host_name(ssl, url.host.c_str());
    }
    tcp::resolver resolver{ioc};
    const auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) throw Error{ErrorCode::kUnavailable, "cannot resolve " + url.host + ": " + ec.message(), "api.url"};
    auto& lowest = beast::get_lowest_layer(*stream);
    lowest.expires_after(options.timeout);
    lowest.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec == beast::error::timeout) {
      stream.reset();
      throw Error{ErrorCode::kTimeout, "no connection to " + options.url + " in time", "api.url"};
    }
    if (ec) {
      stream.reset();
      throw Error{ErrorCode::kUnavailable, "cannot connect to " + options.url + ": " + ec.message(), "api.url"};
    }
    stream->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    run();
    if (ec) {
      stream.reset();
      throw Error{ErrorCode::kUnavailable, "TLS with " + options.url + " failed: " + ec.message(), "api.url"};
    }
  }

  // True when the kept connection is known to be closed by the server: its
  // socket reads as ready (EOF or a close alert) while no request is out.
  bool kept_connection_is_stale() {
    pollfd p{beast::get_lowest_layer(*stream).socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }

  void run() {
    ioc.restart();
    ioc.run();
  }

  // A request with the headers every call sends (Host with the port, the
  // bearer token when there is one).
  http::request<http::string_body> make_request(http::verb method, std::string_view target,
                                                std::string_view accept) const {
    http::request<http::string_body> req{method, target, 11};
    const bool ipv6 = url.host.find(':') != std::string::npos;
    req.set(http::field::host, (ipv6 ? "[" + url.host + "]" : url.host) + ":" + url.port);
    req.set(http::field::user_agent, "vigo-cli");
    req.set(http::field::accept, accept);
    if (!options.token.empty()) req.set(http::field::authorization, "Bearer " + options.token);
    return req;
  }

  enum class Outcome { kReplied, kNotSent, kNoReply };

  // One exchange on the open connection. kNotSent: the request could not be
  // written; kNoReply: it was written but the connection closed before a
  // reply came (the server may or may not have acted on it).
  Outcome exchange(const http::request<http::string_body>& req, ApiReply& out) {
    beast::error_code ec;
    auto& lowest = beast::get_lowest_layer(*stream);
    lowest.expires_after(options.timeout);
    http::async_write(*stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec == beast::error::timeout) {
      stream.reset();
      throw Error{ErrorCode::kTimeout, "could not send to " + options.url + " in time"};
    }
    if (ec) {
      stream.reset();
      return Outcome::kNotSent;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.skip(req.method() == http::verb::head);  // its Content-Length is the GET's; no body follows
    http::async_read(*stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec == beast::error::timeout) {
      stream.reset();
      throw Error{ErrorCode::kTimeout, "no reply from " + options.url + " in time"};
    }
    if (ec) {
      stream.reset();
      return Outcome::kNoReply;
    }
    const auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string{res[http::field::content_type]};
    out.headers.clear();
    for (const auto& h : res) {
      std::string name{h.name_string()};
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string{h.value()};
    }
    out.body = res.body();
    if (!res.keep_alive()) stream.reset();
    return Outcome::kReplied;
  }
};

ApiClient::ApiClient(ApiClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
ApiClient::~ApiClient() = default;

ApiReply ApiClient::request(std::string_view method, std::string_view target, std::string_view body,
                            std::string_view content_type) {
  auto req = impl_->make_request(http::string_to_verb(method), target, "application/json");
  if (!body.empty()) {
    req.set(http::field::content_type, content_type);
    req.body() = std::string{body};
  }
  req.keep_alive(true);
  req.prepare_payload();
  // A request is sent twice only when that cannot do a thing twice: when it
  // was never written, or when it is idempotent and went out on a kept
  // connection that the server had closed meanwhile. A POST never goes out
  // on a kept connection that looks closed.
  const bool idempotent = method == "GET" || method == "HEAD" || method == "DELETE" || method == "PUT";
  if (impl_->stream && !idempotent && impl_->kept_connection_is_stale()) impl_->stream.reset();
  const bool fresh = !impl_->stream;
  if (fresh) impl_->connect();
  ApiReply reply;
  const auto outcome = impl_->exchange(req, reply);
  if (outcome == Impl::Outcome::kReplied) return reply;
  const auto broke = [&] {
    return Error{ErrorCode::kUnavailable, "the connection to " + impl_->options.url + " closed before a reply" +
                                              (idempotent ? "" : " (the request may have been carried out)")};
  };
  if (fresh || (outcome == Impl::Outcome::kNoReply && !idempotent)) throw broke();
  impl_->connect();
  if (impl_->exchange(req, reply) != Impl::Outcome::kReplied) throw broke();
  return reply;
}

namespace {

// Splits text/event-stream bytes into events (the WHATWG rules that matter
// here: "field: value" lines, a blank line ends an event, ':' a comment).
class EventParser {
 public:
  // false when the callback asked to stop.
  bool feed(std::string_view bytes, const std::function<bool(const ApiClient::ServerEvent&)>& on_event) {
    pending_.append(bytes);
    std::size_t start = 0;
    for (auto nl = pending_.find('\n', start); nl != std::string::npos; nl = pending_.find('\n', start)) {
      std::string_view line{pending_.data() + start, nl - start};
      start = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (!event_.data.empty() || !event_.event.empty()) {
          if (!event_.data.empty() && event_.data.back() == '\n') event_.data.pop_back();
          const bool go_on = on_event(event_);
          event_ = {};
          if (!go_on) return false;
        }
        continue;
      }
      if (line.front() == ':') continue;
      const auto colon = line.find(':');
      const std::string_view name = line.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "data") {
        event_.data.append(value);
        event_.data.push_back('\n');
      } else if (name == "event") {
        event_.event = value;
      } else if (name == "id") {
        event_.id = value;
      }
    }
    pending_.erase(0, start);
    if (pending_.size() > 1024 * 1024) throw Error{ErrorCode::kInternal, "an event longer than 1 MiB"};
    return true;
  }

 private:
  std::string pending_;
  ApiClient::ServerEvent event_;
};

}  // namespace

void ApiClient::events(std::string_view target, const std::function<bool(const ServerEvent&)>& on_event) {
  auto req = impl_->make_request(http::verb::get, target, "text/event-stream");
  req.keep_alive(false);
  req.prepare_payload();
  impl_->connect();  // a connection of its own: the stream ends it
  struct Drop {
    Impl& impl;
    ~Drop() { impl.stream.reset(); }
  } drop{*impl_};
  auto& s = *impl_->stream;
  auto& lowest = beast::get_lowest_layer(s);
  beast::error_code ec;
  const auto step = [&](auto&& start) {
    lowest.expires_after(impl_->options.timeout);
    start();
    impl_->run();
    if (ec == beast::error::timeout) throw Error{ErrorCode::kTimeout, "no event from " + impl_->options.url + " in time"};
  };
  step([&] { http::async_write(s, req, [&](beast::error_code e, std::size_t) { ec = e; }); });
  if (ec) throw Error{ErrorCode::kUnavailable, "cannot send to " + impl_->options.url + ": " + ec.message()};
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  step([&] { http::async_read_header(s, impl_->buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; }); });
  if (ec) throw Error{ErrorCode::kUnavailable, "no reply from " + impl_->options.url + ": " + ec.message()};
  const int status = static_cast<int>(parser.get().result_int());
  if (status < 200 || status >= 300 || !parser.chunked()) {
    step([&] { http::async_read(s, impl_->buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; }); });
    ApiReply reply;
    reply.status = status;
    reply.body = parser.get().body();
    checked(reply);
    throw Error{ErrorCode::kInternal, "the server did not answer with an event stream"};
  }
  EventParser events;
  bool go_on = true;
  auto on_chunk = [&](std::uint64_t, std::string_view body, beast::error_code&) -> std::size_t {
    if (go_on) go_on = events.feed(body, on_event);
    return body.size();
  };
  parser.on_chunk_body(on_chunk);  // kept by reference: lives until the end
  while (go_on && !parser.is_done()) {
    step([&] { http::async_read_some(s, impl_->buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; }); });
    if (ec && go_on) throw Error{ErrorCode::kUnavailable, "the event stream broke: " + ec.message()};
  }
}

nlohmann::json ApiClient::checked(const ApiReply& reply) {
  nlohmann::json body = nlohmann::json::parse(reply.body, nullptr, false);
  if (reply.status >= 200 && reply.status < 300) {
    if (body.is_discarded()) throw Error{ErrorCode::kInternal, "the server's reply is not JSON"};
    return body;
  }
  if (!body.is_discarded() && body.contains("error") && body["error"].is_object()) {
    const auto& e = body["error"];
    const std::string code = e.value("code", "");
    const std::string message = e.value("message", "HTTP " + std::to_string(reply.status));
    const std::string field = e.value("field", "");
    throw Error{parse_error_code(code).value_or(error_code_of_status(reply.status)), message, field};
  }
  throw Error{error_code_of_status(reply.status), "HTTP " + std::to_string(reply.status)};
}

nlohmann::json ApiClient::get(std::string_view target) { return checked(request("GET", target)); }
nlohmann::json ApiClient::post(std::string_view target, const nlohmann::json& body) {
  return checked(request("POST", target, body.dump()));
}
nlohmann::json ApiClient::del(std::string_view target) { return checked(request("DELETE", target)); }
nlohmann::json ApiClient::put_bytes(std::string_view target, std::string_view bytes) {
  return checked(request("PUT", target, bytes, "application/octet-stream"));
}
void ApiClient::set_timeout(std::chrono::seconds timeout) { impl_->options.timeout = timeout; }

}  // namespace vigo::web
