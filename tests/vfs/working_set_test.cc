// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/working_set.h"

#include <gtest/gtest.h>

#include "vigo/common/error.h"

namespace vigo::vfs {
namespace {

std::string rejection(std::span<const std::uint8_t> bytes, std::uint32_t chunks) {
  try {
    (void)decode_working_set(bytes, chunks);
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "profile");
    return e.what();
  }
  return "accepted";
}

TEST(WorkingSetProfileTest, RoundTripsTheOrderOfFirstNeed) {
  const std::vector<std::uint32_t> order{7, 2, 9, 3, 0};
  const auto bytes = encode_working_set(10, order);
  EXPECT_EQ(bytes.size(), 12u + 4 * order.size());
  EXPECT_EQ(decode_working_set(bytes, 10), order);
  EXPECT_TRUE(decode_working_set(encode_working_set(3, {}), 3).empty());
}

TEST(WorkingSetProfileTest, RefusesAnythingButAProfileOfThisImage) {
  auto bytes = encode_working_set(10, {1, 2, 3});
  EXPECT_NE(rejection(bytes, 11).find("made for 10 chunks"), std::string::npos);
  auto bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_NE(rejection(bad_magic, 10).find("not a working-set profile"), std::string::npos);
  auto truncated = bytes;
  truncated.pop_back();
  EXPECT_NE(rejection(truncated, 10), "accepted");
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_NE(rejection(longer, 10), "accepted");
  EXPECT_NE(rejection(encode_working_set(10, {1, 10}), 10).find("out of range"), std::string::npos);
  EXPECT_NE(rejection(encode_working_set(10, {4, 4}), 10).find("repeated"), std::string::npos);
  EXPECT_NE(rejection({}, 10), "accepted");
  // A length that claims more entries than the image has chunks.
  auto inflated = encode_working_set(2, {0, 1});
  inflated[8] = 200;
  EXPECT_NE(rejection(inflated, 2), "accepted");
}

}  // namespace
}  // namespace vigo::vfs
