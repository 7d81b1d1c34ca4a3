// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/digest.h"

#include <gtest/gtest.h>

namespace vigo {
namespace {

TEST(Digest, Sha256KnownAnswer) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Digest, Base64Url) {
  const std::vector<std::uint8_t> foob{'f', 'o', 'o', 'b'};
  EXPECT_EQ(to_base64url(foob), "Zm9vYg");
  const std::vector<std::uint8_t> high{0xfb, 0xff};
  EXPECT_EQ(to_base64url(high), "-_8");
  EXPECT_EQ(to_base64url(random_bytes(32)).size(), 43u);
  EXPECT_NE(random_bytes(16), random_bytes(16));
}

}  // namespace
}  // namespace vigo
