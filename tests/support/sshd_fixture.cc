// SPDX-License-Identifier: Apache-2.0
#include "support/sshd_fixture.h"
#include "support/text_file.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "vigo/common/error.h"
#include "vigo/common/system.h"

namespace vigo::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

void keygen(const fs::path& key) {
  const RunResult r =
      run_command({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vigo-test", "-f", key.string()}, 30s);
  if (r.exit_code != 0) throw std::runtime_error("ssh-keygen failed: " + r.output);
}

bool accepts(std::uint16_t port) {
  try {
    (void)connect_loopback(port);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

std::string imaged_path() {
  if (const char* env = std::getenv("VIGO_IMAGED"); env != nullptr && *env != '\0') return env;
  return VIGO_IMAGED_PATH;
}

SshdFixture::SshdFixture() {
  const fs::path host_key = dir_.path() / "host_key";
  client_key_ = dir_.path() / "client_key";
  keygen(host_key);
  keygen(client_key_);
  fs::copy_file(fs::path{client_key_.string() + ".pub"}, dir_.path() / "authorized_keys");
  fs::create_directories("/run/sshd");  // sshd's privilege-separation directory
  for (int attempt = 0; attempt < 5 && !sshd_; ++attempt) {
    port_ = free_tcp_port();
    launch();  // false: lost the port race; retry
  }
  if (!sshd_) throw std::runtime_error("sshd did not start: " + log());
}

bool SshdFixture::launch() {
  const fs::path host_key = dir_.path() / "host_key";
  SpawnOptions o;
  // clang-format off
  o.argv = {"/usr/sbin/sshd", "-D", "-e", "-f", "/dev/null",
            "-o", "ListenAddress=127.0.0.1",
            "-o", "Port=" + std::to_string(port_),
            "-o", "HostKey=" + host_key.string(),
            "-o", "AuthorizedKeysFile=" + (dir_.path() / "authorized_keys").string(),
            "-o", "PidFile=" + (dir_.path() / "sshd.pid").string(),
            "-o", "StrictModes=no",
            "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no",
            "-o", "UsePAM=no",
            "-o", "PermitRootLogin=prohibit-password",
            "-o", "MaxStartups=50"};
  // clang-format on
  o.stderr_path = dir_.path() / "sshd.log";
  auto p = std::make_unique<Subprocess>(Subprocess::spawn(o));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && p->running() && !accepts(port_)) {
    std::this_thread::sleep_for(20ms);
  }
  if (!p->running() || !accepts(port_)) return false;
  sshd_ = std::move(p);
  return true;
}

void SshdFixture::stop() {
  if (sshd_) sshd_->terminate(5s);
  sshd_.reset();
}

void SshdFixture::restart() {
  stop();
  // The port was ours a moment ago; give a TIME_WAIT-free listener a few tries.
  for (int attempt = 0; attempt < 50 && !sshd_; ++attempt) {
    if (!launch()) std::this_thread::sleep_for(100ms);
  }
  if (!sshd_) throw std::runtime_error("sshd did not restart on port " + std::to_string(port_) + ": " + log());
}

SshdFixture::~SshdFixture() {
  if (sshd_) sshd_->terminate(5s);
}

std::vector<std::string> SshdFixture::ssh_argv(const std::string& remote_command) const {
  // clang-format off
  return {"/usr/bin/ssh", "-i", client_key_.string(), "-p", std::to_string(port_),
          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
          "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes",
          "root@127.0.0.1", remote_command};
  // clang-format on
}

std::string SshdFixture::log() const { return read_text_file(dir_.path() / "sshd.log"); }

SshChannel::SshChannel(const SshdFixture& sshd, const std::string& remote_command) {
  static std::atomic<int> counter{0};
  stderr_path_ = sshd.dir() / ("ssh-" + std::to_string(counter++) + ".log");
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw_errno("pipe2");
  SpawnOptions o;
  o.argv = sshd.ssh_argv(remote_command);
  o.stdin_fd = in[0];
  o.stdout_fd = out[1];
  o.stderr_path = stderr_path_;
  try {
    ssh_ = std::make_unique<Subprocess>(Subprocess::spawn(o));
  } catch (...) {
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    throw;
  }
  ::close(in[0]);
  ::close(out[1]);
  to_remote_ = in[1];
  from_remote_ = out[0];
}

SshChannel::~SshChannel() {
  if (to_remote_ >= 0) ::close(to_remote_);
  if (from_remote_ >= 0) ::close(from_remote_);
  if (ssh_ && !ssh_->wait_for(10s)) ssh_->terminate(2s, SIGKILL);
}

int SshChannel::wait() {
  auto s = ssh_->wait_for(30s);
  if (!s) return ssh_->terminate(2s, SIGKILL);
  return *s;
}

std::string SshChannel::stderr_text() const { return read_text_file(stderr_path_); }

}  // namespace vigo::testing
