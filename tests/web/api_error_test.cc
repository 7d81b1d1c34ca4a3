// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/api_error.h"

#include <gtest/gtest.h>

#include <array>
#include <nlohmann/json.hpp>
#include <string>

#include "vigo/common/error.h"

namespace vigo::web {
namespace {

constexpr std::array kAllCodes{ErrorCode::kInvalidArgument, ErrorCode::kNotFound,          ErrorCode::kAlreadyExists,
                               ErrorCode::kConflict,        ErrorCode::kResourceExhausted, ErrorCode::kPermissionDenied,
                               ErrorCode::kUnavailable,     ErrorCode::kTimeout,           ErrorCode::kInternal};

nlohmann::json body_of(const Response& r) {
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_FALSE(r.body.empty());
  if (!r.body.empty()) {
    EXPECT_EQ(r.body.back(), '\n');
  }
  return nlohmann::json::parse(r.body);
}

TEST(ApiError, CodesMapToStatuses) {
  EXPECT_EQ(http_status(ErrorCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status(ErrorCode::kPermissionDenied), 403);
  EXPECT_EQ(http_status(ErrorCode::kNotFound), 404);
  EXPECT_EQ(http_status(ErrorCode::kAlreadyExists), 409);
  EXPECT_EQ(http_status(ErrorCode::kConflict), 409);
  EXPECT_EQ(http_status(ErrorCode::kResourceExhausted), 503);
  EXPECT_EQ(http_status(ErrorCode::kUnavailable), 503);
  EXPECT_EQ(http_status(ErrorCode::kTimeout), 504);
  EXPECT_EQ(http_status(ErrorCode::kInternal), 500);
}

TEST(ApiError, StatusesMapBackToCodes) {
  EXPECT_EQ(error_code_of_status(400), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of_status(413), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of_status(431), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of_status(401), ErrorCode::kPermissionDenied);
  EXPECT_EQ(error_code_of_status(403), ErrorCode::kPermissionDenied);
  EXPECT_EQ(error_code_of_status(404), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of_status(405), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of_status(409), ErrorCode::kConflict);
  EXPECT_EQ(error_code_of_status(429), ErrorCode::kResourceExhausted);
  EXPECT_EQ(error_code_of_status(503), ErrorCode::kUnavailable);
  EXPECT_EQ(error_code_of_status(504), ErrorCode::kTimeout);
  EXPECT_EQ(error_code_of_status(500), ErrorCode::kInternal);
  EXPECT_EQ(error_code_of_status(502), ErrorCode::kInternal);
  EXPECT_EQ(error_code_of_status(418), ErrorCode::kInternal);
}

TEST(ApiError, EveryStatusOfACodeMapsBackToACodeWithTheSameStatus) {
  for (const auto code : kAllCodes) {
    SCOPED_TRACE(std::string{to_string(code)});
    EXPECT_EQ(http_status(error_code_of_status(http_status(code))), http_status(code));
  }
}

TEST(ApiError, CodeNamesParseBack) {
  for (const auto code : kAllCodes) {
    EXPECT_EQ(parse_error_code(to_string(code)), code);
  }
  EXPECT_EQ(parse_error_code("not_found"), ErrorCode::kNotFound);
  EXPECT_EQ(parse_error_code("resource_exhausted"), ErrorCode::kResourceExhausted);
  EXPECT_FALSE(parse_error_code("").has_value());
  EXPECT_FALSE(parse_error_code("NOT_FOUND").has_value());
  EXPECT_FALSE(parse_error_code("rate_limited").has_value());
  EXPECT_FALSE(parse_error_code("unauthenticated").has_value());
  EXPECT_FALSE(parse_error_code("not_found ").has_value());
}

TEST(ApiError, AnErrorWithAFieldHasTheFullShape) {
  const Response r = error_response(invalid_argument("memory_mb", "must be positive"));
  EXPECT_EQ(r.status, 400);
  auto j = body_of(r);
  EXPECT_EQ(j, (nlohmann::json{{"error",
                                {{"code", "invalid_argument"},
                                 {"message", "invalid memory_mb: must be positive"},
                                 {"field", "memory_mb"}}}}));
}

TEST(ApiError, AnErrorWithoutAFieldHasNoFieldKey) {
  const Response r = error_response(Error{ErrorCode::kNotFound, "no workspace with id 7"});
  EXPECT_EQ(r.status, 404);
  auto j = body_of(r);
  ASSERT_EQ(j.size(), 1u);
  ASSERT_TRUE(j.contains("error"));
  EXPECT_EQ(j["error"].size(), 2u);
  EXPECT_EQ(j["error"]["code"], "not_found");
  EXPECT_EQ(j["error"]["message"], "no workspace with id 7");
  EXPECT_FALSE(j["error"].contains("field"));
}

TEST(ApiError, EachCodeGetsItsStatusAndName) {
  for (const auto code : kAllCodes) {
    SCOPED_TRACE(std::string{to_string(code)});
    const Response r = error_response(Error{code, "what happened", "thing"});
    EXPECT_EQ(r.status, http_status(code));
    auto j = body_of(r);
    EXPECT_EQ(j["error"]["code"], std::string{to_string(code)});
    EXPECT_EQ(j["error"]["field"], "thing");
  }
}

TEST(ApiError, InternalErrorsHideTheirMessage) {
  const Response r = error_response(Error{ErrorCode::kInternal, "database: relation gis.secret does not exist"});
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  auto j = body_of(r);
  EXPECT_EQ(j["error"]["code"], "internal");
  EXPECT_EQ(j["error"]["message"], "internal error");
}

TEST(ApiError, StatusesWithoutACodeUseTheGivenName) {
  const Response r = error_response(429, "rate_limited", "too many requests for this token; slow down");
  EXPECT_EQ(r.status, 429);
  EXPECT_TRUE(r.headers.empty());
  EXPECT_EQ(body_of(r),
            (nlohmann::json{
                {"error", {{"code", "rate_limited"}, {"message", "too many requests for this token; slow down"}}}}));
  const Response with_field = error_response(401, "unauthenticated", "a token is required", "authorization");
  EXPECT_EQ(with_field.status, 401);
  EXPECT_EQ(body_of(with_field)["error"]["field"], "authorization");
}

TEST(ApiError, MessagesAreJsonEscaped) {
  const Response r = error_response(invalid_argument("name", "'a\"b\\c\nd' is not a name"));
  auto j = body_of(r);
  EXPECT_EQ(j["error"]["message"], "invalid name: 'a\"b\\c\nd' is not a name");
}

}  // namespace
}  // namespace vigo::web
