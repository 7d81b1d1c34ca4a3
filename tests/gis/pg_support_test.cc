// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/pg_support.h"

#include <gtest/gtest.h>

namespace vigo::gis {
namespace {

TEST(PgSupport, ArrayLiterals) {
  const std::vector<std::int64_t> ints{1, -2, 30};
  EXPECT_EQ(pg_array(ints), "{1,-2,30}");
  const std::vector<std::string> texts{"a", "b c", "q\"uote", "back\\slash", "{x}", ""};
  EXPECT_EQ(pg_array(texts), R"({"a","b c","q\"uote","back\\slash","{x}",""})");
  EXPECT_EQ(pg_array(std::vector<std::string>{}), "{}");
}

TEST(PgSupport, PrimaryMessage) {
  EXPECT_EQ(primary_message("ERROR:  invalid n: must be between 1 and 64 (got 0)\nCONTEXT: PL/pgSQL\n"),
            "invalid n: must be between 1 and 64 (got 0)");
}

}  // namespace
}  // namespace vigo::gis
