// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/local_cluster.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <pqxx/pqxx>
#include <thread>

#include "support/pg_fixture.h"
#include "vigo/common/error.h"

namespace vigo::gis {
namespace {

using testing::TempDir;

LocalClusterOptions options_in(const TempDir& dir) {
  LocalClusterOptions o;
  o.data_dir = dir.path() / "pg";
  o.durable = false;
  o.initdb_cache_dir = testing::initdb_cache_dir();
  return o;
}

TEST(LocalCluster, StartsConnectsAndRestartsFromTheSameDirectory) {
  TempDir dir;
  {
    auto cluster = LocalCluster::start(options_in(dir));
    cluster.create_database("first");
    pqxx::connection c{cluster.connection_string("first")};
    pqxx::work w{c};
    w.exec0("CREATE TABLE kept (x int)");
    w.exec0("INSERT INTO kept VALUES (42)");
    w.commit();
    EXPECT_THROW(cluster.create_database("first"), Error);
  }
  auto again = LocalCluster::start(options_in(dir));
  pqxx::connection c{again.connection_string("first")};
  pqxx::read_transaction r{c};
  EXPECT_EQ(r.exec1("SELECT x FROM kept")[0].as<int>(), 42);
}

TEST(LocalCluster, TcpNeedsThePassword) {
  TempDir dir;
  auto o = options_in(dir);
  o.listen_tcp = true;
  auto cluster = LocalCluster::start(o);
  pqxx::connection ok{cluster.tcp_connection_string()};
  EXPECT_TRUE(ok.is_open());
  EXPECT_THROW(pqxx::connection("host=127.0.0.1 port=" + std::to_string(cluster.port()) +
                                " user=postgres password=wrong dbname=postgres"),
               pqxx::broken_connection);
}

TEST(LocalCluster, BadNamesAndBinDirAreClearErrors) {
  TempDir dir;
  auto o = options_in(dir);
  o.bin_dir = "/nonexistent/bin";
  try {
    (void)LocalCluster::start(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string{e.what()}.find("/nonexistent/bin"), std::string::npos);
  }
  auto& cluster = testing::shared_cluster();
  try {
    cluster.create_database("bad; DROP DATABASE postgres");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "database");
  }
}

TEST(LocalCluster, ServerDiesWithItsParent) {
  TempDir dir;
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    try {
      auto cluster = LocalCluster::start(options_in(dir));
      (void)!::write(pipefd[1], "x", 1);
      ::pause();
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(pipefd[1]);
  char c = 0;
  ASSERT_EQ(::read(pipefd[0], &c, 1), 1) << "the child could not start a cluster";
  ::close(pipefd[0]);
  std::ifstream pid_file{dir.path() / "pg" / "postmaster.pid"};
  pid_t server = 0;
  pid_file >> server;
  ASSERT_GT(server, 0);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = ::kill(server, 0) != 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  EXPECT_TRUE(gone) << "postgres " << server << " outlived its parent";
}

}  // namespace
}  // namespace vigo::gis
