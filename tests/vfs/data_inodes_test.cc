// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/data_inodes.h"

#include <gtest/gtest.h>

namespace vigo::vfs {
namespace {

TEST(DataInodesTest, PathsGetStableInodesUntilForgotten) {
  DataInodes t;
  EXPECT_EQ(t.remember(""), kDataRootIno);
  const auto a = t.remember("a");
  EXPECT_GE(a, kFirstDataIno);
  EXPECT_EQ(t.remember("a"), a);  // two references now
  EXPECT_NE(t.remember("a/b"), a);
  EXPECT_EQ(t.path(a), "a");
  t.forget(a, 1);
  EXPECT_EQ(t.path(a), "a");
  t.forget(a, 1);
  EXPECT_EQ(t.path(a), std::nullopt);
  EXPECT_NE(t.remember("a"), a);  // inodes are never reused
  t.forget(kDataRootIno, 100);
  EXPECT_EQ(t.path(kDataRootIno), "");
}

TEST(DataInodesTest, RenameMovesTheSubtreeAndDetachesTheTarget) {
  DataInodes t;
  const auto dir = t.remember("dir");
  const auto file = t.remember("dir/file");
  const auto deep = t.remember("dir/sub/deep");
  const auto sibling = t.remember("dir2/x");  // "dir2" shares a prefix, not a subtree
  const auto old_target = t.remember("new");
  const auto old_target_child = t.remember("new/child");
  t.renamed("dir", "new");
  EXPECT_EQ(t.path(dir), "new");
  EXPECT_EQ(t.path(file), "new/file");
  EXPECT_EQ(t.path(deep), "new/sub/deep");
  EXPECT_EQ(t.path(sibling), "dir2/x");
  EXPECT_EQ(t.path(old_target), std::nullopt);
  EXPECT_EQ(t.path(old_target_child), std::nullopt);
  EXPECT_EQ(t.find("new/file"), file);
  EXPECT_EQ(t.find("dir/file"), std::nullopt);
}

TEST(DataInodesTest, RemovedPathsKeepTheirInodeWithoutAPath) {
  DataInodes t;
  const auto f = t.remember("f");
  t.removed("f");
  EXPECT_EQ(t.path(f), std::nullopt);
  const auto g = t.remember("f");  // a new file of the same name
  EXPECT_NE(g, f);
  t.forget(f, 1);  // the old one goes away without touching the new one
  EXPECT_EQ(t.path(g), "f");
  EXPECT_EQ(t.size(), 1u);
}

TEST(DataInodesTest, JoinsPaths) {
  EXPECT_EQ(join_data_path("", "a"), "a");
  EXPECT_EQ(join_data_path("a/b", "c"), "a/b/c");
}

}  // namespace
}  // namespace vigo::vfs
