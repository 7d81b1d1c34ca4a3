// SPDX-License-Identifier: Apache-2.0
#include "demo.h"

#include "gis_tables.h"
#include "vigo/gis/queries.h"
#include "vigo/gis/synthetic_grid.h"

namespace vigo::cli {

bool ensure_demo_grid(gis::Database& db) {
  bool empty = db.read([](pqxx::transaction_base& txn) {
    return txn.exec1("SELECT NOT EXISTS (SELECT 1 FROM gis.sites)")[0].as<bool>();
  });
  if (!empty) return false;
  gis::SyntheticGridSpec spec;
  spec.sites = 2;
  spec.networks = 4;
  spec.hosts = 16;
  spec.users = 3;
  spec.vms = 60;
  spec.seed = 2003;
  gis::load_synthetic_grid(db, spec);
  return true;
}

void print_example_queries(gis::Database& db, std::ostream& out) {
  gis::Queries q{db};
  auto heading = [&](const char* title, const char* sql) {
    out << "\n== " << title << "\n   psql> " << sql << "\n";
  };

  heading("Physical machines that can instantiate a VM with 1 GB of memory",
          "SELECT * FROM gis.hosts_that_fit(1024) LIMIT 5;");
  gis::FitRequest fit;
  fit.memory_mb = 1024;
  fit.limit = 5;
  hosts_table(q.hosts_that_fit(fit)).print(out);

  heading("Sets of four different VMs on the same network with total memory between 512 MB and 1 GB",
          "SELECT * FROM gis.vm_sets(4, 512, 1024, p_limit => 5);");
  gis::VmSetRequest sets;
  sets.n = 4;
  sets.min_memory_mb = 512;
  sets.max_memory_mb = 1024;
  sets.limit = 5;
  vm_sets_table(q.vm_sets(sets)).print(out);

  heading("The same over futures: four VMs that could be instantiated now",
          "SELECT * FROM gis.vm_sets(4, 512, 1024, 'futures', 3);");
  sets.source = gis::SetSource::kFutures;
  sets.limit = 3;
  vm_sets_table(q.vm_sets(sets)).print(out);

  heading("Gang placement: 4 'large' VMs on distinct hosts of one network",
          "SELECT * FROM gis.gang_place_profile('large', 4);");
  gang_table(q.gang_place_profile("large", 4)).print(out);

  heading("Free capacity per site", "SELECT * FROM gis.capacity_by_site;");
  capacity_table(q.capacity_by_site(), false).print(out);

  heading("What a failure of host-00000 would hit", "SELECT * FROM gis.host_failure_impact('host-00000');");
  impact_table(q.host_failure_impact("host-00000")).print(out);
}

}  // namespace vigo::cli
