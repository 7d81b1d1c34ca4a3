// SPDX-License-Identifier: Apache-2.0
// The one error type at module boundaries: a code that callers branch on, a
// message for people, and, for bad input, the name of the offending field.
// Each layer translates its own failures into it in exactly one place
// (errno: throw_errno; libpqxx: gis/pg_support.h).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vigo {

enum class ErrorCode {
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kConflict,
  kResourceExhausted,
  kPermissionDenied,
  kUnavailable,
  kTimeout,
  kInternal,
};

[[nodiscard]] std::string_view to_string(ErrorCode code);
// The code whose to_string() is `name` (exactly); none for any other text.
[[nodiscard]] std::optional<ErrorCode> parse_error_code(std::string_view name);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message, std::string field = {})
      : std::runtime_error(std::move(message)), code_(code), field_(std::move(field)) {}

  [[nodiscard]] ErrorCode code() const noexcept { return code_; }
  [[nodiscard]] const std::string& field() const noexcept { return field_; }

 private:
  ErrorCode code_;
  std::string field_;
};

// kInvalidArgument with the message "invalid <field>: <message>".
[[nodiscard]] Error invalid_argument(std::string field, std::string_view message);

// Throws an Error for the current errno: "<what>: <strerror>".
[[noreturn]] void throw_errno(std::string_view what);
[[noreturn]] void throw_errno(std::string_view what, int errnum);

}  // namespace vigo
