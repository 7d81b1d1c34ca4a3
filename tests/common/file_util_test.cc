// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/file_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace vigo {
namespace {

struct Pipe {
  Pipe() {
    if (::pipe2(fd, O_CLOEXEC) != 0) std::abort();
  }
  ~Pipe() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
  int fd[2];
};

TEST(WidenPipe, APipeHoldsAWholeChunkWithoutAReader) {
  Pipe p;
  ASSERT_LT(::fcntl(p.fd[0], F_GETPIPE_SZ), kWidePipeBytes);  // the kernel's default
  ASSERT_TRUE(widen_pipe(p.fd[0])) << "pipe-max-size below 1 MiB on this machine?";
  EXPECT_GE(::fcntl(p.fd[1], F_GETPIPE_SZ), kWidePipeBytes) << "one pipe: both ends see it";
  EXPECT_TRUE(widen_pipe(p.fd[1])) << "already wide";
  // What it is for: a 1 MiB frame goes in with one write, nobody reading yet.
  ASSERT_EQ(::fcntl(p.fd[1], F_SETFL, O_NONBLOCK), 0);
  std::vector<char> frame(kWidePipeBytes, 'x');
  EXPECT_EQ(::write(p.fd[1], frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  EXPECT_EQ(::read(p.fd[0], frame.data(), 4), 4);
}

TEST(WidenPipe, OtherDescriptorsAreLeftAlone) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_FALSE(widen_pipe(sv[0]));
  ::close(sv[0]);
  ::close(sv[1]);
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(widen_pipe(::fileno(f)));
  std::fclose(f);
  EXPECT_FALSE(widen_pipe(-1));
}

}  // namespace
}  // namespace vigo
