// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/error.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace vigo {
namespace {

ErrorCode code_of_errno(int e) {
  try {
    throw_errno("op", e);
  } catch (const Error& err) {
    return err.code();
  }
  return ErrorCode::kInternal;
}

TEST(Error, ErrnoMapsToCodes) {
  EXPECT_EQ(code_of_errno(ENOENT), ErrorCode::kNotFound);
  EXPECT_EQ(code_of_errno(EEXIST), ErrorCode::kAlreadyExists);
  EXPECT_EQ(code_of_errno(EACCES), ErrorCode::kPermissionDenied);
  EXPECT_EQ(code_of_errno(ETIMEDOUT), ErrorCode::kTimeout);
  EXPECT_EQ(code_of_errno(EIO), ErrorCode::kInternal);
}

TEST(Error, ErrnoMessageNamesTheOperation) {
  try {
    throw_errno("open /nowhere", ENOENT);
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "open /nowhere: No such file or directory");
  }
}

TEST(Error, InvalidArgumentNamesTheField) {
  Error e = invalid_argument("memory_mb", "must be positive");
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.field(), "memory_mb");
  EXPECT_STREQ(e.what(), "invalid memory_mb: must be positive");
  EXPECT_EQ(to_string(ErrorCode::kResourceExhausted), "resource_exhausted");
}

}  // namespace
}  // namespace vigo
