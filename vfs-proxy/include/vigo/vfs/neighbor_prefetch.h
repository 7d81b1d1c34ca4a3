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
//   - on_read(first, missed, count) is called once per non-sequential read,
//     which touched chunks first .. first + missed.size() - 1 (missed[k]:
//     chunk first + k was not cached). The read is an *event* when one of
//     its chunks missed the cache or is *used* (asked for here and not read
//     since); a read of cached chunks only is none and returns nothing.
//   - Locality, judged once per event against the events before it: an
//     event is *near* when one of the last kRecent events' chunks lies
//     within kNear chunks of one of its own. An event whose chunks are all
//     among those is a *repeat*: near the first time it reads one of the
//     last kRepeatRecent of them again (a boot reads a chunk's inodes or
//     directory blocks a few reads apart, each a round trip while the
//     chunk is spread), and not judged otherwise (a range-first read
//     misses until its chunk arrives whole, however often it is read). The
//     reads *cluster* once at least kMinHistory events have been judged
//     and at least half of the last kHistory were near. Only then does an
//     event ask for the chunks next to it: last + 1, first - 1, ...,
//     last + kReach, first - kReach (nearest first; those in range, not
//     reported available, not already asked for, and not among the recent
//     events' chunks, which their own reads fill). Uniform random reads
//     over a 1 GiB image are near about one time in twelve and so ask for
//     nothing, also when 16 readers' lazy fills never land and every chunk
//     they read again misses again (why kRecent is 16 and kRepeatRecent 8:
//     with 32 and every repeat near, such readers clustered now and then);
//     a boot is near nearly every time. The judgement needs no fetch to
//     test it, so a reader that was spread for a while and then clusters
//     (or back) is judged on what it does now.
//   - At most kMaxInFlight chunks asked for that are not yet available,
//     read or expired (a chunk read while it is still on its way is the
//     read's from then on).
//   - A chunk asked for counts as used if a read touches it within the next
//     kWindow events (used(); vigo-fs's status sums them as neighbor_used);
//     after that it is forgotten and counts as wasted (wasted()).
//   - available(j) tells whether chunk j is cached already.
//   - One state per image version, shared by every open file of it
//     (SharedNeighborPrefetch): 16 random readers of one image are judged
//     on their reads together.
// Not thread-safe: SharedNeighborPrefetch adds the lock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace vigo::vfs {

class NeighborPrefetch {
 public:
  static constexpr std::uint32_t kReach = 3;        // chunks asked for on each side
  static constexpr std::uint32_t kNear = 2;         // "near": within this many chunks
  static constexpr std::size_t kRecent = 16;        // events a near one is looked for in
  static constexpr std::size_t kRepeatRecent = 8;   // a repeat of one of the last this many is near
  static constexpr std::size_t kHistory = 16;       // events judged for clustering
  static constexpr std::size_t kMinHistory = 4;     // events needed before any judgement
  static constexpr std::size_t kMaxInFlight = 16;   // asked for and not available yet
  static constexpr std::uint64_t kWindow = 32;      // events within which a chunk asked for is used

  struct Decision {
    std::size_t used = 0;              // the read's chunks that were asked for here
    std::vector<std::uint32_t> fetch;  // neighbours to fetch ahead
  };

  // missed is not empty; first + missed.size() <= chunk_count (the image's chunks).
  Decision on_read(std::uint32_t first, const std::vector<bool>& missed, std::uint32_t chunk_count,
                   const std::function<bool(std::uint32_t)>& available);

  [[nodiscard]] std::size_t pending() const { return pending_.size(); }
  [[nodiscard]] std::uint64_t used() const { return used_; }
  [[nodiscard]] std::uint64_t wasted() const { return wasted_; }
  [[nodiscard]] bool clustered() const;

 private:
  [[nodiscard]] bool recent(std::uint32_t index) const;
  [[nodiscard]] bool near_recent(std::uint32_t first, std::uint32_t last) const;
  void judge(bool near);  // an event into the history

  std::unordered_map<std::uint32_t, std::uint64_t> pending_;  // asked for, not read yet: when (events_)
  struct Recent {
    std::uint32_t chunk;
    bool repeated;  // read again since, and judged near for it
  };
  std::deque<Recent> recent_;         // the chunks of the last events, kRecent at most
  std::deque<bool> history_;          // the last kHistory events: near or not
  std::size_t near_in_history_ = 0;
  std::uint64_t events_ = 0;
  std::uint64_t used_ = 0;
  std::uint64_t wasted_ = 0;
};

struct SharedNeighborPrefetch {
  std::mutex mu;
  NeighborPrefetch state;  // GUARDED_BY(mu)
};

}  // namespace vigo::vfs
