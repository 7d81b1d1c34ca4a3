// SPDX-License-Identifier: Apache-2.0
// The demo grid of `vigo up` and the answers to the example compositional
// queries (In-VIGO's examples: hosts that can instantiate a 1 GB VM; sets of
// four VMs on one network with 512 MB to 1 GB in total; and the others).
#pragma once

#include <ostream>

#include "vigo/gis/database.h"

namespace vigo::cli {

// Loads the demo grid unless the GIS already has sites; returns true if loaded.
bool ensure_demo_grid(gis::Database& db);

// Prints each example query (its psql form) and its answer.
void print_example_queries(gis::Database& db, std::ostream& out);

}  // namespace vigo::cli
