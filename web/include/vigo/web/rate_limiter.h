// SPDX-License-Identifier: Apache-2.0
// RateLimiter: a token bucket per key (vigod keys it by bearer token):
// `rate` requests per second on average, bursts of up to `burst`. Keys not
// seen for a minute are forgotten, so the table stays as small as the set
// of active clients. Thread-safe; the clock is passed in for tests.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace vigo::web {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double rate, double burst);

  // Takes one token from the key's bucket; false when it is empty.
  [[nodiscard]] bool allow(const std::string& key, Clock::time_point now = Clock::now());
  // How long until the key's bucket holds a token again (for Retry-After).
  [[nodiscard]] std::chrono::milliseconds retry_after(const std::string& key, Clock::time_point now = Clock::now());

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  void refill(Bucket& b, Clock::time_point now) const;
  double rate_, burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // GUARDED_BY(mu_)
  Clock::time_point last_sweep_{};                    // GUARDED_BY(mu_)
};

}  // namespace vigo::web
