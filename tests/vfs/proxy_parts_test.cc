// SPDX-License-Identifier: Apache-2.0
// The pure parts of vigo-fs: the server-command splitter, the read-to-chunk
// mapping, request collapsing, and image file names.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "vigo/common/error.h"
#include "vigo/vfs/chunk_map.h"
#include "vigo/vfs/collapser.h"
#include "vigo/vfs/command_line.h"
#include "vigo/vfs/image_tree.h"

namespace vigo::vfs {
namespace {

using Words = std::vector<std::string>;

TEST(SplitCommand, SplitsLikeAShellWithoutExpanding) {
  EXPECT_EQ(split_command("ssh -p 22  host"), (Words{"ssh", "-p", "22", "host"}));
  EXPECT_EQ(split_command("  a\tb\n"), (Words{"a", "b"}));
  EXPECT_EQ(split_command("ssh 'a b' \"c d\" e\\ f"), (Words{"ssh", "a b", "c d", "e f"}));
  EXPECT_EQ(split_command("x 'it''s' \"q\\\"uote\\\\\" \"\\n\""), (Words{"x", "its", "q\"uote\\", "\\n"}));
  EXPECT_EQ(split_command("ssh '' x"), (Words{"ssh", "", "x"}));
  EXPECT_EQ(split_command("echo $HOME ~ * | >f"), (Words{"echo", "$HOME", "~", "*", "|", ">f"}));
  EXPECT_EQ(split_command("a'b'\"c\"d"), (Words{"abcd"}));
}

TEST(SplitCommand, RefusesBrokenCommands) {
  for (const char* bad : {"", "   ", "ssh 'open", "ssh \"open", "ssh \\"}) {
    try {
      (void)split_command(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(e.field(), "server");
    }
  }
}

Manifest manifest(std::uint64_t size, std::uint32_t chunk) {
  Manifest m;
  m.name = "img";
  m.version = 1;
  m.size = size;
  m.chunk_size = chunk;
  for (std::uint64_t at = 0; at < size; at += chunk) {
    ChunkRef r;
    r.raw_length = static_cast<std::uint32_t>(std::min<std::uint64_t>(chunk, size - at));
    r.stored_length = r.raw_length;
    m.chunks.push_back(r);
  }
  return m;
}

TEST(MapRead, SplitsAtChunkBoundariesAndCutsAtTheEnd) {
  const Manifest m = manifest(3 * 65536 + 100, 65536);
  EXPECT_EQ(map_read(m, 10, 20), (std::vector<ChunkSlice>{{0, 10, 20, 0}}));
  EXPECT_EQ(map_read(m, 65530, 12), (std::vector<ChunkSlice>{{0, 65530, 6, 0}, {1, 0, 6, 6}}));
  EXPECT_EQ(map_read(m, 0, 3 * 65536 + 100),
            (std::vector<ChunkSlice>{{0, 0, 65536, 0}, {1, 0, 65536, 65536}, {2, 0, 65536, 131072},
                                     {3, 0, 100, 196608}}));
  EXPECT_EQ(map_read(m, 3 * 65536 + 90, 1000), (std::vector<ChunkSlice>{{3, 90, 10, 0}}));
  EXPECT_TRUE(map_read(m, 3 * 65536 + 100, 10).empty());
  EXPECT_TRUE(map_read(m, 1ull << 40, 10).empty());
  EXPECT_TRUE(map_read(m, 5, 0).empty());
  EXPECT_EQ(chunk_index(m, 65536), 1u);
}

TEST(MapRead, EveryByteOnceInOrder) {
  const Manifest m = manifest(1000003, 65536);
  for (std::uint64_t off : {0ull, 1ull, 65535ull, 65536ull, 999999ull}) {
    for (std::uint64_t len : {1ull, 4096ull, 65536ull, 300000ull, 2000000ull}) {
      std::uint64_t expect_pos = off;
      std::uint64_t buf = 0;
      for (const auto& s : map_read(m, off, len)) {
        EXPECT_EQ(s.index * 65536ull + s.chunk_offset, expect_pos);
        EXPECT_EQ(s.buffer_offset, buf);
        EXPECT_LE(s.chunk_offset + s.length, m.chunks[s.index].raw_length);
        expect_pos += s.length;
        buf += s.length;
      }
      EXPECT_EQ(buf, std::min(len, m.size - off));
    }
  }
}

TEST(Collapser, OneRoundPerKeyAndEveryWaiterHearsTheResult) {
  Collapser<int, std::string> c;
  std::vector<std::string> heard;
  EXPECT_TRUE(c.join(1, [&](const std::string& v) { heard.push_back("a" + v); }));
  EXPECT_FALSE(c.join(1, [&](const std::string& v) { heard.push_back("b" + v); }));
  EXPECT_FALSE(c.join(1, nullptr));
  EXPECT_TRUE(c.join(2, [&](const std::string& v) { heard.push_back("c" + v); }));
  EXPECT_TRUE(c.in_flight(1));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.complete(1, "x"), 2u);
  EXPECT_EQ(heard, (std::vector<std::string>{"ax", "bx"}));
  EXPECT_FALSE(c.in_flight(1));
  EXPECT_EQ(c.complete(1, "again"), 0u);
  EXPECT_TRUE(c.join(1, nullptr));  // a new round
  EXPECT_EQ(c.complete(2, "y"), 1u);
  EXPECT_EQ(heard.back(), "cy");
}

TEST(Collapser, ARoundThatSomebodyJoinedIsNotEndedQuietly) {
  // A dropped lazy fill ends its round only if nobody joined it meanwhile.
  Collapser<int, int> c;
  EXPECT_TRUE(c.join(1, nullptr));  // the fill: nobody waits
  EXPECT_TRUE(c.complete_if_unwaited(1));
  EXPECT_FALSE(c.in_flight(1));
  EXPECT_TRUE(c.complete_if_unwaited(1));  // already ended

  int heard = 0;
  EXPECT_TRUE(c.join(2, nullptr));
  EXPECT_FALSE(c.join(2, [&](const int& v) { heard = v; }));  // a read joins it
  EXPECT_FALSE(c.complete_if_unwaited(2));                    // the round goes on
  EXPECT_TRUE(c.in_flight(2));
  EXPECT_EQ(heard, 0);
  EXPECT_EQ(c.complete(2, 7), 1u);  // the fetch made again for the read
  EXPECT_EQ(heard, 7);
}

TEST(Collapser, ConcurrentJoinsStartTheWorkOnce) {
  Collapser<int, int> c;
  std::atomic<int> starters{0}, heard{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (c.join(i, [&](const int& v) { heard += v; })) ++starters;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(starters, 1000);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(c.complete(i, 1), 8u);
  EXPECT_EQ(heard, 8000);
}

TEST(ImageFileName, LatestAndVersionsOnly) {
  auto n = parse_image_file_name("disk");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->name, "disk");
  EXPECT_EQ(n->version, 0u);
  n = parse_image_file_name("disk@12");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->version, 12u);
  for (const char* bad : {"", "@1", "disk@", "disk@0", "disk@01", "disk@1x", "disk@-1", ".hidden", "a/b",
                          "disk@99999999999999999999999"}) {
    EXPECT_FALSE(parse_image_file_name(bad)) << bad;
  }
}

}  // namespace
}  // namespace vigo::vfs
