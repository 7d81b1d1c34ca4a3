// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/http.h"

#include "vigo/common/error.h"

namespace vigo::web {
namespace {

constexpr std::size_t kMaxTarget = 4096;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; '+' is a space only in a query.
std::string decode(std::string_view in, bool query) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) {
        throw invalid_argument("target", "a '%' escape is cut short");
      }
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) throw invalid_argument("target", "a '%' escape is not two hex digits");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (query && c == '+') {
      c = ' ';
    }
    if (c == '\0') throw invalid_argument("target", "contains a NUL byte");
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::optional<std::string_view> Request::header(std::string_view lower_name) const {
  const auto it = headers.find(lower_name);
  if (it == headers.end()) return std::nullopt;
  return std::string_view{it->second};
}

std::optional<std::string_view> Request::query_value(std::string_view key) const {
  const auto it = query.find(key);
  if (it == query.end()) return std::nullopt;
  return std::string_view{it->second};
}

Response Response::json(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  // Text from outside (a console tail, a path in an error) may hold invalid
  // UTF-8: replace it rather than throw.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.body.push_back('\n');
  return r;
}

Response Response::text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

Target parse_target(std::string_view target) {
  if (target.size() > kMaxTarget) throw invalid_argument("target", "longer than 4096 bytes");
  if (target.empty() || target.front() != '/') throw invalid_argument("target", "not an absolute path");
  const auto q = target.find('?');
  Target t;
  const std::string_view raw_path = target.substr(0, q);
  // Each segment is decoded on its own and checked after decoding: "%2e%2e"
  // is refused as "..", and an escaped '/' ("%2F") is refused, never taken
  // for a segment boundary (the router would see other segments).
  std::size_t start = 1;
  while (start <= raw_path.size()) {
    const auto end = std::min(raw_path.find('/', start), raw_path.size());
    const std::string seg = decode(raw_path.substr(start, end - start), false);
    if (seg == "." || seg == "..") throw invalid_argument("target", "has a '.' or '..' segment");
    if (seg.find('/') != std::string::npos) throw invalid_argument("target", "has an escaped '/' (%2F) in a segment");
    t.path += '/';
    t.path += seg;
    start = end + 1;
  }
  if (q != std::string_view::npos) {
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
      const auto amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      if (!pair.empty()) {
        const auto eq = pair.find('=');
        std::string key = decode(pair.substr(0, eq), true);
        std::string value = eq == std::string_view::npos ? std::string{} : decode(pair.substr(eq + 1), true);
        t.query[std::move(key)] = std::move(value);
      }
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  return t;
}

}  // namespace vigo::web
