// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/subprocess.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "vigo/common/error.h"
#include "vigo/common/shutdown.h"
#include "vigo/common/system.h"

namespace vigo {
namespace {

using namespace std::chrono_literals;

SpawnOptions argv_only(std::vector<std::string> argv) {
  SpawnOptions o;
  o.argv = std::move(argv);
  return o;
}

TEST(Subprocess, ExitCodesAndOutput) {
  auto r = run_command({"/bin/sh", "-c", "echo hello; echo err >&2; exit 3"}, 10s);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("hello"), std::string::npos);
  EXPECT_NE(r.output.find("err"), std::string::npos);
}

TEST(Subprocess, KilledBySignalIs128PlusSignal) {
  auto p = Subprocess::spawn(argv_only({"/bin/sleep", "30"}));
  EXPECT_TRUE(p.running());
  EXPECT_EQ(p.terminate(5s), 128 + SIGTERM);
  EXPECT_FALSE(p.running());
}

TEST(Subprocess, ExecFailureNamesTheProgram) {
  try {
    (void)Subprocess::spawn(argv_only({"/nonexistent/program"}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string{e.what()}.find("/nonexistent/program"), std::string::npos);
  }
}

TEST(Subprocess, WaitForTimesOut) {
  auto p = Subprocess::spawn(argv_only({"/bin/sleep", "30"}));
  EXPECT_FALSE(p.wait_for(50ms).has_value());
  p.terminate(5s, SIGKILL);
}

TEST(Subprocess, RunCommandTimeout) {
  EXPECT_THROW((void)run_command({"/bin/sleep", "30"}, 100ms), Error);
}

TEST(Subprocess, DropsPrivilegesWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to change user";
  UserIds nobody = lookup_user("nobody");
  auto r = run_command({"/usr/bin/id", "-u"}, 10s, nobody.uid, nobody.gid);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, std::to_string(nobody.uid) + "\n");
}

TEST(Subprocess, ExtraEnvironment) {
  SpawnOptions o = argv_only({"/bin/sh", "-c", "test \"$VIGO_X\" = 42"});
  o.extra_env = {{"VIGO_X", "42"}};
  EXPECT_EQ(Subprocess::spawn(o).wait(), 0);
}

TEST(System, UnknownUserIsNotFound) {
  try {
    (void)lookup_user("no-such-user-vigo");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  EXPECT_GT(free_tcp_port(), 0);
}

TEST(Subprocess, StdinAndStdoutCanBePipes) {
  int in[2], out[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  SpawnOptions o = argv_only({"/bin/cat"});
  o.stdin_fd = in[0];
  o.stdout_fd = out[1];
  auto p = Subprocess::spawn(o);
  ::close(in[0]);
  ::close(out[1]);
  ASSERT_EQ(::write(in[1], "ping", 4), 4);
  ::close(in[1]);  // cat sees end of input and exits
  char buf[16] = {};
  std::size_t got = 0;
  ssize_t n;
  while ((n = ::read(out[0], buf + got, sizeof buf - got)) > 0) got += static_cast<std::size_t>(n);
  ::close(out[0]);
  EXPECT_EQ(std::string(buf, got), "ping");
  EXPECT_EQ(p.wait(), 0);
}

TEST(ShutdownSignal, RequestWakesWaiters) {
  ShutdownSignal s;
  EXPECT_FALSE(s.requested());
  std::thread t{[&] { s.request(); }};
  s.wait();
  t.join();
  EXPECT_TRUE(s.requested());
  EXPECT_EQ(s.signal_number(), 0);
}

TEST(ShutdownSignal, SigtermRequestsStop) {
  ShutdownSignal s;
  ::kill(::getpid(), SIGTERM);
  s.wait();
  EXPECT_EQ(s.signal_number(), SIGTERM);
}

}  // namespace
}  // namespace vigo
