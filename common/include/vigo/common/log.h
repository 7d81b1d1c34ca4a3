// SPDX-License-Identifier: Apache-2.0
// Structured logging with levels, over spdlog. One process-wide sink on
// stderr, configured once by main (configure()); safe to call from any
// thread. A line is a message plus key=value fields:
//   text: 2026-11-21T04:50:00.123Z INFO  host registered host=h1 cpus=8
//   json: {"ts":"...","level":"info","msg":"host registered","host":"h1","cpus":"8"}
#pragma once

#include <concepts>
#include <initializer_list>
#include <string>
#include <string_view>

namespace vigo::log {

enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kText, kJson };

void configure(Level level, Format format);
// "debug", "info", "warn" or "error"; Error naming log.level otherwise.
[[nodiscard]] Level parse_level(std::string_view text);

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  template <typename T>
    requires std::integral<T> || std::floating_point<T>
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
  std::string key;
  std::string value;
};

// Formats one line without the timestamp (exposed for tests).
[[nodiscard]] std::string format_line(Format format, Level level, std::string_view msg,
                                      std::initializer_list<Field> fields);

void write(Level level, std::string_view msg, std::initializer_list<Field> fields);
inline void debug(std::string_view msg, std::initializer_list<Field> fields = {}) { write(Level::kDebug, msg, fields); }
inline void info(std::string_view msg, std::initializer_list<Field> fields = {}) { write(Level::kInfo, msg, fields); }
inline void warn(std::string_view msg, std::initializer_list<Field> fields = {}) { write(Level::kWarn, msg, fields); }
inline void error(std::string_view msg, std::initializer_list<Field> fields = {}) { write(Level::kError, msg, fields); }

}  // namespace vigo::log
