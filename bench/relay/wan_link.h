// SPDX-License-Identifier: Apache-2.0
// WanLink: one direction of an emulated WAN link, shared by every connection
// of the relay (like one physical link). Pure model, no sockets: bytes are
// admitted at a time t, serialized one after the other at the link rate
// (a FIFO: a segment starts when the link finished the previous one) and
// arrive `delay` after their last byte was serialized. So a byte entering at
// t arrives at t + delay at the earliest, and N bytes need N / rate of link
// time whatever the number of connections.
//
// The link holds at most capacity() bytes (delay x rate, the bytes the wire
// itself holds, plus a queue of `buffer_bytes`): room() says how many more
// may enter now; the relay stops reading its sockets when it is 0
// (backpressure, never loss). Bytes leave the link when they arrive
// (pop_due). Not thread-safe (one event loop owns it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

namespace vigo::bench {

struct LinkOptions {
  std::chrono::nanoseconds delay{std::chrono::milliseconds{20}};  // one way
  std::uint64_t rate_bits_per_s = 100'000'000;                    // > 0
  std::size_t buffer_bytes = 64 << 10;                            // queue beyond delay x rate
  std::size_t segment_bytes = 16 << 10;                           // serialization granule
};

struct LinkStats {
  std::uint64_t bytes = 0;           // admitted
  std::uint64_t segments = 0;        // data segments admitted
  std::chrono::nanoseconds busy{0};  // total serialization time
  std::size_t max_in_link = 0;       // high-water mark of bytes in the link
};

class WanLink {
 public:
  using Clock = std::chrono::steady_clock;

  // One segment on the wire: data of connection `conn`, or its end of
  // stream (fin: no data; it arrives after every byte sent before it).
  struct Segment {
    std::uint64_t conn = 0;
    Clock::time_point arrival;
    std::vector<std::uint8_t> data;
    bool fin = false;
  };

  explicit WanLink(LinkOptions options);

  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  [[nodiscard]] std::size_t in_link() const { return in_link_; }
  [[nodiscard]] std::size_t room() const { return in_link_ >= capacity_ ? 0 : capacity_ - in_link_; }

  // Bytes that entered at `now` (at most room() of them, else
  // std::logic_error), split into segments.
  void push(std::uint64_t conn, std::span<const std::uint8_t> bytes, Clock::time_point now);
  // The end of a connection's stream, behind its last byte.
  void push_fin(std::uint64_t conn, Clock::time_point now);

  // When the next segment arrives (nothing in the link: nullopt).
  [[nodiscard]] std::optional<Clock::time_point> next_arrival() const;
  // Removes and returns, in order, every segment that has arrived by `now`.
  std::vector<Segment> pop_due(Clock::time_point now);

  [[nodiscard]] const LinkStats& stats() const { return stats_; }

 private:
  // Serialization time of n bytes at the link rate, rounded up.
  [[nodiscard]] std::chrono::nanoseconds wire_time(std::size_t n) const;

  LinkOptions options_;
  std::size_t capacity_ = 0;
  std::size_t in_link_ = 0;
  Clock::time_point busy_until_{};  // when the link finishes serializing what it has
  std::deque<Segment> fifo_;        // arrival times never decrease
  LinkStats stats_;
};

}  // namespace vigo::bench
