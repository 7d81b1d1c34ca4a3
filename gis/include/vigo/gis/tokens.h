// SPDX-License-Identifier: Apache-2.0
// Tokens: API bearer tokens. A token is 32 random bytes shown once in
// base64url with the prefix "vigo_"; the GIS stores only its SHA-256, so a
// database dump reveals no usable token. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "vigo/gis/database.h"

namespace vigo::gis {

struct TokenOwner {
  std::int64_t user_id = 0;
  std::string user;
  bool is_admin = false;
};

class Tokens {
 public:
  explicit Tokens(Database& db) : db_(db) {}

  // Issues a token for the user; returns the clear token (never stored).
  std::string issue(const std::string& user, const std::string& label = {},
                    std::optional<std::chrono::seconds> lifetime = std::nullopt);
  // The owner of a valid (known, unexpired, unrevoked) token, else nullopt.
  std::optional<TokenOwner> verify(const std::string& token);
  // Revokes a token; false when it was not valid.
  bool revoke(const std::string& token);

 private:
  Database& db_;
};

}  // namespace vigo::gis
