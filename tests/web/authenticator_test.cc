// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/authenticator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace vigo::web {
namespace {

using std::chrono::seconds;

constexpr Authenticator::Clock::time_point kT0 = Authenticator::Clock::time_point{} + std::chrono::hours{1000};

// The GIS's token table, in memory: counts how often it is asked.
struct FakeTokens {
  std::map<std::string, gis::TokenOwner> known;
  int calls = 0;

  Authenticator::Verify verify() {
    return [this](const std::string& token) -> std::optional<gis::TokenOwner> {
      ++calls;
      const auto it = known.find(token);
      if (it == known.end()) return std::nullopt;
      return it->second;
    };
  }
};

Request with_authorization(std::string value) {
  Request r;
  r.method = "GET";
  r.path = "/v1/whoami";
  r.headers["authorization"] = std::move(value);
  return r;
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest() {
    tokens.known["vigo_alice"] = gis::TokenOwner{7, "alice", false};
    tokens.known["vigo_root"] = gis::TokenOwner{1, "admin", true};
  }
  FakeTokens tokens;
};

TEST_F(AuthenticatorTest, AValidTokenNamesItsOwner) {
  Authenticator auth{tokens.verify()};
  const auto caller = auth.authenticate(with_authorization("Bearer vigo_alice"), kT0);
  ASSERT_TRUE(caller.has_value());
  EXPECT_EQ(caller->user_id, 7);
  EXPECT_EQ(caller->user, "alice");
  EXPECT_FALSE(caller->is_admin);
  EXPECT_EQ(caller->token, "vigo_alice");
  const auto admin = auth.authenticate(with_authorization("Bearer vigo_root"), kT0);
  ASSERT_TRUE(admin.has_value());
  EXPECT_EQ(admin->user, "admin");
  EXPECT_TRUE(admin->is_admin);
  EXPECT_EQ(tokens.calls, 2);
}

TEST_F(AuthenticatorTest, TheSchemeIsCaseInsensitive) {
  Authenticator auth{tokens.verify()};
  EXPECT_TRUE(auth.authenticate(with_authorization("bearer vigo_alice"), kT0).has_value());
  EXPECT_TRUE(auth.authenticate(with_authorization("BEARER vigo_root"), kT0).has_value());
}

TEST_F(AuthenticatorTest, AMissingHeaderIsRefusedWithoutALookup) {
  Authenticator auth{tokens.verify()};
  Request r;
  r.headers["x-authorization"] = "Bearer vigo_alice";
  EXPECT_FALSE(auth.authenticate(r, kT0).has_value());
  EXPECT_EQ(tokens.calls, 0);
}

TEST_F(AuthenticatorTest, OtherSchemesAreRefusedWithoutALookup) {
  Authenticator auth{tokens.verify()};
  for (const char* value : {"Basic dmlnbzpzZWNyZXQ=", "Token vigo_alice", "Bearervigo_alice", "vigo_alice",
                            "Bearer_vigo_alice", "Digest username=\"alice\""}) {
    SCOPED_TRACE(value);
    EXPECT_FALSE(auth.authenticate(with_authorization(value), kT0).has_value());
  }
  EXPECT_EQ(tokens.calls, 0);
}

TEST_F(AuthenticatorTest, AnEmptyTokenIsRefusedWithoutALookup) {
  Authenticator auth{tokens.verify()};
  for (const char* value : {"", "Bearer", "Bearer ", "bearer "}) {
    SCOPED_TRACE(value);
    EXPECT_FALSE(auth.authenticate(with_authorization(value), kT0).has_value());
  }
  EXPECT_EQ(tokens.calls, 0);
}

TEST_F(AuthenticatorTest, AnOverLongHeaderIsRefusedWithoutALookup) {
  const std::string token = "vigo_" + std::string(600, 'x');
  tokens.known[token] = gis::TokenOwner{9, "long", false};
  Authenticator auth{tokens.verify()};
  EXPECT_FALSE(auth.authenticate(with_authorization("Bearer " + token), kT0).has_value());
  EXPECT_EQ(tokens.calls, 0);
}

TEST_F(AuthenticatorTest, AnUnknownTokenIsRefusedAndNotRemembered) {
  Authenticator auth{tokens.verify()};
  EXPECT_FALSE(auth.authenticate(with_authorization("Bearer not-a-token"), kT0).has_value());
  EXPECT_FALSE(auth.authenticate(with_authorization("Bearer \x01\x02garbage"), kT0).has_value());
  EXPECT_EQ(tokens.calls, 2);
  // Issued meanwhile: the next request sees it at once.
  tokens.known["not-a-token"] = gis::TokenOwner{3, "late", false};
  EXPECT_TRUE(auth.authenticate(with_authorization("Bearer not-a-token"), kT0).has_value());
  EXPECT_EQ(tokens.calls, 3);
}

TEST_F(AuthenticatorTest, AVerifiedTokenIsRememberedForTheTtl) {
  Authenticator auth{tokens.verify(), seconds{5}};
  for (int i = 0; i < 10; ++i) {
    const auto c = auth.authenticate(with_authorization("Bearer vigo_alice"), kT0 + std::chrono::milliseconds{400 * i});
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->user, "alice");
    EXPECT_EQ(c->user_id, 7);
    EXPECT_EQ(c->token, "vigo_alice");
  }
  EXPECT_EQ(tokens.calls, 1);
  // At the end of the ttl the GIS is asked again.
  EXPECT_TRUE(auth.authenticate(with_authorization("Bearer vigo_alice"), kT0 + seconds{5}).has_value());
  EXPECT_EQ(tokens.calls, 2);
}

TEST_F(AuthenticatorTest, ARevokedTokenWorksForAtMostTheTtl) {
  Authenticator auth{tokens.verify(), seconds{5}};
  ASSERT_TRUE(auth.authenticate(with_authorization("Bearer vigo_alice"), kT0).has_value());
  tokens.known.erase("vigo_alice");
  EXPECT_TRUE(auth.authenticate(with_authorization("Bearer vigo_alice"), kT0 + seconds{4}).has_value());
  EXPECT_FALSE(auth.authenticate(with_authorization("Bearer vigo_alice"), kT0 + seconds{5}).has_value());
  EXPECT_FALSE(auth.authenticate(with_authorization("Bearer vigo_alice"), kT0 + seconds{6}).has_value());
}

TEST_F(AuthenticatorTest, AtMostMaxEntriesAreKeptAndTheOldestGoFirst) {
  tokens.known["vigo_a"] = gis::TokenOwner{10, "a", false};
  tokens.known["vigo_b"] = gis::TokenOwner{11, "b", false};
  tokens.known["vigo_c"] = gis::TokenOwner{12, "c", false};
  Authenticator auth{tokens.verify(), seconds{60}, 2};
  auto ok = [&](const char* token, seconds at) {
    return auth.authenticate(with_authorization(std::string{"Bearer "} + token), kT0 + at).has_value();
  };
  ASSERT_TRUE(ok("vigo_a", seconds{0}));
  ASSERT_TRUE(ok("vigo_b", seconds{1}));
  ASSERT_TRUE(ok("vigo_c", seconds{2}));  // a, the oldest, goes
  EXPECT_EQ(tokens.calls, 3);
  EXPECT_TRUE(ok("vigo_b", seconds{3}));
  EXPECT_TRUE(ok("vigo_c", seconds{3}));
  EXPECT_EQ(tokens.calls, 3);  // both remembered
  EXPECT_TRUE(ok("vigo_a", seconds{3}));
  EXPECT_EQ(tokens.calls, 4);  // a was not; now b, the oldest, goes
  EXPECT_TRUE(ok("vigo_c", seconds{3}));
  EXPECT_EQ(tokens.calls, 4);
  EXPECT_TRUE(ok("vigo_b", seconds{3}));
  EXPECT_EQ(tokens.calls, 5);
}

TEST_F(AuthenticatorTest, ZeroMaxEntriesStillKeepsOne) {
  Authenticator auth{tokens.verify(), seconds{60}, 0};
  EXPECT_TRUE(auth.authenticate(with_authorization("Bearer vigo_alice"), kT0).has_value());
  EXPECT_TRUE(auth.authenticate(with_authorization("Bearer vigo_alice"), kT0).has_value());
  EXPECT_EQ(tokens.calls, 1);
  EXPECT_TRUE(auth.authenticate(with_authorization("Bearer vigo_root"), kT0).has_value());
  EXPECT_TRUE(auth.authenticate(with_authorization("Bearer vigo_alice"), kT0).has_value());
  EXPECT_EQ(tokens.calls, 3);
}

}  // namespace
}  // namespace vigo::web
