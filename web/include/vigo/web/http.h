// SPDX-License-Identifier: Apache-2.0
// The HTTP types vigod's handlers see: a request already read, checked and
// split (method, path, query, headers, body), and a response to send. They
// know nothing about sockets or TLS, so handlers and routes are tested by
// calling them directly. Plain values; no synchronization.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace vigo::web {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target's path, percent-decoded, always starting with '/'
  std::map<std::string, std::string, std::less<>> query;    // decoded; a repeated key keeps the last
  std::map<std::string, std::string, std::less<>> headers;  // names lower-case
  std::string body;
  std::string peer;  // "address:port"

  [[nodiscard]] std::optional<std::string_view> header(std::string_view lower_name) const;
  [[nodiscard]] std::optional<std::string_view> query_value(std::string_view key) const;
};

// A body produced over time (an event stream). The server calls poll() on
// an I/O thread, at once and then every poll_interval(): it appends what is
// new to `out` (possibly nothing) and must not block. It returns false when
// the stream is over; the server then ends the response. The stream ends
// too when the client goes (a write fails) or the server stops.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual bool poll(std::string& out) = 0;
  [[nodiscard]] virtual std::chrono::milliseconds poll_interval() const { return std::chrono::milliseconds{250}; }
};

// A response. When `stream` is set, the server sends the status and
// headers, then the stream's output as a chunked body (`body` is ignored),
// and closes the connection when it ends.
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<ResponseStream> stream;
  // The answer to a HEAD: no body is sent, but Content-Length is the GET's.
  std::optional<std::size_t> head_length;

  static Response json(int status, const nlohmann::json& body);
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
};

// Splits a request target ("/v1/x%20y?a=1&b") into a decoded path and query.
// Throws kInvalidArgument (field "target") for a target that is not an
// absolute path, has a bad percent escape, a NUL, a "." or ".." segment, an
// escaped '/' in a segment, or is longer than 4096 bytes.
struct Target {
  std::string path;
  std::map<std::string, std::string, std::less<>> query;
};
[[nodiscard]] Target parse_target(std::string_view target);

}  // namespace vigo::web
