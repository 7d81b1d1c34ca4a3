// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/chunk_cache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include "vigo/common/digest.h"
#include "vigo/common/error.h"

namespace vigo::vfs {
namespace {
namespace fs = std::filesystem;

struct TempCacheDir {
  TempCacheDir() {
    path = fs::temp_directory_path() / ("vigo-cache-test-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempCacheDir() { fs::remove_all(path); }
  fs::path path;
};

std::vector<std::uint8_t> random_chunk(std::size_t size, unsigned seed) {
  std::mt19937 rng{seed};
  std::vector<std::uint8_t> out(size);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

Hash hash_of(const std::vector<std::uint8_t>& bytes) {
  return vigo::sha256(std::string_view{reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

ChunkCacheOptions options_in(const fs::path& dir, std::uint64_t quota = 1ULL << 30) {
  ChunkCacheOptions o;
  o.dir = dir;
  o.quota_bytes = quota;
  return o;
}

TEST(ChunkCache, CommitThenReadBack) {
  TempCacheDir dir;
  ChunkCache cache{options_in(dir.path)};
  auto bytes = random_chunk(100'000, 1);
  const Hash h = hash_of(bytes);
  EXPECT_FALSE(cache.open(h).has_value());
  {
    auto handle = cache.commit(h, bytes);
    EXPECT_EQ(handle.size(), bytes.size());
  }
  auto handle = cache.open(h);
  ASSERT_TRUE(handle.has_value());
  std::vector<std::uint8_t> out(1000);
  ASSERT_EQ(handle->read(5000, out), 1000u);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), bytes.begin() + 5000));
  EXPECT_EQ(handle->read(bytes.size() - 10, out), 10u) << "short read at the end";
  auto s = cache.stats();
  EXPECT_EQ(s.chunks, 1u);
  EXPECT_EQ(s.bytes, bytes.size());
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
}

TEST(ChunkCache, RefusesBytesThatDoNotMatchTheHash) {
  TempCacheDir dir;
  ChunkCache cache{options_in(dir.path)};
  auto bytes = random_chunk(4096, 2);
  Hash wrong = hash_of(bytes);
  wrong[0] ^= 1;
  EXPECT_THROW(cache.commit(wrong, bytes), Error);
  EXPECT_EQ(cache.stats().chunks, 0u);
  EXPECT_FALSE(fs::exists(cache.path_of(wrong)));
}

TEST(ChunkCache, WarmAfterRestartAndHalfWrittenChunksNeverShow) {
  TempCacheDir dir;
  auto bytes = random_chunk(65536, 3);
  const Hash h = hash_of(bytes);
  {
    ChunkCache cache{options_in(dir.path)};
    cache.commit(h, bytes);
  }
  // What a kill -9 in the middle of a commit leaves behind, and a stray file.
  std::ofstream{dir.path / "tmp" / (to_hex(h) + ".999.1")} << "half a chunk";
  std::ofstream{dir.path / "chunks" / "00" / "not-a-chunk"} << "x";
  ChunkCache again{options_in(dir.path)};
  EXPECT_TRUE(fs::is_empty(dir.path / "tmp"));
  EXPECT_FALSE(fs::exists(dir.path / "chunks" / "00" / "not-a-chunk"));
  auto handle = again.open(h);
  ASSERT_TRUE(handle.has_value());
  EXPECT_EQ(again.stats().chunks, 1u);
}

TEST(ChunkCache, FlippedBytesOnDiskAreDetectedAndTheChunkDropped) {
  TempCacheDir dir;
  auto bytes = random_chunk(65536, 4);
  const Hash h = hash_of(bytes);
  {
    ChunkCache cache{options_in(dir.path)};
    cache.commit(h, bytes);
  }
  {
    std::fstream f{ChunkCache{options_in(dir.path)}.path_of(h), std::ios::in | std::ios::out | std::ios::binary};
    f.seekp(1234);
    f.put(static_cast<char>(bytes[1234] ^ 0xff));
  }
  ChunkCache cache{options_in(dir.path)};
  EXPECT_FALSE(cache.open(h).has_value());
  EXPECT_EQ(cache.stats().corrupt, 1u);
  EXPECT_FALSE(fs::exists(cache.path_of(h)));
  cache.commit(h, bytes);  // fetched again
  EXPECT_TRUE(cache.open(h).has_value());
}

// Overwrites one byte of a cached chunk in place, through the filesystem.
void flip_byte(const fs::path& path, std::size_t at) {
  std::fstream f{path, std::ios::in | std::ios::out | std::ios::binary};
  f.seekg(static_cast<std::streamoff>(at));
  const int c = f.get();
  f.seekp(static_cast<std::streamoff>(at));
  f.put(static_cast<char>(c ^ 0xff));
}

TEST(ChunkCache, ARestartTrustsTheRecordedStampWithoutRehashing) {
  TempCacheDir dir;
  auto bytes = random_chunk(1 << 20, 10);
  const Hash h = hash_of(bytes);
  {
    ChunkCache cache{options_in(dir.path)};
    cache.commit(h, bytes);
  }
  ChunkCache cache{options_in(dir.path)};
  auto handle = cache.open(h);
  ASSERT_TRUE(handle.has_value());
  std::vector<std::uint8_t> out(bytes.size());
  ASSERT_EQ(handle->read(0, out), bytes.size());
  EXPECT_EQ(out, bytes);
  EXPECT_EQ(cache.stats().rehashed, 0u);
  EXPECT_EQ(cache.stats().trusted, 1u);
  (void)cache.open(h);
  EXPECT_EQ(cache.stats().trusted, 1u) << "counted once per process";
}

TEST(ChunkCache, AChunkWrittenAfterItsRecordIsCaughtEvenWithItsMtimeSetBack) {
  TempCacheDir dir;
  auto bytes = random_chunk(65536, 11);
  const Hash h = hash_of(bytes);
  fs::path path;
  {
    ChunkCache cache{options_in(dir.path)};
    cache.commit(h, bytes);
    path = cache.path_of(h);
  }
  const auto mtime = fs::last_write_time(path);
  flip_byte(path, 4321);
  fs::last_write_time(path, mtime);  // the ctime cannot be set back
  ChunkCache cache{options_in(dir.path)};
  EXPECT_FALSE(cache.open(h).has_value());
  EXPECT_EQ(cache.stats().corrupt, 1u);
  EXPECT_EQ(cache.stats().rehashed, 0u) << "failed checks are counted as corrupt";
  EXPECT_FALSE(fs::exists(path));
}

TEST(ChunkCache, AChunkWrittenWhileOpenIsCaughtAtItsNextOpen) {
  TempCacheDir dir;
  ChunkCache cache{options_in(dir.path)};
  auto bytes = random_chunk(65536, 12);
  const Hash h = hash_of(bytes);
  cache.commit(h, bytes);
  ASSERT_TRUE(cache.open(h).has_value());  // its descriptor stays open in the cache
  flip_byte(cache.path_of(h), 10);
  EXPECT_FALSE(cache.open(h).has_value());
  EXPECT_EQ(cache.stats().corrupt, 1u);
}

TEST(ChunkCache, ChunksWithoutARecordAreHashedOnceThenTrusted) {
  TempCacheDir dir;
  auto bytes = random_chunk(65536, 13);
  const Hash h = hash_of(bytes);
  {
    ChunkCache cache{options_in(dir.path)};
    cache.commit(h, bytes);
  }
  fs::remove(dir.path / "verified");  // a cache from before the records, or lost ones
  {
    ChunkCache cache{options_in(dir.path)};
    ASSERT_TRUE(cache.open(h).has_value());
    EXPECT_EQ(cache.stats().rehashed, 1u);
    EXPECT_EQ(cache.stats().trusted, 0u);
  }
  ChunkCache cache{options_in(dir.path)};
  ASSERT_TRUE(cache.open(h).has_value());
  EXPECT_EQ(cache.stats().rehashed, 0u);
  EXPECT_EQ(cache.stats().trusted, 1u);
}

TEST(ChunkCache, ATornOrForeignRecordFileOnlyCostsARehash) {
  TempCacheDir dir;
  auto a = random_chunk(65536, 14);
  auto b = random_chunk(65536, 15);
  {
    ChunkCache cache{options_in(dir.path)};
    cache.commit(hash_of(a), a);
    cache.commit(hash_of(b), b);
  }
  const auto size = fs::file_size(dir.path / "verified");
  fs::resize_file(dir.path / "verified", size - 5);  // the second record torn
  {
    ChunkCache cache{options_in(dir.path)};
    ASSERT_TRUE(cache.open(hash_of(a)).has_value());
    ASSERT_TRUE(cache.open(hash_of(b)).has_value());
    EXPECT_EQ(cache.stats().trusted + cache.stats().rehashed, 2u);
    EXPECT_GE(cache.stats().rehashed, 1u);
  }
  std::ofstream{dir.path / "verified", std::ios::trunc} << std::string(200, 'x');
  ChunkCache cache{options_in(dir.path)};
  ASSERT_TRUE(cache.open(hash_of(a)).has_value());
  EXPECT_EQ(cache.stats().rehashed, 1u);
  EXPECT_EQ(cache.stats().corrupt, 0u);
}

TEST(ChunkCache, EvictsLeastRecentlyUsedButNeverPinned) {
  TempCacheDir dir;
  ChunkCache cache{options_in(dir.path, 64ULL << 20)};
  std::vector<Hash> hashes;
  auto first = random_chunk(1 << 20, 100);
  const Hash first_hash = hash_of(first);
  auto pinned = cache.commit(first_hash, first);
  for (unsigned i = 1; i < 80; ++i) {
    auto bytes = random_chunk(1 << 20, 100 + i);
    hashes.push_back(hash_of(bytes));
    cache.commit(hashes.back(), bytes);
  }
  auto s = cache.stats();
  EXPECT_LE(s.bytes, static_cast<std::uint64_t>(0.95 * (64 << 20)));
  EXPECT_GT(s.evictions, 0u);
  EXPECT_TRUE(cache.open(first_hash).has_value()) << "a pinned chunk is never evicted";
  EXPECT_FALSE(cache.open(hashes.front()).has_value()) << "the least recently used went first";
  EXPECT_TRUE(cache.open(hashes.back()).has_value());
  std::uint64_t on_disk = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path / "chunks")) {
    if (e.is_regular_file()) on_disk += e.file_size();
  }
  EXPECT_EQ(on_disk, cache.stats().bytes);
}

TEST(ChunkCache, ConcurrentCommitsOfOneChunkStoreItOnce) {
  TempCacheDir dir;
  ChunkCache cache{options_in(dir.path)};
  auto bytes = random_chunk(1 << 20, 7);
  const Hash h = hash_of(bytes);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&] { cache.commit(h, bytes); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache.stats().chunks, 1u);
  EXPECT_EQ(cache.stats().bytes, bytes.size());
}

TEST(ChunkCache, BadOptionsAreNamed) {
  ChunkCacheOptions o;
  try {
    ChunkCache c{o};
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "cache.dir");
  }
  o.dir = "/tmp/x";
  o.quota_bytes = 1;
  try {
    ChunkCache c{o};
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "cache.quota");
  }
}

}  // namespace
}  // namespace vigo::vfs
