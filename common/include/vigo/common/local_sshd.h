// SPDX-License-Identifier: Apache-2.0
// LocalSshd: a real OpenSSH sshd listening on 127.0.0.1 only, configured on
// its command line (no configuration file), key authentication only, with
// its own ed25519 host key and one client key in a directory the caller
// owns. Keys already in the directory are reused, so a state directory keeps
// the same identity across restarts (the local stack of `vigo up`); the test
// fixture gives it a temporary directory. sshd runs as a Subprocess, so it
// dies with its parent; the destructor stops it. ssh_argv() is the system
// ssh client's command line that reaches it, trusting exactly its host key
// (a known_hosts file in the directory). SFTP is served (internal-sftp), so
// sshfs mounts work too. Optional extra listen addresses (IPv4, e.g. the
// host side of a test's network namespace, tests/support/namespace_host.h)
// serve the same port; ssh_options() is valid for them too (the host key is
// checked under an alias). Not thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "vigo/common/subprocess.h"

namespace vigo {

class LocalSshd {
 public:
  // Makes missing keys and starts sshd on a free port (port 0) or on `port`,
  // on 127.0.0.1 and on every address of `extra_listen`; kUnavailable when
  // it does not accept connections on all of them within 10 s.
  explicit LocalSshd(std::filesystem::path dir, std::uint16_t port = 0, std::vector<std::string> extra_listen = {});
  ~LocalSshd();
  LocalSshd(const LocalSshd&) = delete;
  LocalSshd& operator=(const LocalSshd&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] std::filesystem::path client_key() const { return dir_ / "client_key"; }
  // argv for `ssh ... root@127.0.0.1 <remote_command>` (the current user's
  // name when not root), to sshd's port or to `port` (a relay in front of
  // it: the host key is checked under an alias, not by address and port).
  [[nodiscard]] std::vector<std::string> ssh_argv(const std::string& remote_command, std::uint16_t port = 0) const;
  // The ssh -o options of ssh_argv (key, known_hosts, alias, batch mode),
  // for programs that run ssh themselves (sshfs -o ...).
  [[nodiscard]] std::vector<std::string> ssh_options() const;
  // "user@127.0.0.1".
  [[nodiscard]] std::string login() const;
  // sshd's log (for error messages).
  [[nodiscard]] std::string log() const;
  // Stops the listening sshd (sessions already open live on in their own
  // sshd processes) and starts it again on the same port.
  void stop();
  void restart();

 private:
  bool launch();  // starts sshd on port_; false if it did not come up
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  std::vector<std::string> extra_listen_;
  std::unique_ptr<Subprocess> sshd_;
};

}  // namespace vigo
