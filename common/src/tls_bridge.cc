// SPDX-License-Identifier: Apache-2.0
#include <sys/socket.h>

#include "vigo/common/error.h"
#include "vigo/common/tls.h"

namespace vigo::tls {

Bridge::Bridge(Stream&& stream, std::chrono::milliseconds linger) : stream_(std::move(stream)) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) throw_errno("socketpair");
  app_.reset(ends[0]);
  pump_.reset(ends[1]);
  thread_ = std::thread{[this, linger] {
    try {
      stream_.pump(pump_.get(), pump_.get(), PumpEnd::kBothClosed, linger);
    } catch (...) {
      error_ = std::current_exception();
    }
    (void)::shutdown(pump_.get(), SHUT_RDWR);  // the plain side sees the end, however it came
  }};
}

Bridge::~Bridge() {
  if (thread_.joinable()) abort();
}

void Bridge::finish() {
  app_.reset();  // EOF for the pump: the rest goes out, then close_notify
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void Bridge::abort() noexcept {
  (void)::shutdown(stream_.socket(), SHUT_RDWR);
  if (app_.valid()) (void)::shutdown(app_.get(), SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  error_ = nullptr;
}

}  // namespace vigo::tls
