// SPDX-License-Identifier: Apache-2.0
#include "wan_link.h"

#include <algorithm>
#include <stdexcept>

namespace vigo::bench {

WanLink::WanLink(LinkOptions options) : options_(options) {
  if (options_.rate_bits_per_s == 0) throw std::invalid_argument("link rate must be positive");
  if (options_.delay.count() < 0) throw std::invalid_argument("link delay must not be negative");
  if (options_.segment_bytes == 0) throw std::invalid_argument("segment size must be positive");
  // Bytes the wire holds while it is busy: delay x rate (rounded up).
  const long double wire_bytes = static_cast<long double>(options_.delay.count()) * 1e-9L *
                                 static_cast<long double>(options_.rate_bits_per_s) / 8.0L;
  capacity_ = static_cast<std::size_t>(wire_bytes + 0.999L) + options_.buffer_bytes;
}

std::chrono::nanoseconds WanLink::wire_time(std::size_t n) const {
  const unsigned __int128 bits_ns = static_cast<unsigned __int128>(n) * 8u * 1'000'000'000u;
  const unsigned __int128 ns = (bits_ns + options_.rate_bits_per_s - 1) / options_.rate_bits_per_s;
  return std::chrono::nanoseconds{static_cast<std::int64_t>(ns)};
}

void WanLink::push(std::uint64_t conn, std::span<const std::uint8_t> bytes, Clock::time_point now) {
  if (bytes.size() > room()) throw std::logic_error("WanLink::push: more bytes than room()");
  for (std::size_t at = 0; at < bytes.size();) {
    const std::size_t n = std::min(options_.segment_bytes, bytes.size() - at);
    const auto wire = wire_time(n);
    busy_until_ = std::max(busy_until_, now) + wire;
    Segment s;
    s.conn = conn;
    s.arrival = busy_until_ + options_.delay;
    s.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin() + static_cast<std::ptrdiff_t>(at + n));
    fifo_.push_back(std::move(s));
    in_link_ += n;
    stats_.bytes += n;
    stats_.segments += 1;
    stats_.busy += wire;
    at += n;
  }
  stats_.max_in_link = std::max(stats_.max_in_link, in_link_);
}

void WanLink::push_fin(std::uint64_t conn, Clock::time_point now) {
  // A FIN takes no link time; it leaves after whatever is already queued.
  Segment s;
  s.conn = conn;
  s.arrival = std::max(busy_until_, now) + options_.delay;
  s.fin = true;
  fifo_.push_back(std::move(s));
}

std::optional<WanLink::Clock::time_point> WanLink::next_arrival() const {
  if (fifo_.empty()) return std::nullopt;
  return fifo_.front().arrival;
}

std::vector<WanLink::Segment> WanLink::pop_due(Clock::time_point now) {
  std::vector<Segment> out;
  while (!fifo_.empty() && fifo_.front().arrival <= now) {
    in_link_ -= fifo_.front().data.size();
    out.push_back(std::move(fifo_.front()));
    fifo_.pop_front();
  }
  return out;
}

}  // namespace vigo::bench
