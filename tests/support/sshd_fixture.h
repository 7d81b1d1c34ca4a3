// SPDX-License-Identifier: Apache-2.0
// Test support for OpenSSH: a real sshd on loopback (vigo::LocalSshd) with
// throwaway keys in a temporary directory. It dies with the test process,
// and the destructor stops it even when the test failed. SshChannel runs one command through the
// system's ssh client and exposes its stdin/stdout as descriptors, the way
// vigo-fs will reach vigo-imaged. Not thread-safe (one test owns each).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/pg_fixture.h"
#include "vigo/common/local_sshd.h"
#include "vigo/common/subprocess.h"

namespace vigo::testing {

class SshdFixture {
 public:
  SshdFixture();  // starts sshd; throws if it does not accept connections
  SshdFixture(const SshdFixture&) = delete;
  SshdFixture& operator=(const SshdFixture&) = delete;

  [[nodiscard]] std::uint16_t port() const { return sshd_.port(); }
  [[nodiscard]] std::filesystem::path client_key() const { return sshd_.client_key(); }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.path(); }
  // argv for `ssh ... root@127.0.0.1 <remote_command>`.
  [[nodiscard]] std::vector<std::string> ssh_argv(const std::string& remote_command) const {
    return sshd_.ssh_argv(remote_command);
  }
  // sshd's log (for failure messages).
  [[nodiscard]] std::string log() const { return sshd_.log(); }
  // Stops the listening sshd (sessions already open live on in their own
  // sshd processes) and starts it again on the same port.
  void stop() { sshd_.stop(); }
  void restart() { sshd_.restart(); }

 private:
  TempDir dir_{"vigo-sshd"};
  LocalSshd sshd_;
};

// One `ssh` process running a remote command; the test talks to it through
// two pipes (release_fds() hands them to e.g. a WireClient, which closes them).
class SshChannel {
 public:
  SshChannel(const SshdFixture& sshd, const std::string& remote_command);
  ~SshChannel();  // closes what was not taken, then waits for ssh (killed after 10 s)
  SshChannel(const SshChannel&) = delete;
  SshChannel& operator=(const SshChannel&) = delete;

  // Descriptors: write requests to to_remote, read replies from from_remote.
  [[nodiscard]] int to_remote() const { return to_remote_; }
  [[nodiscard]] int from_remote() const { return from_remote_; }
  // The caller now owns both descriptors.
  void release_fds() { to_remote_ = from_remote_ = -1; }
  // Waits for ssh to exit; its status.
  int wait();
  [[nodiscard]] std::string stderr_text() const;

 private:
  std::filesystem::path stderr_path_;
  int to_remote_ = -1;
  int from_remote_ = -1;
  std::unique_ptr<Subprocess> ssh_;
};

[[nodiscard]] std::string imaged_path();

}  // namespace vigo::testing
