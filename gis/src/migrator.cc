// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/migrator.h"

#include <pqxx/connection>
#include <pqxx/transaction>

#include <map>

#include "vigo/common/digest.h"
#include "vigo/common/error.h"
#include "vigo/gis/pg_support.h"

namespace vigo::gis {
namespace {

constexpr std::string_view kMetaSchema = R"(
CREATE SCHEMA IF NOT EXISTS vigo_meta;
CREATE TABLE IF NOT EXISTS vigo_meta.schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  sha256     text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);)";

// Serializes migrators across processes (any constant shared by all of them).
constexpr std::int64_t kMigrationLock = 0x7669676f6d6967;  // "vigomig"

struct Applied {
  std::string name, sha256, applied_at;
};

std::map<int, Applied> applied_migrations(pqxx::transaction_base& txn) {
  std::map<int, Applied> out;
  for (const auto& row : txn.exec("SELECT version, name, sha256, applied_at::text FROM vigo_meta.schema_migrations")) {
    out[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<std::string>()};
  }
  return out;
}

}  // namespace

Migrator::Migrator(std::string conninfo, std::span<const Migration> migrations)
    : conninfo_(std::move(conninfo)), migrations_(migrations) {}

std::vector<int> Migrator::migrate() {
  std::vector<int> done;
  try {
    pqxx::connection conn{conninfo_};
    {
      pqxx::nontransaction lock{conn};
      lock.exec_params("SELECT pg_advisory_lock($1)", kMigrationLock);
    }
    // The session lock is released when the connection closes, also on error.
    {
      pqxx::work txn{conn};
      txn.exec0(std::string{kMetaSchema});
      txn.commit();
    }
    std::map<int, Applied> applied;
    {
      pqxx::read_transaction txn{conn};
      applied = applied_migrations(txn);
    }
    for (const Migration& m : migrations_) {
      const std::string digest = sha256_hex(m.sql);
      if (auto it = applied.find(m.version); it != applied.end()) {
        if (it->second.sha256 != digest) {
          throw Error{ErrorCode::kConflict,
                      "migration " + std::to_string(m.version) + " (" + std::string{m.name} +
                          ") was applied with different text; refusing to continue"};
        }
        continue;
      }
      pqxx::work txn{conn};
      txn.exec0(std::string{m.sql});
      txn.exec_params0("INSERT INTO vigo_meta.schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                       m.version, std::string{m.name}, digest);
      txn.commit();
      done.push_back(m.version);
    }
  } catch (...) {
    rethrow_as_vigo_error("migrate");
  }
  return done;
}

std::vector<MigrationStatus> Migrator::status() {
  std::map<int, Applied> applied;
  try {
    pqxx::connection conn{conninfo_};
    pqxx::read_transaction txn{conn};
    if (txn.exec("SELECT 1 FROM pg_tables WHERE schemaname = 'vigo_meta' AND tablename = 'schema_migrations'")
            .size() == 1) {
      applied = applied_migrations(txn);
    }
  } catch (...) {
    rethrow_as_vigo_error("migration status");
  }
  std::vector<MigrationStatus> out;
  for (const Migration& m : migrations_) {
    MigrationStatus s{m.version, std::string{m.name}, false, {}};
    if (auto it = applied.find(m.version); it != applied.end()) {
      s.applied = true;
      s.applied_at = it->second.applied_at;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace vigo::gis
