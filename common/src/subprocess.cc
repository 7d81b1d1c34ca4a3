// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "vigo/common/error.h"

extern char** environ;

namespace vigo {
namespace {

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

// Only async-signal-safe calls from here until exec.
[[noreturn]] void child_fail(int fd, int step) {
  int payload[2] = {step, errno};
  (void)!::write(fd, payload, sizeof payload);
  ::_exit(127);
}

}  // namespace

Subprocess Subprocess::spawn(const SpawnOptions& o) {
  if (o.argv.empty()) throw invalid_argument("argv", "must name a program");
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry{*e};
    bool replaced = false;
    for (const auto& [k, v] : o.extra_env) {
      if (entry.starts_with(k + "=")) replaced = true;
    }
    if (!replaced) env_storage.emplace_back(entry);
  }
  for (const auto& [k, v] : o.extra_env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string out_path = o.stdout_path.empty() ? "/dev/null" : o.stdout_path.string();
  const std::string err_path = o.stderr_path.empty() ? "/dev/null" : o.stderr_path.string();
  const std::string cwd = o.cwd.string();

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw_errno("pipe2");
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    throw_errno("fork");
  }
  if (pid == 0) {
    ::close(pipefd[0]);
    const int fd = pipefd[1];
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Open the files before any dup2 so that a caller's descriptor that
    // happens to be 0, 1 or 2 is not overwritten before it is used.
    const int in = o.stdin_fd >= 0 ? o.stdin_fd : ::open("/dev/null", O_RDONLY);
    const int out = o.stdout_fd >= 0 ? o.stdout_fd : ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    if (in < 0 || out < 0) child_fail(fd, 1);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    if (err < 0) child_fail(fd, 1);
    const int in2 = ::fcntl(in, F_DUPFD_CLOEXEC, 3);
    const int out2 = ::fcntl(out, F_DUPFD_CLOEXEC, 3);
    const int err2 = err_path == out_path && o.stdout_fd < 0 ? out2 : ::fcntl(err, F_DUPFD_CLOEXEC, 3);
    if (in2 < 0 || out2 < 0 || err2 < 0) child_fail(fd, 1);
    if (::dup2(in2, 0) < 0 || ::dup2(out2, 1) < 0 || ::dup2(err2, 2) < 0) child_fail(fd, 1);
    // Nothing else of the parent's reaches the program (listening sockets,
    // pipes, the files above): close every descriptor but stdio and the pipe.
    if (fd > 3) ::close_range(3, static_cast<unsigned>(fd) - 1, 0);
    ::close_range(static_cast<unsigned>(fd) + 1, ~0U, 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) child_fail(fd, 2);
    if (o.gid || o.uid) {
      if (::setgroups(0, nullptr) != 0) child_fail(fd, 3);
      if (o.gid && ::setgid(*o.gid) != 0) child_fail(fd, 3);
      if (o.uid && ::setuid(*o.uid) != 0) child_fail(fd, 3);
    }
    // After the credential change, which clears the death signal.
    if (o.parent_death_signal != 0) {
      if (::prctl(PR_SET_PDEATHSIG, o.parent_death_signal) != 0) child_fail(fd, 4);
      if (::getppid() != parent) ::_exit(127);
    }
    ::execve(argv[0], argv.data(), envp.data());
    if (std::strchr(argv[0], '/') == nullptr) ::execvpe(argv[0], argv.data(), envp.data());
    child_fail(fd, 5);
  }
  ::close(pipefd[1]);
  int payload[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(pipefd[0], payload, sizeof payload);
  } while (n < 0 && errno == EINTR);
  ::close(pipefd[0]);
  if (n > 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    static constexpr const char* kSteps[] = {"", "open stdio for", "chdir for", "drop privileges for",
                                             "set death signal for", "exec"};
    throw_errno(std::string{kSteps[payload[0] >= 1 && payload[0] <= 5 ? payload[0] : 5]} + " " + o.argv[0],
                payload[1]);
  }
  return Subprocess{pid};
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(std::exchange(other.status_, std::nullopt)) {}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) terminate();
    pid_ = std::exchange(other.pid_, -1);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !status_) {
    try {
      terminate();
    } catch (...) {
    }
  }
}

std::optional<int> Subprocess::try_wait() {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) status_ = decode(status);
  return status_;
}

bool Subprocess::running() { return pid_ > 0 && !try_wait(); }

int Subprocess::wait() {
  if (status_) return *status_;
  if (pid_ <= 0) throw Error{ErrorCode::kInternal, "wait: no child process"};
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) throw_errno("waitpid");
  status_ = decode(status);
  return *status_;
}

std::optional<int> Subprocess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds{1};
  while (true) {
    if (auto s = try_wait()) return s;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds{50});
  }
}

void Subprocess::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

int Subprocess::terminate(std::chrono::milliseconds grace, int first_signal) {
  if (status_) return *status_;
  if (pid_ <= 0) return -1;
  signal(first_signal);
  if (auto s = wait_for(grace)) return *s;
  signal(SIGKILL);
  return wait();
}

RunResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      std::optional<uid_t> uid, std::optional<gid_t> gid) {
  char tmpl[] = "/tmp/vigo-run-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  if (fd < 0) throw_errno("mkstemp");
  ::close(fd);
  const std::filesystem::path out{tmpl};
  if (uid) {
    if (::chown(tmpl, *uid, gid.value_or(static_cast<gid_t>(-1))) != 0) {
      std::filesystem::remove(out);
      throw_errno("chown " + out.string());
    }
  }
  RunResult result;
  try {
    SpawnOptions o;
    o.argv = argv;
    o.stdout_path = out;
    o.stderr_path = out;
    o.uid = uid;
    o.gid = gid;
    Subprocess p = Subprocess::spawn(o);
    auto status = p.wait_for(timeout);
    if (!status) {
      p.terminate(std::chrono::seconds{2}, SIGKILL);
      throw Error{ErrorCode::kTimeout, argv[0] + ": did not finish within " + std::to_string(timeout.count()) + " ms"};
    }
    result.exit_code = *status;
    std::ifstream in{out};
    std::stringstream buf;
    buf << in.rdbuf();
    result.output = buf.str();
  } catch (...) {
    std::filesystem::remove(out);
    throw;
  }
  std::filesystem::remove(out);
  return result;
}

}  // namespace vigo
