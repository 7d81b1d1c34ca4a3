// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/error.h"

#include <cerrno>
#include <cstring>

namespace vigo {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kResourceExhausted: return "resource_exhausted";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

std::optional<ErrorCode> parse_error_code(std::string_view name) {
  for (ErrorCode c : {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kAlreadyExists,
                      ErrorCode::kConflict, ErrorCode::kResourceExhausted, ErrorCode::kPermissionDenied,
                      ErrorCode::kUnavailable, ErrorCode::kTimeout, ErrorCode::kInternal}) {
    if (to_string(c) == name) return c;
  }
  return std::nullopt;
}

Error invalid_argument(std::string field, std::string_view message) {
  std::string text = "invalid " + field + ": " + std::string{message};
  return Error{ErrorCode::kInvalidArgument, std::move(text), std::move(field)};
}

void throw_errno(std::string_view what) { throw_errno(what, errno); }

void throw_errno(std::string_view what, int errnum) {
  ErrorCode code = ErrorCode::kInternal;
  switch (errnum) {
    case ENOENT: code = ErrorCode::kNotFound; break;
    case EEXIST: code = ErrorCode::kAlreadyExists; break;
    case EACCES:
    case EPERM: code = ErrorCode::kPermissionDenied; break;
    case ETIMEDOUT: code = ErrorCode::kTimeout; break;
    case ENOSPC:
    case EMFILE:
    case ENFILE:
    case ENOMEM: code = ErrorCode::kResourceExhausted; break;
    case EINVAL: code = ErrorCode::kInvalidArgument; break;
    default: break;
  }
  char buf[256];
  const char* text = strerror_r(errnum, buf, sizeof buf);
  throw Error{code, std::string{what} + ": " + text};
}

}  // namespace vigo
