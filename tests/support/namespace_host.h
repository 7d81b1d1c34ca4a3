// SPDX-License-Identifier: Apache-2.0
// NamespaceHost: a second "machine" for a test, in its own network and mount
// namespaces, run by tests/support/second_host.sh (read its header for what
// is inside): its own libvirtd (reached as qemu+ssh://root@10.231.N.2/system),
// its own sshd on 10.231.N.2:22, its own /run, /etc/libvirt and
// /var/{lib,cache,log}/libvirt; the rest of the file system (the build tree,
// /tmp, dir()) is the host's, so guest files and dir() have the same paths
// inside and outside.
//
// Networking: a veth pair; the host side is host_side_address()
// (10.231.N.1/30), the namespace side address() (10.231.N.2/30), and there
// is no route beyond it. A process inside reaches a server of the test only
// when that server listens on host_side_address() (or 0.0.0.0); 127.0.0.1
// inside is the namespace's own loopback. LocalSshd takes extra listen
// addresses for this (local_sshd.h).
//
// ssh to it verifies its host key (a known_hosts file in dir(), strict
// checking, batch mode): libvirt_uri() runs ssh through a wrapper script
// (the URI's `command=`), ssh_argv() and ssh_command() use the same
// configuration. More keys may be appended to authorized_keys() at any time.
//
// One NamespaceHost per index at a time on a machine (the script fails at
// once, "index N is in use", otherwise); tests that may run in parallel use
// different indexes. The constructor throws vigo::Error (kUnavailable, with
// the script's log) unless the host is ready within 60 s. The destructor
// stops it and waits for its cleanup, also when the test failed: every
// domain of its libvirtd destroyed, every process left inside killed
// (qemu, ssh sessions, what spawn_inside() started), the veth and the netns
// deleted. The supervisor dies with the test process (PR_SET_PDEATHSIG) and
// cleans up then too. Needs root. Not thread-safe (one test owns it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/temp_dir.h"
#include "vigo/common/subprocess.h"

namespace vigo::testing {

class NamespaceHost {
 public:
  explicit NamespaceHost(int index);  // 1..254
  ~NamespaceHost();
  NamespaceHost(const NamespaceHost&) = delete;
  NamespaceHost& operator=(const NamespaceHost&) = delete;

  [[nodiscard]] int index() const { return index_; }
  // "10.231.N.2": the host's own address (its sshd listens on port 22).
  [[nodiscard]] std::string address() const;
  // "10.231.N.1": this machine's end of the link.
  [[nodiscard]] std::string host_side_address() const;
  // qemu+ssh://root@10.231.N.2/system?command=<dir()/ssh>
  [[nodiscard]] std::string libvirt_uri() const;
  // argv for `ssh -F <config> root@10.231.N.2 <remote_command>`.
  [[nodiscard]] std::vector<std::string> ssh_argv(const std::string& remote_command) const;
  // An executable that runs ssh with that configuration and its arguments
  // (for programs that take an ssh command, e.g. sshfs -o ssh_command=).
  [[nodiscard]] std::filesystem::path ssh_command() const { return dir() / "ssh"; }
  [[nodiscard]] std::filesystem::path ssh_config() const { return dir() / "ssh_config"; }
  [[nodiscard]] std::filesystem::path client_key() const { return dir() / "client_key"; }
  [[nodiscard]] std::filesystem::path authorized_keys() const { return dir() / "authorized_keys"; }
  // "ADDRESS ssh-ed25519 AAAA...": its sshd's host key as a known_hosts line.
  [[nodiscard]] const std::string& known_hosts_line() const { return known_hosts_; }
  [[nodiscard]] const std::string& netns() const { return netns_; }
  [[nodiscard]] const std::string& host_veth() const { return host_veth_; }
  // A process inside both namespaces (/proc/PID/ns/{net,mnt} are the host's).
  [[nodiscard]] pid_t holder_pid() const { return holder_pid_; }
  [[nodiscard]] pid_t supervisor_pid() const;

  // Starts options.argv inside both namespaces (through nsenter, which execs
  // it: same pid, dies with the test). uid/gid are applied inside. The
  // process enters the namespaces a moment after this returns.
  [[nodiscard]] Subprocess spawn_inside(SpawnOptions options) const;
  // Like vigo::run_command, inside both namespaces.
  [[nodiscard]] RunResult run_inside(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const;

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.path(); }
  // The supervisor's, libvirtd's and sshd's logs (for failure messages).
  [[nodiscard]] std::string log() const;

 private:
  [[nodiscard]] std::vector<std::string> nsenter_prefix() const;

  int index_;
  TempDir dir_{"vigo-nshost"};
  std::string netns_;
  std::string host_veth_;
  std::string known_hosts_;
  pid_t holder_pid_ = -1;
  std::unique_ptr<Subprocess> supervisor_;
};

// tests/support/second_host.sh in the source tree (VIGO_SECOND_HOST to override).
[[nodiscard]] std::string second_host_script();

}  // namespace vigo::testing
