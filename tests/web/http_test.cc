// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/http.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "vigo/common/error.h"

namespace vigo::web {
namespace {

// The error parse_target throws for `target`; a test failure when none.
Error target_error(std::string_view target) {
  try {
    (void)parse_target(target);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for a target of " << target.size() << " bytes: " << target;
  return Error{ErrorCode::kInternal, "no error"};
}

void expect_refused(std::string_view target) {
  SCOPED_TRACE(std::string{target});
  const Error e = target_error(target);
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.field(), "target");
  EXPECT_EQ(std::string{e.what()}.rfind("invalid target: ", 0), 0u) << e.what();
}

TEST(ParseTarget, SplitsPathAndQuery) {
  const Target t = parse_target("/v1/workspaces?owner=alice&all=true");
  EXPECT_EQ(t.path, "/v1/workspaces");
  ASSERT_EQ(t.query.size(), 2u);
  EXPECT_EQ(t.query.at("owner"), "alice");
  EXPECT_EQ(t.query.at("all"), "true");

  const Target root = parse_target("/");
  EXPECT_EQ(root.path, "/");
  EXPECT_TRUE(root.query.empty());

  const Target bare = parse_target("/metrics?");
  EXPECT_EQ(bare.path, "/metrics");
  EXPECT_TRUE(bare.query.empty());
}

TEST(ParseTarget, DecodesThePath) {
  EXPECT_EQ(parse_target("/v1/x%20y").path, "/v1/x y");
  EXPECT_EQ(parse_target("/v1/%41%62c").path, "/v1/Abc");
  EXPECT_EQ(parse_target("/v1/%e2%82%AC").path, "/v1/\xe2\x82\xac");
  // '+' is a space only in a query.
  EXPECT_EQ(parse_target("/v1/a+b").path, "/v1/a+b");
  // An escape that ends the target exactly is complete.
  EXPECT_EQ(parse_target("/a%41").path, "/aA");
}

TEST(ParseTarget, DecodesQueryParameters) {
  const Target t = parse_target("/q?name=a%20b+c&empty=&flag&plus=%2B&expr=a=b&%6B%65y=v");
  EXPECT_EQ(t.path, "/q");
  EXPECT_EQ(t.query.at("name"), "a b c");
  EXPECT_EQ(t.query.at("empty"), "");
  EXPECT_EQ(t.query.at("flag"), "");
  EXPECT_EQ(t.query.at("plus"), "+");
  EXPECT_EQ(t.query.at("expr"), "a=b");  // split at the first '='
  EXPECT_EQ(t.query.at("key"), "v");     // keys are decoded too
  EXPECT_EQ(t.query.size(), 6u);
}

TEST(ParseTarget, RepeatedKeyKeepsTheLastAndEmptyPairsAreSkipped) {
  const Target t = parse_target("/q?&a=1&&a=2&");
  ASSERT_EQ(t.query.size(), 1u);
  EXPECT_EQ(t.query.at("a"), "2");
}

TEST(ParseTarget, RefusesTargetsThatAreNotAbsolutePaths) {
  expect_refused("");
  expect_refused("v1/workspaces");
  expect_refused("*");
  expect_refused("https://example.org/v1/health");
  expect_refused("?a=1");
}

TEST(ParseTarget, RefusesAnEscapedSlashInsteadOfRoutingOnIt) {
  // "/v1/images/a%2Fb" is one segment "a/b", not the two of /v1/images/{name}/{version}.
  const Error e = target_error("/v1/images/a%2Fb");
  EXPECT_NE(std::string{e.what()}.find("%2F"), std::string::npos) << e.what();
  expect_refused("/v1/images/a%2f1");
  expect_refused("/%2F");
  EXPECT_EQ(parse_target("/v1/images/a%2Cb").path, "/v1/images/a,b");
  EXPECT_EQ(parse_target("/v1/").path, "/v1/");  // a trailing empty segment is kept
  EXPECT_EQ(parse_target("//").path, "//");
}

TEST(ParseTarget, RefusesDotSegments) {
  expect_refused("/..");
  expect_refused("/.");
  expect_refused("/v1/..");
  expect_refused("/v1/.");
  expect_refused("/v1/../etc/passwd");
  expect_refused("/v1/./workspaces");
  expect_refused("/v1/workspaces/1/..?x=1");
  // Escaped dots are dots.
  expect_refused("/v1/%2e%2e/x");
  expect_refused("/v1/%2E/x");
  expect_refused("/v1/.%2e/x");
}

TEST(ParseTarget, AllowsDotsThatAreNotWholeSegments) {
  EXPECT_EQ(parse_target("/v1/images/tiny-root.v2").path, "/v1/images/tiny-root.v2");
  EXPECT_EQ(parse_target("/.hidden").path, "/.hidden");
  EXPECT_EQ(parse_target("/a..b").path, "/a..b");
  EXPECT_EQ(parse_target("/...").path, "/...");
  EXPECT_EQ(parse_target("/v1//x/").path, "/v1//x/");
  // A query value is not a path segment.
  EXPECT_EQ(parse_target("/v1/x?p=..").query.at("p"), "..");
}

TEST(ParseTarget, RefusesBadPercentEscapes) {
  expect_refused("/a%");
  expect_refused("/a%4");
  expect_refused("/a%zz");
  expect_refused("/a%4g");
  expect_refused("/a%g4");
  expect_refused("/a%%41");
  expect_refused("/q?x=%");
  expect_refused("/q?x=%4");
  expect_refused("/q?x=%G1");
  expect_refused("/q?%=1");
}

TEST(ParseTarget, RefusesNulBytes) {
  expect_refused("/a%00b");
  expect_refused("/q?x=%00");
  expect_refused("/q?%00=1");
  expect_refused(std::string_view{"/a\0b", 4});
  expect_refused(std::string_view{"/q?x=a\0", 7});
}

TEST(ParseTarget, RefusesOverLongTargets) {
  const std::string longest = "/" + std::string(4095, 'a');
  ASSERT_EQ(longest.size(), 4096u);
  EXPECT_EQ(parse_target(longest).path, longest);
  expect_refused(longest + "a");
  const std::string long_query = "/q?x=" + std::string(4092, 'b');
  ASSERT_EQ(long_query.size(), 4097u);
  expect_refused(long_query);
}

TEST(Request, HeaderAndQueryLookups) {
  Request r;
  r.headers["authorization"] = "Bearer vigo_x";
  r.headers["content-type"] = "application/json";
  r.query["owner"] = "alice";
  r.query["empty"] = "";
  EXPECT_EQ(r.header("authorization"), "Bearer vigo_x");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_FALSE(r.header("x-missing").has_value());
  EXPECT_EQ(r.query_value("owner"), "alice");
  ASSERT_TRUE(r.query_value("empty").has_value());
  EXPECT_TRUE(r.query_value("empty")->empty());
  EXPECT_FALSE(r.query_value("all").has_value());
}

TEST(Response, JsonCarriesStatusTypeAndABodyEndingInANewline) {
  const Response r = Response::json(201, nlohmann::json{{"id", 7}, {"name", "ws \"one\""}});
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.content_type, "application/json");
  ASSERT_FALSE(r.body.empty());
  EXPECT_EQ(r.body.back(), '\n');
  const auto back = nlohmann::json::parse(r.body);
  EXPECT_EQ(back["id"], 7);
  EXPECT_EQ(back["name"], "ws \"one\"");
  EXPECT_TRUE(r.headers.empty());
}

TEST(Response, TextKeepsItsBodyAndType) {
  const Response plain = Response::text(200, "hello");
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.body, "hello");
  EXPECT_EQ(plain.content_type, "text/plain; charset=utf-8");
  const Response metrics = Response::text(503, "x 1\n", "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics.status, 503);
  EXPECT_EQ(metrics.body, "x 1\n");
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace
}  // namespace vigo::web
