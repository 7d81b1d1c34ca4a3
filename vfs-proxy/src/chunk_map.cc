// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/chunk_map.h"

#include <algorithm>

namespace vigo::vfs {

std::vector<ChunkSlice> map_read(const Manifest& m, std::uint64_t offset, std::uint64_t size) {
  std::vector<ChunkSlice> out;
  if (offset >= m.size || size == 0 || m.chunk_size == 0) return out;
  const std::uint64_t end = offset + std::min(size, m.size - offset);
  std::uint64_t pos = offset;
  while (pos < end) {
    const std::uint64_t index = pos / m.chunk_size;
    if (index >= m.chunks.size()) break;  // a consistent manifest never gets here
    const std::uint64_t chunk_start = index * m.chunk_size;
    const std::uint64_t chunk_end = chunk_start + m.chunks[index].raw_length;
    if (chunk_end <= pos) break;
    const std::uint64_t piece_end = std::min(end, chunk_end);
    out.push_back(ChunkSlice{static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(pos - chunk_start),
                             static_cast<std::uint32_t>(piece_end - pos), pos - offset});
    pos = piece_end;
  }
  return out;
}

}  // namespace vigo::vfs
