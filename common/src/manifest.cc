// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/manifest.h"

#include <algorithm>
#include <cstring>

#include "vigo/common/digest.h"
#include "vigo/common/error.h"
#include "vigo/common/names.h"
#include "vigo/common/wire.h"

namespace vigo {
namespace {

constexpr std::uint8_t kMagic[4] = {'V', 'G', 'M', '1'};
constexpr std::uint8_t kFormat = 1;
constexpr std::size_t kEntryBytes = 32 + 4 + 4;
// Stored data may exceed raw data by the chunk store's small header.
constexpr std::uint32_t kStoredSlack = 4096;

std::string_view as_text(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

void validate_manifest(const Manifest& m) {
  validate_name("manifest name", m.name);
  if (m.version == 0) throw invalid_argument("manifest version", "must be at least 1");
  if (m.hash_algorithm != kHashSha256) {
    throw invalid_argument("manifest hash_algorithm", "unknown algorithm " + std::to_string(m.hash_algorithm));
  }
  if (m.chunk_size < kMinChunkSize || m.chunk_size > kMaxChunkSize) {
    throw invalid_argument("manifest chunk_size", std::to_string(m.chunk_size) + " is outside [" +
                                                      std::to_string(kMinChunkSize) + ", " +
                                                      std::to_string(kMaxChunkSize) + "]");
  }
  const std::uint64_t expected = m.size / m.chunk_size + (m.size % m.chunk_size != 0 ? 1 : 0);
  if (m.chunks.size() != expected) {
    throw invalid_argument("manifest chunks", std::to_string(m.chunks.size()) + " chunks for " +
                                                  std::to_string(m.size) + " bytes, expected " +
                                                  std::to_string(expected));
  }
  for (std::size_t i = 0; i < m.chunks.size(); ++i) {
    const std::uint64_t want = std::min<std::uint64_t>(m.chunk_size, m.size - i * std::uint64_t{m.chunk_size});
    if (m.chunks[i].raw_length != want) {
      throw invalid_argument(
          "manifest chunk " + std::to_string(i),
          "raw length " + std::to_string(m.chunks[i].raw_length) + ", expected " + std::to_string(want));
    }
    if (m.chunks[i].stored_length == 0 || m.chunks[i].stored_length > m.chunks[i].raw_length + kStoredSlack) {
      throw invalid_argument("manifest chunk " + std::to_string(i),
                             "stored length " + std::to_string(m.chunks[i].stored_length) + " is implausible");
    }
  }
}

std::vector<std::uint8_t> encode_manifest(const Manifest& m) {
  validate_manifest(m);
  wire::FieldWriter w{kMaxManifestBytes};
  w.fixed(kMagic).u8(kFormat).u8(m.hash_algorithm).str(m.name).u64(m.version).u64(m.size).u32(m.chunk_size);
  w.u32(static_cast<std::uint32_t>(m.chunks.size()));
  for (const ChunkRef& c : m.chunks) w.fixed(c.hash).u32(c.raw_length).u32(c.stored_length);
  const Sha256 trailer = sha256(as_text(w.data()));
  w.fixed(trailer);
  return w.take();
}

Manifest decode_manifest(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > kMaxManifestBytes) throw invalid_argument("manifest", "larger than 8 MiB");
  if (bytes.size() < 32) throw invalid_argument("manifest", "truncated");
  const auto body = bytes.first(bytes.size() - 32);
  const Sha256 expected = sha256(as_text(body));
  if (std::memcmp(expected.data(), bytes.data() + body.size(), 32) != 0) {
    throw invalid_argument("manifest", "checksum mismatch (corrupt or truncated)");
  }
  wire::FieldReader r{body};
  if (std::memcmp(r.fixed("manifest magic", 4).data(), kMagic, 4) != 0) {
    throw invalid_argument("manifest magic", "not a vigo manifest");
  }
  if (const auto f = r.u8("manifest format"); f != kFormat) {
    throw invalid_argument("manifest format", "unsupported format " + std::to_string(f));
  }
  Manifest m;
  m.hash_algorithm = r.u8("manifest hash_algorithm");
  m.name = r.str("manifest name", 63);
  m.version = r.u64("manifest version");
  m.size = r.u64("manifest size");
  m.chunk_size = r.u32("manifest chunk_size");
  const std::uint32_t count = r.u32("manifest count");
  if (count > r.remaining() / kEntryBytes) throw invalid_argument("manifest count", "more entries than bytes");
  m.chunks.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    ChunkRef c;
    auto h = r.fixed("manifest chunk hash", 32);
    std::memcpy(c.hash.data(), h.data(), 32);
    c.raw_length = r.u32("manifest chunk raw_length");
    c.stored_length = r.u32("manifest chunk stored_length");
    m.chunks.push_back(c);
  }
  r.expect_end("manifest");
  validate_manifest(m);
  return m;
}

}  // namespace vigo
