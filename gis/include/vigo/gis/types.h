// SPDX-License-Identifier: Apache-2.0
// Plain value types that cross the GIS boundary. Sizes: memory in MiB, disk
// in GiB. Ids are the GIS's resource ids (one id space for every resource).
// Validation happens in the SQL functions (one place for psql and C++); a
// bad value comes back as vigo::Error naming the field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vigo::gis {

using Labels = std::map<std::string, std::string>;

struct HostSpec {
  std::string name;
  std::string network;
  std::string libvirt_uri;
  std::int32_t cpus = 0;
  std::int64_t memory_mb = 0;
  std::int64_t disk_gb = 0;
  std::string arch = "x86_64";
  Labels labels;
};

struct RegisteredHost {
  std::int64_t id = 0;
  std::string name;
};

enum class Policy { kSpread, kPack };

// Query 1: hosts that can take a VM of this shape.
struct FitRequest {
  std::int64_t memory_mb = 0;
  std::int32_t vcpus = 1;
  std::int64_t disk_gb = 0;
  std::optional<std::string> arch;
  Labels labels;
  std::optional<std::string> network;
  Policy policy = Policy::kSpread;
  std::int32_t limit = 100;
};

struct HostFit {
  std::int64_t host_id = 0;
  std::string host;
  std::string network;
  std::int32_t free_vcpus = 0;
  std::int64_t free_memory_mb = 0;
  std::int64_t free_disk_gb = 0;
};

struct ProfileFit {
  std::int64_t future_id = 0;
  std::int64_t host_id = 0;
  std::string host;
  std::string network;
  std::int32_t slots = 0;
};

enum class SetSource { kVms, kFutures, kBoth };

// Query 2: sets of n distinct VMs on one network with total memory in [min, max].
struct VmSetRequest {
  std::int32_t n = 0;
  std::int64_t min_memory_mb = 0;
  std::int64_t max_memory_mb = 0;
  SetSource source = SetSource::kVms;
  std::int32_t limit = 100;
  std::optional<std::string> network;
  std::optional<double> seed;  // set: random sampling; unset: deterministic
};

struct VmSet {
  std::string network;
  std::vector<std::int64_t> members;
  std::vector<std::string> member_names;
  std::int64_t total_memory_mb = 0;
};

struct VmShape {
  std::int64_t memory_mb = 0;
  std::int32_t vcpus = 1;
  std::int64_t disk_gb = 0;
};

// Query 3: one host per VM, on one network.
struct GangRequest {
  std::vector<VmShape> vms;
  bool distinct_hosts = true;
  std::optional<std::string> network;
  std::string arch = "x86_64";
  Labels labels;
};

struct GangSlot {
  std::int32_t vm_index = 0;  // 0-based index into GangRequest::vms
  std::int64_t host_id = 0;
  std::string host;
  std::string network;
};

// Query 4.
struct Capacity {
  std::string name;  // network or site
  std::string site;  // for networks
  std::int64_t hosts_up = 0, hosts = 0;
  std::int64_t vcpus = 0, free_vcpus = 0;
  std::int64_t memory_mb = 0, free_memory_mb = 0;
  std::int64_t disk_gb = 0, free_disk_gb = 0;
};

struct Placement {
  std::int64_t vm_id = 0;
  std::string vm, workspace, owner, state;
  std::int32_t vcpus = 0;
  std::int64_t memory_mb = 0;
  std::string host, network, site;
};

struct FailureImpact {
  std::int64_t vm_id = 0;
  std::string vm, workspace, owner, state;
  std::int64_t memory_mb = 0;
  bool has_checkpoint = false;
};

}  // namespace vigo::gis
