// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/json_fields.h"

#include "vigo/common/error.h"

namespace vigo::web {
namespace {

constexpr int kMaxDepth = 32;

// The deepest nesting of objects and arrays in JSON text, by a scan that
// skips strings (so nothing recursive ever sees a hostile depth).
int text_depth(std::string_view text) {
  int level = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++level);
    } else if (c == '}' || c == ']') {
      --level;
    }
  }
  return deepest;
}

}  // namespace

JsonFields JsonFields::parse(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return JsonFields{nlohmann::json::object(), ""};
  if (text_depth(body) > kMaxDepth) throw invalid_argument("body", "nested deeper than 32 levels");
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) throw invalid_argument("body", "not valid JSON");
  if (!j.is_object()) throw invalid_argument("body", "must be a JSON object");
  return JsonFields{std::move(j), ""};
}

JsonFields::JsonFields(nlohmann::json object, std::string prefix) : object_(std::move(object)), prefix_(std::move(prefix)) {}

std::string JsonFields::name(std::string_view key) const { return prefix_ + std::string{key}; }

const nlohmann::json* JsonFields::take(std::string_view key) {
  read_.emplace(key);
  const auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<std::string> JsonFields::string(std::string_view key) {
  const auto* v = take(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) throw invalid_argument(name(key), "must be a string");
  return v->get<std::string>();
}

std::string JsonFields::required_string(std::string_view key) {
  auto v = string(key);
  if (!v) throw invalid_argument(name(key), "is required");
  return *v;
}

std::optional<std::int64_t> JsonFields::integer(std::string_view key, std::int64_t min, std::int64_t max) {
  const auto* v = take(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) throw invalid_argument(name(key), "must be an integer");
  if (v->is_number_unsigned() && (max < 0 || v->get<std::uint64_t>() > static_cast<std::uint64_t>(max))) {
    throw invalid_argument(name(key), "must be at most " + std::to_string(max));
  }
  const auto n = v->get<std::int64_t>();
  if (n < min || n > max) {
    throw invalid_argument(name(key), "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return n;
}

std::optional<bool> JsonFields::boolean(std::string_view key) {
  const auto* v = take(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) throw invalid_argument(name(key), "must be true or false");
  return v->get<bool>();
}

std::optional<JsonFields> JsonFields::object(std::string_view key) {
  const auto* v = take(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) throw invalid_argument(name(key), "must be an object");
  return JsonFields{*v, name(key) + "."};
}

std::optional<std::map<std::string, std::string>> JsonFields::string_map(std::string_view key) {
  const auto* v = take(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) throw invalid_argument(name(key), "must be an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [k, value] : v->items()) {
    if (!value.is_string()) throw invalid_argument(name(key) + "." + k, "must be a string");
    out[k] = value.get<std::string>();
  }
  return out;
}

void JsonFields::finish() const {
  for (const auto& [k, v] : object_.items()) {
    if (!read_.contains(k)) throw invalid_argument(name(k), "is not a known field");
  }
}

}  // namespace vigo::web
