// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/authenticator.h"

#include <algorithm>
#include <cctype>

namespace vigo::web {

Authenticator::Authenticator(Verify verify, std::chrono::seconds ttl, std::size_t max_entries)
    : verify_(std::move(verify)), ttl_(ttl), max_entries_(std::max<std::size_t>(1, max_entries)) {}

std::optional<Caller> Authenticator::authenticate(const Request& request, Clock::time_point now) {
  const auto header = request.header("authorization");
  if (!header) return std::nullopt;
  constexpr std::string_view kScheme = "Bearer ";
  if (header->size() <= kScheme.size() || header->size() > 512 ||
      !std::equal(kScheme.begin(), kScheme.end(), header->begin(),
                  [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                              std::tolower(static_cast<unsigned char>(b)); })) {
    return std::nullopt;
  }
  std::string token{header->substr(kScheme.size())};
  {
    std::lock_guard lock{mu_};
    const auto it = cache_.find(token);
    if (it != cache_.end()) {
      if (it->second.expires > now) {
        const auto& o = it->second.owner;
        return Caller{o.user_id, o.user, o.is_admin, std::move(token)};
      }
      cache_.erase(it);
    }
  }
  const auto owner = verify_(token);
  if (!owner) return std::nullopt;
  {
    std::lock_guard lock{mu_};
    if (cache_.size() >= max_entries_) {
      // Drop the expired ones; if that is not enough, the one expiring first.
      std::erase_if(cache_, [&](const auto& kv) { return kv.second.expires <= now; });
      if (cache_.size() >= max_entries_) {
        cache_.erase(std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
          return a.second.expires < b.second.expires;
        }));
      }
    }
    cache_[token] = Entry{*owner, now + ttl_};
  }
  return Caller{owner->user_id, owner->user, owner->is_admin, std::move(token)};
}

}  // namespace vigo::web
