// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/chunk_store.h"

#include <gtest/gtest.h>

#include <fstream>

#include "store_test_util.h"
#include "vigo/common/error.h"

namespace vigo::imageserver {
namespace {

using testing::compressible_data;
using testing::random_data;
using testing::TempDir;

void flip_last_byte(const std::filesystem::path& p) {
  std::fstream f{p, std::ios::in | std::ios::out | std::ios::binary};
  f.seekg(-1, std::ios::end);
  char c = 0;
  f.get(c);
  f.seekp(-1, std::ios::end);
  f.put(static_cast<char>(c ^ 0x5a));
}

void expect_corrupt(ChunkStore& store, const ChunkHash& h) {
  for (int range = 0; range < 2; ++range) {
    try {
      std::uint32_t raw_length = 0;
      if (range == 1) {
        (void)store.read_range(h, 100, 4096, &raw_length);
      } else {
        (void)store.read(h);
      }
      FAIL() << "corruption not detected, range=" << range;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInternal);
      EXPECT_NE(std::string{e.what()}.find("corrupt chunk " + hash_hex(h)), std::string::npos) << e.what();
    }
  }
}

TEST(ChunkStore, StoresRandomDataRawAndCompressibleDataZstd) {
  TempDir dir;
  ChunkStore store{dir.path()};
  const auto random = random_data(1 << 20, 1);
  const auto text = compressible_data(1 << 20, 2);
  const PutResult a = store.put(random);
  const PutResult b = store.put(text);
  EXPECT_TRUE(a.written);
  EXPECT_EQ(a.ref.stored_length, random.size());  // no gain: kept raw
  EXPECT_LT(b.ref.stored_length, text.size() / 2);
  EXPECT_EQ(a.ref.hash, hash_chunk(random));
  EXPECT_EQ(*store.read(a.ref.hash), random);
  EXPECT_EQ(*store.read(b.ref.hash), text);
  EXPECT_EQ(store.read_stored(a.ref.hash).encoding, wire::ChunkEncoding::kRaw);
  const StoredChunk s = store.read_stored(b.ref.hash);
  EXPECT_EQ(s.encoding, wire::ChunkEncoding::kZstd);
  EXPECT_EQ(s.raw_length, text.size());
  EXPECT_EQ(s.bytes.size(), b.ref.stored_length);
  // The file sits at <dir>/<2 hex>/<64 hex>.
  EXPECT_TRUE(std::filesystem::exists(dir.path() / hash_hex(a.ref.hash).substr(0, 2) / hash_hex(a.ref.hash)));
}

TEST(ChunkStore, IdenticalChunksAreStoredOnce) {
  TempDir dir;
  ChunkStore store{dir.path()};
  const auto data = random_data(300000, 3);
  EXPECT_TRUE(store.put(data).written);
  const PutResult again = store.put(data);
  EXPECT_FALSE(again.written);
  EXPECT_EQ(again.ref.stored_length, data.size());
  EXPECT_EQ(store.list().size(), 1u);
}

TEST(ChunkStore, LeftoverTemporaryFilesAreIgnoredAndCleaned) {
  TempDir dir;
  ChunkStore store{dir.path()};
  const PutResult r = store.put(random_data(1000, 4));
  const auto sub = store.path_of(r.ref.hash).parent_path();
  testing::write_file(sub / ".tmp-0123456789abcdef", random_data(10, 5));  // a crash mid-write
  testing::write_file(sub / "not-a-chunk", random_data(10, 6));
  EXPECT_EQ(store.list().size(), 1u);
  EXPECT_EQ(store.remove_temp_files(), 1u);
  EXPECT_FALSE(std::filesystem::exists(sub / ".tmp-0123456789abcdef"));
  EXPECT_TRUE(std::filesystem::exists(sub / "not-a-chunk"));  // not ours: left alone
}

TEST(ChunkStore, CorruptChunksAreDetectedOnRead) {
  TempDir dir;
  const auto raw = random_data(200000, 7);
  const auto packed = compressible_data(200000, 8);
  ChunkHash h_raw, h_zstd;
  {
    ChunkStore store{dir.path()};
    h_raw = store.put(raw).ref.hash;
    h_zstd = store.put(packed).ref.hash;
  }
  ChunkStore store{dir.path()};  // a fresh store: nothing cached
  flip_last_byte(store.path_of(h_raw));
  flip_last_byte(store.path_of(h_zstd));
  expect_corrupt(store, h_raw);
  expect_corrupt(store, h_zstd);
  // Truncated file and a header that lies.
  std::filesystem::resize_file(store.path_of(h_raw), 10);
  expect_corrupt(store, h_raw);
  std::filesystem::resize_file(store.path_of(h_zstd), 5000);
  expect_corrupt(store, h_zstd);
}

TEST(ChunkStore, RangeReadsAreVerifiedAndCutAtTheEnd) {
  TempDir dir;
  const auto raw = random_data(200000, 9);
  const auto packed = compressible_data(200000, 10);
  ChunkHash h_raw, h_zstd;
  {
    ChunkStore store{dir.path()};
    h_raw = store.put(raw).ref.hash;
    h_zstd = store.put(packed).ref.hash;
  }
  ChunkStore store{dir.path()};
  for (const auto& [h, src] : {std::pair{h_raw, &raw}, std::pair{h_zstd, &packed}}) {
    std::uint32_t raw_length = 0;
    EXPECT_EQ(store.read_range(h, 1000, 4096, &raw_length),
              std::vector<std::uint8_t>(src->begin() + 1000, src->begin() + 1000 + 4096));
    EXPECT_EQ(raw_length, src->size());
    EXPECT_EQ(store.read_range(h, src->size() - 10, 4096, &raw_length),
              std::vector<std::uint8_t>(src->end() - 10, src->end()));
    EXPECT_THROW((void)store.read_range(h, src->size() + 1, 1, &raw_length), Error);
  }
}

TEST(ChunkStore, AVerifiedChunkIsTrustedByEveryProcessUntilItsFileChanges) {
  TempDir dir;
  const auto raw = random_data(300000, 11);
  const auto packed = compressible_data(300000, 12);
  ChunkHash h_raw, h_zstd;
  {
    ChunkStore store{dir.path()};
    h_raw = store.put(raw).ref.hash;  // what put() wrote, it verified and recorded
    h_zstd = store.put(packed).ref.hash;
  }
  std::uint32_t raw_length = 0;
  {
    ChunkStore store{dir.path()};  // another vigo-imaged process
    EXPECT_EQ(store.read_range(h_raw, 5000, 100, &raw_length),
              std::vector<std::uint8_t>(raw.begin() + 5000, raw.begin() + 5100));
    EXPECT_EQ(store.read_stored(h_zstd).encoding, wire::ChunkEncoding::kZstd);
    EXPECT_EQ(*store.read(h_zstd), packed);
    EXPECT_EQ(store.stats().hashed, 0u);
    EXPECT_EQ(store.stats().trusted, 3u);
  }
  std::filesystem::remove(dir.path() / "verified");  // a store from before the records, or lost ones
  ChunkStore early{dir.path()};  // started before anyone verified again
  {
    ChunkStore store{dir.path()};
    (void)store.read_range(h_raw, 0, 10, &raw_length);
    (void)store.read_range(h_raw, 10, 10, &raw_length);  // ranges are not cached: the record answers
    EXPECT_EQ(store.stats().hashed, 1u);
    EXPECT_EQ(store.stats().trusted, 1u);
  }
  EXPECT_EQ(early.read_range(h_raw, 7, 3, &raw_length),
            std::vector<std::uint8_t>(raw.begin() + 7, raw.begin() + 10));
  EXPECT_EQ(early.stats().hashed, 0u);  // it read what the other process recorded
  // A write through the filesystem changes the file's ctime: hashed again, and caught.
  flip_last_byte(early.path_of(h_raw));
  expect_corrupt(early, h_raw);
  EXPECT_EQ(early.stats().hashed, 2u);
}

TEST(ChunkStore, MissingChunkIsNotFoundAndRemoveFreesBytes) {
  TempDir dir;
  ChunkStore store{dir.path()};
  const PutResult r = store.put(random_data(5000, 9));
  (void)store.read(r.ref.hash);  // cached
  EXPECT_EQ(store.remove(r.ref.hash), 5000u + 16u);
  EXPECT_FALSE(store.contains(r.ref.hash));
  try {
    (void)store.read(r.ref.hash);  // the cache forgot it too
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  EXPECT_EQ(store.remove(r.ref.hash), 0u);
}

TEST(ChunkStore, HashParsing) {
  const ChunkHash h = hash_chunk(random_data(10, 1));
  EXPECT_EQ(parse_hash(hash_hex(h)), h);
  EXPECT_THROW((void)parse_hash("abc"), Error);
  EXPECT_THROW((void)parse_hash(std::string(64, 'G')), Error);
  EXPECT_THROW((void)parse_hash(std::string(64, 'A')), Error);  // uppercase is not a chunk name
}

}  // namespace
}  // namespace vigo::imageserver
