// SPDX-License-Identifier: Apache-2.0
// Helpers for the image-server unit tests (header-only, so the unit test
// binary needs no support library): deterministic random and compressible
// data, whole-file I/O (temporary directories: support/temp_dir.h).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace vigo::testing {

inline std::vector<std::uint8_t> random_data(std::size_t n, std::uint32_t seed) {
  std::mt19937_64 gen{seed};
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = gen();
    for (std::size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<std::uint8_t>(v >> (8 * j));
  }
  return out;
}

// Like a memory image: runs of zeros and repeated text between random bytes.
inline std::vector<std::uint8_t> compressible_data(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen{seed};
  std::vector<std::uint8_t> out;
  out.reserve(n);
  const std::string text = "vigo grid virtual workspace page ";
  while (out.size() < n) {
    switch (gen() % 3) {
      case 0:
        out.insert(out.end(), 4096, 0);
        break;
      case 1:
        for (int i = 0; i < 100; ++i) out.insert(out.end(), text.begin(), text.end());
        break;
      default:
        for (int i = 0; i < 64; ++i) out.push_back(static_cast<std::uint8_t>(gen()));
    }
  }
  out.resize(n);
  return out;
}

inline void write_file(const std::filesystem::path& p, const std::vector<std::uint8_t>& data) {
  std::ofstream out{p, std::ios::binary | std::ios::trunc};
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

inline std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

}  // namespace vigo::testing
