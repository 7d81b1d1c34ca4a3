// SPDX-License-Identifier: Apache-2.0
// Registry: writes the GIS's physical and virtual inventory: sites,
// networks, profiles, users, workspaces, hosts (batched) and heartbeats
// (batched). Every call is one transaction through gis.* SQL functions, so
// bad input is rejected with nothing written. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vigo/gis/database.h"
#include "vigo/gis/types.h"

namespace vigo::gis {

class Registry {
 public:
  explicit Registry(Database& db) : db_(db) {}

  std::int64_t add_site(const std::string& name, const std::string& description = {});
  std::int64_t add_network(const std::string& name, const std::string& site,
                           const std::optional<std::string>& cidr = std::nullopt);
  std::int64_t add_profile(const std::string& name, std::int32_t vcpus, std::int64_t memory_mb,
                           std::int64_t disk_gb = 0, const std::string& arch = "x86_64");
  std::int64_t add_image_server(const std::string& name, const std::string& site,
                                const std::string& endpoint);
  std::int64_t add_data_server(const std::string& name, const std::string& site,
                               const std::string& endpoint);
  std::int64_t add_user(const std::string& name, bool is_admin = false);
  std::int64_t add_workspace(const std::string& owner, const std::string& name, bool persistent = false);

  // Registers or updates hosts in one statement (all or nothing).
  std::vector<RegisteredHost> register_hosts(std::span<const HostSpec> hosts);

  // Records heartbeats for the given host ids in one statement; returns the
  // ids that name no host (they must register again).
  std::vector<std::int64_t> record_heartbeats(std::span<const std::int64_t> host_ids);

  // Marks down the hosts silent for longer than `silence`; returns their names.
  std::vector<std::string> mark_silent_hosts_down(std::chrono::seconds silence);

 private:
  Database& db_;
};

}  // namespace vigo::gis
