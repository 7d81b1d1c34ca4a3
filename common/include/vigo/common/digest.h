// SPDX-License-Identifier: Apache-2.0
// Digests and secrets through OpenSSL: SHA-256, cryptographically random
// bytes, and their hex / base64url spellings. Thread-safe (stateless).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vigo {

using Sha256 = std::array<std::uint8_t, 32>;

[[nodiscard]] Sha256 sha256(std::string_view data);
[[nodiscard]] std::string sha256_hex(std::string_view data);

// Bytes from the OS's CSPRNG via OpenSSL; throws vigo::Error when it fails.
[[nodiscard]] std::vector<std::uint8_t> random_bytes(std::size_t count);

[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> bytes);
[[nodiscard]] std::string to_base64url(std::span<const std::uint8_t> bytes);  // no padding

}  // namespace vigo
