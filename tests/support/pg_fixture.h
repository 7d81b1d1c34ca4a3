// SPDX-License-Identifier: Apache-2.0
// Test support for PostgreSQL: one private cluster per test process
// (started on first use, stopped at exit, killed with the process if it
// crashes), and a fresh database per test, migrated, dropped afterwards.
// Later fixtures (sshd, FUSE, libvirt) sit beside this one.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "support/temp_dir.h"
#include "vigo/gis/database.h"
#include "vigo/gis/local_cluster.h"

namespace vigo::testing {

// A directory removed (recursively) when the object goes.
// The initdb cache shared by the test clusters, and the vigo binary under test.
[[nodiscard]] std::filesystem::path initdb_cache_dir();
[[nodiscard]] std::string vigo_cli_path();

gis::LocalCluster& shared_cluster();

// A fresh database in the shared cluster; with migrate, the GIS schema is in it.
class ScopedDatabase {
 public:
  explicit ScopedDatabase(bool migrate = true);
  ~ScopedDatabase();
  ScopedDatabase(const ScopedDatabase&) = delete;
  ScopedDatabase& operator=(const ScopedDatabase&) = delete;
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::string connection_string() const;

 private:
  std::string name_;
};

// A test with its own migrated GIS database and a Database pool on it.
class GisTest : public ::testing::Test {
 protected:
  GisTest() : db_(gis::DatabaseOptions{scoped_.connection_string(), 8}) {}
  ScopedDatabase scoped_;
  gis::Database db_;
};

}  // namespace vigo::testing
