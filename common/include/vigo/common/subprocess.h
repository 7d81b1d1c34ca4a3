// SPDX-License-Identifier: Apache-2.0
// Subprocess: a child process started with fork+exec, optionally as another
// user, that dies with its parent (PR_SET_PDEATHSIG), so a crashed test or
// daemon never leaves a server behind. A Subprocess owns its child: the
// destructor terminates it if it still runs. Movable, not copyable; one
// thread at a time.
// Exit status convention: normal exit -> its status; killed -> 128 + signal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vigo {

struct SpawnOptions {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> extra_env;
  std::filesystem::path cwd;
  std::filesystem::path stdout_path;  // empty: /dev/null; opened for append
  std::filesystem::path stderr_path;  // empty: /dev/null; may equal stdout_path
  // When >= 0, the child's stdin / stdout is this descriptor (e.g. one end of
  // a pipe) instead of /dev/null / stdout_path. The caller keeps its copy.
  int stdin_fd = -1;
  int stdout_fd = -1;
  std::optional<uid_t> uid;           // drop to this user (setgroups, setgid, setuid)
  std::optional<gid_t> gid;
  int parent_death_signal = SIGTERM;  // 0: none
};

class Subprocess {
 public:
  // Starts the child; an exec failure is reported as vigo::Error naming argv[0].
  static Subprocess spawn(const SpawnOptions& options);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running();
  std::optional<int> try_wait();
  int wait();
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  void signal(int sig);
  // Sends first_signal, waits up to grace, then SIGKILL; returns the status.
  int terminate(std::chrono::milliseconds grace = std::chrono::seconds{5}, int first_signal = SIGTERM);

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct RunResult {
  int exit_code = 0;
  std::string output;  // stdout and stderr together
};

// Runs a command to completion (killed after timeout: kTimeout).
RunResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      std::optional<uid_t> uid = std::nullopt, std::optional<gid_t> gid = std::nullopt);

}  // namespace vigo
