// SPDX-License-Identifier: Apache-2.0
// WorkspaceManager, libvirt's lifecycle events: a guest that stops or
// crashes on its own is failed on the queue of the host its row names.
#include <algorithm>

#include "vigo/common/error.h"
#include "workspace_manager_internal.h"

namespace vigo::scheduler {

// Every stop the manager makes itself (teardown, save) runs on the host's
// queue and moves the row out of running/paused/starting before the queue
// takes the next job; so the event's job, queued behind it, finds the row
// moved on and does nothing. What is left is a guest that stopped by itself.
std::vector<Hypervisor*> WorkspaceManager::hypervisors() const {
  std::vector<Hypervisor*> out;
  for (const auto& h : hosts_) {
    if (std::find(out.begin(), out.end(), h->ctx.hypervisor) == out.end()) out.push_back(h->ctx.hypervisor);
  }
  return out;
}

// An event names a domain, not a host: the VM's row says which host it is
// on, and only a host driven through the hypervisor that reported it acts.
void WorkspaceManager::on_event(Hypervisor& hv, const DomainEvent& e) {
  if (e.kind != DomainEvent::Kind::kStopped && e.kind != DomainEvent::Kind::kCrashed) return;
  const auto vm = vm_of_domain(e.name);
  if (!vm) return;
  std::string host_name;
  try {
    host_name = db_.read([&](pqxx::transaction_base& txn) {
      const auto rows = txn.exec_params(
          "SELECT h.name FROM gis.vms v JOIN gis.hosts h ON h.id = v.host_id WHERE v.id = $1", *vm);
      return rows.empty() ? std::string{} : rows[0][0].as<std::string>();
    });
  } catch (const std::exception& ex) {
    // Reconciliation catches what this event would have.
    log::warn("domain event not handled", {{"domain", e.name}, {"error", ex.what()}});
    return;
  }
  for (auto& hp : hosts_) {
    if (hp->ctx.name == host_name && hp->ctx.hypervisor == &hv) on_host_event(*hp, *vm, e);
  }
}

void WorkspaceManager::on_host_event(Host& h, std::int64_t vm, const DomainEvent& e) {
  h.post([this, &h, id = vm, kind = e.kind, detail = e.detail] {
    const auto state = db_.read([&](pqxx::transaction_base& txn) {
      const auto rows = txn.exec_params("SELECT state::text FROM gis.vms WHERE id = $1", id);
      return rows.empty() ? std::string{} : rows[0][0].as<std::string>();
    });
    if (state != "running" && state != "paused" && state != "starting") return;
    if (h.hv().find(domain_name(id))) return;  // restored meanwhile (a checkpoint)
    std::shared_ptr<Vm> handled;
    {
      std::lock_guard lock{mu_};
      if (auto it = handling_.find(id); it != handling_.end()) handled = it->second;
    }
    if (handled) handled->waiter.request_stop();  // this queue is the only one that assigns it
    fail(h, id,
         std::string{kind == DomainEvent::Kind::kCrashed ? "the guest crashed" : "the guest stopped"} + " (" +
             detail + ")");
  });
}

}  // namespace vigo::scheduler
