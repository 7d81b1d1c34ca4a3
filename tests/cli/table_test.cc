// SPDX-License-Identifier: Apache-2.0
#include "table.h"

#include <gtest/gtest.h>

#include <sstream>

#include "app.h"

namespace vigo::cli {
namespace {

TEST(Table, AlignsAndRightAlignsNumbers) {
  Table t{{"host", "free_memory_mb"}};
  t.add({std::string{"h1"}, std::int64_t{512}});
  t.add({std::string{"host-2"}, std::int64_t{65536}});
  std::ostringstream out;
  t.print(out);
  EXPECT_EQ(out.str(),
            "host    free_memory_mb\n"
            "h1                 512\n"
            "host-2           65536\n");
}

TEST(Table, JsonKeepsTypes) {
  Table t{{"id", "name", "ok", "members"}};
  t.add({std::int64_t{7}, std::string{"x"}, true, nlohmann::json::array({1, 2})});
  auto j = t.to_json();
  EXPECT_EQ(j[0]["id"], 7);
  EXPECT_EQ(j[0]["name"], "x");
  EXPECT_EQ(j[0]["ok"], true);
  EXPECT_EQ(j[0]["members"][1], 2);
}

TEST(Table, EmptySaysNone) {
  Table t{{"a"}};
  std::ostringstream out;
  t.print(out);
  EXPECT_EQ(out.str(), "a\n(none)\n");
}

TEST(ExitCodes, Mapping) {
  EXPECT_EQ(exit_code_for(ErrorCode::kInvalidArgument), 2);
  EXPECT_EQ(exit_code_for(ErrorCode::kNotFound), 3);
  EXPECT_EQ(exit_code_for(ErrorCode::kConflict), 4);
  EXPECT_EQ(exit_code_for(ErrorCode::kUnavailable), 5);
}

}  // namespace
}  // namespace vigo::cli
