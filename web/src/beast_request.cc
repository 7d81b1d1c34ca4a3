// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/beast_request.h"

#include <algorithm>
#include <cctype>

namespace vigo::web {

Request to_request(const boost::beast::http::request<boost::beast::http::string_body>& message, std::string peer) {
  Request r;
  r.method = std::string{message.method_string()};
  Target t = parse_target(message.target());
  r.path = std::move(t.path);
  r.query = std::move(t.query);
  for (const auto& field : message) {
    std::string name{field.name_string()};
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    r.headers[std::move(name)] = std::string{field.value()};
  }
  r.body = message.body();
  r.peer = std::move(peer);
  return r;
}

}  // namespace vigo::web
