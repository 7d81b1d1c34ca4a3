// SPDX-License-Identifier: Apache-2.0
// The one place where vigo's errors become HTTP statuses, and back (for the
// client). Every error body is
//   {"error": {"code": "<vigo::to_string(code)>", "message": "...", "field": "..."}}
// ("field" only when the error names one). Stateless.
#pragma once

#include <string_view>

#include "vigo/common/error.h"
#include "vigo/web/http.h"

namespace vigo::web {

// kInvalidArgument 400, kPermissionDenied 403, kNotFound 404,
// kAlreadyExists and kConflict 409, kResourceExhausted 503 (no room now:
// retry later), kUnavailable 503, kTimeout 504, kInternal 500.
[[nodiscard]] int http_status(ErrorCode code);
// The reverse, for the client: 401/403 kPermissionDenied, 429 kResourceExhausted, ...
[[nodiscard]] ErrorCode error_code_of_status(int status);
// Code names parse back with vigo::parse_error_code (vigo/common/error.h).

[[nodiscard]] Response error_response(const Error& e);
// For statuses that have no ErrorCode (401, 405, 429).
[[nodiscard]] Response error_response(int status, std::string_view code, std::string_view message,
                                      std::string_view field = {});

}  // namespace vigo::web
