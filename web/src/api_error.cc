// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/api_error.h"

#include <array>

namespace vigo::web {

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kTimeout: return 504;
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

ErrorCode error_code_of_status(int status) {
  switch (status) {
    case 400: case 413: case 431: return ErrorCode::kInvalidArgument;
    case 401: case 403: return ErrorCode::kPermissionDenied;
    case 404: case 405: return ErrorCode::kNotFound;
    case 409: return ErrorCode::kConflict;
    case 429: return ErrorCode::kResourceExhausted;
    case 503: return ErrorCode::kUnavailable;
    case 504: return ErrorCode::kTimeout;
    default: return ErrorCode::kInternal;
  }
}

Response error_response(int status, std::string_view code, std::string_view message, std::string_view field) {
  nlohmann::json e{{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  return Response::json(status, nlohmann::json{{"error", e}});
}

Response error_response(const Error& e) {
  // Internal details stay in the log; the client learns that it failed.
  const bool internal = e.code() == ErrorCode::kInternal;
  return error_response(http_status(e.code()), to_string(e.code()), internal ? "internal error" : e.what(), e.field());
}

}  // namespace vigo::web
