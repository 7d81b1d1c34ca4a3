// SPDX-License-Identifier: Apache-2.0
// The payloads of the wire protocol's requests and replies (framing and HELLO
// are in wire.h). One struct per message; encode() writes it, decode_*()
// reads it back, checking every length against the limits below and that no
// byte is left over (kInvalidArgument naming the field otherwise). Paths are
// carried as given; judging them is the server's job (imageserver/paths.h).
// Stateless, thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vigo/common/manifest.h"
#include "vigo/common/wire.h"

namespace vigo::wire {

inline constexpr std::uint32_t kMaxPath = 4096;
inline constexpr std::uint32_t kMaxNameBytes = 255;
inline constexpr std::uint32_t kMaxProfile = 1u << 20;

// LIST_IMAGES: empty request; reply u32 count + entries.
struct ImageEntry {
  std::string name;
  std::uint64_t version = 0;
  std::uint64_t size = 0;
  std::uint32_t chunk_size = 0;
  std::uint32_t chunk_count = 0;
  bool operator==(const ImageEntry&) const = default;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const std::vector<ImageEntry>& m);
[[nodiscard]] std::vector<ImageEntry> decode_image_list(std::span<const std::uint8_t> p);

// GET_MANIFEST / GET_PROFILE request: an image version (0 = the latest, for
// GET_MANIFEST only). GET_MANIFEST's reply is the manifest's encoding
// (manifest.h); GET_PROFILE's is the profile's bytes; PUT_PROFILE's is empty.
struct ImageRef {
  std::string name;
  std::uint64_t version = 0;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const ImageRef& m);
[[nodiscard]] ImageRef decode_image_ref(std::span<const std::uint8_t> p);

struct PutProfile {
  ImageRef image;
  std::vector<std::uint8_t> blob;  // <= kMaxProfile, opaque to the server
};
[[nodiscard]] std::vector<std::uint8_t> encode(const PutProfile& m);
[[nodiscard]] PutProfile decode_put_profile(std::span<const std::uint8_t> p);

// GET_CHUNK: a byte range of the chunk's raw (decompressed) bytes, or the
// whole chunk as stored (zstd or raw; the client decompresses and verifies).
enum class ChunkMode : std::uint8_t { kRange = 0, kStored = 1 };
enum class ChunkEncoding : std::uint8_t { kRaw = 0, kZstd = 1 };
struct GetChunk {
  ChunkHash hash{};
  ChunkMode mode = ChunkMode::kRange;
  std::uint64_t offset = 0;  // kRange only
  std::uint32_t length = 0;  // kRange only, <= kMaxData; clipped at the chunk's end
};
struct ChunkData {
  ChunkEncoding encoding = ChunkEncoding::kRaw;
  std::uint32_t raw_length = 0;  // the whole chunk's raw length
  std::uint64_t offset = 0;      // where data starts in the raw chunk (kRange)
  std::vector<std::uint8_t> data;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const GetChunk& m);
[[nodiscard]] GetChunk decode_get_chunk(std::span<const std::uint8_t> p);
[[nodiscard]] std::vector<std::uint8_t> encode(const ChunkData& m);
[[nodiscard]] ChunkData decode_chunk_data(std::span<const std::uint8_t> p);

// User data. Every request starts with a path relative to the user's tree
// ("" is the tree's root).
enum class FileKind : std::uint8_t { kFile = 1, kDirectory = 2, kSymlink = 3, kOther = 4 };
struct Attr {
  FileKind kind = FileKind::kFile;
  std::uint32_t mode = 0;  // permission bits
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  std::uint32_t nlink = 0;
  bool operator==(const Attr&) const = default;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const Attr& m);
[[nodiscard]] Attr decode_attr(std::span<const std::uint8_t> p);

// DATA_STAT, DATA_UNLINK, DATA_RMDIR, DATA_FSYNC: just the path. STAT
// replies with Attr, the others with nothing.
struct PathRequest {
  std::string path;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const PathRequest& m);
[[nodiscard]] PathRequest decode_path_request(std::span<const std::uint8_t> p);

// DATA_READDIR: entries from index `start`; the reply says where to go on.
struct ReadDir {
  std::string path;
  std::uint32_t start = 0;
};
struct DirEntry {
  std::string name;
  FileKind kind = FileKind::kFile;
  bool operator==(const DirEntry&) const = default;
};
struct DirPage {
  std::vector<DirEntry> entries;
  bool more = false;
  std::uint32_t next = 0;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const ReadDir& m);
[[nodiscard]] ReadDir decode_read_dir(std::span<const std::uint8_t> p);
[[nodiscard]] std::vector<std::uint8_t> encode(const DirPage& m);
[[nodiscard]] DirPage decode_dir_page(std::span<const std::uint8_t> p);

// DATA_READ replies with the bytes (short at end of file); DATA_WRITE with
// u32 bytes written.
struct Read {
  std::string path;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;  // <= kMaxData
};
struct Write {
  std::string path;
  std::uint64_t offset = 0;
  std::vector<std::uint8_t> data;  // <= kMaxData
};
[[nodiscard]] std::vector<std::uint8_t> encode(const Read& m);
[[nodiscard]] Read decode_read(std::span<const std::uint8_t> p);
[[nodiscard]] std::vector<std::uint8_t> encode(const Write& m);
[[nodiscard]] Write decode_write(std::span<const std::uint8_t> p);

// DATA_CREATE (flags: kCreateExclusive, kCreateTruncate) and DATA_MKDIR
// (flags 0); the server masks mode to 0777. Both reply with the new Attr.
inline constexpr std::uint8_t kCreateExclusive = 1;
inline constexpr std::uint8_t kCreateTruncate = 2;
struct Create {
  std::string path;
  std::uint32_t mode = 0644;
  std::uint8_t flags = 0;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const Create& m);
[[nodiscard]] Create decode_create(std::span<const std::uint8_t> p);

inline constexpr std::uint8_t kRenameNoReplace = 1;
struct Rename {
  std::string from;
  std::string to;
  std::uint8_t flags = 0;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const Rename& m);
[[nodiscard]] Rename decode_rename(std::span<const std::uint8_t> p);

struct Truncate {
  std::string path;
  std::uint64_t size = 0;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const Truncate& m);
[[nodiscard]] Truncate decode_truncate(std::span<const std::uint8_t> p);

// DATA_SETATTR: which of mode / atime / mtime to set; replies with Attr.
inline constexpr std::uint8_t kSetMode = 1;
inline constexpr std::uint8_t kSetAtime = 2;
inline constexpr std::uint8_t kSetMtime = 4;
struct SetAttr {
  std::string path;
  std::uint8_t which = 0;
  std::uint32_t mode = 0;
  std::int64_t atime_ns = 0;
  std::int64_t mtime_ns = 0;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const SetAttr& m);
[[nodiscard]] SetAttr decode_set_attr(std::span<const std::uint8_t> p);

}  // namespace vigo::wire
