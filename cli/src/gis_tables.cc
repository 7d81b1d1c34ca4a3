// SPDX-License-Identifier: Apache-2.0
#include "gis_tables.h"

namespace vigo::cli {

Table hosts_table(const std::vector<gis::HostFit>& rows) {
  Table t{{"host_id", "host", "network", "free_vcpus", "free_memory_mb", "free_disk_gb"}};
  for (const auto& r : rows) {
    t.add({r.host_id, r.host, r.network, std::int64_t{r.free_vcpus}, r.free_memory_mb, r.free_disk_gb});
  }
  return t;
}

Table profile_fits_table(const std::vector<gis::ProfileFit>& rows) {
  Table t{{"future_id", "host_id", "host", "network", "slots"}};
  for (const auto& r : rows) t.add({r.future_id, r.host_id, r.host, r.network, std::int64_t{r.slots}});
  return t;
}

Table vm_sets_table(const std::vector<gis::VmSet>& rows) {
  Table t{{"set", "network", "total_memory_mb", "members", "member_names"}};
  std::int64_t n = 0;
  for (const auto& r : rows) {
    t.add({++n, r.network, r.total_memory_mb, nlohmann::json(r.members), nlohmann::json(r.member_names)});
  }
  return t;
}

Table gang_table(const std::vector<gis::GangSlot>& rows) {
  Table t{{"vm_index", "host_id", "host", "network"}};
  for (const auto& r : rows) t.add({std::int64_t{r.vm_index}, r.host_id, r.host, r.network});
  return t;
}

Table capacity_table(const std::vector<gis::Capacity>& rows, bool by_network) {
  std::vector<std::string> headers{by_network ? "network" : "site"};
  if (by_network) headers.emplace_back("site");
  for (const char* h : {"hosts_up", "hosts", "vcpus", "free_vcpus", "memory_mb", "free_memory_mb", "disk_gb",
                        "free_disk_gb"}) {
    headers.emplace_back(h);
  }
  Table t{headers};
  for (const auto& r : rows) {
    std::vector<Table::Cell> row{r.name};
    if (by_network) row.emplace_back(r.site);
    for (std::int64_t v : {r.hosts_up, r.hosts, r.vcpus, r.free_vcpus, r.memory_mb, r.free_memory_mb, r.disk_gb,
                           r.free_disk_gb}) {
      row.emplace_back(v);
    }
    t.add(std::move(row));
  }
  return t;
}

Table placement_table(const std::vector<gis::Placement>& rows) {
  Table t{{"vm_id", "vm", "workspace", "owner", "state", "vcpus", "memory_mb", "host", "network", "site"}};
  for (const auto& r : rows) {
    t.add({r.vm_id, r.vm, r.workspace, r.owner, r.state, std::int64_t{r.vcpus}, r.memory_mb, r.host, r.network,
           r.site});
  }
  return t;
}

Table impact_table(const std::vector<gis::FailureImpact>& rows) {
  Table t{{"vm_id", "vm", "workspace", "owner", "state", "memory_mb", "has_checkpoint"}};
  for (const auto& r : rows) {
    t.add({r.vm_id, r.vm, r.workspace, r.owner, r.state, r.memory_mb, r.has_checkpoint});
  }
  return t;
}

}  // namespace vigo::cli
