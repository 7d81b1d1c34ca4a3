// SPDX-License-Identifier: Apache-2.0
// The one rule for names that become file names or database keys (images,
// users, hosts): ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ (the GIS's vigo.valid_name
// in sql/001_core.sql spells the same rule). Stateless, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace vigo {

[[nodiscard]] bool is_valid_name(std::string_view name);
// Throws invalid_argument(field, ...) quoting the rule unless is_valid_name.
void validate_name(std::string_view field, std::string_view name);

}  // namespace vigo
