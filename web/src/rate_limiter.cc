// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "vigo/common/error.h"

namespace vigo::web {

RateLimiter::RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {
  if (!(rate > 0) || !std::isfinite(rate)) throw invalid_argument("api.rate_per_token", "must be positive");
  if (!(burst >= 1) || !std::isfinite(burst)) throw invalid_argument("api.burst_per_token", "must be at least 1");
}

void RateLimiter::refill(Bucket& b, Clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  if (elapsed > 0) {
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.last = now;
  }
}

bool RateLimiter::allow(const std::string& key, Clock::time_point now) {
  std::lock_guard lock{mu_};
  if (now - last_sweep_ > std::chrono::minutes{1}) {
    std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.last > std::chrono::minutes{1}; });
    last_sweep_ = now;
  }
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now});
  refill(it->second, now);
  if (it->second.tokens < 1) return false;
  it->second.tokens -= 1;
  return true;
}

std::chrono::milliseconds RateLimiter::retry_after(const std::string& key, Clock::time_point now) {
  std::lock_guard lock{mu_};
  const auto it = buckets_.find(key);
  if (it == buckets_.end()) return std::chrono::milliseconds{0};
  refill(it->second, now);
  const double missing = std::max(0.0, 1 - it->second.tokens);
  return std::chrono::milliseconds{static_cast<std::int64_t>(std::ceil(missing / rate_ * 1000))};
}

}  // namespace vigo::web
