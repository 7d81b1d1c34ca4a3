// SPDX-License-Identifier: Apache-2.0
// A synthetic grid for the demo, the tests and the benchmark: sites,
// networks, hosts with varied shapes, six VM profiles, users with one
// workspace each, and running VMs spread over the hosts without ever
// exceeding a host's capacity. Deterministic for a given seed. It goes
// through the same paths as real registrations (Registry for hosts, one
// set-based INSERT per batch of VMs so the capacity triggers run as they
// would for any bulk change).
#pragma once

#include <chrono>
#include <cstdint>

#include "vigo/gis/database.h"

namespace vigo::gis {

struct SyntheticGridSpec {
  int sites = 2;
  int networks = 4;
  int hosts = 16;
  int users = 3;
  int vms = 40;
  std::uint64_t seed = 1;
  int batch = 5000;  // hosts / VMs per statement
};

struct SyntheticGridStats {
  std::int64_t hosts = 0;
  std::int64_t vms = 0;
  std::int64_t futures = 0;
  std::chrono::milliseconds elapsed{0};
};

// Loads the grid into an empty (migrated) GIS. Names: site-NN, net-NNN,
// host-NNNNN, user-NNN (workspace "main"), vm-NNNNNN; profiles tiny, small,
// medium, large, xlarge, huge.
SyntheticGridStats load_synthetic_grid(Database& db, const SyntheticGridSpec& spec);

}  // namespace vigo::gis
