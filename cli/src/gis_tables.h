// SPDX-License-Identifier: Apache-2.0
// The GIS query results as Tables, shared by `vigo gis ...` and `vigo up`.
#pragma once

#include <vector>

#include "table.h"
#include "vigo/gis/types.h"

namespace vigo::cli {

Table hosts_table(const std::vector<gis::HostFit>& rows);
Table profile_fits_table(const std::vector<gis::ProfileFit>& rows);
Table vm_sets_table(const std::vector<gis::VmSet>& rows);
Table gang_table(const std::vector<gis::GangSlot>& rows);
Table capacity_table(const std::vector<gis::Capacity>& rows, bool by_network);
Table placement_table(const std::vector<gis::Placement>& rows);
Table impact_table(const std::vector<gis::FailureImpact>& rows);

}  // namespace vigo::cli
