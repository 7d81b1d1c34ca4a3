// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/user_data.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "store_test_util.h"

namespace vigo::imageserver {
namespace {

using testing::random_data;
using testing::TempDir;

class UserDataTest : public ::testing::Test {
 protected:
  UserDataTest() : data_(dir_.path() / "data", "alice") {}

  // Runs f; expects an Error with this code (and, if given, this errno).
  static void expect_error(const std::function<void()>& f, ErrorCode code, int sys_errno = 0) {
    try {
      f();
      FAIL() << "expected an error";
    } catch (const FsError& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      if (sys_errno != 0) {
        EXPECT_EQ(e.sys_errno(), sys_errno) << e.what();
      }
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_EQ(sys_errno, 0) << "no errno for: " << e.what();
    }
  }

  TempDir dir_;
  UserData data_;
};

TEST_F(UserDataTest, FileRoundTripWithFsync) {
  data_.mkdir("docs", 0755);
  data_.create("docs/a.bin", 0600, wire::kCreateExclusive);
  const auto payload = random_data(100000, 1);
  EXPECT_EQ(data_.write("docs/a.bin", 0, payload), payload.size());
  EXPECT_EQ(data_.write("docs/a.bin", payload.size(), payload), payload.size());
  data_.fsync("docs/a.bin");
  const wire::Attr a = data_.stat("docs/a.bin");
  EXPECT_EQ(a.kind, wire::FileKind::kFile);
  EXPECT_EQ(a.size, 2 * payload.size());
  EXPECT_EQ(a.mode, 0600u);
  EXPECT_EQ(data_.read("docs/a.bin", payload.size(), 200000), payload);  // short at the end
  EXPECT_TRUE(data_.read("docs/a.bin", 10'000'000, 10).empty());
  // On disk, in alice's tree.
  EXPECT_EQ(testing::read_file(dir_.path() / "data" / "alice" / "docs" / "a.bin").size(), 2 * payload.size());
  data_.truncate("docs/a.bin", 10);
  EXPECT_EQ(data_.stat("docs/a.bin").size, 10u);
  expect_error([&] { data_.create("docs/a.bin", 0600, wire::kCreateExclusive); }, ErrorCode::kAlreadyExists, EEXIST);
  data_.create("docs/a.bin", 0600, wire::kCreateTruncate);
  EXPECT_EQ(data_.stat("docs/a.bin").size, 0u);
}

TEST_F(UserDataTest, DirectoriesRenameUnlinkRmdir) {
  data_.mkdir("d", 0700);
  data_.mkdir("d/e", 0700);
  for (int i = 0; i < 5; ++i) data_.create("d/f" + std::to_string(i), 0644, 0);
  const wire::DirPage page = data_.read_dir("d", 0);
  ASSERT_EQ(page.entries.size(), 6u);
  EXPECT_EQ(page.entries[0].name, "e");
  EXPECT_EQ(page.entries[0].kind, wire::FileKind::kDirectory);
  EXPECT_EQ(page.entries[1].name, "f0");
  EXPECT_FALSE(page.more);
  EXPECT_EQ(data_.read_dir("d", 4).entries.size(), 2u);
  data_.rename("d/f0", "d/e/moved", 0);
  expect_error([&] { (void)data_.stat("d/f0"); }, ErrorCode::kNotFound, ENOENT);
  EXPECT_EQ(data_.stat("d/e/moved").kind, wire::FileKind::kFile);
  expect_error([&] { data_.rename("d/f1", "d/f2", wire::kRenameNoReplace); }, ErrorCode::kAlreadyExists, EEXIST);
  expect_error([&] { data_.rmdir("d/e"); }, ErrorCode::kConflict, ENOTEMPTY);
  data_.unlink("d/e/moved");
  data_.rmdir("d/e");
  expect_error([&] { data_.unlink("d"); }, ErrorCode::kInvalidArgument, EISDIR);
  EXPECT_EQ(data_.read_dir("", 0).entries.size(), 1u);
}

TEST_F(UserDataTest, SetAttrChangesModeAndTimes) {
  data_.create("f", 0644, 0);
  wire::SetAttr r;
  r.path = "f";
  r.which = wire::kSetMode | wire::kSetMtime;
  r.mode = 04751;  // setuid is masked away
  r.mtime_ns = 1'700'000'000'123'456'789;
  const wire::Attr a = data_.set_attr(r);
  EXPECT_EQ(a.mode, 0751u);
  EXPECT_EQ(a.mtime_ns, r.mtime_ns);
}

TEST_F(UserDataTest, PathEscapesAreRefused) {
  // Something outside alice's tree to aim at.
  testing::write_file(dir_.path() / "secret", random_data(10, 2));
  UserData bob{dir_.path() / "data", "bob"};
  bob.create("bobs", 0600, 0);
  for (const char* bad : {"..", "../secret", "a/../../secret", "/etc/passwd", "./x", "a//b", "x/", "../bob/bobs"}) {
    expect_error([&] { (void)data_.stat(bad); }, ErrorCode::kInvalidArgument);
    expect_error([&] { (void)data_.read(bad, 0, 10); }, ErrorCode::kInvalidArgument);
    expect_error([&] { data_.create(bad, 0644, 0); }, ErrorCode::kInvalidArgument);
  }
  expect_error([&] { (void)data_.stat(std::string_view{"a\0b", 3}); }, ErrorCode::kInvalidArgument);
  expect_error([&] { (void)data_.stat(std::string(256, 'n')); }, ErrorCode::kInvalidArgument);
  expect_error([&] { (void)data_.stat(std::string(4097, 'n')); }, ErrorCode::kInvalidArgument);
  EXPECT_NO_THROW(data_.create(std::string(255, 'n'), 0644, 0));

  // Symlinks planted in the tree (the protocol cannot make them) are never followed.
  const auto tree = dir_.path() / "data" / "alice";
  std::filesystem::create_symlink(dir_.path() / "secret", tree / "abs-link");
  std::filesystem::create_symlink("../../secret", tree / "rel-link");
  std::filesystem::create_directory_symlink(dir_.path(), tree / "dir-link");
  std::filesystem::create_symlink("inside", tree / "inner-link");
  data_.create("inside", 0644, 0);
  for (const char* link : {"abs-link", "rel-link", "inner-link"}) {
    expect_error([&] { (void)data_.read(link, 0, 10); }, ErrorCode::kPermissionDenied, ELOOP);
    expect_error([&] { (void)data_.write(link, 0, random_data(4, 1)); }, ErrorCode::kPermissionDenied, ELOOP);
    expect_error([&] { data_.truncate(link, 0); }, ErrorCode::kPermissionDenied, ELOOP);
  }
  expect_error([&] { (void)data_.read("dir-link/secret", 0, 10); }, ErrorCode::kPermissionDenied, ELOOP);
  expect_error([&] { data_.create("dir-link/new", 0644, 0); }, ErrorCode::kPermissionDenied, ELOOP);
  expect_error([&] { (void)data_.read_dir("dir-link", 0); }, ErrorCode::kPermissionDenied, ELOOP);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "new"));
  // stat shows the link itself; chmod through it is refused.
  EXPECT_EQ(data_.stat("abs-link").kind, wire::FileKind::kSymlink);
  wire::SetAttr chmod{"abs-link", wire::kSetMode, 0777, 0, 0};
  EXPECT_THROW(data_.set_attr(chmod), Error);
  EXPECT_NE(std::filesystem::status(dir_.path() / "secret").permissions(), std::filesystem::perms::all);
  // rename cannot move a file out of the tree either.
  expect_error([&] { data_.rename("inside", "dir-link/stolen", 0); }, ErrorCode::kPermissionDenied, ELOOP);
  EXPECT_EQ(testing::read_file(dir_.path() / "secret").size(), 10u);
}

TEST_F(UserDataTest, UserNamesFollowTheNameRule) {
  EXPECT_THROW(UserData(dir_.path() / "data", "../root"), Error);
  EXPECT_THROW(UserData(dir_.path() / "data", ""), Error);
  EXPECT_THROW(UserData(dir_.path() / "data", "a/b"), Error);
}

TEST(UserPathCheck, SplitsParentAndLeaf) {
  EXPECT_EQ(check_user_path("a/b/c").parent, "a/b");
  EXPECT_EQ(check_user_path("a/b/c").leaf, "c");
  EXPECT_EQ(check_user_path("c").parent, "");
  EXPECT_EQ(check_user_path("").leaf, "");
}

}  // namespace
}  // namespace vigo::imageserver
