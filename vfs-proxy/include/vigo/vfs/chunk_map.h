// SPDX-License-Identifier: Apache-2.0
// map_read: which pieces of which chunks a read of an image covers. Chunk i
// of a manifest covers bytes [i * chunk_size, i * chunk_size + raw_length)
// of the image (docs/vfs-proxy.md), so this is one division and a walk.
// A read past the end is cut at the image's size (nothing at or after it).
// Stateless, thread-safe; trusts a manifest that decode_manifest accepted.
#pragma once

#include <cstdint>
#include <vector>

#include "vigo/common/manifest.h"

namespace vigo::vfs {

struct ChunkSlice {
  std::uint32_t index = 0;          // chunk number in the manifest
  std::uint32_t chunk_offset = 0;   // first byte inside the chunk
  std::uint32_t length = 0;         // bytes from that chunk
  std::uint64_t buffer_offset = 0;  // where they go in the read's buffer
  bool operator==(const ChunkSlice&) const = default;
};

[[nodiscard]] std::vector<ChunkSlice> map_read(const Manifest& m, std::uint64_t offset, std::uint64_t size);

// The chunk holding byte `offset` (offset < m.size).
[[nodiscard]] inline std::uint32_t chunk_index(const Manifest& m, std::uint64_t offset) {
  return static_cast<std::uint32_t>(offset / m.chunk_size);
}

}  // namespace vigo::vfs
