// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/shutdown.h"

#include <pthread.h>
#include <signal.h>

namespace vigo {

ShutdownSignal::ShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);  // used only to wake the watcher at destruction
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  watcher_ = std::jthread{[this, set](std::stop_token stop) {
    while (!stop.stop_requested()) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR2) continue;
      {
        std::lock_guard lock{mu_};
        if (signal_ == 0) signal_ = sig;
      }
      request();
    }
  }};
}

ShutdownSignal::~ShutdownSignal() {
  watcher_.request_stop();
  pthread_kill(watcher_.native_handle(), SIGUSR2);
}

void ShutdownSignal::request() {
  source_.request_stop();
  std::lock_guard lock{mu_};
  cv_.notify_all();
}

void ShutdownSignal::wait() const {
  std::unique_lock lock{mu_};
  cv_.wait(lock, [&] { return source_.stop_requested(); });
}

int ShutdownSignal::signal_number() const {
  std::lock_guard lock{mu_};
  return signal_;
}

}  // namespace vigo
