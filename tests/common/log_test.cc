// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "vigo/common/error.h"

namespace vigo::log {
namespace {

TEST(Log, TextLineQuotesWhereNeeded) {
  EXPECT_EQ(format_line(Format::kText, Level::kInfo, "host registered", {{"host", "h1"}, {"cpus", 8}}),
            "INFO  host registered host=h1 cpus=8");
  EXPECT_EQ(format_line(Format::kText, Level::kWarn, "odd", {{"why", "two words"}, {"q", "a\"b"}}),
            "WARN  odd why=\"two words\" q=\"a\\\"b\"");
}

TEST(Log, JsonLineIsValidJson) {
  auto line = format_line(Format::kJson, Level::kError, "boom", {{"path", "a\nb"}, {"ok", false}});
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["msg"], "boom");
  EXPECT_EQ(j["path"], "a\nb");
  EXPECT_EQ(j["ok"], "false");
  auto clash = nlohmann::json::parse(format_line(Format::kJson, Level::kInfo, "real", {{"msg", "field"}}));
  EXPECT_EQ(clash["msg"], "real");
  EXPECT_EQ(clash["field.msg"], "field");
}

TEST(Log, ParseLevel) {
  EXPECT_EQ(parse_level("debug"), Level::kDebug);
  EXPECT_EQ(parse_level("error"), Level::kError);
  try {
    (void)parse_level("loud");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "log.level");
  }
}

}  // namespace
}  // namespace vigo::log
