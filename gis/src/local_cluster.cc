// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/local_cluster.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <pqxx/connection>
#include <pqxx/nontransaction>

#include "vigo/common/digest.h"
#include "vigo/common/error.h"
#include "vigo/gis/pg_support.h"

namespace vigo::gis {
namespace fs = std::filesystem;
namespace {

void chown_tree(const fs::path& root, const UserIds& user) {
  if (::lchown(root.c_str(), user.uid, user.gid) != 0) throw_errno("chown " + root.string());
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (::lchown(entry.path().c_str(), user.uid, user.gid) != 0) throw_errno("chown " + entry.path().string());
  }
}

void make_private_dir(const fs::path& dir, const UserIds& user) {
  fs::create_directories(dir);
  if (::chown(dir.c_str(), user.uid, user.gid) != 0) throw_errno("chown " + dir.string());
  if (::chmod(dir.c_str(), 0700) != 0) throw_errno("chmod " + dir.string());
}

bool pid_alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// After a reboot or in a fresh container the recorded pid may belong to an
// unrelated process; only a live process named postgres holds the directory.
bool is_postgres(pid_t pid) {
  std::ifstream comm{"/proc/" + std::to_string(pid) + "/comm"};
  std::string name;
  std::getline(comm, name);
  return !comm || name == "postgres";  // unreadable: assume it is, refuse to clobber
}

void remove_stale_pid_file(const fs::path& data_dir) {
  const fs::path pid_file = data_dir / "postmaster.pid";
  std::ifstream in{pid_file};
  if (!in) return;
  long pid = 0;
  in >> pid;
  if (pid_alive(static_cast<pid_t>(pid)) && is_postgres(static_cast<pid_t>(pid))) {
    throw Error{ErrorCode::kConflict, "a PostgreSQL server (pid " + std::to_string(pid) + ") already runs on " +
                                          data_dir.string() + "; stop it first"};
  }
  fs::remove(pid_file);
}

void check_db_name(std::string_view name, const char* field) {
  static const std::regex kName{"^[a-z0-9_]{1,63}$"};
  if (!std::regex_match(name.begin(), name.end(), kName)) {
    throw invalid_argument(field, "'" + std::string{name} + "' is not a database name (1-63 of a-z 0-9 _)");
  }
}

}  // namespace

LocalCluster LocalCluster::start(LocalClusterOptions options) {
  if (options.data_dir.empty()) throw invalid_argument("data_dir", "must be set");
  if (options.bin_dir.empty()) {
    const char* env = std::getenv("VIGO_PG_BINDIR");
    options.bin_dir = env != nullptr && *env != '\0' ? fs::path{env} : fs::path{"/usr/lib/postgresql/15/bin"};
  }
  if (!fs::exists(options.bin_dir / "postgres") || !fs::exists(options.bin_dir / "initdb")) {
    throw Error{ErrorCode::kNotFound,
                "PostgreSQL 15 server binaries not found in " + options.bin_dir.string() +
                    " (install postgresql-15 or set VIGO_PG_BINDIR)",
                "bin_dir"};
  }
  LocalCluster c;
  if (!options.run_as_user && ::geteuid() == 0) {
    const char* env = std::getenv("VIGO_PG_USER");
    options.run_as_user = env != nullptr && *env != '\0' ? env : "postgres";
  }
  c.server_user_ = options.run_as_user ? lookup_user(*options.run_as_user) : current_user();
  if (c.server_user_.uid == 0) {
    throw invalid_argument("run_as_user", "PostgreSQL refuses to run as root; name an unprivileged user");
  }
  options.data_dir = fs::absolute(options.data_dir);
  c.options_ = std::move(options);
  c.initialize();
  c.launch();
  return c;
}

void LocalCluster::initialize() {
  const fs::path& data = options_.data_dir;
  const fs::path password_file = data.parent_path() / (data.filename().string() + ".password");
  fs::create_directories(data.parent_path());
  if (fs::exists(data / "PG_VERSION")) {
    std::ifstream in{password_file};
    std::getline(in, password_);
    return;
  }
  make_private_dir(data, server_user_);
  const fs::path& cache = options_.initdb_cache_dir;
  if (!cache.empty() && fs::exists(cache / "data" / "PG_VERSION")) {
    fs::copy(cache / "data", data, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    fs::copy_file(cache / "password", password_file, fs::copy_options::overwrite_existing);
  } else {
    password_ = to_hex(random_bytes(16));
    const fs::path pwfile = data.parent_path() / (".pwfile-" + std::to_string(::getpid()));
    {
      std::ofstream out{pwfile};
      out << password_ << '\n';
    }
    ::chown(pwfile.c_str(), server_user_.uid, server_user_.gid);
    ::chmod(pwfile.c_str(), 0600);
    RunResult r;
    try {
      r = run_command({(options_.bin_dir / "initdb").string(), "-D", data.string(), "--no-sync", "-U", "postgres",
                       "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=" + pwfile.string(), "-E",
                       "UTF8", "--locale=C.UTF-8"},
                      std::chrono::seconds{120}, server_user_.uid, server_user_.gid);
    } catch (...) {
      fs::remove(pwfile);
      throw;
    }
    fs::remove(pwfile);
    if (r.exit_code != 0) {
      throw Error{ErrorCode::kInternal, "initdb failed (exit " + std::to_string(r.exit_code) + "): " + r.output};
    }
    {
      std::ofstream out{password_file};
      out << password_ << '\n';
    }
    ::chmod(password_file.c_str(), 0600);
    if (!cache.empty()) {
      // Publish the fresh cluster to the cache atomically (rename of a complete copy).
      const fs::path staging = cache.string() + ".tmp-" + std::to_string(::getpid());
      fs::create_directories(staging);
      fs::copy(data, staging / "data", fs::copy_options::recursive);
      fs::copy_file(password_file, staging / "password");
      std::error_code ec;
      fs::create_directories(cache.parent_path(), ec);
      fs::rename(staging, cache, ec);
      if (ec) fs::remove_all(staging);
    }
  }
  {
    std::ifstream in{password_file};
    std::getline(in, password_);
  }
  chown_tree(data, server_user_);
  ::chmod(data.c_str(), 0700);
}

void LocalCluster::launch() {
  const fs::path& data = options_.data_dir;
  remove_stale_pid_file(data);
  make_private_dir(socket_dir(), server_user_);
  for (int attempt = 1;; ++attempt) {
    // Without TCP the socket directory is private, so the default port can
    // never clash and stays the same across restarts (stable URLs).
    port_ = options_.port != 0 ? options_.port : options_.listen_tcp ? free_tcp_port() : 5432;
    SpawnOptions spawn;
    spawn.argv = {(options_.bin_dir / "postgres").string(), "-D", data.string(), "-p", std::to_string(port_), "-k",
                  socket_dir().string(), "-c",
                  std::string{"listen_addresses="} + (options_.listen_tcp ? "127.0.0.1" : "")};
    std::vector<std::pair<std::string, std::string>> settings;
    if (!options_.durable) {
      settings = {{"fsync", "off"}, {"synchronous_commit", "off"}, {"full_page_writes", "off"}};
    }
    settings.insert(settings.end(), options_.settings.begin(), options_.settings.end());
    for (const auto& [k, v] : settings) {
      spawn.argv.push_back("-c");
      spawn.argv.push_back(k + "=" + v);
    }
    spawn.stdout_path = data / "server.log";
    spawn.stderr_path = spawn.stdout_path;
    spawn.uid = server_user_.uid;
    spawn.gid = server_user_.gid;
    spawn.parent_death_signal = SIGQUIT;
    server_.emplace(Subprocess::spawn(spawn));

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
    while (true) {
      if (auto status = server_->try_wait()) {
        const std::string tail = log_tail();
        server_.reset();
        if (options_.port == 0 && attempt < 3 && tail.find("in use") != std::string::npos) break;
        throw Error{ErrorCode::kUnavailable,
                    "PostgreSQL exited (status " + std::to_string(*status) + ") while starting; log:\n" + tail};
      }
      try {
        pqxx::connection probe{connection_string()};
        return;
      } catch (const pqxx::broken_connection&) {
      }
      if (std::chrono::steady_clock::now() > deadline) {
        const std::string tail = log_tail();
        stop();
        throw Error{ErrorCode::kTimeout, "PostgreSQL did not accept connections within 60 s; log:\n" + tail};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
  }
}

LocalCluster::~LocalCluster() {
  try {
    stop();
  } catch (...) {
  }
}

void LocalCluster::stop() {
  if (server_) {
    server_->terminate(std::chrono::seconds{30}, SIGINT);
    server_.reset();
  }
}

std::string LocalCluster::log_tail() const {
  std::ifstream in{options_.data_dir / "server.log"};
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (std::size_t i = lines.size() > 20 ? lines.size() - 20 : 0; i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

namespace {
// A libpq keyword value, single-quoted when it holds spaces or quotes.
std::string conninfo_value(std::string_view v) {
  if (!v.empty() && v.find_first_of(" '\\\t") == std::string_view::npos) return std::string{v};
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}
}  // namespace

std::string LocalCluster::connection_string(std::string_view dbname) const {
  return "host=" + conninfo_value(socket_dir().string()) + " port=" + std::to_string(port_) +
         " user=postgres dbname=" + conninfo_value(dbname);
}

std::string LocalCluster::tcp_connection_string(std::string_view dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres password=" + conninfo_value(password_) +
         " dbname=" + conninfo_value(dbname);
}

void LocalCluster::create_database(std::string_view name, std::string_view template_db) {
  check_db_name(name, "database");
  if (!template_db.empty()) check_db_name(template_db, "template");
  try {
    pqxx::connection conn{connection_string()};
    pqxx::nontransaction txn{conn};
    if (!txn.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", std::string{name}).empty()) {
      throw Error{ErrorCode::kAlreadyExists, "database " + std::string{name} + " already exists", "database"};
    }
    std::string sql = "CREATE DATABASE " + txn.quote_name(std::string{name});
    if (!template_db.empty()) sql += " TEMPLATE " + txn.quote_name(std::string{template_db});
    txn.exec0(sql);
  } catch (...) {
    rethrow_as_vigo_error("create database");
  }
}

void LocalCluster::drop_database(std::string_view name) {
  check_db_name(name, "database");
  try {
    pqxx::connection conn{connection_string()};
    pqxx::nontransaction txn{conn};
    txn.exec0("DROP DATABASE IF EXISTS " + txn.quote_name(std::string{name}) + " WITH (FORCE)");
  } catch (...) {
    rethrow_as_vigo_error("drop database");
  }
}

}  // namespace vigo::gis
