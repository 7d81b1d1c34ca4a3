// SPDX-License-Identifier: Apache-2.0
#include "support/pg_fixture.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>

#include "vigo/gis/migrator.h"

namespace vigo::testing {
namespace fs = std::filesystem;

TempDir::TempDir(std::string_view prefix) {
  std::random_device rd;
  for (int i = 0; i < 100; ++i) {
    fs::path p = fs::temp_directory_path() /
                 (std::string{prefix} + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000));
    if (fs::create_directory(p)) {
      path_ = p;
      fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

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
