// SPDX-License-Identifier: Apache-2.0
// RemoteHostFiles: HostFiles (host_files.h) of another machine, done there
// by the host agent `vigo-host` (host_agent.h) that each operation runs
// through the system's ssh client: `<ssh...> <agent> <op> <args>`, so the
// operator's ssh configuration, keys, agent and known_hosts apply, as they
// do to libvirt's own qemu+ssh:// connection to the same machine. Each
// argument is quoted for the remote shell (any byte but NUL survives).
//
// ssh runs with -T, BatchMode, ConnectTimeout=15 and ServerAlive checks
// (a host that falls silent fails an operation within about a minute).
// The agent works as long as its ssh session's stdin is open: closing it (a
// timeout, stop(), a stop request, the destructor) ends the agent's work on
// the far side, qemu-img included. fetch() copies a file
// of the host into `staging_dir` here (for the image publisher, which runs
// beside the image store) and release() removes the copy.
//
// Errors: the agent's own (its exit status 1 and last stderr line
// "vigo-host: <code>: <message>", mapped back to the same vigo::Error
// code); ssh that cannot reach the host (exit 255) or an agent that is not
// there (127) is kUnavailable naming the host and ssh's message; an
// operation that outlives its timeout is stopped there and is kTimeout.
// The staging directory is the owner's only (0700); fetched copies an
// earlier process left there are removed by the constructor.
// Thread-safe: every operation is its own ssh process.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "vigo/scheduler/host_files.h"

namespace vigo::scheduler {

struct RemoteHostOptions {
  // The ssh command up to and including the destination, e.g.
  // {"ssh", "-F", "/etc/vigo/ssh_config", "root@host2"}.
  std::vector<std::string> ssh;
  std::string agent = "vigo-host";    // the agent's command on the far side
  std::filesystem::path staging_dir;  // here: fetched files (created if missing)
  std::chrono::seconds timeout{900};        // a disk copy or a fetch (a large disk)
  std::chrono::seconds quick_timeout{120};  // any other operation
};

class RemoteHostFiles : public HostFiles {
 public:
  explicit RemoteHostFiles(RemoteHostOptions options);

  void make_dir(const std::filesystem::path& dir) override;
  void remove_all(const std::filesystem::path& path) override;
  std::vector<std::string> list_dir(const std::filesystem::path& dir) override;
  void create_overlay(const std::filesystem::path& backing, DiskFormat backing_format,
                      const std::filesystem::path& overlay) override;
  void portable_checkpoint_disk(const std::filesystem::path& overlay, const std::filesystem::path& out) override;
  void full_disk_copy(const std::filesystem::path& overlay, const std::filesystem::path& out) override;
  SaveFileHeader read_save_file_header(const std::filesystem::path& file) override;
  std::unique_ptr<ResumeStream> stream_clone(const std::filesystem::path& parent, const SaveFileHeader& header,
                                             const CloneIdentity& identity, const std::filesystem::path& fifo) override;
  std::optional<std::string> wait_for_line(const std::filesystem::path& file, const std::string& needle,
                                           std::chrono::steady_clock::time_point deadline,
                                           std::stop_token stop) override;
  std::string tail(const std::filesystem::path& file, std::size_t bytes) override;
  std::filesystem::path fetch(const std::filesystem::path& file) override;
  void release(const std::filesystem::path& fetched) override;

  // The ssh argv that runs the agent's `op` with `args` (quoted); for tests.
  [[nodiscard]] std::vector<std::string> command(const std::string& op, const std::vector<std::string>& args) const;

 private:
  // Runs an operation to its end; its stdout (kTimeout after `timeout`).
  std::string run(const std::string& op, const std::vector<std::string>& args, std::chrono::seconds timeout);
  RemoteHostOptions options_;
};

// `s` as one word for a POSIX shell: '...' with each ' as '\''.
[[nodiscard]] std::string shell_quote(const std::string& s);

}  // namespace vigo::scheduler
