// SPDX-License-Identifier: Apache-2.0
// WorkspaceManager, what is read back: a workspace's status, the list, a
// VM's console tail, and waiting until no VM is on its way.
#include <algorithm>

#include "vigo/common/error.h"
#include "workspace_manager_internal.h"

namespace vigo::scheduler {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

bool on_its_way(const std::string& state) {
  return state == "pending" || state == "preparing" || state == "starting" || state == "stopping";
}

}  // namespace

WorkspaceStatus WorkspaceManager::status(std::int64_t workspace) {
  return db_.read([&](pqxx::transaction_base& txn) {
    const auto w = txn.exec_params(
        "SELECT w.id, u.name, w.name, w.state::text, w.error FROM gis.workspaces w JOIN gis.users u ON u.id = w.owner_id "
        "WHERE w.id = $1",
        workspace);
    if (w.empty()) throw Error{ErrorCode::kNotFound, "no workspace with id " + std::to_string(workspace), "workspace"};
    WorkspaceStatus s{w[0][0].as<std::int64_t>(), w[0][1].as<std::string>(), w[0][2].as<std::string>(),
                      w[0][3].as<std::string>(), w[0][4].as<std::string>(), {}};
    for (const auto& row : txn.exec_params(
             "SELECT v.id, v.name, coalesce(h.name, ''), v.state::text, v.error FROM gis.vms v "
             "LEFT JOIN gis.hosts h ON h.id = v.host_id WHERE v.workspace_id = $1 ORDER BY v.id",
             workspace)) {
      const auto id = row[0].as<std::int64_t>();
      s.vms.push_back({id, row[1].as<std::string>(), domain_name(id), row[2].as<std::string>(),
                       row[3].as<std::string>(), row[4].as<std::string>()});
      if (s.error.empty() && !s.vms.back().error.empty()) s.error = s.vms.back().error;
    }
    return s;
  });
}

std::vector<WorkspaceStatus> WorkspaceManager::list(const std::optional<std::string>& owner, bool include_deleted) {
  return db_.read([&](pqxx::transaction_base& txn) {
    std::vector<WorkspaceStatus> out;
    std::map<std::int64_t, std::size_t> index;
    const auto rows = txn.exec_params(
        "SELECT w.id, u.name, w.name, w.state::text, w.error FROM gis.workspaces w JOIN gis.users u ON u.id = w.owner_id "
        "WHERE ($1::text IS NULL OR u.name = $1) AND ($2 OR w.state <> 'deleted') ORDER BY w.id",
        owner, include_deleted);
    for (const auto& w : rows) {
      index[w[0].as<std::int64_t>()] = out.size();
      out.push_back(WorkspaceStatus{w[0].as<std::int64_t>(), w[1].as<std::string>(), w[2].as<std::string>(),
                                    w[3].as<std::string>(), w[4].as<std::string>(), {}});
    }
    if (out.empty()) return out;
    for (const auto& row : txn.exec_params(
             "SELECT v.workspace_id, v.id, v.name, coalesce(h.name, ''), v.state::text, v.error FROM gis.vms v "
             "JOIN gis.workspaces w ON w.id = v.workspace_id JOIN gis.users u ON u.id = w.owner_id "
             "LEFT JOIN gis.hosts h ON h.id = v.host_id "
             "WHERE ($1::text IS NULL OR u.name = $1) AND ($2 OR w.state <> 'deleted') ORDER BY v.id",
             owner, include_deleted)) {
      const auto it = index.find(row[0].as<std::int64_t>());
      if (it == index.end()) continue;  // a workspace created between the two reads
      auto& s = out[it->second];
      const auto id = row[1].as<std::int64_t>();
      s.vms.push_back({id, row[2].as<std::string>(), domain_name(id), row[3].as<std::string>(),
                       row[4].as<std::string>(), row[5].as<std::string>()});
      if (s.error.empty() && !s.vms.back().error.empty()) s.error = s.vms.back().error;
    }
    return out;
  });
}

std::string WorkspaceManager::console_tail(std::int64_t vm, std::size_t max_bytes) {
  const auto host_name = db_.read([&](pqxx::transaction_base& txn) -> std::optional<std::string> {
    const auto r = txn.exec_params("SELECT h.name FROM gis.vms v JOIN gis.hosts h ON h.id = v.host_id WHERE v.id = $1", vm);
    if (r.empty()) return std::nullopt;
    return r[0][0].as<std::string>();
  });
  if (!host_name) return {};
  Host* h = find_host(*host_name);
  if (h == nullptr) return {};
  try {
    return h->files().tail(h->vm_dir(vm) / "console.log", max_bytes);
  } catch (const Error& e) {
    // A console is for people to look at: a host that cannot be asked
    // shows none, as a VM that has written nothing yet.
    log::warn("console not read", {{"vm", std::to_string(vm)}, {"host", h->ctx.name}, {"error", e.what()}});
    return {};
  }
}

WorkspaceStatus WorkspaceManager::wait(std::int64_t workspace, Clock::time_point deadline) {
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard lock{mu_};
      seen = generation_;
    }
    WorkspaceStatus s = status(workspace);
    const bool busy = std::any_of(s.vms.begin(), s.vms.end(), [](const VmStatus& v) { return on_its_way(v.state); });
    if (!busy || Clock::now() >= deadline) return s;
    std::unique_lock lock{mu_};
    changed_.wait_until(lock, deadline, [&] { return generation_ != seen; });
  }
}

}  // namespace vigo::scheduler
