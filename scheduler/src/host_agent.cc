// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/host_agent.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "vigo/common/error.h"
#include "vigo/common/file_util.h"
#include "vigo/common/unique_fd.h"
#include "vigo/scheduler/host_files.h"

namespace vigo::scheduler {

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

namespace {

// True once stdin has ended (the ssh session closed or vigod stopped us);
// waits at most `wait`.
bool stdin_ended(std::chrono::milliseconds wait) {
  pollfd p{STDIN_FILENO, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
  char buf[256];
  const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
  return n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
}

void write_all(int fd, std::string_view bytes) {
  vigo::write_all(fd, {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, "the result");
}

// The one failure line RemoteHostFiles reads: "vigo-host: <code>: <message>",
// the message on one line.
void report(ErrorCode code, std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fprintf(stderr, "vigo-host: %s: %s\n", std::string{to_string(code)}.c_str(), message.c_str());
}

// For operations that do not watch stdin themselves: its end (vigod gave
// up: a timeout, or it went away) ends the agent at once; children (qemu-img)
// get SIGTERM through their parent-death signal.
void exit_when_stdin_ends() {
  std::thread{[] {
    while (!stdin_ended(std::chrono::seconds{3600})) {
    }
    report(ErrorCode::kTimeout, "stopped: the ssh session's input ended");
    std::fflush(stderr);
    ::_exit(kAgentStopped);
  }}.detach();
}

fs::path path_arg(const std::string& arg, const char* what) {
  const fs::path p{arg};
  if (arg.empty() || arg.size() > 4096 || !p.is_absolute()) {
    throw invalid_argument(what, "'" + arg + "' is not an absolute path");
  }
  for (const auto& part : p) {
    if (part == "..") throw invalid_argument(what, "'" + arg + "' goes up with ..");
  }
  return p;
}

std::uint64_t number_arg(const std::string& arg, const char* what) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), v);
  if (ec != std::errc{} || end != arg.data() + arg.size())
    throw invalid_argument(what, "'" + arg + "' is not a number");
  return v;
}

DiskFormat format_arg(const std::string& arg) {
  if (arg == "raw") return DiskFormat::kRaw;
  if (arg == "qcow2") return DiskFormat::kQcow2;
  throw invalid_argument("format", "'" + arg + "' is neither raw nor qcow2");
}


void copy_range(const fs::path& file, std::uint64_t from, std::uint64_t bytes) {
  const UniqueFd fd = open_or_throw(file, O_RDONLY, file.string());
  std::string buf(1 << 20, '\0');
  std::uint64_t offset = from;
  while (bytes > 0) {
    const ssize_t n =
        ::pread(fd.get(), buf.data(), std::min<std::uint64_t>(buf.size(), bytes), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno(file.string());
    if (n == 0) break;
    write_all(STDOUT_FILENO, {buf.data(), static_cast<std::size_t>(n)});
    offset += static_cast<std::uint64_t>(n);
    bytes -= static_cast<std::uint64_t>(n);
  }
}

int clone_stream(LocalHostFiles& files, const Args& a) {
  const fs::path parent = path_arg(a[0], "parent");
  const fs::path fifo = path_arg(a[1], "fifo");
  const CloneIdentity identity = decode_clone_identity(a[2]);
  const SaveFileHeader header = files.read_save_file_header(parent);
  auto stream = files.stream_clone(parent, header, identity, fifo);
  write_all(STDOUT_FILENO, "READY\n");
  // The writer ends by itself when the reader took everything (or failed);
  // the end of stdin means vigod gave up on this restore.
  while (!stream->finished()) {
    if (stdin_ended(std::chrono::milliseconds{100})) {
      const std::string why = stream->stop();
      if (!why.empty()) report(ErrorCode::kInternal, why);  // it failed as it was stopped: say why
      return kAgentStopped;
    }
  }
  const std::string why = stream->stop();
  if (!why.empty()) throw Error{ErrorCode::kInternal, why};
  return 0;
}

int wait_line(LocalHostFiles& files, const Args& a) {
  const fs::path file = path_arg(a[0], "file");
  const auto ms = number_arg(a[2], "milliseconds");
  // The end of stdin ends the agent (exit_when_stdin_ends), as for any operation.
  const auto line = files.wait_for_line(file, a[1], std::chrono::steady_clock::now() + std::chrono::milliseconds{ms}, {});
  if (!line) return kAgentStopped;
  write_all(STDOUT_FILENO, *line + "\n");
  return 0;
}

struct Command {
  std::size_t args;
  std::function<int(LocalHostFiles&, const Args&)> run;
  bool watches_stdin = false;  // stops itself when stdin ends (it has to clean up first)
};

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> table{
      {"mkdir", {1, [](LocalHostFiles& f, const Args& a) { return f.make_dir(path_arg(a[0], "dir")), 0; }}},
      {"rm", {1, [](LocalHostFiles& f, const Args& a) { return f.remove_all(path_arg(a[0], "path")), 0; }}},
      {"ls",
       {1,
        [](LocalHostFiles& f, const Args& a) {
          std::string out;
          for (const auto& n : f.list_dir(path_arg(a[0], "dir"))) out += n + "\n";
          write_all(STDOUT_FILENO, out);
          return 0;
        }}},
      {"overlay",
       {3,
        [](LocalHostFiles& f, const Args& a) {
          f.create_overlay(path_arg(a[0], "backing"), format_arg(a[1]), path_arg(a[2], "overlay"));
          return 0;
        }}},
      {"portable-disk",
       {2,
        [](LocalHostFiles& f, const Args& a) {
          f.portable_checkpoint_disk(path_arg(a[0], "overlay"), path_arg(a[1], "out"));
          return 0;
        }}},
      {"full-disk",
       {2,
        [](LocalHostFiles& f, const Args& a) {
          f.full_disk_copy(path_arg(a[0], "overlay"), path_arg(a[1], "out"));
          return 0;
        }}},
      {"save-header",
       {1,
        [](LocalHostFiles& f, const Args& a) {
          const fs::path file = path_arg(a[0], "file");
          copy_range(file, 0, f.read_save_file_header(file).stream_offset);
          return 0;
        }}},
      {"clone-stream", {3, clone_stream, true}},
      {"wait-line", {3, wait_line}},
      {"tail",
       {2,
        [](LocalHostFiles& f, const Args& a) {
          write_all(STDOUT_FILENO, f.tail(path_arg(a[0], "file"), number_arg(a[1], "bytes")));
          return 0;
        }}},
      {"cat",
       {1,
        [](LocalHostFiles&, const Args& a) {
          copy_range(path_arg(a[0], "file"), 0, UINT64_MAX);
          return 0;
        }}},
  };
  return table;
}

}  // namespace

int run_host_agent(const std::vector<std::string>& args) {
  try {
    if (args.empty()) throw invalid_argument("command", "missing (vigo-host OP ARGS...; see host_agent.h)");
    const auto it = commands().find(args[0]);
    if (it == commands().end()) throw invalid_argument("command", "'" + args[0] + "' is not an operation");
    const Args rest{args.begin() + 1, args.end()};
    if (rest.size() != it->second.args) {
      throw invalid_argument("command", args[0] + " takes " + std::to_string(it->second.args) + " arguments, not " +
                                            std::to_string(rest.size()));
    }
    if (!it->second.watches_stdin) exit_when_stdin_ends();
    LocalHostFiles files;
    return it->second.run(files, rest);
  } catch (const Error& e) {
    report(e.code(), e.what());
  } catch (const std::exception& e) {
    report(ErrorCode::kInternal, e.what());
  }
  return kAgentFailed;
}

std::string encode_clone_identity(const CloneIdentity& identity) {
  nlohmann::json disks = nlohmann::json::object();
  for (const auto& [dev, file] : identity.disks) disks[dev] = file.string();
  return nlohmann::json{{"name", identity.name},
                        {"uuid", identity.uuid},
                        {"macs", identity.macs},
                        {"disks", disks},
                        {"console_log", identity.console_log.string()}}
      .dump();
}

CloneIdentity decode_clone_identity(const std::string& text) {
  CloneIdentity id;
  try {
    const auto j = nlohmann::json::parse(text);
    id.name = j.at("name").get<std::string>();
    id.uuid = j.at("uuid").get<std::string>();
    id.macs = j.at("macs").get<std::vector<std::string>>();
    for (const auto& [dev, file] : j.at("disks").items())
      id.disks[dev] = path_arg(file.get<std::string>(), "clone.disks");
    const std::string console = j.at("console_log").get<std::string>();
    if (!console.empty()) id.console_log = path_arg(console, "clone.console_log");
  } catch (const nlohmann::json::exception& e) {
    throw invalid_argument("clone", std::string{"not a clone identity: "} + e.what());
  }
  id.validate();
  return id;
}

}  // namespace vigo::scheduler
