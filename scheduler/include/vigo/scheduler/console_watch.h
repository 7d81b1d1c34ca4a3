// SPDX-License-Identifier: Apache-2.0
// ConsoleWatch: waits for a line to appear in a guest's serial console file
// (the readiness line "VIGO-READY ..."), woken by inotify when the file
// grows, never by polling. The file may not exist yet (it is watched from
// its directory until it does) and may be appended to by QEMU while we read.
// Reads only what was appended since the last look, so waiting costs
// nothing while the guest is quiet. Not thread-safe (one waiter per file);
// any number of ConsoleWatches may run at once.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <stop_token>
#include <string>

namespace vigo::scheduler {

class ConsoleWatch {
 public:
  explicit ConsoleWatch(std::filesystem::path file);
  ~ConsoleWatch();
  ConsoleWatch(const ConsoleWatch&) = delete;
  ConsoleWatch& operator=(const ConsoleWatch&) = delete;

  // The first whole line (without the newline) containing `needle` that
  // appears at or after the current end of what was read; nullopt at the
  // deadline or when stop is requested.
  [[nodiscard]] std::optional<std::string> wait_for(const std::string& needle,
                                                    std::chrono::steady_clock::time_point deadline,
                                                    std::stop_token stop = {});
  // The last `bytes` of the file (for error messages and the console tail).
  [[nodiscard]] std::string tail(std::size_t bytes) const;

 private:
  void read_new();  // appends new bytes to pending_
  std::filesystem::path file_;
  int inotify_ = -1;
  std::uint64_t offset_ = 0;  // bytes of the file consumed
  std::string pending_;       // a partial last line
};

}  // namespace vigo::scheduler
