// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/json_fields.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "vigo/common/error.h"

namespace vigo::web {
namespace {

// The vigo::Error that fn throws; a test failure when it throws none.
template <typename Fn>
Error error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a vigo::Error";
  return Error{ErrorCode::kInternal, "no error"};
}

void expect_invalid(const Error& e, const std::string& field, const std::string& says) {
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.field(), field);
  EXPECT_NE(std::string{e.what()}.find(says), std::string::npos) << e.what();
}

// JSON text of `depth` nested objects: {"a":{"a":{}}} is 3 deep.
std::string nested_objects(int depth) {
  std::string s;
  for (int i = 1; i < depth; ++i) s += "{\"a\":";
  s += "{}";
  for (int i = 1; i < depth; ++i) s += "}";
  return s;
}

TEST(JsonFields, TypedAccessorsReadTheirValues) {
  auto f = JsonFields::parse(R"({"name": "ws", "count": 3, "big": 9007199254740993, "persistent": true, "off": false,
                                 "labels": {"zone": "a", "rack": "r1"}, "placement": {"policy": "pack"}})");
  EXPECT_EQ(f.string("name"), "ws");
  EXPECT_EQ(f.required_string("name"), "ws");
  EXPECT_EQ(f.integer("count", 1, 64), 3);
  EXPECT_EQ(f.integer("big", 0, std::numeric_limits<std::int64_t>::max()), 9007199254740993LL);
  EXPECT_EQ(f.boolean("persistent"), true);
  EXPECT_EQ(f.boolean("off"), false);
  const auto labels = f.string_map("labels");
  ASSERT_TRUE(labels.has_value());
  EXPECT_EQ(labels->size(), 2u);
  EXPECT_EQ(labels->at("zone"), "a");
  EXPECT_EQ(labels->at("rack"), "r1");
  auto placement = f.object("placement");
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(placement->string("policy"), "pack");
  EXPECT_NO_THROW(placement->finish());
  EXPECT_NO_THROW(f.finish());
}

TEST(JsonFields, IntegerBoundsAreInclusive) {
  auto f = JsonFields::parse(R"({"lo": 1, "hi": 64, "neg": -5, "zero": 0})");
  EXPECT_EQ(f.integer("lo", 1, 64), 1);
  EXPECT_EQ(f.integer("hi", 1, 64), 64);
  EXPECT_EQ(f.integer("neg", -10, 10), -5);
  EXPECT_EQ(f.integer("zero", 0, 0), 0);
}

// A huge unsigned value against a negative upper bound (found by
// fuzz/fuzz_json_fields.cc): refused, not wrapped into range.
TEST(JsonFields, AHugeUnsignedValueIsRefusedUnderANegativeBound) {
  auto f = JsonFields::parse(R"({"x": 18446744073709551615})");
  EXPECT_EQ(error_of([&] { (void)f.integer("x", -10, -1); }).field(), "x");
}

TEST(JsonFields, AbsentAndNullFieldsAreEmpty) {
  auto f = JsonFields::parse(R"({"image": null})");
  EXPECT_FALSE(f.string("image").has_value());
  EXPECT_FALSE(f.string("checkpoint").has_value());
  EXPECT_FALSE(f.integer("count", 1, 64).has_value());
  EXPECT_FALSE(f.boolean("persistent").has_value());
  EXPECT_FALSE(f.object("placement").has_value());
  EXPECT_FALSE(f.string_map("labels").has_value());
  EXPECT_NO_THROW(f.finish());
  expect_invalid(error_of([&] { (void)f.required_string("name"); }), "name", "is required");
  expect_invalid(error_of([&] { (void)f.required_string("image"); }), "image", "invalid image: is required");
}

TEST(JsonFields, AnEmptyBodyIsAnEmptyObject) {
  for (const char* body : {"", "   ", "\r\n\t "}) {
    auto f = JsonFields::parse(body);
    EXPECT_FALSE(f.string("name").has_value());
    EXPECT_NO_THROW(f.finish());
  }
  auto f = JsonFields::parse("{}");
  EXPECT_NO_THROW(f.finish());
}

TEST(JsonFields, WrongTypesNameTheField) {
  auto f = JsonFields::parse(R"({"count": "3", "name": 5, "flag": "true", "real": 2.5, "whole": 3.0,
                                 "placement": [1], "labels": "zone=a", "map": {"zone": 1}, "obj": "x"})");
  expect_invalid(error_of([&] { (void)f.integer("count", 1, 64); }), "count", "must be an integer");
  expect_invalid(error_of([&] { (void)f.string("name"); }), "name", "must be a string");
  expect_invalid(error_of([&] { (void)f.required_string("name"); }), "name", "must be a string");
  expect_invalid(error_of([&] { (void)f.boolean("flag"); }), "flag", "must be true or false");
  expect_invalid(error_of([&] { (void)f.integer("real", 0, 10); }), "real", "must be an integer");
  expect_invalid(error_of([&] { (void)f.integer("whole", 0, 10); }), "whole", "must be an integer");
  expect_invalid(error_of([&] { (void)f.object("placement"); }), "placement", "must be an object");
  expect_invalid(error_of([&] { (void)f.string_map("labels"); }), "labels", "must be an object of strings");
  expect_invalid(error_of([&] { (void)f.string_map("map"); }), "map.zone", "must be a string");
  expect_invalid(error_of([&] { (void)f.object("obj"); }), "obj", "must be an object");
}

TEST(JsonFields, OutOfRangeIntegersNameTheFieldAndTheRange) {
  auto f = JsonFields::parse(R"({"count": 65, "zero": 0, "neg": -1, "huge": 18446744073709551615})");
  // A positive value above the maximum (JSON reads it as unsigned) says so.
  expect_invalid(error_of([&] { (void)f.integer("count", 1, 64); }), "count", "must be at most 64");
  expect_invalid(error_of([&] { (void)f.integer("zero", 1, 64); }), "zero", "must be between 1 and 64");
  expect_invalid(error_of([&] { (void)f.integer("neg", 0, 10); }), "neg", "must be between 0 and 10");
  expect_invalid(error_of([&] { (void)f.integer("huge", 1, std::numeric_limits<std::int64_t>::max()); }), "huge",
                 "must be at most 9223372036854775807");
}

TEST(JsonFields, NestedFieldsCarryTheirFullDottedName) {
  auto f = JsonFields::parse(R"({"placement": {"policy": 1, "labels": {"zone": 2}, "inner": {"deep": "x"}}})");
  auto p = f.object("placement");
  ASSERT_TRUE(p.has_value());
  expect_invalid(error_of([&] { (void)p->string("policy"); }), "placement.policy", "must be a string");
  expect_invalid(error_of([&] { (void)p->string_map("labels"); }), "placement.labels.zone", "must be a string");
  auto inner = p->object("inner");
  ASSERT_TRUE(inner.has_value());
  expect_invalid(error_of([&] { (void)inner->integer("deep", 0, 1); }), "placement.inner.deep", "must be an integer");
}

TEST(JsonFields, ThePrefixGivenToTheConstructorNamesFields) {
  JsonFields f{nlohmann::json{{"x", 1}}, "outer."};
  expect_invalid(error_of([&] { (void)f.string("x"); }), "outer.x", "must be a string");
}

TEST(JsonFields, FinishRefusesUnknownFieldsNamingThem) {
  auto f = JsonFields::parse(R"({"name": "ws", "persistant": true})");
  EXPECT_EQ(f.required_string("name"), "ws");
  EXPECT_FALSE(f.boolean("persistent").has_value());  // asked for, absent: not the typo
  expect_invalid(error_of([&] { f.finish(); }), "persistant", "is not a known field");
}

TEST(JsonFields, FinishRefusesAnUnreadNullField) {
  auto f = JsonFields::parse(R"({"name": "ws", "extra": null})");
  (void)f.string("name");
  expect_invalid(error_of([&] { f.finish(); }), "extra", "is not a known field");
}

TEST(JsonFields, FinishOfANestedObjectNamesTheNestedField) {
  auto f = JsonFields::parse(R"({"placement": {"policy": "pack", "polcy": "spread"}})");
  auto p = f.object("placement");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->string("policy"), "pack");
  expect_invalid(error_of([&] { p->finish(); }), "placement.polcy", "is not a known field");
}

TEST(JsonFields, AFieldReadWithAWrongTypeIsNotAlsoUnknown) {
  auto f = JsonFields::parse(R"({"count": "x"})");
  (void)error_of([&] { (void)f.integer("count", 1, 2); });
  EXPECT_NO_THROW(f.finish());
}

TEST(JsonFields, NestingUpTo32LevelsIsAccepted) {
  EXPECT_NO_THROW((void)JsonFields::parse(nested_objects(32)));
  // Brackets inside strings, also after an escaped quote, do not count.
  const std::string brackets(100, '[');
  EXPECT_NO_THROW((void)JsonFields::parse("{\"s\": \"" + brackets + "\"}"));
  EXPECT_NO_THROW((void)JsonFields::parse("{\"s\": \"\\\"" + brackets + "\"}"));
  EXPECT_NO_THROW((void)JsonFields::parse("{\"s\": \"\\\\\", \"t\": 1}"));
}

TEST(JsonFields, NestingDeeperThan32LevelsIsRefused) {
  expect_invalid(error_of([] { (void)JsonFields::parse(nested_objects(33)); }), "body", "nested deeper than 32");
  // Arrays count as levels too.
  std::string arrays = "{\"a\": " + std::string(32, '[') + std::string(32, ']') + "}";
  expect_invalid(error_of([&] { (void)JsonFields::parse(arrays); }), "body", "nested deeper than 32");
  // A hostile depth is refused before any parser sees it.
  const std::string hostile = std::string(1'000'000, '[');
  expect_invalid(error_of([&] { (void)JsonFields::parse(hostile); }), "body", "nested deeper than 32");
}

TEST(JsonFields, MalformedJsonIsRefused) {
  for (const char* body : {"{", "not json", "{\"a\": 1,}", "{\"a\": 1} trailing", "{'a': 1}", "{\"a\" 1}"}) {
    SCOPED_TRACE(body);
    expect_invalid(error_of([&] { (void)JsonFields::parse(body); }), "body", "not valid JSON");
  }
}

TEST(JsonFields, ABodyThatIsNotAnObjectIsRefused) {
  for (const char* body : {"[1, 2]", "\"text\"", "42", "null", "true"}) {
    SCOPED_TRACE(body);
    expect_invalid(error_of([&] { (void)JsonFields::parse(body); }), "body", "must be a JSON object");
  }
}

}  // namespace
}  // namespace vigo::web
