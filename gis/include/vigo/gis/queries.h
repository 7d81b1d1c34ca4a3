// SPDX-License-Identifier: Apache-2.0
// Queries: the GIS's compositional queries through the C++ API. Each is one
// parameterized call of the gis.* SQL function an administrator can also
// call from psql (sql/004_queries.sql), so both give the same answers and
// the same errors. Read-only; thread-safe. With a user id set, rows are
// limited by row-level security to that user's own VMs and workspaces.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vigo/gis/database.h"
#include "vigo/gis/types.h"

namespace vigo::gis {

class Queries {
 public:
  explicit Queries(Database& db, std::optional<std::int64_t> as_user = std::nullopt)
      : db_(db), as_user_(as_user) {}

  // Query 1: hosts that can instantiate a VM of the given shape now.
  std::vector<HostFit> hosts_that_fit(const FitRequest& request);
  // Query 1 by profile: its futures (one per host with room), with the ids to claim.
  std::vector<ProfileFit> hosts_for_profile(const std::string& profile, const Labels& labels = {},
                                            const std::optional<std::string>& network = std::nullopt,
                                            std::int32_t limit = 100);
  // Query 2: sets of n distinct VMs on one network, total memory in range.
  std::vector<VmSet> vm_sets(const VmSetRequest& request);
  // Query 3: a host for each VM on one network; empty when none fits.
  std::vector<GangSlot> gang_place(const GangRequest& request);
  std::vector<GangSlot> gang_place_profile(const std::string& profile, std::int32_t count,
                                           bool distinct_hosts = true,
                                           const std::optional<std::string>& network = std::nullopt);
  // Query 4.
  std::vector<Capacity> capacity_by_network();
  std::vector<Capacity> capacity_by_site();
  std::vector<Placement> vm_placement();
  std::vector<FailureImpact> host_failure_impact(const std::string& host);

 private:
  template <typename Body>
  auto read(Body&& body) {
    return as_user_ ? db_.read_as_user(*as_user_, std::forward<Body>(body))
                    : db_.read(std::forward<Body>(body));
  }

  Database& db_;
  std::optional<std::int64_t> as_user_;
};

[[nodiscard]] std::string to_string(Policy policy);
[[nodiscard]] std::string to_string(SetSource source);

}  // namespace vigo::gis
