// SPDX-License-Identifier: Apache-2.0
// Collapser: concurrent requests for the same key (a chunk hash) become one
// piece of work. The first join() for a key returns true and its caller
// starts the work; later joins only add their waiter. complete() removes the
// key and calls every waiter with the result, outside the lock, in the order
// they joined; a join after complete() starts a new round. Waiters must not
// throw. Thread-safe (one mutex).
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vigo::vfs {

template <typename Key, typename Value, typename KeyHash = std::hash<Key>>
class Collapser {
 public:
  using Waiter = std::function<void(const Value&)>;

  // Adds a waiter (may be empty: nobody waits); true if the caller must start the work.
  [[nodiscard]] bool join(const Key& key, Waiter waiter) {
    std::lock_guard lock{mu_};
    auto [it, first] = waiting_.try_emplace(key);
    if (waiter) it->second.push_back(std::move(waiter));
    return first;
  }

  [[nodiscard]] bool in_flight(const Key& key) const {
    std::lock_guard lock{mu_};
    return waiting_.contains(key);
  }

  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock{mu_};
    return waiting_.size();
  }

  // Ends the round for key only if nobody waits for it (true then; an
  // absent key counts as ended). With waiters, the round goes on: false.
  [[nodiscard]] bool complete_if_unwaited(const Key& key) {
    std::lock_guard lock{mu_};
    auto it = waiting_.find(key);
    if (it == waiting_.end()) return true;
    if (!it->second.empty()) return false;
    waiting_.erase(it);
    return true;
  }

  // Ends the round for key; returns how many waiters were called.
  std::size_t complete(const Key& key, const Value& value) {
    std::vector<Waiter> waiters;
    {
      std::lock_guard lock{mu_};
      auto it = waiting_.find(key);
      if (it == waiting_.end()) return 0;
      waiters = std::move(it->second);
      waiting_.erase(it);
    }
    for (auto& w : waiters) w(value);
    return waiters.size();
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<Key, std::vector<Waiter>, KeyHash> waiting_;  // GUARDED_BY(mu_)
};

}  // namespace vigo::vfs
