// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "vigo/common/error.h"

namespace vigo::web {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// An arbitrary fixed instant; every test moves the clock by hand.
constexpr RateLimiter::Clock::time_point kT0 = RateLimiter::Clock::time_point{} + std::chrono::hours{1000};

int allowed_of(RateLimiter& limiter, const std::string& key, int attempts, RateLimiter::Clock::time_point now) {
  int n = 0;
  for (int i = 0; i < attempts; ++i) n += limiter.allow(key, now) ? 1 : 0;
  return n;
}

TEST(RateLimiter, AllowsABurstThenRefuses) {
  RateLimiter limiter{4, 3};
  EXPECT_TRUE(limiter.allow("token-a", kT0));
  EXPECT_TRUE(limiter.allow("token-a", kT0));
  EXPECT_TRUE(limiter.allow("token-a", kT0));
  EXPECT_FALSE(limiter.allow("token-a", kT0));
  EXPECT_FALSE(limiter.allow("token-a", kT0));
}

TEST(RateLimiter, KeysHaveBucketsOfTheirOwn) {
  RateLimiter limiter{1, 2};
  EXPECT_EQ(allowed_of(limiter, "a", 10, kT0), 2);
  EXPECT_EQ(allowed_of(limiter, "b", 10, kT0), 2);
  EXPECT_EQ(allowed_of(limiter, "a", 10, kT0), 0);
}

TEST(RateLimiter, RetryAfterSaysWhenTheNextTokenComes) {
  RateLimiter limiter{4, 2};                                  // a token every 250 ms
  EXPECT_EQ(limiter.retry_after("a", kT0), milliseconds{0});  // never seen
  EXPECT_TRUE(limiter.allow("a", kT0));
  EXPECT_EQ(limiter.retry_after("a", kT0), milliseconds{0});  // one token left
  EXPECT_TRUE(limiter.allow("a", kT0));
  EXPECT_FALSE(limiter.allow("a", kT0));
  EXPECT_EQ(limiter.retry_after("a", kT0), milliseconds{250});
  EXPECT_EQ(limiter.retry_after("a", kT0 + milliseconds{125}), milliseconds{125});
  EXPECT_FALSE(limiter.allow("a", kT0 + milliseconds{125}));
  EXPECT_TRUE(limiter.allow("a", kT0 + milliseconds{250}));
  EXPECT_FALSE(limiter.allow("a", kT0 + milliseconds{250}));
}

TEST(RateLimiter, RefillsAtTheRateUpToTheBurst) {
  RateLimiter limiter{2, 5};
  EXPECT_EQ(allowed_of(limiter, "a", 10, kT0), 5);
  // One second: two tokens.
  EXPECT_EQ(allowed_of(limiter, "a", 10, kT0 + seconds{1}), 2);
  // Ten seconds later the bucket is full again, but no fuller than the burst.
  EXPECT_EQ(allowed_of(limiter, "a", 10, kT0 + seconds{11}), 5);
}

TEST(RateLimiter, SlowRatesWaitSeconds) {
  RateLimiter limiter{0.5, 1};  // one request every 2 s
  EXPECT_TRUE(limiter.allow("a", kT0));
  EXPECT_FALSE(limiter.allow("a", kT0 + seconds{1}));
  EXPECT_EQ(limiter.retry_after("a", kT0 + seconds{1}), milliseconds{1000});
  EXPECT_TRUE(limiter.allow("a", kT0 + seconds{2}));
  EXPECT_FALSE(limiter.allow("a", kT0 + seconds{2}));
}

TEST(RateLimiter, AClockGoingBackwardsAddsNoTokens) {
  RateLimiter limiter{10, 1};
  EXPECT_TRUE(limiter.allow("a", kT0));
  EXPECT_FALSE(limiter.allow("a", kT0 - seconds{5}));
  EXPECT_FALSE(limiter.allow("a", kT0));
}

TEST(RateLimiter, AnIdleKeyComesBackWithAFullBucket) {
  RateLimiter limiter{1, 3};
  EXPECT_EQ(allowed_of(limiter, "a", 5, kT0), 3);
  // Long enough for the key to be forgotten (a minute) and seen anew.
  EXPECT_EQ(allowed_of(limiter, "b", 1, kT0 + std::chrono::minutes{5}), 1);
  EXPECT_EQ(allowed_of(limiter, "a", 5, kT0 + std::chrono::minutes{5}), 3);
}

TEST(RateLimiter, ConcurrentCallersGetExactlyTheBurst) {
  RateLimiter limiter{1, 100};
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (limiter.allow("shared", kT0)) ++allowed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 100);
}

TEST(RateLimiter, RefusesRatesThatAreNotPositiveAndBurstsBelowOne) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double rate : {0.0, -1.0, nan, inf}) {
    try {
      [[maybe_unused]] RateLimiter limiter{rate, 10};
      ADD_FAILURE() << "rate " << rate << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(e.field(), "api.rate_per_token");
    }
  }
  for (double burst : {0.0, 0.5, -3.0, nan, inf}) {
    try {
      [[maybe_unused]] RateLimiter limiter{10, burst};
      ADD_FAILURE() << "burst " << burst << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(e.field(), "api.burst_per_token");
    }
  }
  EXPECT_NO_THROW(RateLimiter(0.001, 1));
}

}  // namespace
}  // namespace vigo::web
