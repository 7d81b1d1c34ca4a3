// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/remote_host_files.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <sstream>
#include <system_error>
#include <utility>

#include "vigo/common/error.h"
#include "vigo/common/file_util.h"
#include "vigo/common/subprocess.h"
#include "vigo/common/unique_fd.h"
#include "vigo/scheduler/host_agent.h"

namespace vigo::scheduler {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<std::uint64_t> g_session{0};

std::pair<UniqueFd, UniqueFd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe");
  return {UniqueFd{fds[0]}, UniqueFd{fds[1]}};
}

// One agent process: its stdin (ours to close), its stdout (a pipe, or a
// file for fetch) and its stderr in a file of the staging directory.
struct Session {
  Subprocess proc;
  UniqueFd in;   // write end of its stdin
  UniqueFd out;  // read end of its stdout (none when it goes to a file)
  fs::path err;

  Session(Subprocess p, UniqueFd i, UniqueFd o, fs::path e)
      : proc(std::move(p)), in(std::move(i)), out(std::move(o)), err(std::move(e)) {}
  Session(Session&& o) noexcept
      : proc(std::move(o.proc)), in(std::move(o.in)), out(std::move(o.out)), err(std::exchange(o.err, {})) {}
  Session& operator=(Session&&) = delete;
  // Closes its stdin (the agent stops there), waits `grace` for it to end,
  // then kills the local ssh; its exit status.
  int stop(std::chrono::seconds grace) {
    in.reset();
    const auto status = proc.wait_for(grace);
    return status ? *status : proc.terminate(std::chrono::seconds{2});
  }
  ~Session() {
    if (proc.pid() > 0 && proc.running()) proc.terminate(std::chrono::seconds{2});
    std::error_code ec;
    if (!err.empty()) fs::remove(err, ec);
  }
};

// Reads the session's stdout until it ends, `until` returns true for what
// was read so far, the deadline, or `stop`; false unless it ended or `until` held.
bool read_out(Session& s, std::string& out, Clock::time_point deadline, const std::stop_token& stop,
              const std::function<bool(const std::string&)>& until) {
  char buf[64 * 1024];
  for (;;) {
    if (until && until(out)) return true;
    if (stop.stop_requested()) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{s.out.get(), POLLIN, 0};
    // Short slices only so that a stop request is seen (the stdout pipe
    // wakes us for everything else).
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 250)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_errno("poll");
    if (r == 0) continue;
    const ssize_t n = ::read(s.out.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("reading the host agent's output");
    if (n == 0) return true;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

constexpr std::string_view kAgentPrefix = "vigo-host: ";

// The agent's failure line if there is one (the last), else the last line.
std::string failure_line(const std::string& text) {
  std::istringstream in{text};
  std::string last, agent;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    last = line;
    if (line.starts_with(kAgentPrefix)) agent = line;
  }
  return agent.empty() ? last : agent;
}

}  // namespace

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

namespace {

// Turns an agent's exit status into nothing (0) or the Error it stands for.
void check(int status, const Session& s, const std::string& op, const std::string& destination) {
  if (status == 0) return;
  const std::string err = failure_line(read_text_file(s.err));
  if ((status == kAgentFailed || status == kAgentStopped) && err.starts_with(kAgentPrefix)) {
    const std::string rest = err.substr(kAgentPrefix.size());
    const auto colon = rest.find(": ");
    if (colon != std::string::npos) {
      throw Error{parse_error_code(rest.substr(0, colon)).value_or(ErrorCode::kInternal), rest.substr(colon + 2)};
    }
  }
  if (status == 255) {
    // ssh's own failure: no connection, or the connection (or the agent) died.
    throw Error{ErrorCode::kUnavailable, "cannot reach host " + destination + " over ssh: " + err};
  }
  if (status == 127) {
    throw Error{ErrorCode::kUnavailable, "host " + destination + " has no host agent (vigo-host): " + err};
  }
  throw Error{ErrorCode::kInternal,
              "host agent " + op + " on " + destination + " ended with status " + std::to_string(status) + ": " + err};
}

}  // namespace

RemoteHostFiles::RemoteHostFiles(RemoteHostOptions options) : options_(std::move(options)) {
  if (options_.ssh.size() < 2) throw invalid_argument("host.ssh", "needs the ssh program and a destination");
  if (options_.agent.empty()) throw invalid_argument("host.agent", "is empty");
  if (options_.staging_dir.empty()) throw invalid_argument("host.staging_dir", "is empty");
  std::error_code ec;
  fs::create_directories(options_.staging_dir, ec);
  // Fetched files are VM memory images: only the owner reads them.
  if (!ec) fs::permissions(options_.staging_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) throw Error{ErrorCode::kInternal, "cannot create " + options_.staging_dir.string() + ": " + ec.message()};
  // What an earlier process left (it was killed mid-fetch): ours to clear.
  for (const auto& entry : fs::directory_iterator(options_.staging_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("fetched-") || name.starts_with("agent-")) fs::remove(entry.path(), ec);
  }
}

std::vector<std::string> RemoteHostFiles::command(const std::string& op, const std::vector<std::string>& args) const {
  std::vector<std::string> argv = options_.ssh;
  // Never a terminal (it would mangle binary output and keep the agent's
  // stdin open), never a prompt, and a silent host noticed within a minute.
  argv.insert(argv.begin() + 1, {"-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o",
                                 "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"});
  // ssh joins its remaining words with spaces for the remote shell: each is quoted.
  argv.push_back(shell_quote(options_.agent));
  argv.push_back(shell_quote(op));
  for (const auto& a : args) argv.push_back(shell_quote(a));
  return argv;
}

namespace {

Session start(const std::vector<std::string>& argv, const fs::path& staging, const fs::path& stdout_file = {}) {
  auto [in_r, in_w] = make_pipe();
  UniqueFd out_r, out_w;
  if (stdout_file.empty()) std::tie(out_r, out_w) = make_pipe();
  SpawnOptions o;
  o.argv = argv;
  o.stdin_fd = in_r.get();
  if (stdout_file.empty()) {
    o.stdout_fd = out_w.get();
  } else {
    o.stdout_path = stdout_file;
  }
  o.stderr_path = staging / ("agent-" + std::to_string(::getpid()) + "-" + std::to_string(++g_session) + ".err");
  std::error_code ec;
  fs::remove(o.stderr_path, ec);
  try {
    return Session{Subprocess::spawn(o), std::move(in_w), std::move(out_r), o.stderr_path};
  } catch (...) {
    fs::remove(o.stderr_path, ec);
    throw;
  }
}

}  // namespace

std::string RemoteHostFiles::run(const std::string& op, const std::vector<std::string>& args,
                                 std::chrono::seconds timeout) {
  // Its stdin stays open while it works: closing it stops the agent there.
  Session s = start(command(op, args), options_.staging_dir);
  const auto deadline = Clock::now() + timeout;
  std::string out;
  if (!read_out(s, out, deadline, {}, nullptr)) {
    (void)s.stop(std::chrono::seconds{5});
    throw Error{ErrorCode::kTimeout, "host agent " + op + " on " + options_.ssh.back() + " took longer than " +
                                         std::to_string(timeout.count()) + " s"};
  }
  const auto status = s.proc.wait_for(std::chrono::seconds{30});
  if (!status) {
    s.proc.terminate(std::chrono::seconds{2});
    throw Error{ErrorCode::kTimeout, "host agent " + op + " on " + options_.ssh.back() + " did not exit"};
  }
  check(*status, s, op, options_.ssh.back());
  return out;
}

void RemoteHostFiles::make_dir(const fs::path& dir) { run("mkdir", {dir}, options_.quick_timeout); }

void RemoteHostFiles::remove_all(const fs::path& path) { run("rm", {path}, options_.quick_timeout); }

std::vector<std::string> RemoteHostFiles::list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  std::istringstream in{run("ls", {dir}, options_.quick_timeout)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

void RemoteHostFiles::create_overlay(const fs::path& backing, DiskFormat backing_format, const fs::path& overlay) {
  run("overlay", {backing, disk_format_name(backing_format), overlay}, options_.quick_timeout);
}

void RemoteHostFiles::portable_checkpoint_disk(const fs::path& overlay, const fs::path& out) {
  run("portable-disk", {overlay, out}, options_.timeout);
}

void RemoteHostFiles::full_disk_copy(const fs::path& overlay, const fs::path& out) {
  run("full-disk", {overlay, out}, options_.timeout);
}

SaveFileHeader RemoteHostFiles::read_save_file_header(const fs::path& file) {
  return parse_save_file_header(run("save-header", {file}, options_.quick_timeout),
                                options_.ssh.back() + ":" + file.string());
}

class RemoteResumeStream : public ResumeStream {
 public:
  RemoteResumeStream(Session s, fs::path fifo, std::string destination)
      : session_(std::move(s)), fifo_(std::move(fifo)), destination_(std::move(destination)) {}
  ~RemoteResumeStream() override { (void)stop(); }
  [[nodiscard]] const fs::path& path() const override { return fifo_; }
  std::string stop() override {
    if (stopped_) return why_;
    stopped_ = true;
    const int status = session_.stop(std::chrono::seconds{30});  // the agent stops a writer that is not done
    if (status == 0 || status == kAgentStopped) return why_;
    try {
      check(status, session_, "clone-stream", destination_);
    } catch (const std::exception& e) {
      why_ = e.what();
    }
    return why_;
  }
  [[nodiscard]] bool finished() const override { return stopped_ || !session_.proc.running(); }

 private:
  mutable Session session_;  // running() reaps the agent when it ended
  fs::path fifo_;
  std::string destination_;
  bool stopped_ = false;
  std::string why_;
};

std::unique_ptr<ResumeStream> RemoteHostFiles::stream_clone(const fs::path& parent, const SaveFileHeader&,
                                                            const CloneIdentity& identity, const fs::path& fifo) {
  // The agent reads the parent's header again on its side (a few KiB from
  // its own vigo-fs cache): the stream is made where the file is.
  Session s = start(command("clone-stream", {parent, fifo, encode_clone_identity(identity)}), options_.staging_dir);
  std::string out;
  // Ended, timed out or ready: only the line tells.
  (void)read_out(s, out, Clock::now() + std::chrono::seconds{120}, {},
                 [](const std::string& o) { return o.find("READY\n") != std::string::npos; });
  if (out.find("READY\n") == std::string::npos) {
    s.in.reset();
    const auto status = s.proc.wait_for(std::chrono::seconds{10});
    if (status) check(*status, s, "clone-stream", options_.ssh.back());
    throw Error{ErrorCode::kUnavailable, "host agent clone-stream on " + options_.ssh.back() + " never became ready"};
  }
  return std::make_unique<RemoteResumeStream>(std::move(s), fifo, options_.ssh.back());
}

std::optional<std::string> RemoteHostFiles::wait_for_line(const fs::path& file, const std::string& needle,
                                                          Clock::time_point deadline, std::stop_token stop) {
  const auto ms =
      std::max<long long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
  Session s = start(command("wait-line", {file, needle, std::to_string(ms)}), options_.staging_dir);
  std::string out;
  // A little longer than the agent's own deadline: its answer travels.
  if (!read_out(s, out, deadline + std::chrono::seconds{10}, stop, nullptr)) {
    (void)s.stop(std::chrono::seconds{2});
    return std::nullopt;
  }
  const auto status = s.proc.wait_for(std::chrono::seconds{30});
  if (!status) throw Error{ErrorCode::kTimeout, "host agent wait-line on " + options_.ssh.back() + " did not exit"};
  if (*status == kAgentStopped) return std::nullopt;
  check(*status, s, "wait-line", options_.ssh.back());
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string RemoteHostFiles::tail(const fs::path& file, std::size_t bytes) {
  return run("tail", {file, std::to_string(bytes)}, options_.quick_timeout);
}

fs::path RemoteHostFiles::fetch(const fs::path& file) {
  const fs::path local =
      options_.staging_dir / ("fetched-" + std::to_string(::getpid()) + "-" + std::to_string(++g_session));
  try {
    Session s = start(command("cat", {file}), options_.staging_dir, local);
    const auto status = s.proc.wait_for(options_.timeout);
    if (!status) {
      (void)s.stop(std::chrono::seconds{5});
      throw Error{ErrorCode::kTimeout, "fetching " + file.string() + " from " + options_.ssh.back() + " took too long"};
    }
    check(*status, s, "cat", options_.ssh.back());
    return local;
  } catch (...) {
    std::error_code ec;
    fs::remove(local, ec);
    throw;
  }
}

void RemoteHostFiles::release(const fs::path& fetched) {
  std::error_code ec;
  fs::remove(fetched, ec);
}

}  // namespace vigo::scheduler
