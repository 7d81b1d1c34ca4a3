// SPDX-License-Identifier: Apache-2.0
#include "support/namespace_host.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "support/text_file.h"
#include "vigo/common/error.h"

namespace vigo::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto kReadyTimeout = 60s;
constexpr auto kStopTimeout = 60s;  // destroying guests and ending processes take a few seconds

void write_file(const fs::path& file, const std::string& text,
                fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
  std::ofstream out{file, std::ios::trunc};
  out << text;
  if (!out.flush()) throw Error{ErrorCode::kInternal, "cannot write " + file.string()};
  fs::permissions(file, perms);
}

// KEY='value' lines, as second_host.sh writes its env file.
std::map<std::string, std::string> read_env(const fs::path& file) {
  std::map<std::string, std::string> out;
  std::istringstream in{read_text_file(file)};
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') value = value.substr(1, value.size() - 2);
    out[line.substr(0, eq)] = value;
  }
  return out;
}

// Percent-encodes what a URI query value may not hold as it is.
std::string uri_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::string second_host_script() {
  if (const char* env = std::getenv("VIGO_SECOND_HOST"); env != nullptr && *env != '\0') return env;
  return (std::filesystem::path{VIGO_SOURCE_DIR} / "tests" / "support" / "second_host.sh").string();
}

NamespaceHost::NamespaceHost(int index) : index_(index) {
  if (index < 1 || index > 254) throw Error{ErrorCode::kInvalidArgument, "NamespaceHost index must be 1..254"};
  const RunResult keygen = run_command(
      {"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vigo-test", "-f", client_key().string()}, 30s);
  if (keygen.exit_code != 0) throw Error{ErrorCode::kInternal, "ssh-keygen failed: " + keygen.output};
  fs::copy_file(fs::path{client_key().string() + ".pub"}, authorized_keys());

  SpawnOptions o;
  o.argv = {"/bin/bash", second_host_script(), dir().string(), std::to_string(index), authorized_keys().string()};
  o.stdout_path = dir() / "supervisor.out";
  o.stderr_path = dir() / "supervisor.log";
  supervisor_ = std::make_unique<Subprocess>(Subprocess::spawn(o));

  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  bool ready = false;
  while (!ready && supervisor_->running() && std::chrono::steady_clock::now() < deadline) {
    ready = read_text_file(dir() / "supervisor.out").find("READY\n") != std::string::npos;
    if (!ready) std::this_thread::sleep_for(50ms);
  }
  if (!ready) {
    supervisor_->terminate(kStopTimeout);
    throw Error{ErrorCode::kUnavailable, "second host " + std::to_string(index) + " did not become ready in " +
                                             std::to_string(kReadyTimeout.count()) + " s:\n" + log()};
  }

  const auto env = read_env(dir() / "env");
  netns_ = env.at("NETNS");
  host_veth_ = env.at("HOST_VETH");
  known_hosts_ = env.at("KNOWN_HOSTS");
  holder_pid_ = static_cast<pid_t>(std::stol(env.at("HOLDER_PID")));

  write_file(dir() / "known_hosts", known_hosts_ + "\n");
  // clang-format off
  write_file(ssh_config(),
             "Host *\n"
             "  IdentityFile " + client_key().string() + "\n"
             "  IdentitiesOnly yes\n"
             "  UserKnownHostsFile " + (dir() / "known_hosts").string() + "\n"
             "  GlobalKnownHostsFile /dev/null\n"
             "  StrictHostKeyChecking yes\n"
             "  BatchMode yes\n"
             "  LogLevel ERROR\n"
             "  ConnectTimeout 10\n");
  // clang-format on
  write_file(ssh_command(), "#!/bin/sh\nexec /usr/bin/ssh -F '" + ssh_config().string() + "' \"$@\"\n",
             fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                 fs::perms::others_exec);
}

NamespaceHost::~NamespaceHost() {
  try {
    if (supervisor_) supervisor_->terminate(kStopTimeout);
  } catch (...) {
  }
}

std::string NamespaceHost::address() const { return "10.231." + std::to_string(index_) + ".2"; }

std::string NamespaceHost::host_side_address() const { return "10.231." + std::to_string(index_) + ".1"; }

std::string NamespaceHost::libvirt_uri() const {
  return "qemu+ssh://root@" + address() + "/system?command=" + uri_escape(ssh_command().string());
}

std::vector<std::string> NamespaceHost::ssh_argv(const std::string& remote_command) const {
  return {"/usr/bin/ssh", "-F", ssh_config().string(), "root@" + address(), remote_command};
}

pid_t NamespaceHost::supervisor_pid() const { return supervisor_->pid(); }

std::vector<std::string> NamespaceHost::nsenter_prefix() const {
  return {"/usr/bin/nsenter", "--target", std::to_string(holder_pid_), "--net", "--mount"};
}

Subprocess NamespaceHost::spawn_inside(SpawnOptions options) const {
  std::vector<std::string> argv = nsenter_prefix();
  // nsenter needs root to enter; it drops to the user afterwards.
  if (options.uid) argv.push_back("--setuid=" + std::to_string(*options.uid));
  if (options.gid) argv.push_back("--setgid=" + std::to_string(*options.gid));
  options.uid.reset();
  options.gid.reset();
  argv.emplace_back("--");
  argv.insert(argv.end(), options.argv.begin(), options.argv.end());
  options.argv = std::move(argv);
  return Subprocess::spawn(options);
}

RunResult NamespaceHost::run_inside(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
  std::vector<std::string> full = nsenter_prefix();
  full.emplace_back("--");
  full.insert(full.end(), argv.begin(), argv.end());
  return run_command(full, timeout);
}

std::string NamespaceHost::log() const {
  std::string out;
  for (const char* name : {"supervisor.log", "libvirtd.log", "sshd.log", "virtlogd.log"}) {
    std::string text = read_text_file(dir() / name);
    if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
    if (!text.empty()) out += std::string{"--- "} + name + "\n" + text;
  }
  return out;
}

}  // namespace vigo::testing
