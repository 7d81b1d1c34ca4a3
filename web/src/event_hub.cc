// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/event_hub.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>

#include "vigo/common/log.h"

namespace vigo::web {
namespace {

constexpr const char* kChannel = "vigo_events";

}  // namespace

struct EventHub::Listener {
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::condition_variable changed;
  bool first_attempt_done = false;

  void first_attempt_over() {
    std::lock_guard lock{mutex};
    first_attempt_done = true;
    changed.notify_all();
  }

  // Sleeps up to `d`, less when stop is asked.
  void pause(std::chrono::milliseconds d) {
    std::unique_lock lock{mutex};
    changed.wait_for(lock, d, [this] { return stop.load(); });
  }
};

namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, EventHub& hub) : pqxx::notification_receiver(c, kChannel), hub_(hub) {}

  void operator()(const std::string& payload, int /*backend_pid*/) override {
    auto data = nlohmann::json::parse(payload, nullptr, false);
    if (data.is_discarded() || !data.is_object() || !data.contains("kind") || !data["kind"].is_string()) {
      log::warn("event hub: a notification that is not an event was ignored", {{"payload", payload.substr(0, 200)}});
      return;
    }
    const std::string kind = data["kind"].get<std::string>();
    data.erase("kind");
    hub_.publish(kind, std::move(data));
  }

 private:
  EventHub& hub_;
};

}  // namespace

EventHub::EventHub(std::string conninfo, std::size_t capacity)
    : conninfo_(std::move(conninfo)), capacity_(std::max<std::size_t>(1, capacity)),
      listener_(std::make_unique<Listener>()) {}

EventHub::~EventHub() {
  {
    std::lock_guard lock{listener_->mutex};
    listener_->stop = true;
    listener_->changed.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void EventHub::start() {
  {
    std::lock_guard lock{mutex_};
    if (started_) return;
    started_ = true;
  }
  thread_ = std::thread{[this] { run(); }};
  std::unique_lock lock{listener_->mutex};
  listener_->changed.wait(lock, [this] { return listener_->first_attempt_done; });
}

void EventHub::run() {
  using namespace std::chrono_literals;
  auto backoff = std::chrono::milliseconds{1000};
  bool listened_before = false;
  while (!listener_->stop) {
    try {
      pqxx::connection connection{conninfo_};
      Receiver receiver{connection, *this};  // LISTENs now
      if (listened_before) {
        // Notifications sent while there was no connection are lost.
        publish("resync", {{"reason", "the event listener reconnected to the database"}});
        log::info("event hub: listening again");
      }
      listened_before = true;
      listener_->first_attempt_over();
      backoff = 1000ms;
      while (!listener_->stop) connection.await_notification(0, 250'000);
    } catch (const std::exception& e) {
      listener_->first_attempt_over();
      log::warn("event hub: no database connection; retrying",
                {{"error", e.what()}, {"retry_in_ms", std::to_string(backoff.count())}});
      listener_->pause(backoff);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30'000ms);
    }
  }
}

void EventHub::publish(const std::string& kind, nlohmann::json data) {
  Event e;
  e.kind = kind;
  if (data.contains("owner_id") && data["owner_id"].is_number_integer()) {
    e.owner_id = data["owner_id"].get<std::int64_t>();
  }
  if (data.is_object()) data.erase("owner_id");
  e.data = std::move(data);
  std::lock_guard lock{mutex_};
  e.seq = ++last_;
  log_.push_back(std::move(e));
  while (log_.size() > capacity_) log_.pop_front();
}

std::uint64_t EventHub::last() const {
  std::lock_guard lock{mutex_};
  return last_;
}

std::vector<Event> EventHub::since(std::uint64_t after, std::int64_t owner_id, bool all, std::size_t max,
                                   std::uint64_t& next) const {
  std::vector<Event> out;
  std::lock_guard lock{mutex_};
  next = std::min(after, last_);  // a number from another process's life: start from now
  if (log_.empty() || next >= last_) return out;
  const std::uint64_t first = log_.front().seq;
  if (next + 1 < first) {
    out.push_back(Event{0, 0, "resync", {{"reason", "events were missed (the reader fell behind)"}}});
    next = first - 1;
  }
  for (auto i = static_cast<std::size_t>(next + 1 - first); i < log_.size() && out.size() < max; ++i) {
    const Event& e = log_[i];
    next = e.seq;
    if (all || e.owner_id == owner_id || e.owner_id == 0) out.push_back(e);
  }
  return out;
}

}  // namespace vigo::web
