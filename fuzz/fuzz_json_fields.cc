// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: a request body read through vigo::web::JsonFields
// (web/src/json_fields.cc), the way vigod's handlers read theirs.
//
// After JsonFields::parse, two passes over the same text:
//  - "handler": the reads of the real handlers (workspace create with its
//    placement, hosts_that_fit, vm_sets, gang_place) in their order, then
//    finish(), stopping at the first error like a handler does;
//  - "every accessor": each accessor (string, required_string, integer with
//    a few bounds, boolean, object, string_map) on a fixed list of names and
//    on the keys the body really has, each in its own try, recursing into
//    objects a few levels, with finish() at each level.
// Every vigo::Error is turned into the error response the client would get.
//
// Expected: vigo::Error with kInvalidArgument and a field name (the
// header's promise). A bug: any other exception type (a handler would
// answer 500 "internal" to bad input), a crash, a sanitizer report, or an
// accessor result that breaks its contract (an integer outside its bounds
// or not the number in the body, a string that is not the body's string).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "vigo/common/error.h"
#include "vigo/web/api_error.h"
#include "vigo/web/json_fields.h"

namespace {

using vigo::web::JsonFields;
using json = nlohmann::json;
constexpr auto kI64Max = std::numeric_limits<std::int64_t>::max();
constexpr auto kI64Min = std::numeric_limits<std::int64_t>::min();

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz_json_fields: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// An Error from JsonFields: must be kInvalidArgument naming a field (under
// `prefix` when read from a nested object) and make a 400 response. (The
// field is "" for the key "", e.g. finish() on {"": 1}.)
void expected(const vigo::Error& e, std::string_view prefix = {}) {
  if (e.code() != vigo::ErrorCode::kInvalidArgument) fail("Error that is not kInvalidArgument", e.what());
  if (!e.field().starts_with(prefix) && e.field() != "body") fail("Error field outside its object", e.field());
  const auto response = vigo::web::error_response(e);
  if (response.status != 400) fail("bad input not answered 400", e.what());
  if (response.body.empty()) fail("empty error response");
}

// Bounds the handlers use, and the whole range.
constexpr std::pair<std::int64_t, std::int64_t> kBounds[] = {
    {1, 64}, {1, kI64Max}, {10, 7 * 86400}, {5, 3600}, {0, 1000}, {0, 1 << 20}, {0, 1LL << 30}, {kI64Min, kI64Max},
    {-10, -1},
};

// Field names the handlers read (web/src/api_workspaces.cc, api_gis.cc),
// and a few odd ones.
const std::vector<std::string> kNames = {
    "owner",     "name",      "profile",       "image",       "checkpoint",       "count",
    "persistent", "checkpoint_interval_s", "readiness_timeout_s", "placement", "policy", "labels",
    "network",   "same_network", "distinct_hosts", "future_id", "memory_mb", "vcpus",
    "disk_gb",   "arch",      "limit",         "n",           "min_memory_mb",    "max_memory_mb",
    "source",    "seed_permille", "",          "a",           "a.b",              std::string("\0", 1),
};

// The JSON value under `key` in `raw` (an object), or null.
const json* raw_value(const json& raw, const std::string& key) {
  if (!raw.is_object()) return nullptr;
  const auto it = raw.find(key);
  if (it == raw.end() || it->is_null()) return nullptr;
  return &*it;
}

void every_accessor(JsonFields& f, const json& raw, const std::string& prefix, int depth) {
  // A set: an object is read (and recursed into) once per name.
  std::set<std::string> names{kNames.begin(), kNames.end()};
  if (raw.is_object()) {
    int n = 0;
    for (const auto& [k, v] : raw.items()) {
      if (++n > 16) break;
      names.insert(k);
    }
  }
  for (const auto& key : names) {
    const json* v = raw_value(raw, key);
    try {
      const auto s = f.string(key);
      if (s && (!v || !v->is_string() || *s != v->get_ref<const std::string&>())) fail("string() is not the body's", key);
    } catch (const vigo::Error& e) {
      expected(e, prefix);
    }
    try {
      const auto s = f.required_string(key);
      if (!v || !v->is_string() || s != v->get_ref<const std::string&>()) fail("required_string() is not the body's", key);
    } catch (const vigo::Error& e) {
      expected(e, prefix);
    }
    for (const auto& [min, max] : kBounds) {
      try {
        const auto i = f.integer(key, min, max);
        if (i) {
          if (*i < min || *i > max) fail("integer() out of its bounds", key);
          if (!v || !v->is_number_integer()) fail("integer() of a non-integer", key);
          const bool same = v->is_number_unsigned() ? *i >= 0 && static_cast<std::uint64_t>(*i) == v->get<std::uint64_t>()
                                                    : *i == v->get<std::int64_t>();
          if (!same) fail("integer() is not the body's number", key);
        }
      } catch (const vigo::Error& e) {
        expected(e, prefix);
      }
    }
    try {
      const auto b = f.boolean(key);
      if (b && (!v || !v->is_boolean() || *b != v->get<bool>())) fail("boolean() is not the body's", key);
    } catch (const vigo::Error& e) {
      expected(e, prefix);
    }
    try {
      if (const auto m = f.string_map(key)) {
        if (!v || !v->is_object() || m->size() != v->size()) fail("string_map() is not the body's", key);
      }
    } catch (const vigo::Error& e) {
      expected(e, prefix);
    }
    try {
      if (auto sub = f.object(key)) {
        if (!v || !v->is_object()) fail("object() of a non-object", key);
        if (depth < 4) every_accessor(*sub, *v, prefix + key + ".", depth + 1);
      }
    } catch (const vigo::Error& e) {
      expected(e, prefix);
    }
  }
  try {
    f.finish();  // every name the body has was read above, unless there are more than 16
  } catch (const vigo::Error& e) {
    expected(e, prefix);
  }
}

// What the handlers read, in their order; the first error ends it.
void placement(JsonFields& f) {
  (void)f.string("policy");
  (void)f.string_map("labels");
  (void)f.string("network");
  (void)f.boolean("same_network");
  (void)f.boolean("distinct_hosts");
  (void)f.integer("future_id", 1, kI64Max);
  f.finish();
}

void handler_reads(std::string_view body) {
  try {  // POST /v1/workspaces
    auto f = JsonFields::parse(body);
    (void)f.string("owner");
    (void)f.required_string("name");
    (void)f.required_string("profile");
    (void)f.string("image");
    (void)f.string("checkpoint");
    (void)f.integer("count", 1, 64);
    (void)f.boolean("persistent");
    (void)f.integer("checkpoint_interval_s", 10, 7 * 86400);
    (void)f.integer("readiness_timeout_s", 5, 3600);
    if (auto p = f.object("placement")) placement(*p);
    f.finish();
  } catch (const vigo::Error& e) {
    expected(e);
  }
  try {  // hosts that fit
    auto f = JsonFields::parse(body);
    (void)f.integer("memory_mb", 1, 1LL << 26);
    (void)f.integer("vcpus", 1, 4096);
    (void)f.integer("disk_gb", 0, 1 << 20);
    (void)f.string("arch");
    (void)f.string_map("labels");
    (void)f.string("network");
    (void)f.string("policy");
    (void)f.integer("limit", 1, 10'000);
    f.finish();
  } catch (const vigo::Error& e) {
    expected(e);
  }
  try {  // vm sets
    auto f = JsonFields::parse(body);
    (void)f.integer("n", 1, 1000);
    (void)f.integer("min_memory_mb", 0, 1LL << 30);
    (void)f.integer("max_memory_mb", 0, 1LL << 30);
    (void)f.string("source");
    (void)f.integer("limit", 1, 10'000);
    (void)f.string("network");
    (void)f.integer("seed_permille", 0, 1000);
    f.finish();
  } catch (const vigo::Error& e) {
    expected(e);
  }
  try {  // gang place
    auto f = JsonFields::parse(body);
    (void)f.required_string("profile");
    (void)f.integer("count", 1, 1000);
    (void)f.boolean("distinct_hosts");
    (void)f.string("network");
    f.finish();
  } catch (const vigo::Error& e) {
    expected(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body{reinterpret_cast<const char*>(data), size};
  std::optional<JsonFields> fields;
  try {
    fields.emplace(JsonFields::parse(body));
  } catch (const vigo::Error& e) {
    if (e.field() != "body") fail("parse error not on \"body\"", e.what());
    expected(e);
    return 0;
  }
  handler_reads(body);
  // The same text, parsed the same way, to know what the accessors should
  // return. JsonFields::parse accepted it, so it is an object (or blank).
  json raw = json::parse(body, nullptr, false);
  if (raw.is_discarded()) raw = json::object();
  if (!raw.is_object()) fail("JsonFields::parse accepted a non-object");
  every_accessor(*fields, raw, "", 0);
  return 0;
}
