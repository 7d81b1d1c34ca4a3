// SPDX-License-Identifier: Apache-2.0
#include "support/pg_fixture.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>

#include "vigo/gis/migrator.h"

namespace vigo::testing {
namespace fs = std::filesystem;

namespace {

struct ClusterHolder {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<gis::LocalCluster> cluster;
};

ClusterHolder& holder() {
  static ClusterHolder h;  // destroyed at exit: stops the server, removes the directory
  return h;
}

}  // namespace

std::filesystem::path initdb_cache_dir() {
  if (const char* env = std::getenv("VIGO_PG_INITDB_CACHE"); env != nullptr && *env != '\0') return env;
  return VIGO_PG_INITDB_CACHE_DIR;
}

std::string vigo_cli_path() {
  if (const char* env = std::getenv("VIGO_CLI"); env != nullptr && *env != '\0') return env;
  return VIGO_CLI_PATH;
}

gis::LocalCluster& shared_cluster() {
  ClusterHolder& h = holder();
  if (!h.cluster) {
    h.dir = std::make_unique<TempDir>("vigo-pg");
    gis::LocalClusterOptions options;
    options.data_dir = h.dir->path() / "pg";
    options.durable = false;
    options.initdb_cache_dir = initdb_cache_dir();
    h.cluster = std::make_unique<gis::LocalCluster>(gis::LocalCluster::start(options));
  }
  return *h.cluster;
}

ScopedDatabase::ScopedDatabase(bool migrate) {
  static std::atomic<int> counter{0};
  name_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  shared_cluster().create_database(name_);
  if (migrate) gis::Migrator{connection_string()}.migrate();
}

ScopedDatabase::~ScopedDatabase() {
  try {
    shared_cluster().drop_database(name_);
  } catch (...) {
  }
}

std::string ScopedDatabase::connection_string() const { return shared_cluster().connection_string(name_); }

}  // namespace vigo::testing
