// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/host_port.h"

#include <charconv>

#include "vigo/common/error.h"

namespace vigo::imageserver {

HostPort split_host_port(const std::string& field, const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw invalid_argument(field, "'" + address + "' must be HOST:PORT");
  }
  HostPort out;
  out.host = address.substr(0, colon);
  if (out.host.front() == '[') {
    if (out.host.size() < 3 || out.host.back() != ']') {
      throw invalid_argument(field, "'" + address + "' must be HOST:PORT or [IPV6]:PORT");
    }
    out.host = out.host.substr(1, out.host.size() - 2);
    out.bracketed = true;
  }
  const std::string port_text = address.substr(colon + 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || p != port_text.data() + port_text.size() || port > 65535) {
    throw invalid_argument(field, "'" + port_text + "' is not a port number");
  }
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

}  // namespace vigo::imageserver
