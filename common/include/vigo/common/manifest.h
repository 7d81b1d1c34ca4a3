// SPDX-License-Identifier: Apache-2.0
// Manifest: the immutable description of one image version (a disk image or
// a memory checkpoint): its size, its chunk size, and per chunk the content
// hash (SHA-256 of the raw bytes), the raw length and the stored (possibly
// zstd-compressed) length. The same bytes are the file the image server keeps
// and the payload of a GET_MANIFEST reply, so server and proxy share this
// codec. Binary layout (little-endian, see docs/vfs-proxy.md):
//   "VGM1" u8 format(1) u8 hash_algorithm(1 = SHA-256) str name u64 version
//   u64 size u32 chunk_size u32 count, count x {hash[32] u32 raw u32 stored},
//   SHA-256 of everything before it (32 bytes).
// decode_manifest validates everything (limits, arithmetic, trailer) before
// it allocates; errors are kInvalidArgument naming the field. Stateless.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vigo {

using ChunkHash = std::array<std::uint8_t, 32>;

inline constexpr std::uint8_t kHashSha256 = 1;
inline constexpr std::uint32_t kMinChunkSize = 64u << 10;
inline constexpr std::uint32_t kMaxChunkSize = 8u << 20;
// Largest manifest (and GET_MANIFEST payload): 8 MiB of entries, that is
// about 190,000 chunks: 190 GiB at 1 MiB chunks, 760 GiB at 4 MiB.
inline constexpr std::uint32_t kMaxManifestBytes = 8u << 20;

struct ChunkRef {
  ChunkHash hash{};
  std::uint32_t raw_length = 0;
  std::uint32_t stored_length = 0;
  bool operator==(const ChunkRef&) const = default;
};

struct Manifest {
  std::string name;
  std::uint64_t version = 0;
  std::uint64_t size = 0;
  std::uint32_t chunk_size = 0;
  std::uint8_t hash_algorithm = kHashSha256;
  std::vector<ChunkRef> chunks;
  bool operator==(const Manifest&) const = default;
};

// Checks the invariants (name rule, version >= 1, chunk size in range, chunk
// count and raw lengths consistent with size); throws kInvalidArgument.
void validate_manifest(const Manifest& m);
[[nodiscard]] std::vector<std::uint8_t> encode_manifest(const Manifest& m);
[[nodiscard]] Manifest decode_manifest(std::span<const std::uint8_t> bytes);

}  // namespace vigo
