// SPDX-License-Identifier: Apache-2.0
// The one place a Beast request message becomes vigod's Request (http.h):
// the target parsed and checked (parse_target: kInvalidArgument naming
// "target"), header names lower-cased, the body and the peer copied. Used
// by HttpsServer and by the fuzz target fuzz/fuzz_http_request.cc.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>

#include "vigo/web/http.h"

namespace vigo::web {

[[nodiscard]] Request to_request(const boost::beast::http::request<boost::beast::http::string_body>& message,
                                 std::string peer);

}  // namespace vigo::web
