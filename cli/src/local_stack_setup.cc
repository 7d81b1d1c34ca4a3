// SPDX-License-Identifier: Apache-2.0
#include "local_stack_setup.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <span>
#include <sstream>
#include <thread>

#include "vigo/common/error.h"
#include "vigo/common/file_util.h"
#include "vigo/common/subprocess.h"
#include "vigo/gis/pg_support.h"
#include "vigo/gis/registry.h"
#include "vigo/gis/tokens.h"
#include "vigo/scheduler/image_publisher.h"

namespace vigo::cli {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Runs an add_* call; a row that is already there is fine.
template <typename Fn>
void keep_existing(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kAlreadyExists) throw;
  }
}

std::string read_first_line(const fs::path& file) {
  std::ifstream in{file};
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

fs::path locate(const fs::path& explicit_path, const char* env_var, const fs::path& relative, const std::string& what) {
  fs::path p = explicit_path;
  if (p.empty()) {
    if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') p = env;
  }
  if (p.empty()) p = fs::read_symlink("/proc/self/exe").parent_path() / relative;
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    throw Error{ErrorCode::kNotFound, what + " not found at " + p.string() +
                                          " (build it: cmake --build build --target all vigo-guest; or set " +
                                          env_var + ")"};
  }
  return fs::weakly_canonical(p);
}

void ensure_certificate(const fs::path& dir) {
  const fs::path cert = dir / "cert.pem", key = dir / "key.pem";
  if (fs::exists(cert) && fs::exists(key)) return;
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all);
  // clang-format off
  const RunResult r = run_command(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-days", "825", "-subj", "/CN=vigo local stack",
       "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
       "-addext", "basicConstraints=critical,CA:TRUE",
       "-keyout", (dir / "key.pem.tmp").string(), "-out", (dir / "cert.pem.tmp").string()},
      60s);
  // clang-format on
  if (r.exit_code != 0) throw Error{ErrorCode::kInternal, "openssl could not make the certificate: " + r.output};
  fs::permissions(dir / "key.pem.tmp", fs::perms::owner_read | fs::perms::owner_write);
  fs::rename(dir / "key.pem.tmp", key);
  fs::rename(dir / "cert.pem.tmp", cert);
}

std::string ensure_token(gis::Database& db, const fs::path& file, const std::string& user) {
  gis::Tokens tokens{db};
  const std::string known = read_first_line(file);
  if (!known.empty()) {
    if (const auto owner = tokens.verify(known); owner && owner->user == user) return known;
  }
  fs::create_directories(file.parent_path());
  fs::permissions(file.parent_path(), fs::perms::owner_all);
  std::string token = tokens.issue(user, "vigo up");
  write_text_atomic(file, token + "\n");
  return token;
}

void register_local_grid(gis::Database& db, const std::string& libvirt_uri, const fs::path& state_dir,
                         std::uint16_t sshd_port, const std::vector<LocalStackHost>& extra_hosts) {
  gis::Registry reg{db};
  keep_existing([&] { reg.add_site("local", "this machine (vigo up)"); });
  keep_existing([&] { reg.add_network("local", "local"); });
  keep_existing([&] { reg.add_image_server("local-store", "local", "ssh://127.0.0.1:" + std::to_string(sshd_port)); });
  keep_existing([&] { reg.add_user("demo"); });
  keep_existing([&] { reg.add_user("admin", true); });

  struct statvfs disk {};
  if (::statvfs(state_dir.c_str(), &disk) != 0) throw_errno("statvfs " + state_dir.string());
  const auto memory_mb = static_cast<std::int64_t>(::sysconf(_SC_PHYS_PAGES)) *
                         static_cast<std::int64_t>(::sysconf(_SC_PAGESIZE)) / (1 << 20);
  auto host = [&](const std::string& name, gis::Labels labels) {
    return gis::HostSpec{name,
                         "local",
                         libvirt_uri,
                         static_cast<std::int32_t>(std::max(1u, std::thread::hardware_concurrency())),
                         memory_mb,
                         static_cast<std::int64_t>(disk.f_blocks * disk.f_frsize >> 30),
                         "x86_64",
                         std::move(labels)};
  };
  std::vector<gis::HostSpec> hosts{host("local", {{"local", "true"}})};
  for (const auto& h : extra_hosts) hosts.push_back(host(h.name, h.labels));
  reg.register_hosts(hosts);
}

bool ensure_demo_image(gis::Database& db, const fs::path& imaged, const fs::path& store, const fs::path& guest_dir) {
  const bool known = db.read([](pqxx::transaction_base& txn) {
    return !txn.exec("SELECT 1 FROM gis.images WHERE name = 'tiny-root' AND deleted_at IS NULL").empty();
  });
  if (known) return false;
  const fs::path disk = guest_dir / "root.ext4";
  scheduler::StorePublisher publisher{imaged, store, "local-store"};
  const auto published = publisher.publish(disk, "tiny-root");
  db.write([&](pqxx::transaction_base& txn) {
    txn.exec_params("SELECT gis.add_image('tiny-root', $1, 'disk', NULL, 'local-store', $2)",
                    static_cast<std::int64_t>(published.version), static_cast<std::int64_t>(published.size));
  });
  return true;
}

std::string toml_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

void write_text_atomic(const fs::path& file, const std::string& text) {
  write_file_atomic(file.parent_path(), file.filename().string(),
                    std::span{reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

std::string tail_of(const fs::path& file, std::size_t max_bytes) {
  std::string text = read_text_file(file);
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  return text;
}

bool is_mounted(const fs::path& dir) {
  std::ifstream in{"/proc/self/mounts"};
  std::string device, point, rest;
  while (in >> device >> point && std::getline(in, rest)) {
    if (point == dir.string()) return true;
  }
  return false;
}

void unmount_lazily(const fs::path& dir) {
  if (is_mounted(dir)) (void)run_command({"fusermount3", "-u", "-z", dir.string()}, std::chrono::seconds{30});
}

std::string imaged_over_ssh(const LocalSshd& sshd, const fs::path& imaged, const fs::path& store, std::uint16_t port) {
  std::string command;
  for (const auto& a : sshd.ssh_argv(imaged.string() + " --stdio --root " + store.string() + " --user demo", port)) {
    command += "'" + a + "' ";
  }
  return command;
}

void wait_for_mount(const fs::path& dir, Subprocess& process, const fs::path& log, std::chrono::seconds timeout,
                    const std::string& what, const std::function<bool()>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!is_mounted(dir) || (ready && !ready())) {
    if (!process.running()) throw Error{ErrorCode::kUnavailable, what + " exited: " + tail_of(log)};
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error{ErrorCode::kTimeout, what + " did not mount on " + dir.string() + " within " +
                                           std::to_string(timeout.count()) + " s: " + tail_of(log)};
    }
    std::this_thread::sleep_for(50ms);
  }
}

std::string wait_for_marker(const fs::path& out, const std::string& marker, Subprocess& process,
                            const fs::path& log, std::chrono::seconds timeout, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string text = read_text_file(out);
    if (const auto at = text.find(marker); at != std::string::npos) {
      const auto end = text.find('\n', at);
      if (end != std::string::npos) return text.substr(at + marker.size(), end - at - marker.size());
    }
    if (!process.running()) throw Error{ErrorCode::kUnavailable, what + " exited: " + tail_of(log)};
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error{ErrorCode::kTimeout, what + " did not start within " + std::to_string(timeout.count()) + " s"};
    }
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace vigo::cli
