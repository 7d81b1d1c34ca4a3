// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/names.h"

#include "vigo/common/error.h"

namespace vigo {
namespace {
bool name_char(char c, bool first) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return !first && (c == '.' || c == '_' || c == '-');
}
}  // namespace

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0)) return false;
  }
  return true;
}

void validate_name(std::string_view field, std::string_view name) {
  if (is_valid_name(name)) return;
  std::string shown{name.substr(0, 80)};
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  throw invalid_argument(std::string{field}, "'" + shown +
                                                 "' must be 1-63 characters of A-Z a-z 0-9 . _ - "
                                                 "starting with a letter or digit");
}

}  // namespace vigo
