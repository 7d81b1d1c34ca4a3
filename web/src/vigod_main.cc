// SPDX-License-Identifier: Apache-2.0
// vigod: the vigo daemon. Reads its configuration (vigod_config.h), then
// wires the GIS, the host's hypervisor, the image publisher, the
// WorkspaceManager, the API and the HTTPS server together and serves until
// SIGINT or SIGTERM. Prints "vigod: listening on https://ADDR:PORT" on
// stdout once it accepts connections. Exit codes: 0 stopped, 2 bad
// configuration, 5 a dependency unavailable (database, libvirt, the port),
// 1 anything else.
#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/common/shutdown.h"
#include "vigo/scheduler/accelerator_probe.h"
#include "vigo/scheduler/remote_host_files.h"
#include "vigo/scheduler/libvirt_hypervisor.h"
#include "vigo/scheduler/workspace_manager.h"
#include "vigo/web/api.h"
#include "vigo/web/https_server.h"
#include "vigo/web/vigod_config.h"

namespace {

using namespace vigo;

std::map<std::string, scheduler::VmProfile> load_profiles(const std::filesystem::path& dir) {
  std::map<std::string, scheduler::VmProfile> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".toml") continue;
    auto p = scheduler::load_vm_profile(e.path());
    out[p.name] = std::move(p);
  }
  if (ec) throw invalid_argument("scheduler.profiles_dir", dir.string() + ": " + ec.message());
  if (out.empty()) throw invalid_argument("scheduler.profiles_dir", dir.string() + " holds no *.toml profile");
  return out;
}

// `auto`: a probe with the kernel of the first profile that boots one.
scheduler::Accelerator probe(scheduler::Hypervisor& hv, const std::map<std::string, scheduler::VmProfile>& profiles,
                             const std::filesystem::path& scratch) {
  for (const auto& [name, p] : profiles) {
    if (p.direct_boot) return scheduler::probe_accelerator(hv, *p.direct_boot, scratch);
  }
  log::warn("accelerator auto: no profile boots a kernel directly to probe with; TCG");
  return scheduler::Accelerator::kTcg;
}

int serve(const web::VigodConfig& vc, ShutdownSignal& shutdown) {
  gis::Database db{gis::DatabaseOptions{vc.database_url, vc.database_pool}};
  std::unique_ptr<web::Api> api;
  // Binds the port and loads the certificate first: a bad api.cert or a
  // port in use fails before the scheduler starts anything.
  web::HttpsServer server{vc.server, [&api](const web::Request& r) { return api->handle(r); }};
  std::optional<scheduler::LibvirtEventLoop> events;
  std::map<std::string, std::unique_ptr<scheduler::LibvirtHypervisor>> hypervisors;  // by URI
  std::vector<std::unique_ptr<scheduler::RemoteHostFiles>> remote_files;              // of the ssh hosts
  std::optional<scheduler::StorePublisher> publisher;
  std::unique_ptr<scheduler::WorkspaceManager> manager;
  if (!vc.hosts.empty()) {
    scheduler::WorkspaceManagerOptions o;
    o.profiles = load_profiles(vc.profiles_dir);
    o.readiness_timeout = vc.readiness_timeout;
    o.reconcile_interval = vc.reconcile_interval;
    o.checkpoint_tick = vc.checkpoint_tick;
    o.domain_prefix = vc.domain_prefix;
    o.accelerator = vc.accelerator == "kvm" ? scheduler::Accelerator::kKvm : scheduler::Accelerator::kTcg;
    o.host_silence = vc.host_silence;
    o.heartbeat_interval = vc.heartbeat_interval;
    events.emplace();
    publisher.emplace(vc.imaged, vc.store, vc.image_server);
    // One libvirt connection per URI, shared by the hosts behind it.
    std::vector<scheduler::HostContext> hosts;
    std::map<std::string, scheduler::Accelerator> probed;  // by URI
    for (const auto& host : vc.hosts) {
      auto& hv = hypervisors[host.uri];
      if (!hv) hv = std::make_unique<scheduler::LibvirtHypervisor>(*events, host.uri);
      std::optional<scheduler::Accelerator> accelerator;
      scheduler::HostFiles* files = nullptr;  // this machine's
      if (!host.ssh.empty()) {
        scheduler::RemoteHostOptions ro;
        ro.ssh = {"ssh"};
        if (!host.ssh_config.empty()) ro.ssh.insert(ro.ssh.end(), {"-F", host.ssh_config.string()});
        ro.ssh.insert(ro.ssh.end(), {"--", host.ssh});  // RemoteHostFiles adds batch mode and timeouts
        ro.agent = host.agent;
        ro.staging_dir = vc.staging_dir / host.name;
        files = remote_files.emplace_back(std::make_unique<scheduler::RemoteHostFiles>(ro)).get();
      }
      if (vc.accelerator == "auto" && files != nullptr) {
        // The probe's console file is watched here: another machine's is not.
        log::warn("accelerator auto is probed on this machine's hosts only; TCG", {{"host", host.name}});
        accelerator = scheduler::Accelerator::kTcg;
      } else if (vc.accelerator == "auto") {
        if (!probed.contains(host.uri)) probed[host.uri] = probe(*hv, o.profiles, host.state_dir);
        accelerator = probed[host.uri];
        log::info("accelerator", {{"host", host.name}, {"accelerator", scheduler::accelerator_name(*accelerator)}});
      }
      hosts.push_back({host.name, hv.get(), host.images_dir, host.state_dir, accelerator, files});
    }
    manager = std::make_unique<scheduler::WorkspaceManager>(db, &*publisher, std::move(hosts), std::move(o));
  }
  api = std::make_unique<web::Api>(db, manager.get(), vc.api, publisher ? &*publisher : nullptr);
  api->set_server_stats([&server] { return server.stats(); });
  server.start();
  log::info("vigod listening", {{"address", vc.server.address}, {"port", server.port()},
                                {"hosts", std::to_string(vc.hosts.size())}});
  std::cout << "vigod: listening on https://" << vc.server.address << ":" << server.port() << std::endl;
  shutdown.wait();
  log::info("vigod stopping");
  server.stop();
  manager.reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ShutdownSignal shutdown;  // first: every later thread inherits the blocked signals
  CLI::App app{"vigod: the vigo daemon (HTTPS API, scheduler)"};
  std::string config_file;
  std::string listen;
  std::string log_level;
  app.add_option("--config", config_file, "The configuration file (TOML; docs/operations.md)")->required();
  app.add_option("--listen", listen, "Override api.listen (ADDRESS:PORT; port 0 picks a free one)");
  app.add_option("--log-level", log_level, "Override log.level (debug, info, warn, error)");
  CLI11_PARSE(app, argc, argv);
  try {
    Config config = Config::load(config_file);
    if (!listen.empty()) config.set_override("api.listen", listen);
    if (!log_level.empty()) config.set_override("log.level", log_level);
    const auto vc = web::read_vigod_config(config);
    log::configure(log::parse_level(vc.log_level), log::Format::kText);
    return serve(vc, shutdown);
  } catch (const Error& e) {
    std::cerr << "vigod: " << e.what() << (e.field().empty() ? "" : " (" + e.field() + ")") << "\n";
    switch (e.code()) {
      case ErrorCode::kInvalidArgument:
      case ErrorCode::kNotFound: return 2;
      case ErrorCode::kUnavailable:
      case ErrorCode::kTimeout: return 5;
      default: return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "vigod: " << e.what() << "\n";
    return 1;
  }
}
