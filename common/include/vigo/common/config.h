// SPDX-License-Identifier: Apache-2.0
// Config: the configuration file (TOML) with environment and flag overrides.
// Keys are dotted ("database.url"). Precedence, highest first: a flag
// (set_override), the environment variable VIGO_<KEY> with dots as
// underscores (VIGO_DATABASE_URL), the file, the caller's fallback.
// A value of the wrong type or out of range is a vigo::Error whose field()
// is the key and whose message names where the value came from.
// Not thread-safe for writes; const reads may be shared.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigo {

class Config {
 public:
  using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

  // Empty path: no file. A named file that is missing is kNotFound; a parse
  // error is kInvalidArgument with the line and column.
  static Config load(const std::filesystem::path& file, EnvLookup env = process_env());
  static Config from_string(std::string_view toml, std::string source_name, EnvLookup env = process_env());
  static EnvLookup process_env();

  void set_override(std::string key, std::string value) { overrides_[std::move(key)] = std::move(value); }

  [[nodiscard]] std::optional<std::string> get_string(std::string_view key) const;
  [[nodiscard]] std::string get_string(std::string_view key, std::string_view fallback) const;
  [[nodiscard]] std::int64_t get_int(std::string_view key, std::int64_t fallback, std::int64_t min,
                                     std::int64_t max) const;
  [[nodiscard]] bool get_bool(std::string_view key, bool fallback) const;
  // The names of the file's tables under `prefix` ("hosts" gives "a" and "b"
  // for [hosts.a] and [hosts.b]), each once. Only the file can add tables.
  [[nodiscard]] std::vector<std::string> tables_under(std::string_view prefix) const;

  [[nodiscard]] static std::string env_name(std::string_view key);

 private:
  struct Value {
    std::string text;
    std::string source;  // "flag", "environment variable X", "file F"
  };
  [[nodiscard]] std::optional<Value> lookup(std::string_view key) const;

  std::map<std::string, std::string, std::less<>> file_values_;  // flattened, scalar values as text
  std::string file_name_;
  std::map<std::string, std::string, std::less<>> overrides_;
  EnvLookup env_;
};

}  // namespace vigo
