// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/claims.h"

namespace vigo::gis {

std::int64_t Claims::claim_future(std::int64_t future_id, std::int64_t workspace_id,
                                  const std::string& vm_name) {
  return db_.write([&](pqxx::transaction_base& txn) {
    return txn.exec_params1("SELECT gis.claim_future($1, $2, $3)", future_id, workspace_id, vm_name)[0]
        .as<std::int64_t>();
  });
}

std::int64_t Claims::claim_on_host(std::int64_t host_id, std::int64_t workspace_id,
                                   const std::string& vm_name, const VmShape& shape,
                                   std::optional<std::int64_t> profile_id) {
  return db_.write([&](pqxx::transaction_base& txn) {
    return txn
        .exec_params1("SELECT gis.claim_on_host($1, $2, $3, $4, $5, $6, $7)", host_id, workspace_id, vm_name,
                      shape.vcpus, shape.memory_mb, shape.disk_gb, profile_id)[0]
        .as<std::int64_t>();
  });
}

void Claims::set_vm_state(std::int64_t vm_id, const std::string& state) {
  db_.write([&](pqxx::transaction_base& txn) {
    // The cast is checked against gis.vm_state server-side (22P02 -> invalid argument).
    txn.exec_params("SELECT gis.set_vm_state($1, $2::gis.vm_state)", vm_id, state);
  });
}

}  // namespace vigo::gis
