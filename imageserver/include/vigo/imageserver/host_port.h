// SPDX-License-Identifier: Apache-2.0
// HOST:PORT parsing shared by the listeners and `vigo-imaged connect`.
// Stateless, thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace vigo::imageserver {

struct HostPort {
  std::string host;  // without the brackets of "[::1]:PORT"
  std::uint16_t port = 0;
  bool bracketed = false;  // "[...]": an IPv6 address
};

// "HOST:PORT" or "[IPV6]:PORT"; errors are invalid_argument naming `field`.
[[nodiscard]] HostPort split_host_port(const std::string& field, const std::string& address);

}  // namespace vigo::imageserver
