// SPDX-License-Identifier: Apache-2.0
// Image contents for the vigo-fs tests: random (stored raw) and
// compressible (stored as zstd), deterministic per seed.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "imageserver/store_test_util.h"

namespace vigo::testing {

// Incompressible bytes (the image server's test generator, one per seed).
inline std::vector<std::uint8_t> random_bytes_for_test(std::size_t n, std::uint64_t seed) {
  return random_data(n, static_cast<std::uint32_t>(seed));
}

// Text-like bytes: a small alphabet with runs; zstd shrinks it a lot.
inline std::vector<std::uint8_t> compressible_bytes_for_test(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen{seed};
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n;) {
    const auto c = static_cast<std::uint8_t>('a' + gen() % 6);
    const std::size_t run = 1 + gen() % 40;
    for (std::size_t j = 0; j < run && i < n; ++j) out[i++] = c;
  }
  return out;
}

}  // namespace vigo::testing
