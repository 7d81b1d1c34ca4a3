// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/log.h"

#include <atomic>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "vigo/common/error.h"

namespace vigo::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};    // configured once by main
std::atomic<Format> g_format{Format::kText};

std::string_view name_of(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto l = std::make_shared<spdlog::logger>("vigo", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%v");
    l->set_level(spdlog::level::trace);
    return l;
  }();
  return instance;
}

}  // namespace

void configure(Level level, Format format) {
  g_level = level;
  g_format = format;
}

Level parse_level(std::string_view text) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == name_of(l)) return l;
  }
  throw invalid_argument("log.level", "'" + std::string{text} + "' is not one of debug, info, warn, error");
}

std::string format_line(Format format, Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (format == Format::kJson) {
    nlohmann::ordered_json j;
    j["level"] = name_of(level);
    j["msg"] = msg;
    for (const Field& f : fields) {
      // A field never overwrites the line's own keys.
      const bool reserved = f.key == "ts" || f.key == "level" || f.key == "msg";
      j[reserved ? "field." + f.key : f.key] = f.value;
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line;
  std::string lvl{name_of(level)};
  for (char& c : lvl) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  lvl.resize(5, ' ');
  line += lvl;
  line += ' ';
  line += msg;
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    if (needs_quotes(f.value)) {
      line += nlohmann::json(f.value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      line += f.value;
    }
  }
  return line;
}

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (level < g_level.load()) return;
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  const Format format = g_format.load();
  std::string line = format_line(format, level, msg, fields);
  if (format == Format::kJson) {
    line = std::string{"{\"ts\":\""} + ts + "\"," + line.substr(1);
  } else {
    line = std::string{ts} + " " + line;
  }
  logger()->info(line);
}

}  // namespace vigo::log
