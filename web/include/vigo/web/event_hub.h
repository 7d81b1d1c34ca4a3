// SPDX-License-Identifier: Apache-2.0
// EventHub: the state changes of workspaces and VMs as a numbered, bounded
// in-memory log, fed by PostgreSQL's notifications on 'vigo_events'
// (sql/007_events.sql: sent on commit by whoever changed the state).
//
// One thread holds one dedicated connection that LISTENs; when the
// connection breaks it reconnects with backoff (1 s doubling to 30 s), and
// the log notes the gap as an event of kind "resync" (a reader that sees it
// reads the current state again). Each event gets the next sequence number
// (from 1; per process, so a reader that reconnects to another vigod
// starts over); the log keeps the newest `capacity` events.
//
// since() never blocks and never touches the database: event streams poll
// it. Thread-safe. start() is idempotent; the destructor stops the thread.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace vigo::web {

struct Event {
  std::uint64_t seq = 0;
  std::int64_t owner_id = 0;  // 0: for everyone (a resync)
  std::string kind;           // "workspace", "vm", "resync"
  nlohmann::json data;        // the notification's payload (owner_id removed)
};

class EventHub {
 public:
  EventHub(std::string conninfo, std::size_t capacity = 4096);
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Starts listening (once). Returns when the first LISTEN is in place or
  // the first attempt failed (the thread keeps trying), so that a change
  // committed after start() returns is not missed.
  void start();

  // Events after `after` (sequence numbers), oldest first, at most `max`,
  // only those of `owner_id` unless `all`. `next` becomes the sequence
  // number to pass as `after` next time (the newest one looked at, also
  // when it was filtered out). If events after `after` were already dropped
  // from the log, the first one returned is a "resync".
  [[nodiscard]] std::vector<Event> since(std::uint64_t after, std::int64_t owner_id, bool all, std::size_t max,
                                         std::uint64_t& next) const;

  // The newest sequence number (0 before the first event).
  [[nodiscard]] std::uint64_t last() const;

  // Appends an event as if it had been notified (the listener's path; also
  // for tests). Payload fields: owner_id is taken out into Event::owner_id.
  void publish(const std::string& kind, nlohmann::json data);

 private:
  void run();

  std::string conninfo_;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Event> log_;
  std::uint64_t last_ = 0;
  bool started_ = false;
  struct Listener;
  std::unique_ptr<Listener> listener_;
  std::thread thread_;
};

}  // namespace vigo::web
