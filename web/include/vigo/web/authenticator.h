// SPDX-License-Identifier: Apache-2.0
// Authenticator: who is calling, from the request's "Authorization: Bearer
// <token>" header, checked against the GIS's hashed tokens (gis::Tokens).
// A verified token is remembered for `ttl` so that a busy client costs one
// database lookup per ttl, not one per request; the price is that a revoked
// token keeps working for at most ttl (documented in docs/api.md). Unknown
// tokens are not remembered. At most max_entries tokens are kept (the
// oldest go first). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "vigo/gis/tokens.h"
#include "vigo/web/http.h"

namespace vigo::web {

struct Caller {
  std::int64_t user_id = 0;
  std::string user;
  bool is_admin = false;
  std::string token;  // the bearer token (the rate limiter's key)
};

class Authenticator {
 public:
  using Clock = std::chrono::steady_clock;
  using Verify = std::function<std::optional<gis::TokenOwner>(const std::string& token)>;

  explicit Authenticator(Verify verify, std::chrono::seconds ttl = std::chrono::seconds{5},
                         std::size_t max_entries = 10'000);

  // nullopt when the header is missing, malformed, or the token is not valid.
  [[nodiscard]] std::optional<Caller> authenticate(const Request& request, Clock::time_point now = Clock::now());

 private:
  struct Entry {
    gis::TokenOwner owner;
    Clock::time_point expires;
  };
  Verify verify_;
  std::chrono::seconds ttl_;
  std::size_t max_entries_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;  // GUARDED_BY(mu_)
};

}  // namespace vigo::web
