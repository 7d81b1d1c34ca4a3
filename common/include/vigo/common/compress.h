// SPDX-License-Identifier: Apache-2.0
// zstd compression of whole buffers (libzstd's single-shot API), for chunks
// that the image server stores and the proxy receives. Decompression is told
// the exact raw size and refuses anything else, so a hostile or corrupt input
// can neither allocate more than that nor pass as valid. Stateless,
// thread-safe; errors are vigo::Error (kInvalidArgument for bad input).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace vigo {

inline constexpr int kDefaultZstdLevel = 3;

[[nodiscard]] std::vector<std::uint8_t> zstd_compress(std::span<const std::uint8_t> raw, int level = kDefaultZstdLevel);
[[nodiscard]] std::vector<std::uint8_t> zstd_decompress(std::span<const std::uint8_t> compressed, std::size_t raw_size);

}  // namespace vigo
