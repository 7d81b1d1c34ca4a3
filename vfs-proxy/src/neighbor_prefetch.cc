// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/neighbor_prefetch.h"

#include <algorithm>

namespace vigo::vfs {

NeighborPrefetch::Decision NeighborPrefetch::on_read(std::uint32_t index, std::uint32_t chunk_count, bool missed,
                                                     const std::function<bool(std::uint32_t)>& available) {
  Decision d;
  d.used = pending_.erase(index) > 0;
  if (d.used) ++used_;
  if (!d.used && !missed) return d;
  const std::size_t budget = std::min<std::uint64_t>(kStartBudget + 2 * used_, kMaxPending);
  for (const std::int64_t j : {std::int64_t{index} + 1, std::int64_t{index} - 1}) {
    if (pending_.size() >= budget) break;
    if (j < 0 || j >= std::int64_t{chunk_count}) continue;
    const auto n = static_cast<std::uint32_t>(j);
    if (pending_.contains(n) || available(n)) continue;
    pending_.insert(n);
    d.fetch.push_back(n);
  }
  return d;
}

}  // namespace vigo::vfs
