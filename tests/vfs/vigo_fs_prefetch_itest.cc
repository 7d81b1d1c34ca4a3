// SPDX-License-Identifier: Apache-2.0
// vigo-fs working-set prefetch end to end: a first (cold) start records the
// chunks it reads, in order, and stores the profile on the image server; a
// later cold start with an empty cache fetches exactly those chunks ahead
// of the reads. Real vigo-fs, FUSE, sshd and vigo-imaged.
#include <gtest/gtest.h>

#include <thread>

#include "support/text_file.h"
#include "support/vfs_fixture.h"
#include "vfs/vfs_test_util.h"
#include "vigo/vfs/working_set.h"

namespace vigo::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::size_t kChunk = 1 << 20;

class VigoFsPrefetchTest : public ::testing::Test {
 protected:
  VigoFsPrefetchTest() : disk_(random_bytes_for_test(12 * kChunk, 5)) { vfs_.publish("disk", disk_); }

  // The status entry of the image's working set, once it is in `state`.
  nlohmann::json wait_for_state(const std::string& image, const std::string& state) {
    nlohmann::json last;
    for (int i = 0; i < 500; ++i) {
      last = vfs_.status();
      for (const auto& w : last["working_sets"]) {
        if (w["image"] == image && w["state"] == state) return w;
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "no working set of " << image << " reached " << state << ": " << last.dump();
    return {};
  }

  void read_chunk(std::size_t index) {
    const auto got = read_range(vfs_.image("disk@1"), index * kChunk + 100, 4096);
    ASSERT_TRUE(std::equal(got.begin(), got.end(), disk_.begin() + static_cast<std::ptrdiff_t>(index * kChunk + 100)));
  }

  std::size_t cached_chunks() {
    std::size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(vfs_.cache() / "chunks")) n += e.is_regular_file() ? 1 : 0;
    return n;
  }

  std::vector<std::uint8_t> disk_;
  VfsFixture vfs_;
};

TEST_F(VigoFsPrefetchTest, AColdStartReplaysWhatTheFirstOneRead) {
  FsStartOptions o;
  // Long enough that a cold fetch on a loaded machine (each read below
  // waits for one) never looks like the end of the start: at 300 ms a CI
  // run recorded only the first two chunks.
  o.profile_idle_ms = 2000;
  o.readahead_chunks = 0;       // only what the reads touch
  o.neighbor_prefetch = false;  // nor their neighbours
  vfs_.start_fs(o);
  for (std::size_t i : {7, 2, 9, 3, 2, 7}) read_chunk(i);
  auto recorded = wait_for_state("disk@1", "stored");
  EXPECT_EQ(recorded["chunks"], 4);
  // The profile on the server lists the chunks in the order first needed.
  const std::string blob = read_text_file(vfs_.store() / "profiles" / "disk" / "1");
  EXPECT_EQ(vfs::decode_working_set({reinterpret_cast<const std::uint8_t*>(blob.data()), blob.size()}, 12),
            (std::vector<std::uint32_t>{7, 2, 9, 3}));

  ASSERT_EQ(vfs_.stop_fs(), 0);
  fs::remove_all(vfs_.cache());
  vfs_.start_fs(o);
  EXPECT_EQ(cached_chunks(), 0u);
  read_chunk(7);  // the start of the second boot
  auto replayed = wait_for_state("disk@1", "replayed");
  EXPECT_EQ(replayed["prefetched"].get<int>() + replayed["already_cached"].get<int>(), 4);
  EXPECT_EQ(replayed["failed"], 0);
  EXPECT_EQ(cached_chunks(), 4u);  // exactly the working set, nothing else
  for (std::size_t i : {2, 9, 3}) read_chunk(i);
  const auto s = vfs_.status();
  EXPECT_EQ(s["chunk_fetches"], 4) << s.dump();  // one fetch per chunk, none repeated by the reads
}

TEST_F(VigoFsPrefetchTest, ABadProfileOnlyTurnsPrefetchOff) {
  fs::create_directories(vfs_.store() / "profiles" / "disk");
  {
    std::ofstream out{vfs_.store() / "profiles" / "disk" / "1", std::ios::binary};
    out << "garbage that is not a profile";
  }
  vfs_.start_fs();
  read_chunk(1);
  auto w = wait_for_state("disk@1", "failed");
  EXPECT_NE(w["error"].get<std::string>().find("profile"), std::string::npos);
  read_chunk(4);  // reads go on
}

TEST_F(VigoFsPrefetchTest, CanBeSwitchedOff) {
  FsStartOptions o;
  o.working_sets = false;
  vfs_.start_fs(o);
  read_chunk(3);
  auto w = wait_for_state("disk@1", "off");
  EXPECT_EQ(w["chunks"], 0);
  ASSERT_EQ(vfs_.stop_fs(), 0);
  EXPECT_FALSE(fs::exists(vfs_.store() / "profiles" / "disk" / "1"));
}

}  // namespace
}  // namespace vigo::testing
