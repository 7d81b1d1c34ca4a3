// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/local_sshd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "vigo/common/error.h"
#include "vigo/common/file_util.h"
#include "vigo/common/system.h"

namespace vigo {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kHostAlias = "vigo-local-sshd";

void keygen_if_missing(const fs::path& key) {
  if (fs::exists(key) && fs::exists(fs::path{key.string() + ".pub"})) return;
  fs::remove(key);
  fs::remove(fs::path{key.string() + ".pub"});
  const RunResult r =
      run_command({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vigo", "-f", key.string()}, 30s);
  if (r.exit_code != 0) throw Error{ErrorCode::kInternal, "ssh-keygen failed: " + r.output};
}

bool accepts(std::uint16_t port) {
  try {
    (void)connect_loopback(port);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Whether address:port (IPv4) accepts a TCP connection.
bool accepts_on(const std::string& address, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
    throw Error{ErrorCode::kInvalidArgument, "not an IPv4 address: " + address};
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

std::string login_name() {
  if (::geteuid() == 0) return "root";
  const passwd* pw = ::getpwuid(::geteuid());
  if (pw == nullptr) throw Error{ErrorCode::kInternal, "no passwd entry for uid " + std::to_string(::geteuid())};
  return pw->pw_name;
}

}  // namespace

LocalSshd::LocalSshd(fs::path dir, std::uint16_t port, std::vector<std::string> extra_listen)
    : dir_(std::move(dir)), port_(port), extra_listen_(std::move(extra_listen)) {
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms::owner_all);
  keygen_if_missing(dir_ / "host_key");
  keygen_if_missing(client_key());
  fs::copy_file(fs::path{client_key().string() + ".pub"}, dir_ / "authorized_keys",
                fs::copy_options::overwrite_existing);
  {
    std::ofstream out{dir_ / "known_hosts", std::ios::trunc};
    out << kHostAlias << ' ' << read_text_file(dir_ / "host_key.pub");
    if (!out.flush()) throw_errno("write " + (dir_ / "known_hosts").string());
  }
  if (::geteuid() == 0) fs::create_directories("/run/sshd");  // sshd's privilege-separation directory
  if (port_ != 0) {
    for (int attempt = 0; attempt < 20 && !sshd_; ++attempt) {
      if (!launch()) std::this_thread::sleep_for(100ms);
    }
  } else {
    for (int attempt = 0; attempt < 5 && !sshd_; ++attempt) {
      port_ = free_tcp_port();
      launch();  // false: lost the port race; retry
    }
  }
  if (!sshd_) throw Error{ErrorCode::kUnavailable, "sshd did not start: " + log()};
}

bool LocalSshd::launch() {
  SpawnOptions o;
  // clang-format off
  o.argv = {"/usr/sbin/sshd", "-D", "-e", "-f", "/dev/null",
            "-o", "ListenAddress=127.0.0.1",
            "-o", "Port=" + std::to_string(port_),
            "-o", "HostKey=" + (dir_ / "host_key").string(),
            "-o", "AuthorizedKeysFile=" + (dir_ / "authorized_keys").string(),
            "-o", "PidFile=" + (dir_ / "sshd.pid").string(),
            "-o", "StrictModes=no",
            "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no",
            "-o", "UsePAM=no",
            "-o", "PermitRootLogin=prohibit-password",
            "-o", "MaxStartups=50",
            "-o", "Subsystem=sftp internal-sftp"};
  // clang-format on
  for (const auto& address : extra_listen_) {
    o.argv.push_back("-o");
    o.argv.push_back("ListenAddress=" + address);
  }
  o.stderr_path = dir_ / "sshd.log";
  auto p = std::make_unique<Subprocess>(Subprocess::spawn(o));
  const auto all_accept = [this] {
    if (!accepts(port_)) return false;
    for (const auto& address : extra_listen_) {
      if (!accepts_on(address, port_)) return false;
    }
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && p->running() && !all_accept()) {
    std::this_thread::sleep_for(20ms);
  }
  if (!p->running() || !all_accept()) return false;
  sshd_ = std::move(p);
  return true;
}

void LocalSshd::stop() {
  if (sshd_) sshd_->terminate(5s);
  sshd_.reset();
}

void LocalSshd::restart() {
  stop();
  // The port was ours a moment ago; give a TIME_WAIT-free listener a few tries.
  for (int attempt = 0; attempt < 50 && !sshd_; ++attempt) {
    if (!launch()) std::this_thread::sleep_for(100ms);
  }
  if (!sshd_) throw Error{ErrorCode::kUnavailable, "sshd did not restart on port " + std::to_string(port_) + ": " + log()};
}

LocalSshd::~LocalSshd() {
  if (sshd_) sshd_->terminate(5s);
}

std::vector<std::string> LocalSshd::ssh_options() const {
  return {"IdentityFile=" + client_key().string(), "StrictHostKeyChecking=yes",
          "UserKnownHostsFile=" + (dir_ / "known_hosts").string(), std::string{"HostKeyAlias="} + kHostAlias,
          "BatchMode=yes", "LogLevel=ERROR", "IdentitiesOnly=yes"};
}

std::string LocalSshd::login() const { return login_name() + "@127.0.0.1"; }

std::vector<std::string> LocalSshd::ssh_argv(const std::string& remote_command, std::uint16_t port) const {
  std::vector<std::string> argv{"/usr/bin/ssh", "-p", std::to_string(port == 0 ? port_ : port)};
  for (const auto& o : ssh_options()) {
    argv.push_back("-o");
    argv.push_back(o);
  }
  argv.push_back(login());
  argv.push_back(remote_command);
  return argv;
}

std::string LocalSshd::log() const { return read_text_file(dir_ / "sshd.log"); }

}  // namespace vigo
