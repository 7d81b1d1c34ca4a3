// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/queries.h"

#include <nlohmann/json.hpp>

#include "vigo/gis/pg_support.h"

namespace vigo::gis {
namespace {

std::string labels_json(const Labels& labels) { return nlohmann::json(labels).dump(); }

std::vector<GangSlot> gang_rows(const pqxx::result& r) {
  std::vector<GangSlot> out;
  out.reserve(r.size());
  for (const auto& row : r) {
    out.push_back({row[0].as<std::int32_t>() - 1, row[1].as<std::int64_t>(), row[2].as<std::string>(),
                   row[3].as<std::string>()});
  }
  return out;
}

std::vector<Capacity> capacity_rows(const pqxx::result& r, bool with_site) {
  std::vector<Capacity> out;
  for (const auto& row : r) {
    Capacity c;
    int i = 0;
    c.name = row[i++].as<std::string>();
    if (with_site) c.site = row[i++].as<std::string>();
    c.hosts_up = row[i++].as<std::int64_t>();
    c.hosts = row[i++].as<std::int64_t>();
    c.vcpus = row[i++].as<std::int64_t>();
    c.free_vcpus = row[i++].as<std::int64_t>();
    c.memory_mb = row[i++].as<std::int64_t>();
    c.free_memory_mb = row[i++].as<std::int64_t>();
    c.disk_gb = row[i++].as<std::int64_t>();
    c.free_disk_gb = row[i++].as<std::int64_t>();
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

std::string to_string(Policy policy) { return policy == Policy::kPack ? "pack" : "spread"; }

std::string to_string(SetSource source) {
  switch (source) {
    case SetSource::kVms: return "vms";
    case SetSource::kFutures: return "futures";
    case SetSource::kBoth: return "both";
  }
  return "vms";
}

std::vector<HostFit> Queries::hosts_that_fit(const FitRequest& q) {
  return read([&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_params(
        "SELECT host_id, host, network, free_vcpus, free_memory_mb, free_disk_gb "
        "FROM gis.hosts_that_fit($1, $2, $3, $4, $5::jsonb, $6, $7, $8)",
        q.memory_mb, q.vcpus, q.disk_gb, q.arch, labels_json(q.labels), q.network, to_string(q.policy),
        q.limit);
    std::vector<HostFit> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      out.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                     row[3].as<std::int32_t>(), row[4].as<std::int64_t>(), row[5].as<std::int64_t>()});
    }
    return out;
  });
}

std::vector<ProfileFit> Queries::hosts_for_profile(const std::string& profile, const Labels& labels,
                                                   const std::optional<std::string>& network,
                                                   std::int32_t limit) {
  return read([&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_params(
        "SELECT future_id, host_id, host, network, slots FROM gis.hosts_for_profile($1, $2::jsonb, $3, $4)",
        profile, labels_json(labels), network, limit);
    std::vector<ProfileFit> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      out.push_back({row[0].as<std::int64_t>(), row[1].as<std::int64_t>(), row[2].as<std::string>(),
                     row[3].as<std::string>(), row[4].as<std::int32_t>()});
    }
    return out;
  });
}

std::vector<VmSet> Queries::vm_sets(const VmSetRequest& q) {
  return read([&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_params(
        "SELECT network, members, member_names, total_memory_mb "
        "FROM gis.vm_sets($1, $2, $3, $4, $5, $6, $7)",
        q.n, q.min_memory_mb, q.max_memory_mb, to_string(q.source), q.limit, q.network, q.seed);
    std::vector<VmSet> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      out.push_back({row[0].as<std::string>(), parse_int_array(row[1]), parse_text_array(row[2]),
                     row[3].as<std::int64_t>()});
    }
    return out;
  });
}

std::vector<GangSlot> Queries::gang_place(const GangRequest& q) {
  std::vector<std::int64_t> memory, vcpus, disk;
  for (const VmShape& vm : q.vms) {
    memory.push_back(vm.memory_mb);
    vcpus.push_back(vm.vcpus);
    disk.push_back(vm.disk_gb);
  }
  return read([&](pqxx::transaction_base& txn) {
    return gang_rows(txn.exec_params(
        "SELECT vm_index, host_id, host, network "
        "FROM gis.gang_place($1::bigint[], $2::integer[], $3::bigint[], $4, $5, $6, $7::jsonb)",
        pg_array(memory), pg_array(vcpus), pg_array(disk), q.distinct_hosts, q.network, q.arch,
        labels_json(q.labels)));
  });
}

std::vector<GangSlot> Queries::gang_place_profile(const std::string& profile, std::int32_t count,
                                                  bool distinct_hosts,
                                                  const std::optional<std::string>& network) {
  return read([&](pqxx::transaction_base& txn) {
    return gang_rows(txn.exec_params(
        "SELECT vm_index, host_id, host, network FROM gis.gang_place_profile($1, $2, $3, $4)", profile,
        count, distinct_hosts, network));
  });
}

std::vector<Capacity> Queries::capacity_by_network() {
  return read([&](pqxx::transaction_base& txn) {
    return capacity_rows(txn.exec("SELECT network, site, hosts_up, hosts, vcpus, free_vcpus, memory_mb, "
                                  "free_memory_mb, disk_gb, free_disk_gb FROM gis.capacity_by_network "
                                  "ORDER BY site, network"),
                         true);
  });
}

std::vector<Capacity> Queries::capacity_by_site() {
  return read([&](pqxx::transaction_base& txn) {
    return capacity_rows(txn.exec("SELECT site, hosts_up, hosts, vcpus, free_vcpus, memory_mb, "
                                  "free_memory_mb, disk_gb, free_disk_gb FROM gis.capacity_by_site "
                                  "ORDER BY site"),
                         false);
  });
}

std::vector<Placement> Queries::vm_placement() {
  return read([&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec(
        "SELECT vm_id, vm, workspace, owner, state, vcpus, memory_mb, host, network, site "
        "FROM gis.vm_placement ORDER BY site, network, host, vm_id");
    std::vector<Placement> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      out.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                     row[3].as<std::string>(), row[4].as<std::string>(), row[5].as<std::int32_t>(),
                     row[6].as<std::int64_t>(), row[7].as<std::string>(), row[8].as<std::string>(),
                     row[9].as<std::string>()});
    }
    return out;
  });
}

std::vector<FailureImpact> Queries::host_failure_impact(const std::string& host) {
  return read([&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_params(
        "SELECT vm_id, vm, workspace, owner, state, memory_mb, has_checkpoint "
        "FROM gis.host_failure_impact($1)",
        host);
    std::vector<FailureImpact> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      out.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                     row[3].as<std::string>(), row[4].as<std::string>(), row[5].as<std::int64_t>(),
                     row[6].as<bool>()});
    }
    return out;
  });
}

}  // namespace vigo::gis
