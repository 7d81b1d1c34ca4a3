// SPDX-License-Identifier: Apache-2.0
// JsonFields: strict reading of a JSON request body. Each accessor checks
// its field's type (and range) and marks it read; finish() refuses any field
// that nobody read, so a typo ("persistant") is an error, not a silent
// default. Errors are kInvalidArgument whose field() is the full dotted
// name ("placement.labels.zone") and whose message says what was expected.
// An empty body is an empty object. Not thread-safe (one per request).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace vigo::web {

class JsonFields {
 public:
  // Throws kInvalidArgument (field "body") unless the text is a JSON object
  // (nesting at most 32 deep).
  static JsonFields parse(std::string_view body);
  JsonFields(nlohmann::json object, std::string prefix);

  [[nodiscard]] std::optional<std::string> string(std::string_view key);
  [[nodiscard]] std::string required_string(std::string_view key);
  [[nodiscard]] std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
  [[nodiscard]] std::optional<bool> boolean(std::string_view key);
  [[nodiscard]] std::optional<JsonFields> object(std::string_view key);
  // An object whose values are all strings.
  [[nodiscard]] std::optional<std::map<std::string, std::string>> string_map(std::string_view key);
  // Throws for the first field not read.
  void finish() const;

 private:
  [[nodiscard]] const nlohmann::json* take(std::string_view key);
  [[nodiscard]] std::string name(std::string_view key) const;
  nlohmann::json object_;
  std::string prefix_;  // "" or "placement."
  std::set<std::string, std::less<>> read_;
};

}  // namespace vigo::web
