// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/neighbor_prefetch.h"

#include <algorithm>

namespace vigo::vfs {

bool NeighborPrefetch::near_recent(std::uint32_t index) const {
  return std::any_of(recent_.begin(), recent_.end(), [&](std::uint32_t r) {
    return (r > index ? r - index : index - r) <= kNear;
  });
}

bool NeighborPrefetch::clustered() const {
  return history_.size() >= kMinHistory && 2 * near_in_history_ >= history_.size();
}

NeighborPrefetch::Decision NeighborPrefetch::on_read(std::uint32_t index, std::uint32_t chunk_count, bool missed,
                                                     const std::function<bool(std::uint32_t)>& available) {
  Decision d;
  if (!missed && !pending_.contains(index)) return d;
  ++events_;
  std::erase_if(pending_, [&](const auto& p) {
    const bool expired = events_ - p.second > kWindow;
    wasted_ += expired ? 1 : 0;
    return expired;
  });
  d.used = pending_.erase(index) > 0;
  if (d.used) ++used_;

  // A chunk read again soon (a range-first read misses until its chunk
  // arrives whole) says nothing about where the reads go next.
  const bool repeat = std::find(recent_.begin(), recent_.end(), index) != recent_.end();
  if (!repeat) {
    const bool near = near_recent(index);
    history_.push_back(near);
    near_in_history_ += near ? 1 : 0;
    if (history_.size() > kHistory) {
      near_in_history_ -= history_.front() ? 1 : 0;
      history_.pop_front();
    }
    recent_.push_back(index);
    if (recent_.size() > kRecent) recent_.pop_front();
  }
  if (!clustered()) return d;

  std::size_t in_flight = static_cast<std::size_t>(
      std::count_if(pending_.begin(), pending_.end(), [&](const auto& p) { return !available(p.first); }));
  for (std::int64_t step = 1; step <= kReach; ++step) {
    for (const std::int64_t j : {std::int64_t{index} + step, std::int64_t{index} - step}) {
      if (in_flight >= kMaxInFlight) return d;
      if (j < 0 || j >= std::int64_t{chunk_count}) continue;
      const auto n = static_cast<std::uint32_t>(j);
      if (pending_.contains(n) || available(n)) continue;
      pending_.emplace(n, events_);
      d.fetch.push_back(n);
      ++in_flight;
    }
  }
  return d;
}

}  // namespace vigo::vfs
