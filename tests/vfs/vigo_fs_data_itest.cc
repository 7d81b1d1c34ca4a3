// SPDX-License-Identifier: Apache-2.0
// vigo-fs end to end, the read-write user-data tree (/data): the real binary
// on a real FUSE mount, through a real sshd to the real vigo-imaged serving
// alice's tree. What the mount shows is compared with the server's disk.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>

#include "support/text_file.h"
#include "support/vfs_fixture.h"
#include "vfs/vfs_test_util.h"

namespace vigo::testing {
namespace {

namespace fs = std::filesystem;

class VigoFsDataTest : public ::testing::Test {
 protected:
  VigoFsDataTest() {
    vfs_.publish("disk", random_bytes_for_test(100000, 3));
    vfs_.start_fs();
  }
  fs::path data() const { return vfs_.mount() / "data"; }

  static std::vector<std::uint8_t> read_all(const fs::path& p) {
    std::ifstream in{p, std::ios::binary};
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static void write_at(int fd, const std::vector<std::uint8_t>& bytes, off_t off) {
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), off), static_cast<ssize_t>(bytes.size())) << std::strerror(errno);
  }

  VfsFixture vfs_;
};

TEST_F(VigoFsDataTest, WrittenBytesAreOnTheServerWhenCloseReturns) {
  ASSERT_EQ(::mkdir((data() / "results").c_str(), 0750), 0) << std::strerror(errno);
  const fs::path file = data() / "results" / "run.bin";
  const int fd = ::open(file.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0640);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  // Larger than one FUSE write, out of order, with a hole.
  std::vector<std::uint8_t> want(3 * (1 << 20) + 4321, 0);
  const auto a = random_bytes_for_test(2 * (1 << 20) + 17, 11);
  const auto b = random_bytes_for_test(500000, 12);
  write_at(fd, b, static_cast<off_t>(want.size() - b.size()));
  write_at(fd, a, 0);
  std::copy(a.begin(), a.end(), want.begin());
  std::copy(b.begin(), b.end(), want.end() - static_cast<std::ptrdiff_t>(b.size()));
  ASSERT_EQ(::close(fd), 0) << std::strerror(errno);

  EXPECT_EQ(read_all(vfs_.server_data() / "results" / "run.bin"), want);  // the server's own file
  EXPECT_EQ(read_all(file), want);                                        // and through the mount
  struct stat st{};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(static_cast<std::size_t>(st.st_size), want.size());
  struct stat server{};
  ASSERT_EQ(::stat((vfs_.server_data() / "results").c_str(), &server), 0);
  EXPECT_EQ(server.st_mode & 0777, 0750u);
}

TEST_F(VigoFsDataTest, FsyncAppendTruncateAndAttributes) {
  const fs::path file = data() / "log.txt";
  const int fd = ::open(file.c_str(), O_CREAT | O_RDWR | O_APPEND, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "hello ", 6), 6);
  ASSERT_EQ(::write(fd, "world\n", 6), 6);
  ASSERT_EQ(::fsync(fd), 0) << std::strerror(errno);
  EXPECT_EQ(read_text_file(vfs_.server_data() / "log.txt"), "hello world\n");
  ASSERT_EQ(::ftruncate(fd, 5), 0) << std::strerror(errno);
  ASSERT_EQ(::fsync(fd), 0);
  EXPECT_EQ(read_text_file(vfs_.server_data() / "log.txt"), "hello");
  char buf[16] = {};
  ASSERT_EQ(::pread(fd, buf, sizeof buf, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  ASSERT_EQ(::close(fd), 0);

  ASSERT_EQ(::chmod(file.c_str(), 0604), 0) << std::strerror(errno);
  const timespec times[2] = {{1000, 0}, {1700000000, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), times, 0), 0) << std::strerror(errno);
  struct stat server{};
  ASSERT_EQ(::stat((vfs_.server_data() / "log.txt").c_str(), &server), 0);
  EXPECT_EQ(server.st_mode & 0777, 0604u);
  EXPECT_EQ(server.st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(server.st_mtim.tv_nsec, 123456789);
  // O_TRUNC on an existing file empties it.
  const int again = ::open(file.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(again, 0) << std::strerror(errno);
  ASSERT_EQ(::close(again), 0);
  EXPECT_EQ(fs::file_size(vfs_.server_data() / "log.txt"), 0u);
}

TEST_F(VigoFsDataTest, NamespaceOperationsMatchTheServer) {
  fs::create_directories(data() / "a" / "b");
  { std::ofstream{data() / "a" / "b" / "f1"} << "one"; }
  { std::ofstream{data() / "a" / "f2"} << "two"; }
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(data() / "a")) names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"b", "f2"}));

  // A directory with an open file inside is renamed: the open file follows.
  const int fd = ::open((data() / "a" / "b" / "f1").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  fs::rename(data() / "a", data() / "z");
  ASSERT_EQ(::write(fd, "+", 1), 1) << std::strerror(errno);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(read_text_file(vfs_.server_data() / "z" / "b" / "f1"), "one+");
  EXPECT_FALSE(fs::exists(vfs_.server_data() / "a"));

  // The server's errno reaches the caller.
  EXPECT_EQ(::rmdir((data() / "z").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  EXPECT_EQ(::open((data() / "z" / "f2").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(::unlink((data() / "missing").c_str()), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(::renameat2(AT_FDCWD, (data() / "z" / "f2").c_str(), AT_FDCWD, (data() / "z" / "b" / "f1").c_str(),
                        RENAME_NOREPLACE),
            -1);
  EXPECT_EQ(errno, EEXIST);
  const std::string long_name(256, 'n');
  EXPECT_EQ(::mkdir((data() / long_name).c_str(), 0700), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);

  fs::remove(data() / "z" / "f2");
  fs::remove(data() / "z" / "b" / "f1");
  fs::remove(data() / "z" / "b");
  fs::remove(data() / "z");
  EXPECT_TRUE(fs::is_empty(vfs_.server_data()));
  EXPECT_TRUE(fs::is_empty(data()));
}

TEST_F(VigoFsDataTest, NothingOutsideTheUsersTreeIsReachable) {
  // Planted on the server: a symlink out of alice's tree, and bob's tree.
  fs::create_directories(vfs_.server_data());
  fs::create_directory_symlink("/etc", vfs_.server_data() / "escape");
  fs::create_directories(vfs_.store() / "data" / "bob");
  { std::ofstream{vfs_.store() / "data" / "bob" / "secret"} << "bob's"; }

  EXPECT_EQ(::open((data() / "escape" / "passwd").c_str(), O_RDONLY), -1);
  EXPECT_NE(errno, 0);
  EXPECT_EQ(::open((data() / "escape").c_str(), O_RDONLY), -1);
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(data())) names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"escape"}));  // listed, never followed
  EXPECT_EQ(::access((data() / ".." / "data" / ".." / "images" / "disk").c_str(), R_OK), 0);  // the kernel's ..
  EXPECT_FALSE(fs::exists(data() / "bob"));
  EXPECT_EQ(::mkdir((data() / "escape" / "x").c_str(), 0700), -1);
  EXPECT_FALSE(fs::exists("/etc/x"));
}

TEST_F(VigoFsDataTest, OnlyDataIsWritable) {
  EXPECT_EQ(::open((vfs_.mount() / "images" / "disk").c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::mkdir((vfs_.mount() / "images" / "new").c_str(), 0700), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::open((vfs_.mount() / "new-file").c_str(), O_CREAT | O_WRONLY, 0600), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::truncate((vfs_.mount() / "images" / "disk").c_str(), 0), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::rename((data()).c_str(), (vfs_.mount() / "elsewhere").c_str()), -1);
  { std::ofstream{data() / "f"} << "x"; }
  EXPECT_EQ(::rename((data() / "f").c_str(), (vfs_.mount() / "images" / "f").c_str()), -1);
  EXPECT_EQ(errno, EXDEV);
}

}  // namespace
}  // namespace vigo::testing
