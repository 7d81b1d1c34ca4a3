// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/wire_messages.h"

#include <cstring>

namespace vigo::wire {
namespace {

FileKind kind_from(std::uint8_t v) {
  if (v < 1 || v > 4) throw invalid_argument("file kind", "unknown kind " + std::to_string(v));
  return static_cast<FileKind>(v);
}

}  // namespace

std::vector<std::uint8_t> encode(const std::vector<ImageEntry>& m) {
  FieldWriter w;
  w.u32(static_cast<std::uint32_t>(m.size()));
  for (const auto& e : m) w.str(e.name).u64(e.version).u64(e.size).u32(e.chunk_size).u32(e.chunk_count);
  return w.take();
}

std::vector<ImageEntry> decode_image_list(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  const std::uint32_t count = r.u32("image list count");
  // Each entry takes at least 28 bytes: refuse counts the payload cannot hold.
  if (count > r.remaining() / 28) throw invalid_argument("image list count", "more entries than bytes");
  std::vector<ImageEntry> out(count);
  for (auto& e : out) {
    e.name = r.str("image name", 63);
    e.version = r.u64("image version");
    e.size = r.u64("image size");
    e.chunk_size = r.u32("image chunk_size");
    e.chunk_count = r.u32("image chunk_count");
  }
  r.expect_end("image list");
  return out;
}

std::vector<std::uint8_t> encode(const ImageRef& m) { return FieldWriter{}.str(m.name).u64(m.version).take(); }

ImageRef decode_image_ref(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  ImageRef m;
  m.name = r.str("image name", 63);
  m.version = r.u64("image version");
  r.expect_end("image reference");
  return m;
}

std::vector<std::uint8_t> encode(const PutProfile& m) {
  return FieldWriter{}.str(m.image.name).u64(m.image.version).bytes(m.blob).take();
}

PutProfile decode_put_profile(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  PutProfile m;
  m.image.name = r.str("image name", 63);
  m.image.version = r.u64("image version");
  auto blob = r.bytes("profile", kMaxProfile);
  m.blob.assign(blob.begin(), blob.end());
  r.expect_end("put profile");
  return m;
}

std::vector<std::uint8_t> encode(const GetChunk& m) {
  return FieldWriter{}.fixed(m.hash).u8(static_cast<std::uint8_t>(m.mode)).u64(m.offset).u32(m.length).take();
}

GetChunk decode_get_chunk(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  GetChunk m;
  std::memcpy(m.hash.data(), r.fixed("chunk hash", 32).data(), 32);
  const std::uint8_t mode = r.u8("chunk mode");
  if (mode > 1) throw invalid_argument("chunk mode", "unknown mode " + std::to_string(mode));
  m.mode = static_cast<ChunkMode>(mode);
  m.offset = r.u64("chunk offset");
  m.length = r.u32("chunk length");
  if (m.length > kMaxData) throw invalid_argument("chunk length", "exceeds " + std::to_string(kMaxData));
  r.expect_end("get chunk");
  return m;
}

std::vector<std::uint8_t> encode(const ChunkData& m) {
  return FieldWriter{}.u8(static_cast<std::uint8_t>(m.encoding)).u32(m.raw_length).u64(m.offset).bytes(m.data).take();
}

ChunkData decode_chunk_data(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  ChunkData m;
  const std::uint8_t enc = r.u8("chunk encoding");
  if (enc > 1) throw invalid_argument("chunk encoding", "unknown encoding " + std::to_string(enc));
  m.encoding = static_cast<ChunkEncoding>(enc);
  m.raw_length = r.u32("chunk raw_length");
  m.offset = r.u64("chunk offset");
  auto data = r.bytes("chunk data", kMaxData + 4096);
  m.data.assign(data.begin(), data.end());
  r.expect_end("chunk data");
  return m;
}

std::vector<std::uint8_t> encode(const Attr& m) {
  return FieldWriter{}
      .u8(static_cast<std::uint8_t>(m.kind))
      .u32(m.mode)
      .u64(m.size)
      .i64(m.mtime_ns)
      .i64(m.ctime_ns)
      .u32(m.nlink)
      .take();
}

Attr decode_attr(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  Attr m;
  m.kind = kind_from(r.u8("attr kind"));
  m.mode = r.u32("attr mode");
  m.size = r.u64("attr size");
  m.mtime_ns = r.i64("attr mtime");
  m.ctime_ns = r.i64("attr ctime");
  m.nlink = r.u32("attr nlink");
  r.expect_end("attr");
  return m;
}

std::vector<std::uint8_t> encode(const PathRequest& m) { return FieldWriter{}.str(m.path).take(); }

PathRequest decode_path_request(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  PathRequest m{r.str("path", kMaxPath)};
  r.expect_end("path request");
  return m;
}

std::vector<std::uint8_t> encode(const ReadDir& m) { return FieldWriter{}.str(m.path).u32(m.start).take(); }

ReadDir decode_read_dir(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  ReadDir m;
  m.path = r.str("path", kMaxPath);
  m.start = r.u32("readdir start");
  r.expect_end("readdir");
  return m;
}

std::vector<std::uint8_t> encode(const DirPage& m) {
  FieldWriter w;
  w.u32(static_cast<std::uint32_t>(m.entries.size()));
  for (const auto& e : m.entries) w.str(e.name).u8(static_cast<std::uint8_t>(e.kind));
  w.u8(m.more ? 1 : 0).u32(m.next);
  return w.take();
}

DirPage decode_dir_page(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  DirPage m;
  const std::uint32_t count = r.u32("readdir count");
  if (count > r.remaining() / 5) throw invalid_argument("readdir count", "more entries than bytes");
  m.entries.resize(count);
  for (auto& e : m.entries) {
    e.name = r.str("entry name", kMaxNameBytes);
    e.kind = kind_from(r.u8("entry kind"));
  }
  m.more = r.u8("readdir more") != 0;
  m.next = r.u32("readdir next");
  r.expect_end("readdir page");
  return m;
}

std::vector<std::uint8_t> encode(const Read& m) { return FieldWriter{}.str(m.path).u64(m.offset).u32(m.length).take(); }

Read decode_read(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  Read m;
  m.path = r.str("path", kMaxPath);
  m.offset = r.u64("read offset");
  m.length = r.u32("read length");
  if (m.length > kMaxData) throw invalid_argument("read length", "exceeds " + std::to_string(kMaxData));
  r.expect_end("read");
  return m;
}

std::vector<std::uint8_t> encode(const Write& m) {
  return FieldWriter{}.str(m.path).u64(m.offset).bytes(m.data).take();
}

Write decode_write(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  Write m;
  m.path = r.str("path", kMaxPath);
  m.offset = r.u64("write offset");
  auto data = r.bytes("write data", kMaxData);
  m.data.assign(data.begin(), data.end());
  r.expect_end("write");
  return m;
}

std::vector<std::uint8_t> encode(const Create& m) { return FieldWriter{}.str(m.path).u32(m.mode).u8(m.flags).take(); }

Create decode_create(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  Create m;
  m.path = r.str("path", kMaxPath);
  m.mode = r.u32("mode");
  m.flags = r.u8("create flags");
  if ((m.flags & ~(kCreateExclusive | kCreateTruncate)) != 0) throw invalid_argument("create flags", "unknown bits");
  r.expect_end("create");
  return m;
}

std::vector<std::uint8_t> encode(const Rename& m) { return FieldWriter{}.str(m.from).str(m.to).u8(m.flags).take(); }

Rename decode_rename(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  Rename m;
  m.from = r.str("rename from", kMaxPath);
  m.to = r.str("rename to", kMaxPath);
  m.flags = r.u8("rename flags");
  if ((m.flags & ~kRenameNoReplace) != 0) throw invalid_argument("rename flags", "unknown bits");
  r.expect_end("rename");
  return m;
}

std::vector<std::uint8_t> encode(const Truncate& m) { return FieldWriter{}.str(m.path).u64(m.size).take(); }

Truncate decode_truncate(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  Truncate m;
  m.path = r.str("path", kMaxPath);
  m.size = r.u64("truncate size");
  r.expect_end("truncate");
  return m;
}

std::vector<std::uint8_t> encode(const SetAttr& m) {
  return FieldWriter{}.str(m.path).u8(m.which).u32(m.mode).i64(m.atime_ns).i64(m.mtime_ns).take();
}

SetAttr decode_set_attr(std::span<const std::uint8_t> p) {
  FieldReader r{p};
  SetAttr m;
  m.path = r.str("path", kMaxPath);
  m.which = r.u8("setattr which");
  if ((m.which & ~(kSetMode | kSetAtime | kSetMtime)) != 0) throw invalid_argument("setattr which", "unknown bits");
  m.mode = r.u32("mode");
  m.atime_ns = r.i64("atime");
  m.mtime_ns = r.i64("mtime");
  r.expect_end("setattr");
  return m;
}

}  // namespace vigo::wire
