// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/neighbor_prefetch.h"

#include <algorithm>

namespace vigo::vfs {

bool NeighborPrefetch::recent(std::uint32_t index) const {
  return std::any_of(recent_.begin(), recent_.end(), [&](const Recent& r) { return r.chunk == index; });
}

bool NeighborPrefetch::near_recent(std::uint32_t first, std::uint32_t last) const {
  return std::any_of(recent_.begin(), recent_.end(), [&](const Recent& r) {
    return r.chunk + kNear >= first && r.chunk <= last + kNear;  // [first - kNear, last + kNear] holds it
  });
}

void NeighborPrefetch::judge(bool near) {
  history_.push_back(near);
  near_in_history_ += near ? 1 : 0;
  if (history_.size() > kHistory) {
    near_in_history_ -= history_.front() ? 1 : 0;
    history_.pop_front();
  }
}

bool NeighborPrefetch::clustered() const {
  return history_.size() >= kMinHistory && 2 * near_in_history_ >= history_.size();
}

NeighborPrefetch::Decision NeighborPrefetch::on_read(std::uint32_t first, const std::vector<bool>& missed,
                                                     std::uint32_t chunk_count,
                                                     const std::function<bool(std::uint32_t)>& available) {
  Decision d;
  if (missed.empty()) return d;
  const auto last = static_cast<std::uint32_t>(first + missed.size() - 1);
  bool event = std::find(missed.begin(), missed.end(), true) != missed.end();
  for (std::uint32_t c = first; c <= last && !event; ++c) event = pending_.contains(c);
  if (!event) return d;
  ++events_;
  std::erase_if(pending_, [&](const auto& p) {
    const bool expired = events_ - p.second > kWindow;
    wasted_ += expired ? 1 : 0;
    return expired;
  });
  for (std::uint32_t c = first; c <= last; ++c) d.used += pending_.erase(c);
  used_ += d.used;

  // Judged against the events before this one; then its chunks join them.
  bool repeat = true;
  for (std::uint32_t c = first; c <= last; ++c) repeat = repeat && recent(c);
  if (repeat) {
    // Near, the first time one of the latest chunks is read again; not
    // judged otherwise (it misses until it arrives whole).
    bool first_repeat = false;
    for (std::size_t k = recent_.size() - std::min(recent_.size(), kRepeatRecent); k < recent_.size(); ++k) {
      Recent& r = recent_[k];
      if (r.chunk < first || r.chunk > last || r.repeated) continue;
      r.repeated = true;
      first_repeat = true;
    }
    if (first_repeat) judge(true);
  } else {
    judge(near_recent(first, last));
    for (std::uint32_t c = first; c <= last; ++c) {
      if (recent(c)) continue;
      recent_.push_back(Recent{c, false});
      if (recent_.size() > kRecent) recent_.pop_front();
    }
  }
  if (!clustered()) return d;

  std::size_t in_flight = static_cast<std::size_t>(
      std::count_if(pending_.begin(), pending_.end(), [&](const auto& p) { return !available(p.first); }));
  for (std::int64_t step = 1; step <= kReach; ++step) {
    for (const std::int64_t j : {std::int64_t{last} + step, std::int64_t{first} - step}) {
      if (in_flight >= kMaxInFlight) return d;
      if (j < 0 || j >= std::int64_t{chunk_count}) continue;
      const auto n = static_cast<std::uint32_t>(j);
      if (pending_.contains(n) || recent(n) || available(n)) continue;
      pending_.emplace(n, events_);
      d.fetch.push_back(n);
      ++in_flight;
    }
  }
  return d;
}

}  // namespace vigo::vfs
