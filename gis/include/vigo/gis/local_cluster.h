// SPDX-License-Identifier: Apache-2.0
// LocalCluster: a private PostgreSQL 15 server run as a child process, for
// `vigo up`, the tests and the benchmarks. The data directory is created
// and initdb'd when empty and reused when not. The server listens on a
// private unix socket directory (and on 127.0.0.1 when asked) and runs as an
// unprivileged user (the server refuses root): when we are root, the user
// from VIGO_PG_USER or "postgres". It receives SIGQUIT if this process dies,
// so no server outlives a crashed test. Caveat of PR_SET_PDEATHSIG: the
// "parent" is the thread that called start(); start a cluster from a thread
// that lives as long as the cluster should (normally the main thread).
// Owns the server; movable, not copyable; one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vigo/common/subprocess.h"
#include "vigo/common/system.h"

namespace vigo::gis {

struct LocalClusterOptions {
  std::filesystem::path data_dir;          // created if missing; initdb'd if it has no PG_VERSION
  std::optional<std::string> run_as_user;  // default: see above
  bool durable = true;                     // false: fsync, synchronous_commit, full_page_writes off (tests)
  bool listen_tcp = false;                 // also listen on 127.0.0.1:port (password auth)
  std::uint16_t port = 0;                  // 0: a free port
  std::vector<std::pair<std::string, std::string>> settings;  // extra postgresql.conf settings
  std::filesystem::path bin_dir;           // default: $VIGO_PG_BINDIR or /usr/lib/postgresql/15/bin
  std::filesystem::path initdb_cache_dir;  // if set: initdb once, then copy (fast test clusters)
};

class LocalCluster {
 public:
  // Starts the server and waits until it accepts connections (at most 60 s);
  // failures carry the tail of the server log.
  static LocalCluster start(LocalClusterOptions options);

  LocalCluster(LocalCluster&&) noexcept = default;
  LocalCluster& operator=(LocalCluster&&) noexcept = default;
  ~LocalCluster();

  [[nodiscard]] std::string connection_string(std::string_view dbname = "postgres") const;
  [[nodiscard]] std::string tcp_connection_string(std::string_view dbname = "postgres") const;
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] const std::filesystem::path& data_dir() const { return options_.data_dir; }
  [[nodiscard]] std::filesystem::path socket_dir() const { return options_.data_dir / "sockets"; }
  [[nodiscard]] const std::string& password() const { return password_; }

  // Names: 1-63 of [a-z0-9_]; kAlreadyExists when the database exists.
  void create_database(std::string_view name, std::string_view template_db = {});
  void drop_database(std::string_view name);
  // Fast shutdown (SIGINT), SIGKILL after 30 s. Idempotent.
  void stop();

 private:
  LocalCluster() = default;
  void initialize();
  void launch();
  [[nodiscard]] std::string log_tail() const;

  LocalClusterOptions options_;
  UserIds server_user_;
  std::uint16_t port_ = 0;
  std::string password_;
  std::optional<Subprocess> server_;
};

}  // namespace vigo::gis
