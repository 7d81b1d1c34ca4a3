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

std::string imaged_path() {
  if (const char* env = std::getenv("VIGO_IMAGED"); env != nullptr && *env != '\0') return env;
  return VIGO_IMAGED_PATH;
}

SshdFixture::SshdFixture() : sshd_(dir_.path() / "sshd") {}

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
