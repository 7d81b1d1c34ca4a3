// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the bytes a client sends on one vigod connection (after
// TLS), read the way web/src/https_server.cc reads them, then turned into
// Requests by the server's own vigo::web::to_request (beast_request.h).
//
// The read is beast's http::request_parser<string_body> with the
// ServerOptions default limits (header 16 KiB, body 1 MiB), eager, fed by
// put() from one flat buffer that lives as long as the connection, exactly
// as http::async_read's read_some loop does; end of input is the client
// closing (put_eof / end_of_stream). Pipelined requests are read one after
// another from the same buffer, as the session loop does, until an error,
// a request the server refuses, or one that is not keep-alive.
//
// Every input is read twice: with all its bytes available at once, and as
// a stream that delivers them in small pieces of varying size. Both reads
// must give the same requests (beast is meant not to care where TCP/TLS
// splits the bytes), and if one ends in a read error so must the other;
// which error may differ (beast notices some malformed bytes only when it
// has them all: "...\r\n\r\x16" is bad_line_ending at once, but in pieces
// the parser waits for more, then sees end of input: partial_message).
// One known difference is let through: Boost 1.81's basic_parser, given the
// start line and the fields in one put(), counts header_limit from the end
// of the start line, so a header up to header_limit + start line long is
// accepted at once but header_limit in pieces (corpus: header_limit_split).
// There, the run that stopped at header_limit must have read the same
// requests before it.
//
// Expected: beast's error codes and vigo::Error (kInvalidArgument) from
// parse_target. A bug: any other exception (in the server it escapes the
// session coroutine and takes vigod down), a crash, a sanitizer report, a
// read that makes no progress, or a Request that breaks parse_target's
// documented guarantees (path starts with '/', no NUL, no "." or ".."
// segment, target at most 4096 bytes) or has a header name not lower-case.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/web/api_error.h"
#include "vigo/web/beast_request.h"
#include "vigo/web/http.h"

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;

// ServerOptions defaults (web/include/vigo/web/https_server.h).
constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr std::size_t kBodyLimit = 1024 * 1024;
// More than any input libFuzzer gives (-max_len), fewer than a real
// connection's max_requests_per_connection.
constexpr int kMaxRequests = 64;

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz_http_request: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

void check_request(const http::request<http::string_body>& msg, const vigo::web::Request& r) {
  if (msg.target().size() > 4096) fail("accepted a target longer than 4096 bytes", msg.target());
  if (r.path.empty() || r.path.front() != '/') fail("path does not start with '/'", r.path);
  if (r.path.find('\0') != std::string::npos) fail("NUL in path", r.path);
  std::size_t start = 1;
  while (start <= r.path.size()) {
    const auto end = std::min(r.path.find('/', start), r.path.size());
    const std::string_view seg{r.path.data() + start, end - start};
    if (seg == "." || seg == "..") fail("'.' or '..' segment in path", r.path);
    start = end + 1;
  }
  for (const auto& [k, v] : r.query) {
    if (k.find('\0') != std::string::npos || v.find('\0') != std::string::npos) fail("NUL in query", k);
  }
  for (const auto& [name, value] : r.headers) {
    if (std::any_of(name.begin(), name.end(), [](unsigned char c) { return c >= 'A' && c <= 'Z'; })) {
      fail("header name not lower-case", name);
    }
  }
  // What handlers do with a Request.
  (void)r.header("authorization");
  (void)r.header("content-type");
  (void)r.query_value("owner");
}

// The client's side of the connection: hands out the input in pieces.
class Source {
 public:
  // piece 0: everything at once (up to the buffer's room); otherwise
  // pieces of 1..piece bytes, varying with the input.
  Source(std::string_view data, std::size_t piece) : data_(data), piece_(piece), state_(data.size() * 2654435761u + 1) {}

  // Like async_read_some into `room` bytes: 0 is end of stream.
  std::size_t read_some(char* out, std::size_t room) {
    std::size_t n = std::min(room, data_.size() - pos_);
    if (piece_ != 0) {
      state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
      n = std::min<std::size_t>(n, 1 + (state_ >> 33) % piece_);
    }
    std::copy_n(data_.data() + pos_, n, out);
    pos_ += n;
    return n;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  std::size_t piece_;
  std::uint64_t state_;
};

// http::async_read(stream, buffer, parser) (boost/beast/http/impl/read.hpp:
// read_op around read_some_op), without the stream machinery.
beast::error_code read_message(Source& src, beast::flat_buffer& buffer, http::request_parser<http::string_body>& p) {
  beast::error_code ec;
  p.eager(true);  // what http::async_read does for a whole message
  int stalls = 0;
  while (!p.is_done()) {
    // read_some_op
    bool need_read = buffer.size() == 0;
    for (;;) {
      if (!need_read) {
        const std::size_t used = p.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec != http::error::need_more) {
          // Success without finishing the message: read_op calls read_some
          // again on the same buffer. It must make progress.
          if (!ec && used == 0 && !p.is_done() && ++stalls > 1000) fail("parser makes no progress");
          break;
        }
      }
      need_read = false;
      const std::size_t size = beast::read_size(buffer, 65536);
      if (size == 0) return http::error::buffer_overflow;
      auto mb = buffer.prepare(size);
      const std::size_t n = src.read_some(static_cast<char*>(mb.data()), mb.size());
      buffer.commit(n);
      if (n == 0) {  // the client closed its side
        if (p.got_some()) {
          ec = {};
          p.put_eof(ec);
          if (!ec && !p.is_done()) fail("put_eof succeeded on an unfinished message");
          return ec;
        }
        return http::error::end_of_stream;
      }
    }
    if (ec) return ec;
  }
  return ec;
}

// What the server did on one connection: a line per request handed to the
// handler or refused, and how reading ended.
struct Outcome {
  std::vector<std::string> requests;
  beast::error_code read_error;  // none when no read failed
};

// One connection's session loop (HttpsServer::Impl::session).
Outcome run_connection(std::string_view data, std::size_t piece) {
  Source src{data, piece};
  beast::flat_buffer buffer{kHeaderLimit + kBodyLimit + 4096};
  Outcome out;
  for (int n = 0; n < kMaxRequests; ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(kHeaderLimit));
    parser.body_limit(kBodyLimit);
    const beast::error_code ec = read_message(src, buffer, parser);
    if (ec) {
      // The server answers (400/413/431) or just closes; the connection ends.
      out.read_error = ec;
      break;
    }
    const auto& msg = parser.get();
    const bool keep_alive = msg.keep_alive();
    std::optional<vigo::web::Request> request;
    try {
      request = vigo::web::to_request(msg, "192.0.2.1:4711");
    } catch (const vigo::Error& e) {
      if (e.code() != vigo::ErrorCode::kInvalidArgument || e.field() != "target") fail("unexpected Error", e.what());
      const auto response = vigo::web::error_response(e);
      if (response.status != 400) fail("bad target not answered 400", e.what());
      out.requests.push_back("refused " + std::string{e.what()} + "\n");
      break;
    }
    check_request(msg, *request);
    std::string log = request->method + " " + request->path + " v" + std::to_string(msg.version()) + "\n";
    for (const auto& [k, v] : request->query) log += "  ?" + k + "=" + v + "\n";
    for (const auto& [k, v] : request->headers) log += "  " + k + ": " + v + "\n";
    log += "  body " + std::to_string(request->body.size()) + ": " + request->body + "\n";
    out.requests.push_back(std::move(log));
    if (!keep_alive) break;
  }
  return out;
}

// `a` stopped at header_limit after reading a prefix of what `b` read.
bool header_limit_prefix(const Outcome& a, const Outcome& b) {
  return a.read_error == http::error::header_limit && a.requests.size() <= b.requests.size() &&
         std::equal(a.requests.begin(), a.requests.end(), b.requests.begin());
}

bool same(const Outcome& a, const Outcome& b) {
  if (a.requests == b.requests && !a.read_error == !b.read_error) return true;
  return header_limit_prefix(a, b) || header_limit_prefix(b, a);
}

std::string show(const Outcome& o) {
  std::string s;
  for (const auto& r : o.requests) s += r;
  return s + "(read error: " + (o.read_error ? o.read_error.message() : "none") + ")\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input{reinterpret_cast<const char*>(data), size};
  const Outcome whole = run_connection(input, 0);
  const Outcome pieces = run_connection(input, 17);
  if (!same(whole, pieces)) {
    std::fprintf(stderr, "--- all at once:\n%s--- in pieces:\n%s", show(whole).c_str(), show(pieces).c_str());
    fail("the outcome depends on how the bytes are split");
  }
  return 0;
}
