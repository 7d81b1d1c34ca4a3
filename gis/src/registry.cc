// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/registry.h"

#include <nlohmann/json.hpp>

#include "vigo/gis/pg_support.h"

namespace vigo::gis {
namespace {

std::int64_t scalar_id(Database& db, const std::string& sql, auto&&... params) {
  return db.write([&](pqxx::transaction_base& txn) {
    return txn.exec_params1(sql, params...)[0].template as<std::int64_t>();
  });
}

}  // namespace

std::int64_t Registry::add_site(const std::string& name, const std::string& description) {
  return scalar_id(db_, "SELECT gis.add_site($1, $2)", name, description);
}

std::int64_t Registry::add_network(const std::string& name, const std::string& site,
                                   const std::optional<std::string>& cidr) {
  return scalar_id(db_, "SELECT gis.add_network($1, $2, $3::cidr)", name, site, cidr);
}

std::int64_t Registry::add_profile(const std::string& name, std::int32_t vcpus, std::int64_t memory_mb,
                                   std::int64_t disk_gb, const std::string& arch) {
  return scalar_id(db_, "SELECT gis.add_profile($1, $2, $3, $4, $5)", name, vcpus, memory_mb, disk_gb,
                   arch);
}

std::int64_t Registry::add_image_server(const std::string& name, const std::string& site,
                                        const std::string& endpoint) {
  return scalar_id(db_, "SELECT gis.add_image_server($1, $2, $3)", name, site, endpoint);
}

std::int64_t Registry::add_data_server(const std::string& name, const std::string& site,
                                       const std::string& endpoint) {
  return scalar_id(db_, "SELECT gis.add_data_server($1, $2, $3)", name, site, endpoint);
}

std::int64_t Registry::add_user(const std::string& name, bool is_admin) {
  return scalar_id(db_, "SELECT gis.add_user($1, $2)", name, is_admin);
}

std::int64_t Registry::add_workspace(const std::string& owner, const std::string& name, bool persistent) {
  return scalar_id(db_, "SELECT gis.add_workspace($1, $2, $3)", owner, name, persistent);
}

std::vector<RegisteredHost> Registry::register_hosts(std::span<const HostSpec> hosts) {
  std::vector<std::string> names, networks, uris, arches, labels;
  std::vector<std::int64_t> cpus, memory, disk;
  for (const HostSpec& h : hosts) {
    names.push_back(h.name);
    networks.push_back(h.network);
    uris.push_back(h.libvirt_uri);
    arches.push_back(h.arch);
    labels.push_back(nlohmann::json(h.labels).dump());
    cpus.push_back(h.cpus);
    memory.push_back(h.memory_mb);
    disk.push_back(h.disk_gb);
  }
  return db_.write([&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_params(
        "SELECT host_id, host FROM gis.register_hosts($1::text[], $2::text[], $3::text[], "
        "$4::integer[], $5::bigint[], $6::bigint[], $7::text[], $8::jsonb[])",
        pg_array(names), pg_array(networks), pg_array(uris), pg_array(cpus), pg_array(memory),
        pg_array(disk), pg_array(arches), pg_array(labels));
    std::vector<RegisteredHost> out;
    out.reserve(r.size());
    for (const auto& row : r) out.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>()});
    return out;
  });
}

std::vector<std::int64_t> Registry::record_heartbeats(std::span<const std::int64_t> host_ids) {
  if (host_ids.empty()) return {};
  return db_.write([&](pqxx::transaction_base& txn) {
    return parse_int_array(
        txn.exec_params1("SELECT gis.record_heartbeats($1::bigint[])", pg_array(host_ids))[0]);
  });
}

std::vector<std::string> Registry::mark_silent_hosts_down(std::chrono::seconds silence) {
  return db_.write([&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_params("SELECT host FROM gis.mark_silent_hosts_down(make_interval(secs => $1))",
                                     static_cast<double>(silence.count()));
    std::vector<std::string> out;
    for (const auto& row : r) out.push_back(row[0].as<std::string>());
    return out;
  });
}

}  // namespace vigo::gis
