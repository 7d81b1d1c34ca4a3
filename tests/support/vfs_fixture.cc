// SPDX-License-Identifier: Apache-2.0
#include "support/vfs_fixture.h"
#include "support/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

namespace vigo::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool is_mounted(const fs::path& mnt) {
  std::ifstream in{"/proc/self/mountinfo"};
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + mnt.string() + " ") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::string vigo_fs_path() {
  if (const char* env = std::getenv("VIGO_FS"); env != nullptr && *env != '\0') return env;
  return VIGO_FS_PATH;
}

std::vector<std::uint8_t> read_range(const fs::path& file, std::uint64_t offset, std::size_t length) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + file.string());
  std::vector<std::uint8_t> out(length);
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw std::system_error(e, std::generic_category(), "pread " + file.string());
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

VfsFixture::VfsFixture() {
  fs::create_directories(mount());
  fs::create_directories(cache());
}

VfsFixture::~VfsFixture() {
  if (fs_) stop_fs();
  unmount();
  reap_servers();
}

void VfsFixture::reap_servers() {
  // A vigo-imaged whose ssh session was cut mid-setup may still start after
  // the test and recreate the store: end every one that serves our store.
  const std::string marker = "--root " + (dir_.path() / "store").string();
  int quiet = 0;
  for (int round = 0; round < 40 && quiet < 3; ++round) {
    bool found = false;
    for (const auto& e : fs::directory_iterator{"/proc"}) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = read_text_file(e.path() / "cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find(marker) == std::string::npos || cmdline.find("--stdio") == std::string::npos) continue;
      if (cmdline.starts_with("/usr/bin/ssh ")) continue;  // our own clients are gone with vigo-fs
      ::kill(std::stoi(name), SIGKILL);
      found = true;
    }
    quiet = found ? 0 : quiet + 1;
    std::this_thread::sleep_for(50ms);
  }
}

void VfsFixture::publish(const std::string& name, const std::vector<std::uint8_t>& bytes, std::uint32_t chunk_kib) {
  const fs::path file = dir_.path() / ("source-" + std::to_string(published_++));
  std::ofstream{file, std::ios::binary}.write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  publish_file(name, file, chunk_kib);
}

void VfsFixture::publish_file(const std::string& name, const fs::path& file, std::uint32_t chunk_kib) {
  const RunResult r = run_command({imaged_path(), "publish", "--root", (dir_.path() / "store").string(),
                                   "--chunk-kib", std::to_string(chunk_kib), "--name", name, file.string()},
                                  120s);
  if (r.exit_code != 0) throw std::runtime_error("publish failed: " + r.output);
}

void VfsFixture::start_fs(const FsStartOptions& o) {
  if (fs_) throw std::logic_error("vigo-fs already running");
  std::string server;
  const auto argv = !o.server_argv.empty()
                        ? o.server_argv
                        : sshd_.ssh_argv(imaged_path() + " --stdio --root " + store().string() + " --user alice");
  for (const auto& a : argv) server += "'" + a + "' ";
  SpawnOptions so;
  so.argv = {vigo_fs_path(),        "--server",       server,
             "--cache",             cache().string(), "--mount",
             mount().string(),      "--foreground",   "--log-level",
             "debug",               "--connections",  std::to_string(o.connections),
             "--read-timeout-ms",   std::to_string(o.read_timeout_ms),
             "--readahead-chunks",  std::to_string(o.readahead_chunks),
             "--profile-idle-ms",   std::to_string(o.profile_idle_ms),
             "--fill-quiet-ms",     std::to_string(o.fill_quiet_ms),
             "--fill-queue",        std::to_string(o.fill_queue),
             "--cache-quota-mb",    std::to_string(o.cache_quota_mb)};
  if (!o.working_sets) so.argv.push_back("--no-working-sets");
  if (!o.neighbor_prefetch) so.argv.push_back("--no-neighbor-prefetch");
  so.stderr_path = dir_.path() / "vigo-fs.log";
  fs_ = std::make_unique<Subprocess>(Subprocess::spawn(so));
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!fs_->running()) {
      fs_.reset();
      throw std::runtime_error("vigo-fs exited: " + fs_log());
    }
    if (is_mounted(mount())) {
      // Mounted; wait until every connection is up so that tests start alike.
      try {
        if (status().value("connections_up", 0) == o.connections) return;
      } catch (const std::exception&) {
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error("vigo-fs did not come up: " + fs_log() + "\nsshd: " + sshd_.log());
}

int VfsFixture::stop_fs() {
  if (!fs_) return -1;
  const int status = fs_->terminate(10s);
  fs_.reset();
  unmount();
  return status;
}

void VfsFixture::kill_fs() {
  if (!fs_) return;
  fs_->terminate(0s, SIGKILL);
  fs_.reset();
  unmount();
}

void VfsFixture::unmount() {
  if (!is_mounted(mount())) return;
  if (run_command({"/usr/bin/fusermount3", "-u", mount().string()}, 10s).exit_code == 0) return;
  (void)run_command({"/usr/bin/fusermount3", "-u", "-z", mount().string()}, 10s);
}

pid_t VfsFixture::fs_pid() const { return fs_ ? fs_->pid() : -1; }

std::vector<pid_t> VfsFixture::fs_children() const {
  std::vector<pid_t> out;
  if (!fs_) return out;
  for (const auto& e : fs::directory_iterator{"/proc"}) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_text_file(e.path() / "stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest{stat.substr(close + 2)};
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == fs_->pid() && state != 'Z') out.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return out;
}

nlohmann::json VfsFixture::status() const { return nlohmann::json::parse(read_text_file(mount() / ".vigo-status")); }

std::string VfsFixture::fs_log() const { return read_text_file(dir_.path() / "vigo-fs.log"); }

}  // namespace vigo::testing
