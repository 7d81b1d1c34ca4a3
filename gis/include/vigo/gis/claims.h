// SPDX-License-Identifier: Apache-2.0
// Claims: atomic capacity claims. A claim creates a 'pending' VM row on a
// host in one transaction that locks the host, checks it is up and has room
// and adds to its counters; the database's CHECK makes overcommit
// impossible even under any number of concurrent claims. Thread-safe.
//
// Errors: kResourceExhausted (host has no room / not up), kConflict (the
// future was withdrawn or its room taken meanwhile), kNotFound,
// kInvalidArgument (names the field), kAlreadyExists (VM name taken).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "vigo/gis/database.h"
#include "vigo/gis/types.h"

namespace vigo::gis {

class Claims {
 public:
  explicit Claims(Database& db) : db_(db) {}

  // Claims one VM of a future's profile on the future's host; returns the VM id.
  std::int64_t claim_future(std::int64_t future_id, std::int64_t workspace_id, const std::string& vm_name);
  // Claims a VM of the given shape on a host; returns the VM id.
  std::int64_t claim_on_host(std::int64_t host_id, std::int64_t workspace_id, const std::string& vm_name,
                             const VmShape& shape, std::optional<std::int64_t> profile_id = std::nullopt);
  // Moves a VM to a state (e.g. "running", "deleted"); capacity follows.
  void set_vm_state(std::int64_t vm_id, const std::string& state);

 private:
  Database& db_;
};

}  // namespace vigo::gis
