// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/working_set.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>

#include "vigo/common/log.h"
#include "vigo/common/wire.h"
#include "vigo/common/wire_messages.h"

namespace vigo::vfs {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kMagic[4] = {'V', 'W', 'S', '1'};
// What fits in one profile: magic, chunk count, n, n indices.
constexpr std::uint32_t kMaxRecorded = (wire::kMaxProfile - 12) / 4;

enum class State { kProbing, kRecording, kStoring, kStored, kReplaying, kReplayed, kOff, kFailed };

const char* state_name(State s) {
  switch (s) {
    case State::kProbing: return "probing";
    case State::kRecording: return "recording";
    case State::kStoring: return "storing";
    case State::kStored: return "stored";
    case State::kReplaying: return "replaying";
    case State::kReplayed: return "replayed";
    case State::kOff: return "off";
    case State::kFailed: return "failed";
  }
  return "?";
}

}  // namespace

std::vector<std::uint8_t> encode_working_set(std::uint32_t chunk_count, const std::vector<std::uint32_t>& order) {
  wire::FieldWriter w{wire::kMaxProfile};
  w.fixed({reinterpret_cast<const std::uint8_t*>(kMagic), 4});
  w.u32(chunk_count).u32(static_cast<std::uint32_t>(order.size()));
  for (std::uint32_t i : order) w.u32(i);
  return w.take();
}

namespace {

std::vector<std::uint32_t> decode_fields(std::span<const std::uint8_t> bytes, std::uint32_t chunk_count) {
  wire::FieldReader r{bytes};
  const auto magic = r.fixed("profile", 4);
  if (std::memcmp(magic.data(), kMagic, 4) != 0) throw invalid_argument("profile", "not a working-set profile");
  const std::uint32_t count = r.u32("profile chunk count");
  if (count != chunk_count) {
    throw invalid_argument("profile", "made for " + std::to_string(count) + " chunks, the image has " +
                                          std::to_string(chunk_count));
  }
  const std::uint32_t n = r.u32("profile length");
  if (n > chunk_count || static_cast<std::size_t>(n) * 4 != r.remaining()) {
    throw invalid_argument("profile", "length " + std::to_string(n) + " does not match its bytes");
  }
  std::vector<std::uint32_t> order(n);
  std::vector<bool> seen(chunk_count);
  for (auto& i : order) {
    i = r.u32("profile chunk");
    if (i >= chunk_count || seen[i]) throw invalid_argument("profile", "chunk index " + std::to_string(i) + " repeated or out of range");
    seen[i] = true;
  }
  r.expect_end("profile");
  return order;
}

}  // namespace

std::vector<std::uint32_t> decode_working_set(std::span<const std::uint8_t> bytes, std::uint32_t chunk_count) {
  try {
    return decode_fields(bytes, chunk_count);
  } catch (const Error& e) {
    if (e.field() == "profile") throw;
    throw invalid_argument("profile", e.what());  // a truncated or oversized field
  }
}

class WorkingSets::Version {
 public:
  Version(std::string k, std::shared_ptr<const Manifest> m)
      : key(std::move(k)), manifest(std::move(m)), seen(manifest->chunks.size()) {}
  const std::string key;
  const std::shared_ptr<const Manifest> manifest;
  std::atomic<bool> recording{true};  // touched() records while true
  std::mutex mu;
  State state = State::kProbing;     // GUARDED_BY(mu)
  std::vector<bool> seen;            // GUARDED_BY(mu)
  std::vector<std::uint32_t> order;  // GUARDED_BY(mu): recorded, or the profile being replayed
  Clock::time_point first_touch{}, last_new{};  // GUARDED_BY(mu)
  std::size_t next = 0;              // GUARDED_BY(mu): replay position in order
  std::uint32_t in_flight = 0, prefetched = 0, cached = 0, failed = 0;  // GUARDED_BY(mu)
  std::string error;                 // GUARDED_BY(mu)
};

struct WorkingSets::Context {
  Context(ConnectionPool& p, Fetcher& f, WorkingSetOptions o) : pool(p), fetcher(f), options(o) {}
  ConnectionPool& pool;
  Fetcher& fetcher;
  const WorkingSetOptions options;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;                                      // GUARDED_BY(mu)
  std::map<std::string, std::shared_ptr<Version>> versions;  // GUARDED_BY(mu), by name@version

  [[nodiscard]] bool stopped() {
    std::lock_guard lock{mu};
    return stopping;
  }

  static void fail(Version& v, const std::string& why) {  // REQUIRES(v.mu)
    v.recording = false;
    v.state = State::kFailed;
    v.error = why;
    log::warn("working-set prefetch off for this image", {{"image", v.key}, {"error", why}});
  }

  // Keeps up to options.depth chunks of a replay in flight; runs again from
  // each completion. Cached chunks are counted and skipped in the loop.
  static void pump(const std::shared_ptr<Context>& ctx, const std::shared_ptr<Version>& v) {
    if (ctx->stopped()) return;
    std::unique_lock lock{v->mu};
    while (v->state == State::kReplaying && v->in_flight < ctx->options.depth && v->next < v->order.size()) {
      const ChunkRef ref = v->manifest->chunks[v->order[v->next++]];
      ++v->in_flight;
      lock.unlock();
      const bool fetching = ctx->fetcher.warm(ref, [ctx, v](const Fetcher::ChunkResult& r) {
        {
          std::lock_guard l{v->mu};
          --v->in_flight;
          ++(r.error ? v->failed : v->prefetched);
        }
        pump(ctx, v);
      });
      lock.lock();
      if (!fetching) {
        --v->in_flight;
        ++v->cached;
      }
    }
    if (v->state == State::kReplaying && v->next == v->order.size() && v->in_flight == 0) {
      v->state = State::kReplayed;
      log::info("working set prefetched",
                {{"image", v->key}, {"chunks", v->order.size()}, {"fetched", v->prefetched}, {"cached", v->cached},
                 {"failed", v->failed}});
    }
  }

  static void on_profile(const std::shared_ptr<Context>& ctx, const std::shared_ptr<Version>& v, const Outcome& o) {
    {
      std::lock_guard lock{v->mu};
      if (!o.ok()) {
        if (o.error->code() == ErrorCode::kNotFound) {
          v->state = State::kRecording;  // none yet: this start makes it
          return;
        }
        fail(*v, std::string{"cannot ask for a profile: "} + o.error->what());
        return;
      }
      try {
        v->order = decode_working_set(o.bytes, static_cast<std::uint32_t>(v->manifest->chunks.size()));
      } catch (const Error& e) {
        v->order.clear();
        fail(*v, e.what());
        return;
      }
      v->recording = false;
      v->state = State::kReplaying;
      log::info("replaying a working set", {{"image", v->key}, {"chunks", v->order.size()}});
    }
    pump(ctx, v);
  }

  // Sends the recording (state kStoring); waits for the answer if `wait`.
  static void store(const std::shared_ptr<Context>& ctx, const std::shared_ptr<Version>& v, bool wait) {
    wire::PutProfile m;
    {
      std::lock_guard lock{v->mu};
      m.image = wire::ImageRef{v->manifest->name, v->manifest->version};
      m.blob = encode_working_set(static_cast<std::uint32_t>(v->manifest->chunks.size()), v->order);
    }
    auto done = [v](const Outcome& o) {
      std::lock_guard lock{v->mu};
      if (o.ok()) {
        v->state = State::kStored;
        log::info("working set stored", {{"image", v->key}, {"chunks", v->order.size()}});
      } else {
        fail(*v, std::string{"cannot store the profile: "} + o.error->what());
      }
    };
    if (wait) {
      done(ctx->pool.call(wire::MessageType::kPutProfile, wire::encode(m)));
    } else {
      ctx->pool.submit(wire::MessageType::kPutProfile, wire::encode(m), done,
                       ConnectionPool::Routing{ConnectionPool::Priority::kBackground, std::nullopt, 0});
    }
  }

  // Recordings that are over: kRecording -> kStoring. At stop, every
  // recording with chunks is over.
  std::vector<std::shared_ptr<Version>> finished_recordings(bool all) {
    std::vector<std::shared_ptr<Version>> out;
    const auto now = Clock::now();
    std::lock_guard lock{mu};
    for (auto& [key, v] : versions) {
      std::lock_guard l{v->mu};
      if (v->state != State::kRecording || v->order.empty()) continue;
      if (all || now - v->last_new >= options.idle || now - v->first_touch >= options.window) {
        v->recording = false;
        v->state = State::kStoring;
        out.push_back(v);
      }
    }
    return out;
  }
};

WorkingSets::WorkingSets(ConnectionPool& pool, Fetcher& fetcher, WorkingSetOptions options)
    : ctx_(std::make_shared<Context>(pool, fetcher, options)) {
  if (options.depth < 1 || options.depth > 64) throw invalid_argument("prefetch-depth", "must be 1..64");
  if (options.idle.count() <= 0 || options.window < options.idle) {
    throw invalid_argument("profile-idle-ms", "must be positive and at most the recording window");
  }
  if (options.enabled) thread_ = std::thread{[this] { run(); }};
}

WorkingSets::~WorkingSets() {
  {
    std::lock_guard lock{ctx_->mu};
    ctx_->stopping = true;
  }
  ctx_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
  for (const auto& v : ctx_->finished_recordings(true)) Context::store(ctx_, v, true);
}

void WorkingSets::run() {
  std::unique_lock lock{ctx_->mu};
  while (!ctx_->stopping) {
    ctx_->cv.wait_for(lock, std::chrono::milliseconds{100});
    if (ctx_->stopping) break;
    lock.unlock();
    for (const auto& v : ctx_->finished_recordings(false)) Context::store(ctx_, v, false);
    lock.lock();
  }
}

std::shared_ptr<WorkingSets::Version> WorkingSets::opened(const std::shared_ptr<const Manifest>& manifest) {
  const std::string key = manifest->name + "@" + std::to_string(manifest->version);
  std::shared_ptr<Version> v;
  {
    std::lock_guard lock{ctx_->mu};
    auto& slot = ctx_->versions[key];
    if (slot) return slot;
    slot = v = std::make_shared<Version>(key, manifest);
    if (!ctx_->options.enabled || manifest->chunks.empty()) {
      std::lock_guard l{v->mu};
      v->recording = false;
      v->state = State::kOff;
      return v;
    }
  }
  ctx_->pool.submit(wire::MessageType::kGetProfile, wire::encode(wire::ImageRef{manifest->name, manifest->version}),
                    [ctx = ctx_, v](Outcome o) { Context::on_profile(ctx, v, o); });
  return v;
}

void WorkingSets::touched(Version& v, std::uint64_t first, std::uint64_t last) {
  if (!v.recording.load(std::memory_order_relaxed)) return;
  const auto now = Clock::now();
  std::lock_guard lock{v.mu};
  if (v.state != State::kProbing && v.state != State::kRecording) return;
  last = std::min<std::uint64_t>(last, v.seen.size() - 1);
  for (std::uint64_t i = first; i <= last; ++i) {
    if (v.seen[i] || v.order.size() >= kMaxRecorded) continue;
    v.seen[i] = true;
    if (v.order.empty()) v.first_touch = now;
    v.order.push_back(static_cast<std::uint32_t>(i));
    v.last_new = now;
  }
}

std::vector<WorkingSetStatus> WorkingSets::status() const {
  std::vector<WorkingSetStatus> out;
  std::lock_guard lock{ctx_->mu};
  for (const auto& [key, v] : ctx_->versions) {
    std::lock_guard l{v->mu};
    out.push_back(WorkingSetStatus{key, state_name(v->state), static_cast<std::uint32_t>(v->order.size()),
                                   v->prefetched, v->cached, v->failed, v->error});
  }
  return out;
}

}  // namespace vigo::vfs
