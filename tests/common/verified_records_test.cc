// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/verified_records.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/temp_dir.h"

namespace vigo {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

VerifiedRecords::Hash hash_n(std::uint8_t n) {
  VerifiedRecords::Hash h{};
  h.fill(n);
  return h;
}

FileStamp stamp_n(std::uint64_t n) { return FileStamp{n, n * 10, static_cast<std::int64_t>(n) * 100, -1}; }

TEST(VerifiedRecords, AnAbsentFileHasNoRecords) {
  TempDir dir;
  VerifiedRecords records{dir.path() / "verified"};
  EXPECT_TRUE(records.read_new().empty());
  EXPECT_FALSE(records.damaged());
  EXPECT_FALSE(fs::exists(dir.path() / "verified"));  // reading creates nothing
}

TEST(VerifiedRecords, WhatOneWriterAppendsAnotherReadsOnce) {
  TempDir dir;
  VerifiedRecords writer{dir.path() / "verified"};
  VerifiedRecords reader{dir.path() / "verified"};  // as another process would
  EXPECT_EQ(writer.append(hash_n(1), stamp_n(1)), 1u);
  EXPECT_EQ(writer.append(hash_n(2), stamp_n(2)), 2u);
  const auto first = reader.read_new();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].first, hash_n(1));
  EXPECT_EQ(first[0].second, stamp_n(1));
  EXPECT_EQ(first[1].second, stamp_n(2));
  EXPECT_TRUE(reader.read_new().empty());  // nothing new since
  writer.append(hash_n(3), stamp_n(3));
  const auto next = reader.read_new();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].first, hash_n(3));
}

TEST(VerifiedRecords, ARewriteReplacesTheFileAndReadersStartOver) {
  TempDir dir;
  VerifiedRecords a{dir.path() / "verified"};
  VerifiedRecords b{dir.path() / "verified"};
  for (std::uint8_t i = 1; i <= 5; ++i) a.append(hash_n(i), stamp_n(i));
  EXPECT_EQ(b.read_new().size(), 5u);
  a.rewrite({{hash_n(4), stamp_n(4)}, {hash_n(5), stamp_n(44)}});
  EXPECT_TRUE(a.read_new().empty());  // its own rewrite counts as read
  const auto after = b.read_new();     // a new file: read from its start
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[1].second, stamp_n(44));
  EXPECT_EQ(a.append(hash_n(6), stamp_n(6)), 3u);  // appends go to the new file
  EXPECT_EQ(b.read_new().size(), 1u);
  EXPECT_EQ(fs::file_size(dir.path() / "verified"), 3u * 72u);
}

TEST(VerifiedRecords, ATornRecordEndsTheReadingAndIsReported) {
  TempDir dir;
  const fs::path file = dir.path() / "verified";
  {
    VerifiedRecords w{file};
    w.append(hash_n(1), stamp_n(1));
    w.append(hash_n(2), stamp_n(2));
    w.append(hash_n(3), stamp_n(3));
  }
  {
    std::fstream f{file, std::ios::in | std::ios::out | std::ios::binary};
    f.seekp(72 + 40);  // inside the second record's stamp
    f.put('\x7f');
  }
  VerifiedRecords r{file};
  const auto got = r.read_new();
  ASSERT_EQ(got.size(), 1u);  // the first; the damaged one and all after it are not trusted
  EXPECT_EQ(got[0].first, hash_n(1));
  EXPECT_TRUE(r.damaged());
  r.rewrite(got);
  EXPECT_FALSE(r.damaged());
  VerifiedRecords again{file};
  EXPECT_EQ(again.read_new().size(), 1u);
  EXPECT_FALSE(again.damaged());
}

TEST(VerifiedRecords, AHalfWrittenLastRecordIsNotRead) {
  TempDir dir;
  const fs::path file = dir.path() / "verified";
  {
    VerifiedRecords w{file};
    w.append(hash_n(1), stamp_n(1));
    w.append(hash_n(2), stamp_n(2));
  }
  fs::resize_file(file, 72 + 30);
  VerifiedRecords r{file};
  EXPECT_EQ(r.read_new().size(), 1u);
}

TEST(VerifiedRecords, AFileThatCannotBeWrittenIsOnlyASlowerPath) {
  TempDir dir;
  fs::create_directory(dir.path() / "verified");  // not a file: nothing can be appended
  VerifiedRecords r{dir.path() / "verified"};
  EXPECT_EQ(r.append(hash_n(1), stamp_n(1)), 0u);
  EXPECT_TRUE(r.read_new().empty());
}

TEST(VerifiedRecords, StampOfTakesTheIdentityFromStat) {
  TempDir dir;
  const fs::path file = dir.path() / "f";
  std::ofstream{file} << "bytes";
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  const FileStamp s = stamp_of(st);
  EXPECT_EQ(s.ino, st.st_ino);
  EXPECT_EQ(s.size, 5u);
  std::ofstream{file, std::ios::app} << "more";
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_NE(stamp_of(st), s);  // a write changes the stamp
}

}  // namespace
}  // namespace vigo
