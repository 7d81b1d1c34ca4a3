// SPDX-License-Identifier: Apache-2.0
// WorkspaceManager, moving workspaces between hosts: offline migration (the
// VM saved to the image server on its host, resumed on another), and the
// watch over the hosts (heartbeats, silent hosts marked down, their VMs
// failed over to the latest checkpoint of their workspace).
//
// Both claim the new place before the old one is given up, in the GIS
// transaction that also moves the old row on, so two managers (or a
// migration and a failover) never move one VM twice.
#include <set>

#include "vigo/common/error.h"
#include "vigo/gis/pg_support.h"
#include "vigo/gis/registry.h"
#include "workspace_manager_internal.h"

namespace vigo::scheduler {

void WorkspaceManager::migrate(std::int64_t workspace, const PlacementRequest& placement) {
  if (publisher_ == nullptr) throw Error{ErrorCode::kUnavailable, "no image server to move the workspace through"};
  const LiveVm from_vm = single_live_vm(db_, workspace, "a migration");
  Host& from = host(from_vm.host);

  std::string vm_name, profile;
  bool persistent = false;
  int taken = 0;
  std::vector<std::shared_ptr<Vm>> to;
  {
    std::shared_lock launching{launching_};
    std::vector<Placed> placed;
    db_.write([&](pqxx::transaction_base& txn) {
      placed.clear();
      const auto r = txn.exec_params(
          "SELECT v.state::text, v.name, w.persistent, coalesce(w.profile, '') "
          "  FROM gis.vms v JOIN gis.workspaces w ON w.id = v.workspace_id WHERE v.id = $1 FOR UPDATE OF v",
          from_vm.id);
      if (r.empty() || r[0][0].as<std::string>() != from_vm.state) {
        throw Error{ErrorCode::kConflict, "VM " + std::to_string(from_vm.id) + " changed state meanwhile"};
      }
      vm_name = r[0][1].as<std::string>();
      persistent = r[0][2].as<bool>();
      profile = r[0][3].as<std::string>();
      taken = checkpoints_taken(txn, workspace);
      if (options_.profiles.count(profile) == 0) {
        throw Error{ErrorCode::kConflict, "the workspace's profile '" + profile + "' is not one this vigod has"};
      }
      // The VM it becomes takes its name; this one is on its way out.
      txn.exec_params("UPDATE gis.vms SET name = left(name, 56) || '.moving' WHERE id = $1", from_vm.id);
      txn.exec_params("SELECT gis.set_vm_outcome($1, 'stopping')", from_vm.id);
      PlacementRequest elsewhere = placement;
      elsewhere.distinct_hosts = true;  // never the host it is on
      placed.push_back(place(txn, workspace, vm_name, profile, elsewhere, std::nullopt, std::nullopt));
      if (placed.back().host == from_vm.host) {  // a future on the same host
        throw Error{ErrorCode::kConflict, "the placement chose host " + from_vm.host + ", where the workspace is",
                    "placement"};
      }
    });
    to = adopt(workspace, placed, LaunchPlan{});  // its files are known once the state is published
  }
  notify();
  const std::int64_t to_id = to.front()->id;
  const std::string name = own_checkpoint_name(workspace, "move", taken);

  // On the old host's queue, in one job (its reconciliation never sees the
  // row half moved): save and publish, then the old VM is gone.
  CheckpointInfo info;
  try {
    info = from.call([&] {
      CheckpointInfo published;
      try {
        published = publish_state(from, from_vm.id, from_vm.owner, from_vm.state == "paused", name, persistent, false);
      } catch (...) {
        // publish_state restored the VM: it runs on, under its name.
        db_.write([&](pqxx::transaction_base& txn) {
          txn.exec_params("UPDATE gis.vms SET name = $2 WHERE id = $1", from_vm.id, vm_name);
          txn.exec_params("SELECT gis.set_vm_outcome($1, $2::gis.vm_state)", from_vm.id, from_vm.state);
        });
        throw;
      }
      try {
        teardown(from, from_vm.id);
      } catch (const std::exception& e) {  // its directory: reconciliation removes it
        log::warn("cleanup after a migration failed", {{"vm", std::to_string(from_vm.id)}, {"error", e.what()}});
      }
      db_.write([&](pqxx::transaction_base& txn) {
        txn.exec_params("SELECT gis.set_vm_outcome($1, 'deleted', $2)", from_vm.id,
                        "moved to host " + to.front()->host + " as VM " + std::to_string(to_id));
        txn.exec_params("UPDATE gis.vms SET checkpoint_id = $2 WHERE id = $1", to_id, published.id);
      });
      return published;
    });
  } catch (const std::exception& e) {
    {
      std::lock_guard lock{mu_};
      handling_.erase(to_id);
    }
    try {  // the new place is given back
      set_state(to_id, "deleted", std::string{"migration failed: "} + e.what());
    } catch (const std::exception& e2) {
      log::error("giving back a migration's place failed", {{"vm", std::to_string(to_id)}, {"error", e2.what()}});
    }
    throw;
  }
  notify();
  to.front()->plan = resume_plan(profile, info.memory.file_name(), info.disk.file_name(), persistent ? "raw" : "qcow2");
  instantiate_later(to);
  log::info("workspace migrating", {{"workspace", std::to_string(workspace)}, {"from", from_vm.host},
                                    {"to", to.front()->host}, {"checkpoint", name}});
}

int WorkspaceManager::watch_hosts() {
  // Each hypervisor asked once, however many hosts are driven through it.
  std::set<Hypervisor*> alive;
  for (Hypervisor* hv : hypervisors()) {
    try {
      (void)hv->list();
      alive.insert(hv);
    } catch (const std::exception& e) {
      log::warn("a hypervisor does not answer", {{"error", e.what()}});
    }
  }
  std::vector<std::string> answering;
  for (const auto& h : hosts_) {
    if (alive.contains(h->ctx.hypervisor)) {
      answering.push_back(h->ctx.name);
    } else {
      log::warn("host does not answer", {{"host", h->ctx.name}});
    }
  }
  try {
    db_.write([&](pqxx::transaction_base& txn) {
      txn.exec_params("SELECT gis.record_heartbeats(array(SELECT id FROM gis.hosts WHERE name = ANY($1::text[])))",
                      gis::pg_array(answering));
    });
    for (const auto& down : gis::Registry{db_}.mark_silent_hosts_down(options_.host_silence)) {
      log::warn("host marked down: no heartbeat", {{"host", down},
                                                   {"silence_s", std::to_string(options_.host_silence.count())}});
    }
  } catch (const std::exception& e) {
    log::warn("recording heartbeats failed", {{"error", e.what()}});
    return 0;
  }
  return fail_over();
}

int WorkspaceManager::fail_over() {
  std::vector<std::pair<std::int64_t, std::string>> stranded;  // VM, its host
  try {
    stranded = db_.read([](pqxx::transaction_base& txn) {
      std::vector<std::pair<std::int64_t, std::string>> out;
      for (const auto& r : txn.exec("SELECT v.id, h.name FROM gis.vms v JOIN gis.hosts h ON h.id = v.host_id "
                                    "WHERE h.state = 'down' AND v.state IN ('running', 'paused') ORDER BY v.id")) {
        out.emplace_back(r[0].as<std::int64_t>(), r[1].as<std::string>());
      }
      return out;
    });
  } catch (const std::exception& e) {
    log::warn("looking for VMs on down hosts failed", {{"error", e.what()}});
    return 0;
  }
  int moved = 0;
  for (const auto& [vm, host_name] : stranded) {
    try {
      if (fail_over_vm(vm, host_name)) ++moved;
    } catch (const std::exception& e) {
      log::warn("failover failed", {{"vm", std::to_string(vm)}, {"host", host_name}, {"error", e.what()}});
    }
  }
  return moved;
}

bool WorkspaceManager::fail_over_vm(std::int64_t vm, const std::string& down_host) {
  std::string checkpoint, profile, memory_file, disk_file, disk_format;
  std::int64_t ws = 0;
  std::vector<std::shared_ptr<Vm>> to;
  std::string why;
  {
    std::shared_lock launching{launching_};
    std::vector<Placed> placed;
    try {
      db_.write([&](pqxx::transaction_base& txn) {
        placed.clear();
        why.clear();
        const auto r = txn.exec_params(
            "SELECT v.name, v.workspace_id, coalesce(w.profile, '') FROM gis.vms v "
            "  JOIN gis.hosts h ON h.id = v.host_id JOIN gis.workspaces w ON w.id = v.workspace_id "
            " WHERE v.id = $1 AND h.state = 'down' AND v.state IN ('running', 'paused') FOR UPDATE OF v",
            vm);
        if (r.empty()) return;  // moved on meanwhile (another manager, or the host is back)
        ws = r[0][1].as<std::int64_t>();
        profile = r[0][2].as<std::string>();
        const auto c = txn.exec_params(
            "SELECT c.id, c.name, m.name || '@' || m.version, d.name || '@' || d.version, c.disk_format "
            "  FROM gis.checkpoints c JOIN gis.vms x ON x.id = c.vm_id "
            "  JOIN gis.images m ON m.id = c.memory_image_id JOIN gis.images d ON d.id = c.disk_image_id "
            " WHERE x.workspace_id = $1 ORDER BY c.created_at DESC, c.id DESC LIMIT 1",
            ws);
        if (c.empty()) {
          why = "host " + down_host + " is down and the workspace has no checkpoint to resume from";
          return;
        }
        if (options_.profiles.count(profile) == 0) {
          why = "host " + down_host + " is down and the workspace's profile '" + profile +
                "' is not one this vigod has";
          return;
        }
        checkpoint = c[0][1].as<std::string>();
        memory_file = c[0][2].as<std::string>();
        disk_file = c[0][3].as<std::string>();
        disk_format = c[0][4].as<std::string>();
        // Deleted before the placement (its name and capacity are free) but
        // synced after it: a workspace whose VMs are all deleted is deleted.
        const std::string moved = "host " + down_host + " is down: resumed from checkpoint " + checkpoint + " elsewhere";
        txn.exec_params("UPDATE gis.vms SET state = 'deleted' WHERE id = $1", vm);
        placed.push_back(place(txn, ws, r[0][0].as<std::string>(), profile, PlacementRequest{}, std::nullopt,
                               c[0][0].as<std::int64_t>()));
        txn.exec_params("SELECT gis.set_vm_outcome($1, 'deleted', $2)", vm, moved);
      });
    } catch (const Error& e) {
      // No room, or no host large enough: the VM fails. Anything else (the
      // GIS unreachable, say) is tried again at the next watch.
      if (e.code() != ErrorCode::kResourceExhausted && e.code() != ErrorCode::kInvalidArgument) throw;
      why = "host " + down_host + " is down and no host could resume checkpoint " + checkpoint + ": " + e.what();
    }
    if (!placed.empty()) to = adopt(ws, placed, LaunchPlan{});
  }
  if (to.empty() && why.empty()) return false;
  // What ran on the down host, if it is one of ours and reachable after all
  // (another manager marked it down during a lapse of our heartbeats):
  // stopped, so it never runs twice.
  if (Host* old = find_host(down_host)) {
    old->post([this, old, vm] {
      try {
        teardown(*old, vm);
      } catch (const std::exception& e) {
        log::warn("fencing a failed-over VM failed", {{"vm", std::to_string(vm)}, {"error", e.what()}});
      }
    });
  }
  if (to.empty()) {
    db_.write([&](pqxx::transaction_base& txn) {
      txn.exec_params("SELECT gis.set_vm_outcome(v.id, 'failed', $2) FROM gis.vms v "
                      "WHERE v.id = $1 AND v.state IN ('running', 'paused')",
                      vm, why);
    });
    notify();
    log::warn("VM on a down host failed", {{"vm", std::to_string(vm)}, {"why", why}});
    return false;
  }
  notify();
  to.front()->plan = resume_plan(profile, memory_file, disk_file, disk_format);
  instantiate_later(to);
  log::info("VM failed over", {{"vm", std::to_string(vm)}, {"from", down_host}, {"to", to.front()->host},
                               {"as", std::to_string(to.front()->id)}, {"checkpoint", checkpoint}});
  return true;
}

}  // namespace vigo::scheduler
