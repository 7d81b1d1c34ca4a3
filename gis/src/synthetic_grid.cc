// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/synthetic_grid.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "vigo/common/error.h"
#include "vigo/gis/pg_support.h"
#include "vigo/gis/registry.h"

namespace vigo::gis {
namespace {

struct Shape {
  const char* name;
  int vcpus;
  std::int64_t memory_mb;
  std::int64_t disk_gb;
  int weight;  // how often VMs of this profile occur
};

constexpr std::array<Shape, 6> kProfiles{{
    {"tiny", 1, 128, 1, 30},
    {"small", 1, 256, 2, 30},
    {"medium", 1, 512, 4, 20},
    {"large", 2, 1024, 8, 12},
    {"xlarge", 4, 2048, 16, 6},
    {"huge", 8, 4096, 32, 2},
}};

std::string numbered(const char* prefix, int width, long n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%0*ld", prefix, width, n);
  return buf;
}

void check_spec(const SyntheticGridSpec& s) {
  auto range = [](const char* field, long v, long lo, long hi) {
    if (v < lo || v > hi) {
      throw Error{ErrorCode::kInvalidArgument,
                  std::string{"invalid "} + field + ": must be between " + std::to_string(lo) + " and " +
                      std::to_string(hi),
                  field};
    }
  };
  range("sites", s.sites, 1, 1000);
  range("networks", s.networks, s.sites, 100000);
  range("hosts", s.hosts, 1, 1000000);
  range("users", s.users, 1, 100000);
  range("vms", s.vms, 0, 10000000);
  range("batch", s.batch, 1, 100000);
}

}  // namespace

SyntheticGridStats load_synthetic_grid(Database& db, const SyntheticGridSpec& spec) {
  check_spec(spec);
  const auto start = std::chrono::steady_clock::now();
  std::mt19937_64 rng{spec.seed};
  Registry registry{db};

  for (int s = 0; s < spec.sites; ++s) registry.add_site(numbered("site", 2, s), "synthetic site");
  for (int n = 0; n < spec.networks; ++n) {
    registry.add_network(numbered("net", 3, n), numbered("site", 2, n % spec.sites));
  }
  for (const Shape& p : kProfiles) registry.add_profile(p.name, p.vcpus, p.memory_mb, p.disk_gb);

  // Hosts: varied shapes, round-robin over networks.
  constexpr std::array<int, 4> kCpus{16, 32, 48, 64};
  constexpr std::array<std::int64_t, 4> kMemoryGb{32, 64, 128, 256};
  struct Free {
    std::int64_t cpus, memory_mb, disk_gb;
  };
  std::vector<std::int64_t> host_ids;
  std::vector<Free> free;
  std::vector<HostSpec> batch;
  auto flush_hosts = [&] {
    for (const RegisteredHost& h : registry.register_hosts(batch)) host_ids.push_back(h.id);
    batch.clear();
  };
  for (int h = 0; h < spec.hosts; ++h) {
    HostSpec host;
    host.name = numbered("host", 5, h);
    host.network = numbered("net", 3, h % spec.networks);
    host.libvirt_uri = "qemu+ssh://" + host.name + "/system";
    host.cpus = kCpus[rng() % kCpus.size()];
    host.memory_mb = kMemoryGb[rng() % kMemoryGb.size()] * 1024;
    host.disk_gb = 2000;
    host.labels = {{"rack", numbered("rack", 2, h % 40)}};
    if (h % 10 == 0) host.labels["gpu"] = "none";
    free.push_back({host.cpus, host.memory_mb, host.disk_gb});
    batch.push_back(std::move(host));
    if (static_cast<int>(batch.size()) == spec.batch) flush_hosts();
  }
  if (!batch.empty()) flush_hosts();

  std::vector<std::int64_t> workspaces;
  for (int u = 0; u < spec.users; ++u) {
    const std::string user = numbered("user", 3, u);
    registry.add_user(user);
    workspaces.push_back(registry.add_workspace(user, "main"));
  }
  std::vector<std::int64_t> owners = db.read([&](pqxx::transaction_base& txn) {
    std::vector<std::int64_t> out;
    for (const auto& row : txn.exec_params("SELECT w.owner_id FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, i) "
                                           "JOIN gis.workspaces w ON w.id = u.id ORDER BY u.i",
                                           pg_array(workspaces))) {
      out.push_back(row[0].as<std::int64_t>());
    }
    return out;
  });

  // VMs: weighted profiles on random hosts with room (tracked here, so the
  // database's no-overcommit check never fires).
  std::vector<int> weights;
  for (const Shape& p : kProfiles) weights.push_back(p.weight);
  std::discrete_distribution<int> pick_profile{weights.begin(), weights.end()};
  std::vector<std::int64_t> ws_col, owner_col, host_col, mem_col, disk_col, cpu_col;
  std::vector<std::string> name_col, profile_col;
  std::int64_t placed = 0;
  auto flush_vms = [&] {
    db.write([&](pqxx::transaction_base& txn) {
      txn.exec_params(
          "INSERT INTO gis.vms (workspace_id, owner_id, name, profile_id, vcpus, memory_mb, disk_gb, state, host_id) "
          "SELECT u.ws, u.owner, u.name, p.id, u.vcpus, u.mem, u.disk, 'running', u.host "
          "FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::integer[], $6::bigint[], "
          "$7::bigint[], $8::bigint[]) AS u(ws, owner, name, profile, vcpus, mem, disk, host) "
          "JOIN gis.profiles p ON p.name = u.profile",
          pg_array(ws_col), pg_array(owner_col), pg_array(name_col), pg_array(profile_col), pg_array(cpu_col),
          pg_array(mem_col), pg_array(disk_col), pg_array(host_col));
    });
    for (auto* v : {&ws_col, &owner_col, &host_col, &mem_col, &disk_col, &cpu_col}) v->clear();
    name_col.clear();
    profile_col.clear();
  };
  for (int v = 0; v < spec.vms; ++v) {
    const Shape& p = kProfiles[pick_profile(rng)];
    const std::size_t first = rng() % host_ids.size();
    for (std::size_t k = 0; k < std::min<std::size_t>(host_ids.size(), 64); ++k) {
      const std::size_t h = (first + k) % host_ids.size();
      if (free[h].cpus < p.vcpus || free[h].memory_mb < p.memory_mb || free[h].disk_gb < p.disk_gb) continue;
      free[h].cpus -= p.vcpus;
      free[h].memory_mb -= p.memory_mb;
      free[h].disk_gb -= p.disk_gb;
      const std::size_t w = static_cast<std::size_t>(v) % workspaces.size();
      ws_col.push_back(workspaces[w]);
      owner_col.push_back(owners[w]);
      name_col.push_back(numbered("vm", 6, v));
      profile_col.push_back(p.name);
      cpu_col.push_back(p.vcpus);
      mem_col.push_back(p.memory_mb);
      disk_col.push_back(p.disk_gb);
      host_col.push_back(host_ids[h]);
      ++placed;
      break;
    }
    if (static_cast<int>(ws_col.size()) == spec.batch) flush_vms();
  }
  if (!ws_col.empty()) flush_vms();

  SyntheticGridStats stats;
  stats.hosts = static_cast<std::int64_t>(host_ids.size());
  stats.vms = placed;
  stats.futures = db.read([](pqxx::transaction_base& txn) {
    return txn.exec1("SELECT count(*) FROM gis.futures")[0].as<std::int64_t>();
  });
  stats.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return stats;
}

}  // namespace vigo::gis
