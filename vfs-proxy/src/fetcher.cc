// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/fetcher.h"

#include "vigo/common/compress.h"
#include "vigo/common/log.h"
#include "vigo/common/wire_messages.h"

namespace vigo::vfs {

using Clock = std::chrono::steady_clock;

namespace {

Outcome read_handle(const ChunkCache::Handle& h, std::uint32_t offset, std::uint32_t length) {
  Outcome o;
  o.bytes.resize(length);
  try {
    if (h.read(offset, o.bytes) != length) o.error = Error{ErrorCode::kInternal, "short read from the chunk cache"};
  } catch (const Error& e) {
    o.error = e;
  }
  return o;
}

}  // namespace

void Fetcher::count_fetch(std::size_t bytes, Clock::time_point started) {
  fetches_ += 1;
  bytes_fetched_ += bytes;
  fetch_ns_ += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count());
}

void Fetcher::begin_wait(Clock::time_point started) {
  std::lock_guard lock{waits_mu_};
  // (A wait that started just before the one that took the lock first
  // opens the stall at its own start.)
  if (waits_.waiting++ == 0 || started < waits_.since) waits_.since = started;
}

void Fetcher::end_wait(Served how, Clock::time_point started) {
  const auto now = Clock::now();
  const auto waited = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - started).count());
  const auto k = static_cast<std::size_t>(how);
  std::lock_guard lock{waits_mu_};
  waits_.count[k] += 1;
  waits_.ns[k] += waited;
  waits_.max_ns = std::max(waits_.max_ns, waited);
  if (--waits_.waiting == 0) {
    waits_.stalled_ns += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - waits_.since).count());
  }
}

std::uint64_t Fetcher::affinity_of(const ChunkHash& hash) {
  std::uint64_t v = 0;
  std::memcpy(&v, hash.data(), sizeof v);
  return v;
}

void Fetcher::fetch(const ChunkRef& ref, ChunkCallback done, ConnectionPool::Priority priority) {
  join_whole(ref, std::move(done), priority);
}

void Fetcher::join_whole(const ChunkRef& ref, ChunkCallback done, ConnectionPool::Priority priority) {
  if (!whole_.join(ref.hash, std::move(done))) {
    // Already on its way: if it was asked for at a lower priority, raise it.
    auto rank = [](ConnectionPool::Priority p) { return static_cast<int>(p); };
    std::uint64_t ticket = 0;
    {
      std::lock_guard lock{tickets_mu_};
      auto it = tickets_.find(ref.hash);
      if (it != tickets_.end() && rank(priority) < rank(it->second.priority)) {
        ticket = it->second.id;
        it->second.priority = priority;
      }
    }
    if (ticket != 0) (void)pool_.promote(ticket, priority);
    return;
  }
  // The chunk may have landed between the caller's cache miss and the join
  // (another fetch of it completed in that gap): serve it, don't fetch twice.
  if (std::optional<ChunkCache::Handle> cached = open_cached(ref.hash)) {
    Outcome o = read_handle(*cached, 0, ref.raw_length);
    ChunkResult result;
    if (o.ok()) {
      result.raw = std::make_shared<const std::vector<std::uint8_t>>(std::move(o.bytes));
    } else {
      result.error = o.error;
    }
    whole_.complete(ref.hash, result);
    return;
  }
  request_whole(ref, priority);
}

void Fetcher::request_whole(const ChunkRef& ref, ConnectionPool::Priority priority) {
  wire::GetChunk req;
  req.hash = ref.hash;
  req.mode = wire::ChunkMode::kStored;
  const auto started = Clock::now();
  ConnectionPool::Routing routing{priority, affinity_of(ref.hash), pool_.new_ticket()};
  {
    std::lock_guard lock{tickets_mu_};
    tickets_[ref.hash] = Ticket{routing.ticket, priority};
  }
  pool_.submit(
      wire::MessageType::kGetChunk, wire::encode(req),
      [this, ref, started](Outcome o) { on_chunk(ref, started, std::move(o)); }, routing);
}

void Fetcher::on_chunk(const ChunkRef& ref, Clock::time_point started, Outcome outcome) {
  auto priority = ConnectionPool::Priority::kIdle;
  {
    std::lock_guard lock{tickets_mu_};
    if (auto it = tickets_.find(ref.hash); it != tickets_.end()) {
      priority = it->second.priority;  // as raised by whoever joined
      tickets_.erase(it);
    }
  }
  if (!outcome.ok() && outcome.error->code() == ErrorCode::kResourceExhausted) {
    // A lazy fill the pool dropped (too many queued): not a failure; the
    // chunk is fetched again when it is read. But a read (or a working-set
    // replay) may have joined it while the pool was dropping it, too late
    // to raise it: fetch it again for them rather than fail their read.
    if (whole_.complete_if_unwaited(ref.hash)) {
      log::debug("lazy fill dropped", {{"chunk", to_hex(ref.hash)}});
      return;
    }
    if (priority == ConnectionPool::Priority::kIdle) priority = ConnectionPool::Priority::kBackground;
    request_whole(ref, priority);
    return;
  }
  ChunkResult result;
  if (!outcome.ok()) {
    result.error = outcome.error;
  } else {
    try {
      count_fetch(outcome.bytes.size(), started);
      wire::ChunkData data = wire::decode_chunk_data(outcome.bytes);
      if (data.raw_length != ref.raw_length) {
        throw Error{ErrorCode::kInternal, "server's chunk " + to_hex(ref.hash) + " has raw length " +
                                              std::to_string(data.raw_length) + ", manifest says " +
                                              std::to_string(ref.raw_length)};
      }
      std::vector<std::uint8_t> raw;
      if (data.encoding == wire::ChunkEncoding::kZstd) {
        raw = zstd_decompress(data.data, ref.raw_length);
      } else if (data.data.size() == ref.raw_length) {
        raw = std::move(data.data);
      } else {
        throw Error{ErrorCode::kInternal, "server's raw chunk " + to_hex(ref.hash) + " has the wrong length"};
      }
      (void)cache_.commit(ref.hash, raw);  // verifies against the hash
      chunk_fetches_ += 1;
      result.raw = std::make_shared<const std::vector<std::uint8_t>>(std::move(raw));
    } catch (const Error& e) {
      result.error = e;
    } catch (const std::exception& e) {
      result.error = Error{ErrorCode::kInternal, e.what()};
    }
  }
  if (result.error) {
    errors_ += 1;
    log::warn("chunk fetch failed", {{"chunk", to_hex(ref.hash)}, {"error", result.error->what()}});
  }
  whole_.complete(ref.hash, result);
}

std::optional<ChunkCache::Handle> Fetcher::open_cached(const ChunkHash& hash) {
  try {
    return cache_.open(hash);
  } catch (const Error& e) {  // an unreadable cache file: fetch the chunk again
    log::warn("chunk cache open failed", {{"chunk", to_hex(hash)}, {"error", e.what()}});
    return std::nullopt;
  }
}

std::optional<ChunkCache::Handle> Fetcher::cached(const ChunkRef& ref) {
  std::optional<ChunkCache::Handle> h = open_cached(ref.hash);
  if (h) hits_ += 1;
  return h;
}

void Fetcher::read_miss(const ChunkRef& ref, std::uint32_t offset, std::uint32_t length, ReadPattern pattern,
                        ReadCallback done) {
  if (static_cast<std::uint64_t>(offset) + length > ref.raw_length) {
    done(Outcome{{}, Error{ErrorCode::kInvalidArgument, "read past the end of a chunk"}});
    return;
  }
  misses_ += 1;
  const auto started = Clock::now();
  begin_wait(started);
  auto slice = [this, offset, length, started, done](Served how, const ChunkResult& r) {
    end_wait(how, started);
    if (r.error) {
      done(Outcome{{}, r.error});
      return;
    }
    done(Outcome{std::vector<std::uint8_t>(r.raw->begin() + offset, r.raw->begin() + offset + length), std::nullopt});
  };
  // A whole fetch asked for at read-ahead or read priority is on its way:
  // wait for it. A lazy fill still waiting for the link to go quiet is not:
  // a small read takes its range and leaves the fill queued.
  bool whole_on_its_way = whole_.in_flight(ref.hash);
  if (whole_on_its_way) {
    std::lock_guard lock{tickets_mu_};
    auto it = tickets_.find(ref.hash);
    whole_on_its_way = it == tickets_.end() || it->second.priority != ConnectionPool::Priority::kIdle;
  }
  if (whole_on_its_way || pattern == ReadPattern::kSequential ||
      static_cast<std::uint64_t>(length) * 2 > ref.raw_length) {
    if (whole_on_its_way) joined_ += 1;
    const Served how = whole_on_its_way ? Served::kJoined : Served::kWhole;
    join_whole(ref, [slice = std::move(slice), how](const ChunkResult& r) { slice(how, r); },
               ConnectionPool::Priority::kUrgent);
    return;
  }
  // Range first: this read gets just its bytes; the cache gets the chunk
  // later: when the link is idle, or right after the range if the reads
  // cluster (a boot reads on in the same files, and every read of the
  // chunk before the fill lands would pay another round trip).
  wire::GetChunk req;
  req.hash = ref.hash;
  req.mode = wire::ChunkMode::kRange;
  req.offset = offset;
  req.length = length;
  pool_.submit(
      wire::MessageType::kGetChunk, wire::encode(req),
      [this, offset, length, started, done = std::move(done)](Outcome o) {
        if (o.ok()) {
          try {
            count_fetch(o.bytes.size(), started);
            range_fetches_ += 1;
            wire::ChunkData data = wire::decode_chunk_data(o.bytes);
            if (data.encoding != wire::ChunkEncoding::kRaw || data.offset != offset || data.data.size() != length) {
              throw Error{ErrorCode::kInternal, "range reply does not match the request"};
            }
            o.bytes = std::move(data.data);
          } catch (const Error& e) {
            o.error = e;
          }
        }
        if (!o.ok()) errors_ += 1;
        end_wait(Served::kRange, started);
        done(std::move(o));
      },
      // Quick: the reply is checked and handed to the read (a FUSE reply) on the reader thread.
      ConnectionPool::Routing{ConnectionPool::Priority::kUrgent, affinity_of(ref.hash), 0, true});
  fills_ += 1;
  join_whole(ref, nullptr,
             pattern == ReadPattern::kClustered ? ConnectionPool::Priority::kBackground
                                                : ConnectionPool::Priority::kIdle);
}

void Fetcher::prefetch(const ChunkRef& ref) {
  if (!whole_.in_flight(ref.hash) && cache_.contains(ref.hash)) return;
  join_whole(ref, nullptr, ConnectionPool::Priority::kBackground);  // or raises a lazy fill under way
}

void Fetcher::prefetch_neighbor(const ChunkRef& ref) {
  neighbor_prefetches_ += 1;
  prefetch(ref);
}

bool Fetcher::warm(const ChunkRef& ref, ChunkCallback done) {
  if (!whole_.in_flight(ref.hash) && cache_.contains(ref.hash)) return false;
  fetch(ref, std::move(done), ConnectionPool::Priority::kBackground);
  return true;
}

FetcherStats Fetcher::stats() const {
  FetcherStats s;
  s.hits = hits_;
  s.misses = misses_;
  s.fetches = fetches_;
  s.range_fetches = range_fetches_;
  s.chunk_fetches = chunk_fetches_;
  s.bytes_fetched = bytes_fetched_;
  s.fetch_ns = fetch_ns_;
  s.errors = errors_;
  s.in_flight = whole_.size();
  s.fills = fills_;
  s.joined = joined_;
  s.neighbor_prefetches = neighbor_prefetches_;
  s.neighbor_used = neighbor_used_;
  std::lock_guard lock{waits_mu_};
  const auto copy = [&](Served how, std::uint64_t& count, std::uint64_t& ns) {
    count = waits_.count[static_cast<std::size_t>(how)];
    ns = waits_.ns[static_cast<std::size_t>(how)];
  };
  copy(Served::kRange, s.range_waits, s.range_wait_ns);
  copy(Served::kWhole, s.whole_waits, s.whole_wait_ns);
  copy(Served::kJoined, s.joined_waits, s.joined_wait_ns);
  s.max_wait_ns = waits_.max_ns;
  s.stalled_ns = waits_.stalled_ns;
  if (waits_.waiting > 0) {
    s.stalled_ns += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - waits_.since).count());
  }
  return s;
}

}  // namespace vigo::vfs
