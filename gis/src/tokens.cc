// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/tokens.h"

#include <pqxx/binarystring>

#include "vigo/common/digest.h"

namespace vigo::gis {
namespace {

constexpr std::string_view kPrefix = "vigo_";

pqxx::binarystring digest_of(const std::string& token) {
  Sha256 d = sha256(token);
  return pqxx::binarystring{d.data(), d.size()};
}

bool well_formed(const std::string& token) {
  return token.size() == kPrefix.size() + 43 && token.starts_with(kPrefix);
}

}  // namespace

std::string Tokens::issue(const std::string& user, const std::string& label,
                          std::optional<std::chrono::seconds> lifetime) {
  if (lifetime && (lifetime->count() < 60 || lifetime->count() > 10LL * 365 * 24 * 3600)) {
    throw Error{ErrorCode::kInvalidArgument, "invalid lifetime: must be between 60 s and 10 years",
                "lifetime"};
  }
  std::string token = std::string{kPrefix} + to_base64url(random_bytes(32));
  std::optional<double> seconds;
  if (lifetime) seconds = static_cast<double>(lifetime->count());
  db_.write([&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_params(
        "INSERT INTO gis.api_tokens (user_id, token_sha256, label, expires_at) "
        "SELECT u.id, $2, $3, now() + make_interval(secs => $4) FROM gis.users u WHERE u.name = $1 "
        "RETURNING id",
        user, digest_of(token), label, seconds);
    if (r.empty()) {
      throw Error{ErrorCode::kNotFound, "invalid user: no user named '" + user + "'", "user"};
    }
  });
  return token;
}

std::optional<TokenOwner> Tokens::verify(const std::string& token) {
  if (!well_formed(token)) return std::nullopt;
  return db_.read([&](pqxx::transaction_base& txn) -> std::optional<TokenOwner> {
    pqxx::result r = txn.exec_params(
        "SELECT u.id, u.name, u.is_admin FROM gis.api_tokens t JOIN gis.users u ON u.id = t.user_id "
        "WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())",
        digest_of(token));
    if (r.empty()) return std::nullopt;
    return TokenOwner{r[0][0].as<std::int64_t>(), r[0][1].as<std::string>(), r[0][2].as<bool>()};
  });
}

bool Tokens::revoke(const std::string& token) {
  if (!well_formed(token)) return false;
  return db_.write([&](pqxx::transaction_base& txn) {
    return txn
               .exec_params("UPDATE gis.api_tokens SET revoked_at = now() WHERE token_sha256 = $1 "
                            "AND revoked_at IS NULL RETURNING id",
                            digest_of(token))
               .size() == 1;
  });
}

}  // namespace vigo::gis
