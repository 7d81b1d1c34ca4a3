// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/migrator.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "support/pg_fixture.h"
#include "vigo/common/error.h"

namespace vigo::gis {
namespace {

TEST(Migrator, AppliesEverythingOnceAndRecordsIt) {
  testing::ScopedDatabase db{false};
  Migrator m{db.connection_string()};
  auto first = m.migrate();
  ASSERT_EQ(first.size(), bundled_migrations().size());
  EXPECT_TRUE(m.migrate().empty());
  for (const auto& s : m.status()) EXPECT_TRUE(s.applied) << s.version;
}

TEST(Migrator, ConcurrentMigratorsApplyEachVersionOnce) {
  testing::ScopedDatabase db{false};
  std::vector<std::vector<int>> applied(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { applied[i] = Migrator{db.connection_string()}.migrate(); });
  }
  for (auto& t : threads) t.join();
  std::size_t total = 0;
  for (const auto& a : applied) total += a.size();
  EXPECT_EQ(total, bundled_migrations().size());
}

TEST(Migrator, RefusesAMigrationWhoseTextChanged) {
  testing::ScopedDatabase db;
  {
    pqxx::connection c{db.connection_string()};
    pqxx::work w{c};
    w.exec0("UPDATE vigo_meta.schema_migrations SET sha256 = 'tampered' WHERE version = 1");
    w.commit();
  }
  try {
    (void)Migrator{db.connection_string()}.migrate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConflict);
  }
}

TEST(Migrator, UnreachableDatabaseIsUnavailable) {
  try {
    (void)Migrator{"host=/nonexistent port=1 dbname=x connect_timeout=1"}.migrate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
}

}  // namespace
}  // namespace vigo::gis
