// SPDX-License-Identifier: Apache-2.0
// vigo-fs end to end, reading: the real binary on a real FUSE mount, reaching
// the real vigo-imaged through a real sshd. Every byte read is compared with
// the file that was published.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "support/vfs_fixture.h"
#include "vfs/vfs_test_util.h"
#include "vigo/common/unique_fd.h"

namespace vigo::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::size_t kChunk = 1 << 20;

class VigoFsReadTest : public ::testing::Test {
 protected:
  VigoFsReadTest() {
    random_ = random_bytes_for_test(5 * kChunk + 12345, 1);  // not a multiple of the chunk size
    text_ = compressible_bytes_for_test(3 * kChunk + 777, 2);
    vfs_.publish("random", random_);
    vfs_.publish("text", text_);
  }

  // Waits until no whole-chunk fetch is under way (background fills).
  void settle() {
    for (int i = 0; i < 500; ++i) {
      const auto s = vfs_.status();
      // ... and every cached chunk synced by the syncer's round (its records written).
      if (s["chunks_in_flight"] == 0 && s["requests_in_flight"] == 0 && s["requests_queued"] == 0 &&
          s["cache_unsynced"] == 0) {
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "fetches or syncs did not settle: " << vfs_.status().dump();
  }

  void expect_random_ranges(const std::string& file, const std::vector<std::uint8_t>& src, int count,
                            std::uint64_t seed) {
    std::mt19937_64 gen{seed};
    for (int i = 0; i < count; ++i) {
      const std::uint64_t off = gen() % (src.size() + 100);  // some start past the end
      const std::size_t len = 1 + gen() % (gen() % 4 == 0 ? 3 * kChunk : 64 * 1024);
      const auto got = read_range(vfs_.image(file), off, len);
      const std::size_t want = off >= src.size() ? 0 : std::min<std::size_t>(len, src.size() - off);
      ASSERT_EQ(got.size(), want) << file << " off=" << off << " len=" << len;
      ASSERT_TRUE(std::equal(got.begin(), got.end(), src.begin() + static_cast<std::ptrdiff_t>(off)))
          << file << " off=" << off << " len=" << len;
    }
  }

  // One open image file with no kernel read-ahead: each pread of it is one
  // FUSE read of its size.
  UniqueFd open_for_random_reads(const std::string& image) {
    const fs::path file = vfs_.image(image);
    UniqueFd fd{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
    EXPECT_GE(fd.get(), 0) << file;
    EXPECT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM), 0);
    return fd;
  }
  // 4 KiB at off of an image file, compared with its source (by default
  // the `random` image's).
  void expect_pread_4k(const UniqueFd& fd, std::uint64_t off, const std::vector<std::uint8_t>* source = nullptr) {
    const std::vector<std::uint8_t>& src = source != nullptr ? *source : random_;
    std::vector<std::uint8_t> got(4096);
    ASSERT_EQ(::pread(fd.get(), got.data(), got.size(), static_cast<off_t>(off)), 4096) << off;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), src.begin() + static_cast<std::ptrdiff_t>(off))) << off;
  }

  VfsFixture vfs_;
  std::vector<std::uint8_t> random_, text_;
};

TEST_F(VigoFsReadTest, ListsImagesAndVersionsWithManifestSizes) {
  vfs_.publish("random", text_);  // version 2 of "random"
  vfs_.start_fs();
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator{vfs_.mount() / "images"}) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"random", "random@1", "random@2", "text", "text@1"}));
  EXPECT_EQ(fs::file_size(vfs_.image("random@1")), random_.size());
  EXPECT_EQ(fs::file_size(vfs_.image("random")), text_.size());  // the latest is version 2
  EXPECT_EQ(read_range(vfs_.image("random"), 0, text_.size()), text_);
  EXPECT_FALSE(fs::exists(vfs_.image("random@3")));
  EXPECT_FALSE(fs::exists(vfs_.image("random@01")));
  EXPECT_FALSE(fs::exists(vfs_.image("nope")));
  EXPECT_THROW((void)read_range(vfs_.mount() / "images" / "missing", 0, 1), std::system_error);
}

TEST_F(VigoFsReadTest, RandomRangesAndWholeFilesMatchTheSource) {
  vfs_.start_fs();
  expect_random_ranges("random@1", random_, 150, 7);
  expect_random_ranges("text", text_, 150, 8);
  EXPECT_EQ(read_range(vfs_.image("random"), 0, random_.size() + 10), random_);
  EXPECT_EQ(read_range(vfs_.image("text@1"), 0, text_.size()), text_);
  const auto s = vfs_.status();
  EXPECT_GT(s["range_fetches"].get<int>(), 0) << s.dump();  // small reads did not wait for whole chunks
  EXPECT_EQ(s["fetch_errors"], 0) << s.dump();
}

TEST_F(VigoFsReadTest, SecondReadComesFromTheCache) {
  vfs_.start_fs();
  // The second read goes through another inode of the same bytes (name@1
  // after name), so the kernel's page cache cannot answer it: vigo-fs must.
  EXPECT_EQ(read_range(vfs_.image("random"), 0, random_.size()), random_);
  settle();
  const auto before = vfs_.status();
  EXPECT_EQ(before["chunk_fetches"], 6) << before.dump();
  EXPECT_EQ(read_range(vfs_.image("random@1"), 0, random_.size()), random_);
  const auto after = vfs_.status();
  EXPECT_EQ(after["bytes_fetched"], before["bytes_fetched"]) << after.dump();
  EXPECT_EQ(after["fetches"], before["fetches"]) << after.dump();
  EXPECT_GT(after["hits"].get<int>(), before["hits"].get<int>()) << after.dump();
}

TEST_F(VigoFsReadTest, ManyConcurrentReadersOnSameAndDifferentFiles) {
  vfs_.start_fs();
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      const bool use_text = t % 3 == 0;
      const auto& src = use_text ? text_ : random_;
      const std::string file = use_text ? "text@1" : (t % 2 == 0 ? "random" : "random@1");
      std::mt19937_64 gen{static_cast<std::uint64_t>(100 + t)};
      for (int i = 0; i < 40; ++i) {
        const std::uint64_t off = gen() % src.size();
        const std::size_t len = 1 + gen() % (200 * 1024);
        try {
          const auto got = read_range(vfs_.image(file), off, len);
          const std::size_t want = std::min<std::size_t>(len, src.size() - off);
          if (got.size() != want ||
              !std::equal(got.begin(), got.end(), src.begin() + static_cast<std::ptrdiff_t>(off))) {
            ++bad;
          }
        } catch (const std::exception&) {
          ++bad;
        }
      }
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad, 0) << vfs_.status().dump();
}

TEST_F(VigoFsReadTest, RestartOnTheSameCacheIsWarm) {
  vfs_.start_fs();
  EXPECT_EQ(read_range(vfs_.image("text"), 0, text_.size()), text_);
  settle();
  EXPECT_EQ(vfs_.stop_fs(), 0) << vfs_.fs_log();
  vfs_.start_fs();
  EXPECT_EQ(read_range(vfs_.image("text"), 0, text_.size()), text_);
  const auto s = vfs_.status();
  EXPECT_EQ(s["fetches"], 0) << s.dump();
  EXPECT_EQ(s["bytes_fetched"], 0) << s.dump();
  EXPECT_GT(s["hits"].get<int>(), 0) << s.dump();
  // The chunks verified by the first run are trusted by their durable
  // records (file identity unchanged), not read and hashed again.
  EXPECT_EQ(s["cache_rehashed"], 0) << s.dump();
  EXPECT_EQ(s["cache_trusted"], 4) << s.dump();
  EXPECT_EQ(s["cache_corrupt"], 0) << s.dump();
}

TEST_F(VigoFsReadTest, DamagedCachedChunkIsFetchedAgain) {
  vfs_.start_fs();
  EXPECT_EQ(read_range(vfs_.image("random"), 0, random_.size()), random_);
  settle();
  ASSERT_EQ(vfs_.stop_fs(), 0) << vfs_.fs_log();
  // Flip bytes in every cached chunk file while unmounted.
  int damaged = 0;
  for (const auto& e : fs::recursive_directory_iterator{vfs_.cache() / "chunks"}) {
    if (!e.is_regular_file()) continue;
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
    std::fstream f{e.path(), std::ios::in | std::ios::out | std::ios::binary};
    f.seekp(1000);
    const char junk[4] = {'\x5a', '\x5a', '\x5a', '\x5a'};
    f.write(junk, sizeof junk);
    ++damaged;
  }
  ASSERT_EQ(damaged, 6);
  vfs_.start_fs();
  EXPECT_EQ(read_range(vfs_.image("random"), 0, random_.size()), random_);
  const auto s = vfs_.status();
  EXPECT_EQ(s["cache_corrupt"], 6) << s.dump();
  EXPECT_EQ(s["cache_trusted"], 0) << s.dump();  // the writes changed the files' ctime: no record vouches for them
  EXPECT_GT(s["fetches"].get<int>(), 0) << s.dump();
}

TEST_F(VigoFsReadTest, AColdSmallReadFetchesOnlyItsRangeAndLeavesTheChunkForLater) {
  FsStartOptions o;
  o.neighbor_prefetch = false;  // only the reads' own fetches
  o.fill_quiet_ms = 3600000;  // no lazy fill runs during this test
  vfs_.start_fs(o);
  const std::uint64_t off = 2 * kChunk + kChunk / 2;  // not at 0: a read at 0 starts a sequential run
  const auto got = read_range(vfs_.image("random@1"), off, 4096);
  ASSERT_EQ(got, std::vector<std::uint8_t>(random_.begin() + off, random_.begin() + off + 4096));
  auto s = vfs_.status();
  EXPECT_EQ(s["range_fetches"], 1) << s.dump();
  EXPECT_EQ(s["chunk_fetches"], 0) << s.dump();  // no whole chunk on a random miss
  EXPECT_EQ(s["fills"], 1) << s.dump();
  EXPECT_EQ(s["chunks_in_flight"], 1) << s.dump();      // the lazy fill, queued
  EXPECT_EQ(s["background_in_flight"], 0) << s.dump();  // and not sent
  // The read waited for its range, and nothing else waited.
  EXPECT_EQ(s["range_waits"], 1) << s.dump();
  EXPECT_EQ(s["whole_waits"], 0) << s.dump();
  EXPECT_EQ(s["joined_waits"], 0) << s.dump();
  EXPECT_GT(s["stalled_ms"].get<double>(), 0.0) << s.dump();
  EXPECT_DOUBLE_EQ(s["stalled_ms"].get<double>(), s["range_wait_ms"].get<double>()) << s.dump();  // one wait: its own union
  EXPECT_DOUBLE_EQ(s["max_wait_ms"].get<double>(), s["range_wait_ms"].get<double>()) << s.dump();
  // A sequential read of the file fetches whole chunks, no ranges, and
  // takes over the queued fill of chunk 2 instead of fetching it again.
  EXPECT_EQ(read_range(vfs_.image("random"), 0, random_.size()), random_);
  s = vfs_.status();
  EXPECT_EQ(s["range_fetches"], 1) << s.dump();
  EXPECT_EQ(s["chunk_fetches"], 6) << s.dump();
  EXPECT_GE(s["promoted"].get<int>(), 1) << s.dump();
  EXPECT_EQ(s["fetch_errors"], 0) << s.dump();
  // Its misses waited for whole chunks; the time any miss waited is at
  // most the sum of the waits.
  EXPECT_GE(s["whole_waits"].get<int>(), 1) << s.dump();
  EXPECT_EQ(s["range_waits"], 1) << s.dump();
  const double summed = s["range_wait_ms"].get<double>() * s["range_waits"].get<double>() +
                        s["whole_wait_ms"].get<double>() * s["whole_waits"].get<double>() +
                        s["joined_wait_ms"].get<double>() * s["joined_waits"].get<double>();
  EXPECT_LE(s["stalled_ms"].get<double>(), summed * 1.000001) << s.dump();
  EXPECT_GE(s["stalled_ms"].get<double>(), s["max_wait_ms"].get<double>()) << s.dump();
}

TEST_F(VigoFsReadTest, OneReadNearTheLastIsNotSequentialTwoInARowAre) {
  FsStartOptions o;
  o.neighbor_prefetch = false;  // only the reads' own fetches
  o.fill_quiet_ms = 3600000;  // no lazy fill runs during this test
  vfs_.start_fs(o);
  const UniqueFd fd = open_for_random_reads("random@1");
  auto pread_at = [&](std::uint64_t off) { expect_pread_4k(fd, off); };
  // A random read, then one that lands near where it ended (a random reader
  // does that now and then): both take just their range.
  const std::uint64_t first = 2 * kChunk + kChunk / 4;
  pread_at(first);
  pread_at(first + 3 * 4096);
  auto s = vfs_.status();
  EXPECT_EQ(s["range_fetches"], 2) << s.dump();
  EXPECT_EQ(s["chunk_fetches"], 0) << s.dump();
  // A second near read in a row is a sequential run (the kernel's read-ahead
  // arrives slightly out of order): its chunk is fetched whole.
  pread_at(first + 6 * 4096);
  s = vfs_.status();
  EXPECT_EQ(s["range_fetches"], 2) << s.dump();
  EXPECT_GE(s["chunk_fetches"].get<int>(), 1) << s.dump();
  EXPECT_EQ(s["fetch_errors"], 0) << s.dump();
}

TEST_F(VigoFsReadTest, ClusteredRandomReadsFetchTheirNeighboursAheadAndSpreadOnesDoNot) {
  const auto wide = random_bytes_for_test(24 * kChunk, 3);
  vfs_.publish("wide", wide);
  FsStartOptions o;
  o.fill_quiet_ms = 3600000;  // lazy fills (of spread reads) wait: only background fills and neighbours run
  vfs_.start_fs(o);
  const UniqueFd fd = open_for_random_reads("wide@1");  // one open file, as QEMU keeps its image open
  auto pread_in = [&](std::uint64_t chunk) { expect_pread_4k(fd, chunk * kChunk + kChunk / 2, &wide); };
  // Until n whole chunks are cached and `waiting` fills are still queued.
  auto wait_for_chunk_fetches = [&](int n, int waiting) {
    for (int i = 0; i < 500; ++i) {
      const auto s = vfs_.status();
      if (s["chunk_fetches"].get<int>() >= n && s["chunks_in_flight"].get<int>() == waiting) return s;
      std::this_thread::sleep_for(20ms);
    }
    return vfs_.status();
  };
  // Misses in chunks 20, 10, 15 and 5, each far from the others: spread
  // reads. Each takes just its range, and its fill waits.
  for (const std::uint64_t chunk : {20, 10, 15, 5}) pread_in(chunk);
  auto s = vfs_.status();
  EXPECT_EQ(s["range_fetches"], 4) << s.dump();
  EXPECT_EQ(s["neighbor_prefetches"], 0) << s.dump();
  EXPECT_EQ(s["chunk_fetches"], 0) << s.dump();
  // Misses near earlier ones: 12, 7 and 17 (1, 2, 3 of 5, 6, 7 near: not
  // yet clustered), then 22 (4 of 8): the reads cluster. 22's own fill goes
  // in the background at once, and chunks 23, 21 and 19 are fetched whole
  // ahead (20 is a recent read's: its own fill is that read's; 24 is past
  // the end).
  for (const std::uint64_t chunk : {12, 7, 17}) pread_in(chunk);
  s = vfs_.status();
  EXPECT_EQ(s["neighbor_prefetches"], 0) << s.dump();
  pread_in(22);
  s = wait_for_chunk_fetches(4, 7);  // the lazy fills of 20, 10, 15, 5, 12, 7 and 17 still wait
  EXPECT_EQ(s["range_fetches"], 8) << s.dump();
  EXPECT_EQ(s["neighbor_prefetches"], 3) << s.dump();
  EXPECT_EQ(s["chunk_fetches"], 4) << s.dump();
  // A read of chunk 21 is a cache hit on a chunk fetched ahead: used, and
  // its one neighbour not recent, cached or asked for is: 18.
  pread_in(21);
  s = wait_for_chunk_fetches(5, 7);
  EXPECT_EQ(s["range_fetches"], 8) << s.dump();
  EXPECT_EQ(s["neighbor_used"], 1) << s.dump();
  EXPECT_EQ(s["neighbor_prefetches"], 4) << s.dump();
  EXPECT_EQ(s["chunk_fetches"], 5) << s.dump();
  EXPECT_EQ(s["chunks_in_flight"], 7) << s.dump();
  EXPECT_EQ(s["fetch_errors"], 0) << s.dump();
  EXPECT_EQ(read_range(vfs_.image("wide"), 0, wide.size()), wide);
}

TEST_F(VigoFsReadTest, DroppedLazyFillsLoseNoRead) {
  FsStartOptions o;
  o.neighbor_prefetch = false;  // only the reads' own fetches
  o.fill_quiet_ms = 3600000;  // no lazy fill runs during this test
  o.fill_queue = 1;           // a second queued fill drops the first
  vfs_.start_fs(o);
  // Past the first 2 MiB: a read nearer the start counts as sequential.
  for (std::uint64_t chunk = 2; chunk <= 4; ++chunk) {
    const std::uint64_t off = chunk * kChunk + kChunk / 2;
    ASSERT_EQ(read_range(vfs_.image("random@1"), off, 4096),
              std::vector<std::uint8_t>(random_.begin() + off, random_.begin() + off + 4096));
  }
  auto s = vfs_.status();
  EXPECT_EQ(s["range_fetches"], 3) << s.dump();
  EXPECT_EQ(s["fills_dropped"], 2) << s.dump();
  EXPECT_EQ(s["chunks_in_flight"], 1) << s.dump();  // the last fill, still queued
  // The whole file, sequentially: the dropped chunks are fetched when read,
  // the queued fill is taken over, and no read fails.
  EXPECT_EQ(read_range(vfs_.image("random"), 0, random_.size()), random_);
  s = vfs_.status();
  EXPECT_EQ(s["fetch_errors"], 0) << s.dump();
  EXPECT_EQ(s["chunk_fetches"], 6) << s.dump();
  EXPECT_EQ(s["chunks_in_flight"], 0) << s.dump();
}

TEST_F(VigoFsReadTest, ALazyFillCachesTheChunkOnceReadsPause) {
  FsStartOptions o;
  o.neighbor_prefetch = false;  // only the read's own fill
  vfs_.start_fs(o);
  const std::uint64_t off = 3 * kChunk + 1000;
  const std::vector<std::uint8_t> want(random_.begin() + off, random_.begin() + off + 5000);
  EXPECT_EQ(read_range(vfs_.image("random@1"), off, 5000), want);
  settle();  // the fill runs once no read has waited for --fill-quiet-ms
  auto s = vfs_.status();
  EXPECT_EQ(s["range_fetches"], 1) << s.dump();
  EXPECT_EQ(s["chunk_fetches"], 1) << s.dump();
  EXPECT_EQ(s["cache_chunks"], 1) << s.dump();
  // Another inode of the same bytes: the kernel's page cache cannot answer,
  // the verified chunk in the disk cache does.
  EXPECT_EQ(read_range(vfs_.image("random"), off, 5000), want);
  const auto after = vfs_.status();
  EXPECT_EQ(after["fetches"], s["fetches"]) << after.dump();
  EXPECT_GT(after["hits"].get<int>(), s["hits"].get<int>()) << after.dump();
}

TEST_F(VigoFsReadTest, TheCacheStaysWithinItsQuota) {
  const auto big = random_bytes_for_test(100 * kChunk, 9);
  vfs_.publish("big", big);
  FsStartOptions o;
  o.cache_quota_mb = 64;
  vfs_.start_fs(o);
  for (int pass = 0; pass < 2; ++pass) {
    EXPECT_TRUE(read_range(vfs_.image("big@1"), 0, big.size()) == big);
  }
  settle();
  const auto s = vfs_.status();
  EXPECT_LE(s["cache_bytes"].get<std::uint64_t>(), 64ull << 20) << s.dump();
  EXPECT_GT(s["cache_evictions"].get<std::uint64_t>(), 0u) << s.dump();
  std::uint64_t on_disk = 0;
  for (const auto& e : fs::recursive_directory_iterator(vfs_.cache() / "chunks")) {
    if (e.is_regular_file()) on_disk += e.file_size();
  }
  EXPECT_LE(on_disk, 64ull << 20);
}

TEST_F(VigoFsReadTest, RaisesTheKernelsReadAheadSoReadsAreLarge) {
  vfs_.start_fs();
  struct stat st{};
  ASSERT_EQ(::stat(vfs_.mount().c_str(), &st), 0);
  const fs::path knob = "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev)) +
                        "/read_ahead_kb";
  std::string value;
  std::getline(std::ifstream{knob}, value);
  EXPECT_EQ(value, "4096") << knob;  // set once the kernel's INIT was done (the kernel offers 128 in INIT)
}

}  // namespace
}  // namespace vigo::testing
