// SPDX-License-Identifier: Apache-2.0
// Migrator: applies the numbered SQL migrations of sql/ (compiled into the
// binary) to a database, each in its own transaction, in order, under an
// advisory lock so concurrent migrators wait for each other. Applied
// versions are recorded in vigo_meta.schema_migrations with the SHA-256 of
// their text; running it again applies nothing, and a migration whose text
// changed after it was applied is refused (kConflict) rather than ignored.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vigo::gis {

struct Migration {
  int version = 0;
  std::string_view name;
  std::string_view sql;
};

// The migrations of sql/NNN_name.sql, sorted by version.
[[nodiscard]] std::span<const Migration> bundled_migrations();

struct MigrationStatus {
  int version = 0;
  std::string name;
  bool applied = false;
  std::string applied_at;  // empty when pending
};

class Migrator {
 public:
  explicit Migrator(std::string conninfo, std::span<const Migration> migrations = bundled_migrations());

  // Applies what is pending; returns the versions applied by this call.
  std::vector<int> migrate();
  std::vector<MigrationStatus> status();

 private:
  std::string conninfo_;
  std::span<const Migration> migrations_;
};

}  // namespace vigo::gis
