// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/neighbor_prefetch.h"

#include <algorithm>

namespace vigo::vfs {

NeighborPrefetch::Decision NeighborPrefetch::on_read(std::uint32_t index, std::uint32_t chunk_count, bool missed,
                                                     const std::function<bool(std::uint32_t)>& available) {
  ++calls_;
  std::erase_if(pending_, [&](const auto& p) {
    const bool expired = calls_ - p.second > kWindow;
    wasted_ += expired ? 1 : 0;
    return expired;
  });
  Decision d;
  d.used = pending_.erase(index) > 0;
  if (d.used) ++used_;
  if (!d.used && !missed) return d;
  const std::int64_t credit = static_cast<std::int64_t>(kStartBudget + 2 * used_) - static_cast<std::int64_t>(wasted_);
  const auto budget = static_cast<std::size_t>(std::clamp<std::int64_t>(credit, 0, kMaxPending));
  for (const std::int64_t j : {std::int64_t{index} + 1, std::int64_t{index} - 1}) {
    if (pending_.size() >= budget) break;
    if (j < 0 || j >= std::int64_t{chunk_count}) continue;
    const auto n = static_cast<std::uint32_t>(j);
    if (pending_.contains(n) || available(n)) continue;
    pending_.emplace(n, calls_);
    d.fetch.push_back(n);
  }
  return d;
}

}  // namespace vigo::vfs
