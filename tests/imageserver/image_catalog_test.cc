// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/image_catalog.h"

#include <gtest/gtest.h>

#include "store_test_util.h"
#include "vigo/common/error.h"

namespace vigo::imageserver {
namespace {

using testing::compressible_data;
using testing::random_data;
using testing::TempDir;

constexpr std::uint32_t kChunk = 64u << 10;  // small chunks keep the tests fast

class CatalogTest : public ::testing::Test {
 protected:
  CatalogTest() : catalog_(dir_.path() / "store", CatalogOptions{kChunk, {}}) {}

  Manifest publish(const std::vector<std::uint8_t>& data, const std::string& name, PublishStats* stats = nullptr) {
    const auto file = dir_.path() / ("src-" + std::to_string(files_++));
    testing::write_file(file, data);
    return catalog_.publish(file, name, stats);
  }

  std::vector<std::uint8_t> reassemble(const Manifest& m) {
    std::vector<std::uint8_t> out;
    for (const auto& c : m.chunks) {
      const auto raw = catalog_.chunks().read(c.hash);
      EXPECT_EQ(raw->size(), c.raw_length);
      out.insert(out.end(), raw->begin(), raw->end());
    }
    return out;
  }

  TempDir dir_;
  ImageCatalog catalog_;
  int files_ = 0;
};

TEST_F(CatalogTest, PublishThenReassembleByteForByte) {
  struct Case {
    std::vector<std::uint8_t> data;
    const char* name;
  };
  const Case cases[] = {{random_data(3 * kChunk + 12345, 1), "random"},
                        {compressible_data(5 * kChunk + 1, 2), "memory"},
                        {random_data(kChunk, 3), "exact"},
                        {random_data(100, 4), "tiny"},
                        {{}, "empty"}};
  for (const auto& c : cases) {
    const Manifest m = publish(c.data, c.name);
    EXPECT_EQ(m.version, 1u);
    EXPECT_EQ(m.size, c.data.size());
    EXPECT_EQ(m.chunks.size(), (c.data.size() + kChunk - 1) / kChunk);
    EXPECT_EQ(reassemble(catalog_.stat(c.name)), c.data) << c.name;
  }
  const Manifest memory = catalog_.stat("memory", 1);
  std::uint64_t stored = 0;
  for (const auto& c : memory.chunks) stored += c.stored_length;
  EXPECT_LT(stored, memory.size / 2);  // compressible data is stored compressed
  EXPECT_EQ(catalog_.list().size(), 5u);
}

TEST_F(CatalogTest, PublishingTheSameFileTwiceStoresNoNewChunks) {
  const auto data = random_data(4 * kChunk + 7, 5);
  PublishStats first, second;
  const Manifest a = publish(data, "img", &first);
  const std::size_t chunk_files = catalog_.chunks().list().size();
  const Manifest b = publish(data, "img", &second);
  EXPECT_EQ(first.chunks_written, 5u);
  EXPECT_EQ(second.chunks_written, 0u);
  EXPECT_EQ(second.chunks_reused, 5u);
  EXPECT_EQ(catalog_.chunks().list().size(), chunk_files);
  EXPECT_EQ(b.version, 2u);
  EXPECT_EQ(a.chunks, b.chunks);
  // Another image sharing data shares chunks too.
  PublishStats third;
  publish(data, "other", &third);
  EXPECT_EQ(third.chunks_written, 0u);
}

TEST_F(CatalogTest, DeleteKeepsChunksSharedWithAnotherImage) {
  auto base = random_data(4 * kChunk, 6);
  auto changed = base;
  changed[kChunk + 10] ^= 1;  // differs in chunk 1 only
  const Manifest a = publish(base, "a");
  const Manifest b = publish(changed, "b");
  const GcStats gc = catalog_.remove("a", 1);
  EXPECT_EQ(gc.chunks_removed, 1u);  // only a's own chunk 1
  EXPECT_EQ(reassemble(catalog_.stat("b")), changed);
  EXPECT_FALSE(catalog_.chunks().contains(a.chunks[1].hash));
  EXPECT_THROW((void)catalog_.stat("a", 1), Error);
  (void)b;
}

TEST_F(CatalogTest, DeleteNeverRemovesChunksAnOpenReaderPins) {
  const auto data = random_data(3 * kChunk, 7);
  publish(data, "img");
  std::optional<ImageReader> reader{catalog_.open("img", 1)};
  const GcStats gc = catalog_.remove("img", 1);
  EXPECT_EQ(gc.chunks_removed, 0u);
  EXPECT_EQ(gc.deleted_versions_still_open, 1u);
  EXPECT_EQ(reassemble(reader->manifest()), data);  // the reader still reads everything
  try {
    (void)catalog_.open("img", 1);
    FAIL() << "a deleted version must not open";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  reader.reset();
  const GcStats later = catalog_.collect_garbage();
  EXPECT_EQ(later.chunks_removed, 3u);
  EXPECT_TRUE(catalog_.chunks().list().empty());
}

TEST_F(CatalogTest, VersionsAreNeverReused) {
  publish(random_data(10, 8), "img");
  publish(random_data(10, 9), "img");
  (void)catalog_.remove("img", 2);
  EXPECT_EQ(publish(random_data(10, 10), "img").version, 3u);
  EXPECT_EQ(catalog_.stat("img").version, 3u);  // latest
  EXPECT_EQ(catalog_.stat("img", 1).version, 1u);
  try {
    (void)catalog_.remove("img", 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST_F(CatalogTest, NamesAndSpecsAreValidated) {
  const auto file = dir_.path() / "f";
  testing::write_file(file, random_data(10, 1));
  for (const char* bad : {"", "../x", "a/b", ".hidden", "x\n", "a b"}) {
    EXPECT_THROW(catalog_.publish(file, bad), Error) << bad;
  }
  EXPECT_THROW(catalog_.publish(dir_.path(), "dir"), Error);  // not a regular file
  EXPECT_EQ(parse_image_spec("debian-12@4").version, 4u);
  EXPECT_EQ(parse_image_spec("debian-12").version, 0u);
  for (const char* bad : {"x@0", "x@", "x@01", "x@-1", "@3", "x@1@2"})
    EXPECT_THROW(parse_image_spec(bad), Error) << bad;
}

TEST_F(CatalogTest, ProfilesBelongToAnExistingVersionAndAreBounded) {
  publish(random_data(10, 1), "img");
  const std::vector<std::uint8_t> blob{1, 2, 3, 4};
  catalog_.put_profile("img", 1, blob);
  EXPECT_EQ(catalog_.get_profile("img", 1), blob);
  EXPECT_THROW(catalog_.put_profile("img", 9, blob), Error);
  EXPECT_THROW(catalog_.put_profile("img", 1, std::vector<std::uint8_t>(wire::kMaxProfile + 1)), Error);
  try {
    (void)catalog_.get_profile("other", 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  (void)catalog_.remove("img", 1);
  EXPECT_THROW((void)catalog_.get_profile("img", 1), Error);
}

TEST_F(CatalogTest, GcRemovesLeftoverTemporaryFiles) {
  const Manifest m = publish(random_data(kChunk, 2), "img");
  const auto sub = catalog_.chunks().path_of(m.chunks[0].hash).parent_path();
  testing::write_file(sub / ".tmp-00000000deadbeef", random_data(100, 3));
  testing::write_file(catalog_.root() / "images" / "img" / ".tmp-00000000deadbeef", random_data(100, 3));
  EXPECT_EQ(catalog_.list().size(), 1u);
  const GcStats gc = catalog_.collect_garbage();
  EXPECT_EQ(gc.temp_files_removed, 2u);
  EXPECT_EQ(gc.chunks_removed, 0u);
}

}  // namespace
}  // namespace vigo::imageserver
