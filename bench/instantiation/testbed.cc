// SPDX-License-Identifier: Apache-2.0
#include "testbed.h"

#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "load.h"  // bench/vfs: evict_page_cache
#include "local_stack_setup.h"
#include "vigo/common/error.h"
#include "vigo/common/file_util.h"
#include "vigo/common/local_sshd.h"

namespace vigo::bench {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* source_name(Source s) {
  switch (s) {
    case Source::kLocal: return "local";
    case Source::kVfsLan: return "vfs-lan";
    case Source::kVfsWan: return "vfs-wan";
    case Source::kSshfsLan: return "sshfs-lan";
    case Source::kSshfsWan: return "sshfs-wan";
  }
  return "?";
}

bool is_wan(Source s) { return s == Source::kVfsWan || s == Source::kSshfsWan; }
bool is_vigo_fs(Source s) { return s == Source::kVfsLan || s == Source::kVfsWan; }

Testbed::Testbed(TestbedOptions options, std::ostream& log) : o_(std::move(options)), log_(log) {}

Testbed::~Testbed() {
  for (Source s : kSources) {
    try {
      unmount(s);
    } catch (const std::exception& e) {
      log_ << "unmounting " << source_name(s) << ": " << e.what() << "\n";
    }
  }
  relays_.clear();  // Subprocess destructors stop them
  stack_.reset();   // deletes every workspace, stops vigod, sshd, PostgreSQL
}

fs::path Testbed::mount_dir(Source s) const { return o_.work / "mnt" / source_name(s); }

fs::path Testbed::images_dir(Source s) const {
  return s == Source::kLocal ? files_images() : mount_dir(s) / "images";
}

fs::path Testbed::store() const { return stack_->info().store_dir; }

const cli::LocalStackInfo& Testbed::info() const { return stack_->info(); }

const LocalSshd& Testbed::sshd() const { return stack_->sshd(); }

std::unique_ptr<web::ApiClient> Testbed::client() const {
  return std::make_unique<web::ApiClient>(web::ApiClientOptions{info().api_url, info().demo_token, info().ca_file, 120s});
}

void Testbed::start() {
  fs::create_directories(files_images());
  cli::LocalStackOptions so;
  so.state_dir = o_.work / "stack";
  so.api_port = 0;
  so.demo_workspace = false;
  so.profiles_dir = o_.profiles_dir;
  so.domain_prefix = "vigo-bench-";
  for (Source s : kSources) {
    fs::create_directories(mount_dir(s));
    so.extra_hosts.push_back({std::string{"cell-"} + source_name(s), images_dir(s), {{"cell", source_name(s)}}});
  }
  stack_ = std::make_unique<cli::LocalStack>(so, log_);
  stack_->start();
  start_relay(Source::kVfsWan);
  start_relay(Source::kSshfsWan);
}

void Testbed::start_relay(Source s) {
  const fs::path out = o_.work / "logs" / (std::string{"relay-"} + source_name(s) + ".out");
  fs::create_directories(out.parent_path());
  SpawnOptions so;
  so.argv = {o_.relay.string(), "--target", std::to_string(stack_->sshd().port()), "--delay-ms",
             std::to_string(o_.delay_ms), "--rate-mbit", std::to_string(o_.rate_mbit)};
  so.stdout_path = out;
  so.stderr_path = o_.work / "logs" / "relay.err";
  auto p = std::make_unique<Subprocess>(Subprocess::spawn(so));
  relay_ports_[s] = static_cast<std::uint16_t>(
      std::stoi(cli::wait_for_marker(out, "listening on port ", *p, so.stderr_path, 10s, "vigo-wan-relay")));
  relays_[s] = std::move(p);
}

std::uint16_t Testbed::port_for(Source s) const {
  return is_wan(s) ? relay_ports_.at(s) : stack_->sshd().port();
}

void Testbed::unmount(Source s) {
  auto it = mounts_.find(s);
  if (it == mounts_.end()) return;
  Mount m = std::move(it->second);
  mounts_.erase(it);
  // SIGTERM unmounts (vigo-fs and sshfs both); a lazy unmount for what is left.
  if (m.process) m.process->terminate(20s);
  cli::unmount_lazily(m.dir);
}

void Testbed::mount(Source s, const MountOptions& options) {
  unmount(s);
  if (s == Source::kLocal) return;
  const fs::path dir = mount_dir(s);
  cli::unmount_lazily(dir);
  const fs::path log = o_.work / "logs" / (std::string{source_name(s)} + ".log");
  SpawnOptions so;
  so.stderr_path = log;
  if (is_vigo_fs(s)) {
    const fs::path cache = o_.work / "cache" / source_name(s);
    if (!options.keep_cache) fs::remove_all(cache);
    fs::create_directories(cache);
    so.argv = {info().vigo_fs.string(), "--server", cli::imaged_over_ssh(sshd(), info().imaged, store(), port_for(s)),
               "--cache", cache.string(), "--mount", dir.string(),
               "--foreground", "--connections", std::to_string(o_.connections), "--log-level",
               "warn"};
    if (!options.working_sets) so.argv.push_back("--no-working-sets");
  } else {
    // sshfs at its best for immutable images (as bench/vfs/run): keep the
    // page cache across opens, long attribute timeouts, as many
    // connections as vigo-fs.
    so.argv = {"sshfs", "-f", "-p", std::to_string(port_for(s)), "-o",
               "ro,kernel_cache,attr_timeout=3600,entry_timeout=3600,max_conns=" +
                   std::to_string(o_.connections) + ",max_read=131072"};
    for (const auto& opt : stack_->sshd().ssh_options()) {
      so.argv.push_back("-o");
      so.argv.push_back(opt);
    }
    so.argv.push_back(stack_->sshd().login() + ":" + (o_.work / "files").string());
    so.argv.push_back(dir.string());
  }
  Mount m{std::make_unique<Subprocess>(Subprocess::spawn(so)), dir};
  // vigo-fs: also every connection up, so that a cold start does not wait for them.
  std::function<bool()> ready;
  if (is_vigo_fs(s)) {
    ready = [&] {
      const auto st = nlohmann::json::parse(read_text_file(dir / ".vigo-status"), nullptr, false);
      return !st.is_discarded() && st.value("connections_up", 0) == o_.connections;
    };
  }
  cli::wait_for_mount(dir, *m.process, log, 60s, source_name(s), ready);
  mounts_[s] = std::move(m);
}

std::string Testbed::status_json(Source s) const {
  if (!is_vigo_fs(s) || !mounts_.contains(s)) return "{}";
  return read_text_file(mount_dir(s) / ".vigo-status");
}

std::uint64_t Testbed::bytes_fetched(Source s) const {
  const auto it = mounts_.find(s);
  if (it == mounts_.end()) return 0;
  if (is_vigo_fs(s)) {
    const auto st = nlohmann::json::parse(status_json(s), nullptr, false);
    return st.is_discarded() ? 0 : st.value("bytes_fetched", std::uint64_t{0});
  }
  // sshfs reads the SFTP replies from its ssh through a pipe: rchar.
  std::ifstream io{"/proc/" + std::to_string(it->second.process->pid()) + "/io"};
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  return 0;
}

void Testbed::wait_idle(Source s, std::chrono::seconds timeout) const {
  if (!is_vigo_fs(s) || !mounts_.contains(s)) return;
  const auto deadline = Clock::now() + timeout;
  int quiet = 0;
  while (Clock::now() < deadline) {
    const auto st = nlohmann::json::parse(status_json(s), nullptr, false);
    bool idle = fetches_idle(st);
    if (idle) {
      for (const auto& w : st.value("working_sets", nlohmann::json::array())) {
        const std::string state = w.value("state", "");
        if (state == "probing" || state == "recording" || state == "storing" || state == "replaying") idle = false;
      }
    }
    quiet = idle ? quiet + 1 : 0;
    if (quiet >= 3) return;  // idle on three looks 100 ms apart
    std::this_thread::sleep_for(100ms);
  }
  throw Error{ErrorCode::kTimeout, std::string{source_name(s)} + " not idle after " +
                                       std::to_string(timeout.count()) + " s: " + status_json(s)};
}

void Testbed::evict_server_files() const {
  (void)evict_page_cache(store().string());
  (void)evict_page_cache((o_.work / "files").string());
}

}  // namespace vigo::bench
