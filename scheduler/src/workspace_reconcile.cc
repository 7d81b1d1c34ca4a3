// SPDX-License-Identifier: Apache-2.0
// WorkspaceManager::reconcile: the GIS against each host's hypervisor, by the
// rules in workspace_manager.h.
#include <map>
#include <set>

#include "vigo/common/error.h"
#include "vigo/gis/pg_support.h"
#include "workspace_manager_internal.h"

namespace vigo::scheduler {
namespace fs = std::filesystem;

ReconcileReport WorkspaceManager::reconcile() {
  ReconcileReport report;
  for (auto& hp : hosts_) {
    Host& h = *hp;
    try {
      h.call([&] {
        // Rows and handled VMs read together, with no placement in between
        // (a placed VM enters handling_ under the shared side of this lock).
        std::unique_lock launching{launching_};
        // Hosts driven through this host's hypervisor see each other's
        // domains: those are not orphans.
        std::vector<std::string> siblings;
        for (const auto& other : hosts_) {
          if (other.get() != &h && other->ctx.hypervisor == h.ctx.hypervisor) siblings.push_back(other->ctx.name);
        }
        std::map<std::int64_t, std::string> rows;  // live VM rows on this host: id -> state
        std::set<std::int64_t> siblings_vms;       // live VM rows on the siblings
        db_.read([&](pqxx::transaction_base& txn) {
          for (const auto& r : txn.exec_params(
                   "SELECT v.id, v.state::text, h.name = $1 FROM gis.vms v JOIN gis.hosts h ON h.id = v.host_id "
                   "WHERE (h.name = $1 OR h.name = ANY($2::text[])) AND v.state NOT IN ('deleted', 'failed', 'stopped')",
                   h.ctx.name, gis::pg_array(siblings))) {
            if (r[2].as<bool>()) {
              rows[r[0].as<std::int64_t>()] = r[1].as<std::string>();
            } else {
              siblings_vms.insert(r[0].as<std::int64_t>());
            }
          }
        });
        std::set<std::int64_t> handled;
        {
          std::lock_guard lock{mu_};
          for (const auto& [id, vm] : handling_) handled.insert(id);
        }
        launching.unlock();
        std::map<std::int64_t, DomainInfo> domains;
        for (const auto& d : h.hv().list()) {
          if (auto id = vm_of_domain(d.name)) domains[*id] = d;
        }
        for (const auto& [id, d] : domains) {
          if (!rows.contains(id) && !handled.contains(id) && !siblings_vms.contains(id)) {
            teardown(h, id);
            report.destroyed_domains.push_back(d.name);
          }
        }
        for (const auto& [id, state] : rows) {
          if (handled.contains(id)) continue;
          const auto d = domains.find(id);
          if (state == "pending" || state == "preparing" || state == "starting") {
            teardown(h, id);
            set_state(id, "failed", "interrupted: vigod stopped during the instantiation");
            report.interrupted_vms.push_back(id);
          } else if (state == "stopping") {
            teardown(h, id);
            set_state(id, "deleted");
            report.finished_stops.push_back(id);
          } else if (d == domains.end()) {
            teardown(h, id);
            set_state(id, "failed", "the domain is gone from host " + h.ctx.name);
            report.vanished_vms.push_back(id);
          } else if (state == "running" && d->second.state == DomainState::kPaused) {
            set_state(id, "paused");
          } else if (state == "paused" && d->second.state == DomainState::kRunning) {
            set_state(id, "running");
          }
        }
        for (const std::string& n : h.files().list_dir(h.ctx.state_dir)) {
          const auto id = id_after("vm-", n);
          if (!id || rows.contains(*id) || handled.contains(*id)) continue;
          try {
            h.files().remove_all(h.ctx.state_dir / n);
            report.removed_dirs.push_back(h.ctx.state_dir / n);
          } catch (const Error& e) {
            log::warn("orphan directory not removed", {{"host", h.ctx.name}, {"error", e.what()}});
          }
        }
      });
    } catch (const std::exception& e) {
      // One host that cannot be asked (down, unreachable) holds up no other;
      // the next reconciliation tries it again.
      log::warn("host not reconciled", {{"host", h.ctx.name}, {"error", e.what()}});
      report.unreconciled_hosts.push_back(h.ctx.name);
    }
  }
  if (!report.destroyed_domains.empty() || !report.interrupted_vms.empty() || !report.vanished_vms.empty() ||
      !report.finished_stops.empty() || !report.removed_dirs.empty()) {
    log::info("reconciled", {{"orphan_domains", std::to_string(report.destroyed_domains.size())},
                             {"interrupted", std::to_string(report.interrupted_vms.size())},
                             {"vanished", std::to_string(report.vanished_vms.size())},
                             {"stops_finished", std::to_string(report.finished_stops.size())},
                             {"dirs_removed", std::to_string(report.removed_dirs.size())}});
  }
  return report;
}

}  // namespace vigo::scheduler
