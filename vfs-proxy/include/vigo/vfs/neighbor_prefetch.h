// SPDX-License-Identifier: Apache-2.0
// NeighborPrefetch: which chunks next to a random read of an image to fetch
// ahead, for one image version. Sequential reads have their own read-ahead
// (ProxyFs::read_ahead); this is for reads that jump around inside a
// region, as a booting guest's do: it reads its files in path order, and
// the files lie next to each other in the image, so the chunks it touches
// are nearly contiguous (96 of the test guest's 97 boot chunks have a
// touched neighbour) while the order it touches them in looks random.
//
// Contract:
//   - on_read(i, count, missed) is called for each chunk a non-sequential read
//     touches. A chunk counts as *used* if it was asked for here and not
//     read since. When the chunk missed the cache or was used, its
//     neighbours i + 1 and i - 1 are returned to be fetched (those in
//     range, not reported available, not already asked for), as far as the
//     budget allows; a plain hit returns nothing.
//   - A chunk asked for counts as used only if a read touches it within
//     the next kWindow calls; after that it counts as wasted. (Random
//     reads over a whole image touch a chunk's neighbour sooner or later
//     by chance; a boot touches it soon.)
//   - The budget: chunks asked for and not yet used or wasted stay below
//     kStartBudget + 2 x used - wasted, and never above kMaxPending. A
//     reader whose neighbours go unread gets kStartBudget chunks fetched
//     for nothing, then no more; one whose neighbours are read earns room
//     as it goes.
//   - available(j) tells whether chunk j is cached already; such chunks
//     are not asked for. (One being fetched is: asking raises a lazy fill
//     of it to background priority.)
//   - One state per image version, shared by every open file of it
//     (SharedNeighborPrefetch): 16 random readers of one image, each with
//     its own descriptor, get one start budget between them, not 16.
// Not thread-safe: SharedNeighborPrefetch adds the lock.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace vigo::vfs {

class NeighborPrefetch {
 public:
  static constexpr std::size_t kStartBudget = 2;
  static constexpr std::size_t kMaxPending = 16;
  static constexpr std::uint64_t kWindow = 32;

  struct Decision {
    bool used = false;                // the chunk was asked for here and is now read
    std::vector<std::uint32_t> fetch;  // neighbours to fetch ahead
  };

  // index < chunk_count (the image's chunks).
  Decision on_read(std::uint32_t index, std::uint32_t chunk_count, bool missed,
                   const std::function<bool(std::uint32_t)>& available);

  [[nodiscard]] std::size_t pending() const { return pending_.size(); }
  [[nodiscard]] std::uint64_t used() const { return used_; }
  [[nodiscard]] std::uint64_t wasted() const { return wasted_; }

 private:
  std::unordered_map<std::uint32_t, std::uint64_t> pending_;  // asked for, not read yet: when (calls_)
  std::uint64_t calls_ = 0;
  std::uint64_t used_ = 0;
  std::uint64_t wasted_ = 0;
};

struct SharedNeighborPrefetch {
  std::mutex mu;
  NeighborPrefetch state;  // GUARDED_BY(mu)
};

}  // namespace vigo::vfs
