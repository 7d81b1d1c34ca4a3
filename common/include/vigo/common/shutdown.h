// SPDX-License-Identifier: Apache-2.0
// ShutdownSignal: turns SIGINT/SIGTERM into a stop request. Construct it in
// main before starting other threads: it blocks both signals in the calling
// thread (new threads inherit the mask) and a watcher thread waits for them
// with sigwait(). Thread-safe. The destructor restores nothing (the process
// is ending) but joins the watcher.
#pragma once

#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

namespace vigo {

class ShutdownSignal {
 public:
  ShutdownSignal();
  ~ShutdownSignal();
  ShutdownSignal(const ShutdownSignal&) = delete;
  ShutdownSignal& operator=(const ShutdownSignal&) = delete;

  [[nodiscard]] std::stop_token token() const { return source_.get_token(); }
  [[nodiscard]] bool requested() const { return source_.stop_requested(); }
  void request();
  void wait() const;
  // The signal that asked for the stop (0 if request() did).
  [[nodiscard]] int signal_number() const;

 private:
  std::stop_source source_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  int signal_ = 0;  // GUARDED_BY(mu_)
  std::jthread watcher_;
};

}  // namespace vigo
