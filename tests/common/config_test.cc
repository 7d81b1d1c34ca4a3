// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/config.h"

#include <gtest/gtest.h>

#include <map>

#include "vigo/common/error.h"

namespace vigo {
namespace {

Config::EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string{name});
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

constexpr std::string_view kToml = R"(
[database]
url = "host=/file"
pool_size = 4
[log]
level = "info"
)";

TEST(Config, PrecedenceIsFlagThenEnvThenFileThenFallback) {
  Config c = Config::from_string(kToml, "vigo.toml", fake_env({{"VIGO_DATABASE_URL", "host=/env"}}));
  EXPECT_EQ(c.get_string("database.url", ""), "host=/env");
  c.set_override("database.url", "host=/flag");
  EXPECT_EQ(c.get_string("database.url", ""), "host=/flag");
  EXPECT_EQ(c.get_string("log.level", "warn"), "info");
  EXPECT_EQ(c.get_string("log.format", "text"), "text");
  EXPECT_EQ(c.get_int("database.pool_size", 1, 1, 64), 4);
  EXPECT_FALSE(c.get_string("nothing.here").has_value());
}

TEST(Config, WrongTypeNamesKeyAndSource) {
  Config c = Config::from_string(kToml, "vigo.toml", fake_env({{"VIGO_DATABASE_POOL_SIZE", "many"}}));
  try {
    (void)c.get_int("database.pool_size", 1, 1, 64);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(e.field(), "database.pool_size");
    EXPECT_NE(std::string{e.what()}.find("VIGO_DATABASE_POOL_SIZE"), std::string::npos);
  }
}

TEST(Config, OutOfRangeIsAnError) {
  Config c = Config::from_string(kToml, "vigo.toml", fake_env({}));
  c.set_override("database.pool_size", "1000");
  EXPECT_THROW((void)c.get_int("database.pool_size", 1, 1, 64), Error);
  c.set_override("x.flag", "perhaps");
  EXPECT_THROW((void)c.get_bool("x.flag", false), Error);
  c.set_override("x.flag", "yes");
  EXPECT_TRUE(c.get_bool("x.flag", false));
}

TEST(Config, ParseErrorGivesLineAndColumn) {
  try {
    (void)Config::from_string("[database\nurl = 1", "bad.toml", fake_env({}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string{e.what()}.find("bad.toml:1:"), std::string::npos) << e.what();
  }
}

TEST(Config, MissingNamedFileIsNotFound) {
  try {
    (void)Config::load("/nonexistent/vigo.toml", fake_env({}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  EXPECT_NO_THROW((void)Config::load("", fake_env({})));
}

TEST(Config, TablesUnderAPrefixAreListedOnceEach) {
  const Config c = Config::from_string(R"(
[host]
name = "a"
[hosts.node-2]
uri = "x"
images_dir = "/y"
[hosts.b]
state_dir = "/z"
[hosts]
plain = 1
)",
                                       "vigod.toml", fake_env({{"VIGO_HOSTS_C_URI", "env"}}));
  EXPECT_EQ(c.tables_under("hosts"), (std::vector<std::string>{"b", "node-2"}));
  EXPECT_TRUE(c.tables_under("host").empty());  // host.name is a value, not a table
  EXPECT_TRUE(c.tables_under("nothing").empty());
}

TEST(Config, EnvNames) { EXPECT_EQ(Config::env_name("database.pool_size"), "VIGO_DATABASE_POOL_SIZE"); }

}  // namespace
}  // namespace vigo
