// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "vigo/common/error.h"

namespace vigo {
namespace {

void flatten(const toml::table& table, const std::string& prefix, std::map<std::string, std::string, std::less<>>& out) {
  for (const auto& [k, node] : table) {
    std::string key = prefix.empty() ? std::string{k.str()} : prefix + "." + std::string{k.str()};
    if (const auto* sub = node.as_table()) {
      flatten(*sub, key, out);
    } else if (const auto* s = node.as_string()) {
      out[key] = s->get();
    } else if (const auto* i = node.as_integer()) {
      out[key] = std::to_string(i->get());
    } else if (const auto* b = node.as_boolean()) {
      out[key] = b->get() ? "true" : "false";
    } else if (const auto* f = node.as_floating_point()) {
      std::ostringstream os;
      os << f->get();
      out[key] = os.str();
    } else {
      // Arrays and dates: kept as TOML text (no key takes them yet).
      std::ostringstream os;
      node.visit([&](const auto& v) { os << v; });
      out[key] = os.str();
    }
  }
}

}  // namespace

Config::EnvLookup Config::process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string{name}.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string{v};
  };
}

Config Config::from_string(std::string_view text, std::string source_name, EnvLookup env) {
  Config c;
  c.env_ = std::move(env);
  c.file_name_ = std::move(source_name);
  try {
    toml::table table = toml::parse(text, c.file_name_);
    flatten(table, "", c.file_values_);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "invalid config: " << c.file_name_ << ":" << e.source().begin.line << ":" << e.source().begin.column
       << ": " << e.description();
    throw Error{ErrorCode::kInvalidArgument, os.str(), "config"};
  }
  return c;
}

Config Config::load(const std::filesystem::path& file, EnvLookup env) {
  if (file.empty()) {
    Config c;
    c.env_ = std::move(env);
    return c;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw Error{ErrorCode::kNotFound, "invalid config: no such file: " + file.string(), "config"};
  }
  std::ifstream in{file};
  std::stringstream buf;
  buf << in.rdbuf();
  if (!in && !in.eof()) throw_errno("read " + file.string());
  return from_string(buf.str(), file.string(), std::move(env));
}

std::string Config::env_name(std::string_view key) {
  std::string name = "VIGO_";
  for (char c : key) {
    name += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

std::optional<Config::Value> Config::lookup(std::string_view key) const {
  if (auto it = overrides_.find(key); it != overrides_.end()) return Value{it->second, "flag"};
  if (env_) {
    const std::string name = env_name(key);
    if (auto v = env_(name)) return Value{*v, "environment variable " + name};
  }
  if (auto it = file_values_.find(key); it != file_values_.end()) return Value{it->second, "file " + file_name_};
  return std::nullopt;
}

std::vector<std::string> Config::tables_under(std::string_view prefix) const {
  const std::string head = std::string{prefix} + ".";
  std::vector<std::string> out;
  for (auto it = file_values_.lower_bound(head); it != file_values_.end() && it->first.starts_with(head); ++it) {
    const std::string_view rest = std::string_view{it->first}.substr(head.size());
    const auto dot = rest.find('.');
    if (dot == std::string_view::npos) continue;  // a value, not a table
    std::string name{rest.substr(0, dot)};
    if (out.empty() || out.back() != name) out.push_back(std::move(name));
  }
  return out;
}

std::optional<std::string> Config::get_string(std::string_view key) const {
  if (auto v = lookup(key)) return v->text;
  return std::nullopt;
}

std::string Config::get_string(std::string_view key, std::string_view fallback) const {
  if (auto v = lookup(key)) return v->text;
  return std::string{fallback};
}

std::int64_t Config::get_int(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max) const {
  auto v = lookup(key);
  if (!v) return fallback;
  std::int64_t out = 0;
  std::size_t used = 0;
  try {
    out = std::stoll(v->text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v->text.size()) {
    throw Error{ErrorCode::kInvalidArgument,
                "invalid " + std::string{key} + ": '" + v->text + "' from " + v->source + " is not an integer",
                std::string{key}};
  }
  if (out < min || out > max) {
    throw Error{ErrorCode::kInvalidArgument,
                "invalid " + std::string{key} + ": " + v->text + " from " + v->source + " is outside [" +
                    std::to_string(min) + ", " + std::to_string(max) + "]",
                std::string{key}};
  }
  return out;
}

bool Config::get_bool(std::string_view key, bool fallback) const {
  auto v = lookup(key);
  if (!v) return fallback;
  if (v->text == "true" || v->text == "1" || v->text == "yes") return true;
  if (v->text == "false" || v->text == "0" || v->text == "no") return false;
  throw Error{ErrorCode::kInvalidArgument,
              "invalid " + std::string{key} + ": '" + v->text + "' from " + v->source + " is not a boolean",
              std::string{key}};
}

}  // namespace vigo
