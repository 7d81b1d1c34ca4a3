// SPDX-License-Identifier: Apache-2.0
// read_text_file: the whole of a (small) file as a string, empty if it cannot
// be read. For test fixtures reading logs, /proc entries and status files.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vigo::testing {

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in{path};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace vigo::testing
