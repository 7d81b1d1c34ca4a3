// SPDX-License-Identifier: Apache-2.0
// WorkspaceManager, the lifecycle: start-up and shutdown, create (placement
// and the hand-over to a host's queue), instantiation and readiness,
// failure and teardown, pause, remove (workspace_status.cc: what is
// read back).
#include "vigo/scheduler/workspace_manager.h"

#include <algorithm>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/common/names.h"
#include "vigo/gis/pg_support.h"
#include "vigo/scheduler/save_file.h"
#include "workspace_manager_internal.h"

namespace vigo::scheduler {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::optional<std::int64_t> id_after(const std::string& prefix, const std::string& name) {
  static const std::regex digits{"[1-9][0-9]{0,17}"};
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const std::string rest = name.substr(prefix.size());
  if (!std::regex_match(rest, digits)) return std::nullopt;
  return std::stoll(rest);
}

// ------------------------------------------------------------- lifecycle

WorkspaceManager::WorkspaceManager(gis::Database& db, ImagePublisher* publisher, std::vector<HostContext> hosts,
                                   WorkspaceManagerOptions options)
    : db_(db), publisher_(publisher), options_(std::move(options)) {
  if (!is_valid_name(options_.domain_prefix + "1")) {
    throw invalid_argument("domain_prefix", "'" + options_.domain_prefix + "' does not make valid domain names");
  }
  std::set<std::string> names;
  std::set<std::pair<HostFiles*, fs::path>> state_dirs;  // per machine
  for (auto& c : hosts) {
    if (c.hypervisor == nullptr) throw invalid_argument("host.hypervisor", "missing for host " + c.name);
    if (!names.insert(c.name).second) throw invalid_argument("host.name", "host " + c.name + " is given twice");
    // Reconciliation removes the vm-<n> directories of other hosts' VMs.
    if (!state_dirs.insert({c.files, c.state_dir.lexically_normal()}).second) {
      throw invalid_argument("host.state_dir", "host " + c.name + " shares its state directory with another host");
    }
  }
  for (auto& c : hosts) {
    auto h = std::make_unique<Host>(std::move(c));
    try {
      h->files().make_dir(h->ctx.state_dir);
    } catch (const Error& e) {
      if (h->ctx.files == nullptr) throw;
      // A remote host that is down now is not a reason not to start.
      log::warn("state directory of a remote host not made (its first VM makes it)",
                {{"host", h->ctx.name}, {"error", e.what()}});
    }
    hosts_.push_back(std::move(h));
  }
  db_.write([&](pqxx::transaction_base& txn) {
    for (const auto& [name, p] : options_.profiles) {
      txn.exec_params("SELECT gis.add_profile($1, $2, $3, 0)", name, static_cast<int>(p.vcpus),
                      static_cast<std::int64_t>(p.memory_mib));
    }
  });
  // One handler per hypervisor (several hosts may be driven through one).
  for (Hypervisor* hv : hypervisors()) {
    hv->on_event([this, hv](const DomainEvent& e) { on_event(*hv, e); });
  }
  reconcile();
  // Runs `work` every `period` on a thread of its own until the manager goes.
  auto every = [](std::chrono::seconds period, std::function<void()> work) {
    return std::jthread{[period, work = std::move(work)](std::stop_token stop) {
      std::mutex m;
      std::condition_variable_any cv;
      for (;;) {
        std::unique_lock lock{m};
        if (cv.wait_for(lock, stop, period, [] { return false; }) || stop.stop_requested()) return;
        lock.unlock();
        work();
      }
    }};
  };
  if (options_.reconcile_interval.count() > 0) {
    reconciler_ = every(options_.reconcile_interval, [this] {
      try {
        reconcile();
      } catch (const std::exception& e) {
        log::warn("periodic reconciliation failed", {{"error", e.what()}});
      }
    });
  }
  if (options_.checkpoint_tick.count() > 0) {
    checkpointer_ = every(options_.checkpoint_tick, [this] { take_due_checkpoints(); });
  }
  if (options_.host_silence.count() > 0 && options_.heartbeat_interval.count() > 0) {
    watcher_ = every(options_.heartbeat_interval, [this] { watch_hosts(); });
  }
}

WorkspaceManager::~WorkspaceManager() {
  reconciler_ = {};
  checkpointer_ = {};
  watcher_ = {};
  for (Hypervisor* hv : hypervisors()) hv->on_event(nullptr);
  std::map<std::int64_t, std::shared_ptr<Vm>> handling;
  {
    std::lock_guard lock{mu_};
    handling.swap(handling_);
  }
  for (auto& [id, vm] : handling) vm->cancelled = true;
  // The workers first: after this no job assigns a waiter any more. Then the
  // waiters (they may still post to a stopped queue, which is harmless).
  for (auto& h : hosts_) h->stop();
  for (auto& [id, vm] : handling) {
    vm->waiter.request_stop();
    if (vm->waiter.joinable()) vm->waiter.join();
  }
  hosts_.clear();
}

std::string WorkspaceManager::domain_name(std::int64_t vm) const { return options_.domain_prefix + std::to_string(vm); }

std::optional<std::int64_t> WorkspaceManager::vm_of_domain(const std::string& domain) const {
  return id_after(options_.domain_prefix, domain);
}

WorkspaceManager::Host* WorkspaceManager::find_host(const std::string& name) {
  for (auto& h : hosts_) {
    if (h->ctx.name == name) return h.get();
  }
  return nullptr;
}

WorkspaceManager::Host& WorkspaceManager::host(const std::string& name) {
  if (Host* h = find_host(name)) return *h;
  throw Error{ErrorCode::kUnavailable, "host " + name + " is not managed by this vigod", "host"};
}

void WorkspaceManager::notify() {
  {
    std::lock_guard lock{mu_};
    ++generation_;
  }
  changed_.notify_all();
}

void WorkspaceManager::set_state(std::int64_t vm_id, const std::string& state, const std::string& error) {
  db_.write([&](pqxx::transaction_base& txn) {
    txn.exec_params("SELECT gis.set_vm_outcome($1, $2::gis.vm_state, $3)", vm_id, state, error);
  });
  notify();
}

// --------------------------------------------------------------- create

std::int64_t WorkspaceManager::create(const WorkspaceRequest& r) {
  if (r.image.empty() == r.checkpoint.empty()) {
    throw invalid_argument("image", "give exactly one of an image to boot or a checkpoint to resume");
  }
  if (r.count < 1 || r.count > 64) throw invalid_argument("count", "must be 1..64");
  if (r.checkpoint_interval && (r.checkpoint_interval->count() < 10 || r.count != 1)) {
    throw invalid_argument("checkpoint_interval", "must be at least 10 seconds, for a workspace of one VM");
  }
  if (r.readiness_timeout && (r.readiness_timeout->count() < 1 || r.readiness_timeout->count() > 3600)) {
    throw invalid_argument("readiness_timeout", "must be 1..3600 seconds");
  }

  std::string profile_name = r.profile;
  std::string image_file, memory_file, disk_file;
  DiskFormat disk_format = DiskFormat::kQcow2;
  std::vector<Placed> placed;

  std::shared_lock launching{launching_};
  const std::int64_t ws = db_.write([&](pqxx::transaction_base& txn) {
    placed.clear();
    std::optional<std::int64_t> image_id, checkpoint_id;
    if (!r.image.empty()) {
      const auto at = r.image.find('@');
      const std::string name = r.image.substr(0, at);
      std::optional<int> version;
      if (at != std::string::npos) {
        try {
          std::size_t used = 0;
          version = std::stoi(r.image.substr(at + 1), &used);
          if (used != r.image.size() - at - 1 || *version < 1) throw std::invalid_argument{"version"};
        } catch (const std::exception&) {
          throw invalid_argument("image", "version in '" + r.image + "' is not a positive number");
        }
      }
      const auto rows = txn.exec_params(
          "SELECT i.id, i.name || '@' || i.version FROM gis.images i JOIN gis.users u ON u.name = $1 "
          " WHERE i.name = $2 AND i.kind = 'disk' AND i.deleted_at IS NULL "
          "   AND (i.owner_id IS NULL OR i.owner_id = u.id) AND ($3::int IS NULL OR i.version = $3) "
          " ORDER BY i.version DESC LIMIT 1",
          r.owner, name, version);
      if (rows.empty()) throw Error{ErrorCode::kNotFound, "unknown image: " + r.image, "image"};
      image_id = rows[0][0].as<std::int64_t>();
      image_file = rows[0][1].as<std::string>();
    } else {
      const auto rows = txn.exec_params(
          "SELECT c.id, m.name || '@' || m.version, d.name || '@' || d.version, coalesce(w.profile, ''), "
          "       c.disk_format "
          "  FROM gis.checkpoints c JOIN gis.users u ON u.id = c.owner_id "
          "  JOIN gis.images m ON m.id = c.memory_image_id JOIN gis.images d ON d.id = c.disk_image_id "
          "  LEFT JOIN gis.vms v ON v.id = c.vm_id LEFT JOIN gis.workspaces w ON w.id = v.workspace_id "
          " WHERE u.name = $1 AND c.name = $2",
          r.owner, r.checkpoint);
      if (rows.empty()) throw Error{ErrorCode::kNotFound, "unknown checkpoint: " + r.checkpoint, "checkpoint"};
      checkpoint_id = rows[0][0].as<std::int64_t>();
      memory_file = rows[0][1].as<std::string>();
      disk_file = rows[0][2].as<std::string>();
      if (profile_name.empty()) profile_name = rows[0][3].as<std::string>();
      disk_format = rows[0][4].as<std::string>() == "raw" ? DiskFormat::kRaw : DiskFormat::kQcow2;
    }
    const auto p = options_.profiles.find(profile_name);
    if (p == options_.profiles.end()) throw invalid_argument("profile", "no profile named '" + profile_name + "'");

    const auto id =
        txn.exec_params1("SELECT gis.add_workspace($1, $2, $3)", r.owner, r.name, r.persistent)[0].as<std::int64_t>();
    txn.exec_params(
        "UPDATE gis.workspaces SET profile = $2, image_id = $3, checkpoint_id = $4, "
        "checkpoint_interval = make_interval(secs => $5::double precision) WHERE id = $1",
        id, profile_name, image_id, checkpoint_id,
        r.checkpoint_interval ? std::optional<double>{static_cast<double>(r.checkpoint_interval->count())}
                              : std::nullopt);
    for (std::uint32_t i = 0; i < r.count; ++i) {
      const std::string vm_name = r.count == 1 ? r.name : r.name + "-" + std::to_string(i + 1);
      placed.push_back(place(txn, id, vm_name, profile_name, r.placement, image_id, checkpoint_id));
    }
    return id;
  });

  LaunchPlan plan;
  plan.profile = &options_.profiles.at(profile_name);
  plan.image_file = image_file;
  for (const auto& d : plan.profile->disks) {
    if (d.role == "root") plan.image_format = d.format;
  }
  plan.memory_file = memory_file;
  plan.disk_file = disk_file;
  plan.disk_format = disk_format;
  plan.readiness_timeout = r.readiness_timeout.value_or(options_.readiness_timeout);
  launch(ws, placed, plan);
  log::info("workspace created", {{"workspace", std::to_string(ws)}, {"vms", std::to_string(placed.size())}});
  return ws;
}

WorkspaceManager::Placed WorkspaceManager::place(pqxx::transaction_base& txn, std::int64_t workspace,
                                                 const std::string& vm_name, const std::string& profile_name,
                                                 const PlacementRequest& placement,
                                                 std::optional<std::int64_t> image_id,
                                                 std::optional<std::int64_t> checkpoint_id) {
  const VmProfile& p = options_.profiles.at(profile_name);
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : placement.labels) labels[k] = v;
  std::vector<std::string> mine;  // placement claims only the hosts this manager drives
  for (const auto& h : hosts_) mine.push_back(h->ctx.name);
  const auto row = txn.exec_params1(
      "SELECT vm_id, host FROM gis.place_vm($1, $2, $3, $4, 0, $5, $6::jsonb, $7, $8, $9, $10, 'x86_64', "
      "(SELECT id FROM gis.profiles WHERE name = $11), $12::text[])",
      workspace, vm_name, static_cast<int>(p.vcpus), static_cast<std::int64_t>(p.memory_mib),
      placement.policy == gis::Policy::kPack ? "pack" : "spread", labels.dump(), placement.network,
      placement.same_network, placement.distinct_hosts, placement.future_id, profile_name, gis::pg_array(mine));
  Placed pl{row[0].as<std::int64_t>(), row[1].as<std::string>(), random_uuid()};
  host(pl.host);  // throws (and so rolls back) for a host this manager does not drive
  txn.exec_params("UPDATE gis.vms SET uuid = $2::uuid, image_id = $3, checkpoint_id = $4 WHERE id = $1", pl.vm,
                  pl.uuid, image_id, checkpoint_id);
  return pl;
}

void WorkspaceManager::launch(std::int64_t workspace, const std::vector<Placed>& placed, const LaunchPlan& plan) {
  instantiate_later(adopt(workspace, placed, plan));
}

std::vector<std::shared_ptr<WorkspaceManager::Vm>> WorkspaceManager::adopt(std::int64_t workspace,
                                                                          const std::vector<Placed>& placed,
                                                                          const LaunchPlan& plan) {
  std::vector<std::shared_ptr<Vm>> out;
  for (const auto& pl : placed) {
    auto vm = std::make_shared<Vm>();
    vm->id = pl.vm;
    vm->workspace = workspace;
    vm->host = pl.host;
    vm->uuid = pl.uuid;
    vm->plan = plan;
    {
      std::lock_guard lock{mu_};
      handling_[vm->id] = vm;
    }
    out.push_back(std::move(vm));
  }
  return out;
}

void WorkspaceManager::instantiate_later(const std::vector<std::shared_ptr<Vm>>& vms) {
  for (const auto& vm : vms) {
    Host& h = host(vm->host);
    h.post([this, &h, vm] { instantiate(h, vm); });
  }
}

WorkspaceManager::LaunchPlan WorkspaceManager::resume_plan(const std::string& profile, const std::string& memory_file,
                                                           const std::string& disk_file,
                                                           const std::string& disk_format) const {
  LaunchPlan plan;
  plan.profile = &options_.profiles.at(profile);
  plan.memory_file = memory_file;
  plan.disk_file = disk_file;
  plan.disk_format = disk_format == "raw" ? DiskFormat::kRaw : DiskFormat::kQcow2;
  plan.readiness_timeout = options_.readiness_timeout;
  return plan;
}

void WorkspaceManager::instantiate(Host& h, std::shared_ptr<Vm> vm) {
  if (vm->cancelled) return;
  const std::string domain = domain_name(vm->id);
  const fs::path dir = h.vm_dir(vm->id);
  try {
    set_state(vm->id, "preparing");
    HostFiles& files = h.files();
    files.make_dir(dir);
    const fs::path overlay = dir / "disk.qcow2";
    const fs::path console = dir / "console.log";
    if (!vm->plan.image_file.empty()) {
      files.create_overlay(h.ctx.images_dir / vm->plan.image_file, vm->plan.image_format, overlay);
      std::map<std::string, DiskSpec> disks{{"root", DiskSpec{overlay, DiskFormat::kQcow2, false}}};
      VmSpec spec = to_spec(*vm->plan.profile, domain, vm->uuid, console, disks);
      spec.accelerator = h.ctx.accelerator.value_or(options_.accelerator);
      for (auto& nic : spec.nics) {
        nic.network = "user";  // host networks are not set up by vigo yet: QEMU's user-mode network
        if (nic.mac.empty()) nic.mac = random_mac();
      }
      if (vm->cancelled) return;
      set_state(vm->id, "starting");
      h.hv().start(spec);
    } else {
      const fs::path memory = h.ctx.images_dir / vm->plan.memory_file;
      files.create_overlay(h.ctx.images_dir / vm->plan.disk_file, vm->plan.disk_format, overlay);
      const SaveFileHeader header = files.read_save_file_header(memory);
      CloneIdentity id;
      id.name = domain;
      id.uuid = vm->uuid;
      for (std::size_t i = saved_interface_count(header.xml); i > 0; --i) id.macs.push_back(random_mac());
      id.disks["vda"] = overlay;
      id.console_log = console;
      // The state streams into the restore through a FIFO while it is
      // still being read from the image (clone_save_stream.h).
      const auto stream = files.stream_clone(memory, header, id, dir / "resume.save");
      if (vm->cancelled) return;
      set_state(vm->id, "starting");
      try {
        h.hv().restore_as_saved(stream->path());
      } catch (const Error& e) {
        const std::string why = stream->stop();
        if (why.empty()) throw;
        throw Error{e.code(), std::string{e.what()} + " (" + why + ")"};
      }
    }
  } catch (const std::exception& e) {
    fail(h, vm->id, e.what());
    return;
  }
  if (vm->cancelled) return;  // the manager is going away: reconcile() takes it from here
  vm->waiter = std::jthread{[this, &h, vm](std::stop_token stop) { await_ready(h, vm, stop); }};
}

namespace {

// The end of a console for an error message; what went wrong instead when
// it cannot be read.
std::string end_of_console(HostFiles& files, const fs::path& console) {
  try {
    return files.tail(console, 600);
  } catch (const std::exception& e) {
    return std::string{"(unreadable: "} + e.what() + ")";
  }
}

}  // namespace

void WorkspaceManager::await_ready(Host& h, std::shared_ptr<Vm> vm, std::stop_token stop) {
  if (vm->cancelled) return;
  const bool resumed = vm->plan.image_file.empty();
  const fs::path console = h.vm_dir(vm->id) / "console.log";
  std::optional<std::string> line;
  std::string unwatchable;  // why the console could not be watched (a remote host went away)
  try {
    line = h.files().wait_for_line(console, resumed ? kResumeReady : kBootReady,
                                   Clock::now() + vm->plan.readiness_timeout, stop);
  } catch (const std::exception& e) {
    unwatchable = e.what();
  }
  if (stop.stop_requested() || vm->cancelled) return;
  try {
    if (line) {
      set_state(vm->id, "running");
      std::lock_guard lock{mu_};
      handling_.erase(vm->id);
      return;
    }
    const std::string why =
        !unwatchable.empty()
            ? "its console could not be watched: " + unwatchable
            : "not ready within " + std::to_string(vm->plan.readiness_timeout.count()) + " s (no " +
                  (resumed ? kResumeReady : kBootReady) + " line); console ends with: " + end_of_console(h.files(), console);
    h.post([this, &h, id = vm->id, why] { fail(h, id, why); });
  } catch (const std::exception& e) {
    log::error("recording readiness failed", {{"vm", std::to_string(vm->id)}, {"error", e.what()}});
  }
}

void WorkspaceManager::teardown(Host& h, std::int64_t vm_id) {
  const std::string domain = domain_name(vm_id);
  try {
    if (h.hv().find(domain)) h.hv().destroy(domain);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
  }
  h.files().remove_all(h.vm_dir(vm_id));
}

void WorkspaceManager::fail(Host& h, std::int64_t vm, const std::string& why) {
  {
    std::lock_guard lock{mu_};
    const auto it = handling_.find(vm);
    if (it != handling_.end() && it->second->cancelled) return;  // being removed: remove() finishes it
  }
  log::warn("VM failed", {{"vm", std::to_string(vm)}, {"host", h.ctx.name}, {"why", why}});
  try {
    teardown(h, vm);
  } catch (const std::exception& e) {
    log::error("cleanup after failure failed", {{"vm", std::to_string(vm)}, {"error", e.what()}});
  }
  try {
    set_state(vm, "failed", why);
  } catch (const std::exception& e) {
    log::error("recording a failure failed", {{"vm", std::to_string(vm)}, {"error", e.what()}});
  }
  std::lock_guard lock{mu_};
  handling_.erase(vm);
}

std::vector<std::shared_ptr<WorkspaceManager::Vm>> WorkspaceManager::handled_vms(std::int64_t workspace) {
  std::vector<std::shared_ptr<Vm>> out;
  std::lock_guard lock{mu_};
  for (auto& [id, vm] : handling_) {
    if (vm->workspace == workspace) out.push_back(vm);
  }
  return out;
}

std::vector<LiveVm> live_vms(gis::Database& db, std::int64_t workspace) {
  return db.read([&](pqxx::transaction_base& txn) {
    const auto w = txn.exec_params("SELECT state::text FROM gis.workspaces WHERE id = $1", workspace);
    if (w.empty() || w[0][0].as<std::string>() == "deleted") {
      throw Error{ErrorCode::kNotFound, "no workspace with id " + std::to_string(workspace), "workspace"};
    }
    std::vector<LiveVm> out;
    for (const auto& row : txn.exec_params(
             "SELECT v.id, coalesce(h.name, ''), v.state::text, u.name FROM gis.vms v "
             "LEFT JOIN gis.hosts h ON h.id = v.host_id JOIN gis.users u ON u.id = v.owner_id "
             "WHERE v.workspace_id = $1 AND v.state <> 'deleted' ORDER BY v.id",
             workspace)) {
      out.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                     row[3].as<std::string>()});
    }
    return out;
  });
}


void WorkspaceManager::pause(std::int64_t workspace) { set_paused(workspace, true); }
void WorkspaceManager::unpause(std::int64_t workspace) { set_paused(workspace, false); }

// Every VM must be running or paused before any is touched (no half-paused
// workspace because one VM was still starting).
void WorkspaceManager::set_paused(std::int64_t workspace, bool paused) {
  const std::string from = paused ? "running" : "paused";
  const std::string to = paused ? "paused" : "running";
  const auto vms = live_vms(db_, workspace);
  for (const auto& v : vms) {
    if (v.state != from && v.state != to) {
      throw Error{ErrorCode::kConflict, "VM " + std::to_string(v.id) + " is " + v.state + ", not " + from};
    }
  }
  for (const auto& v : vms) {
    if (v.state == to) continue;
    Host& h = host(v.host);
    h.call([&] {
      if (paused) {
        h.hv().pause(domain_name(v.id));
      } else {
        h.hv().unpause(domain_name(v.id));
      }
      set_state(v.id, to);
    });
  }
}

// ---------------------------------------------------------------- remove

void WorkspaceManager::remove(std::int64_t workspace) {
  const auto vms = live_vms(db_, workspace);
  // Cancelled now; the waiter is stopped and joined on the host's queue,
  // after any instantiation job of the VM (which is what assigns it).
  for (auto& vm : handled_vms(workspace)) vm->cancelled = true;
  for (const auto& v : vms) {
    auto finish = [&](Host* h) {
      set_state(v.id, "stopping");
      if (h != nullptr) teardown(*h, v.id);
      set_state(v.id, "deleted");
      std::shared_ptr<Vm> handled;
      {
        std::lock_guard lock{mu_};
        if (auto it = handling_.find(v.id); it != handling_.end()) {
          handled = it->second;
          handling_.erase(it);
        }
      }
      if (handled && handled->waiter.joinable()) {
        handled->waiter.request_stop();
        handled->waiter.join();
      }
    };
    if (Host* h = find_host(v.host)) {
      h->call([&] { finish(h); });
    } else if (v.host.empty() || v.state == "failed" || v.state == "stopped") {
      finish(nullptr);  // nothing of it on any host
    } else {
      throw Error{ErrorCode::kUnavailable, "VM " + std::to_string(v.id) + " is on host " + v.host +
                                               ", which this vigod does not drive"};
    }
  }
  db_.write([&](pqxx::transaction_base& txn) {
    txn.exec_params("UPDATE gis.workspaces SET state = 'deleted', updated_at = now() WHERE id = $1", workspace);
  });
  notify();
}

}  // namespace vigo::scheduler
