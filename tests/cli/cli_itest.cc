// SPDX-License-Identifier: Apache-2.0
// The vigo binary end to end: `vigo up --gis-only --once` on a fresh state
// directory (a real private PostgreSQL), a second run that reuses it; the
// whole local stack (`vigo up --once`: sshd, vigo-imaged, vigo-fs, vigod, a
// real guest) twice, leaving no process, mount, domain or claim behind; and
// the query commands with good and bad input.
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "support/pg_fixture.h"
#include "vigo/scheduler/vm_spec.h"
#include "vigo/common/subprocess.h"

namespace vigo {
namespace {

using namespace std::chrono_literals;

RunResult vigo(std::vector<std::string> args) {
  args.insert(args.begin(), testing::vigo_cli_path());
  return run_command(args, 180s);
}

TEST(Cli, UpOnceAnswersTheExampleQueriesAndReusesItsState) {
  testing::TempDir state{"vigo-up"};
  auto first = vigo({"up", "--gis-only", "--once", "--state-dir", state.path().string()});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("loaded the demo grid"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("Sets of four different VMs on the same network"), std::string::npos);
  EXPECT_NE(first.output.find("net-0"), std::string::npos);
  EXPECT_EQ(first.output.find("(none)"), std::string::npos) << "every example query has answers:\n" << first.output;

  auto second = vigo({"up", "--gis-only", "--once", "--state-dir", state.path().string()});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("schema up to date"), std::string::npos);
  EXPECT_NE(second.output.find("reusing the grid"), std::string::npos);
}

TEST(Cli, UpStaysUpUntilCtrlCAndLeavesNothingRunning) {
  testing::TempDir state{"vigo-up"};
  const auto log = state.path() / "up.log";
  SpawnOptions o;
  o.argv = {testing::vigo_cli_path(), "up", "--gis-only", "--state-dir", state.path().string()};
  o.stdout_path = log;
  o.stderr_path = log;
  o.parent_death_signal = SIGKILL;
  Subprocess up = Subprocess::spawn(o);
  auto output = [&] {
    std::ifstream in{log};
    return std::string{std::istreambuf_iterator<char>{in}, {}};
  };
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (output().find("Press Ctrl-C") == std::string::npos) {
    ASSERT_TRUE(up.running()) << output();
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << output();
    std::this_thread::sleep_for(100ms);
  }
  std::ifstream pid_file{state.path() / "pg" / "postmaster.pid"};
  pid_t server = 0;
  pid_file >> server;
  ASSERT_GT(server, 0);
  up.signal(SIGINT);
  auto status = up.wait_for(60s);
  ASSERT_TRUE(status.has_value()) << output();
  EXPECT_EQ(*status, 0) << output();
  EXPECT_NE(output().find("stopped"), std::string::npos);
  EXPECT_NE(::kill(server, 0), 0) << "postgres still runs after Ctrl-C";
  EXPECT_FALSE(std::filesystem::exists(state.path() / "pg" / "postmaster.pid")) << "the server did not shut down cleanly";
}

// Processes whose command line mentions the state directory (sshd, vigo-fs,
// vigod, postgres, qemu all name a path in it).
std::vector<std::string> processes_using(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = e.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in{e.path() / "cmdline"};
    std::string cmd{std::istreambuf_iterator<char>{in}, {}};
    for (auto& c : cmd) c = c == '\0' ? ' ' : c;
    if (cmd.find(dir.string()) != std::string::npos) out.push_back(pid + ": " + cmd);
  }
  return out;
}

bool mounted(const std::filesystem::path& dir) {
  std::ifstream in{"/proc/self/mounts"};
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + dir.string() + " ") != std::string::npos) return true;
  }
  return false;
}

TEST(Cli, UpRunsTheWholeStackWithARealWorkspaceAndLeavesNothingBehind) {
  testing::TempDir state{"vigo-up-full"};
  const std::string prefix = "vigo-u" + scheduler::random_uuid().substr(0, 6) + "-";
  const std::vector<std::string> args{"up", "--once", "--state-dir", state.path().string(), "--api-port", "0",
                                      "--domain-prefix", prefix};
  auto up = [&] {
    std::vector<std::string> argv = args;
    argv.insert(argv.begin(), testing::vigo_cli_path());
    return run_command(argv, 900s);
  };
  auto first = up();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  for (const char* want : {"published", "vigod ... https://127.0.0.1:", "waiting for workspace", " running (",
                           "demo token: vigo_", "vigo ws list", "stopped"}) {
    EXPECT_NE(first.output.find(want), std::string::npos) << want << " missing from:\n" << first.output;
  }
  EXPECT_NE(first.output.find("deleting 1 workspace"), std::string::npos) << first.output;
  EXPECT_TRUE(processes_using(state.path()).empty()) << processes_using(state.path()).front();
  EXPECT_FALSE(mounted(state.path() / "mnt"));
  const auto domains = run_command({"virsh", "-c", "qemu:///system", "list", "--all", "--name"}, 30s);
  EXPECT_EQ(domains.output.find(prefix), std::string::npos) << domains.output;

  // A second run reuses keys, tokens, certificate, store and cache.
  const std::string token = [&] {
    std::ifstream in{state.path() / "tokens" / "demo"};
    std::string t;
    std::getline(in, t);
    return t;
  }();
  auto second = up();
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("already there"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("demo token: " + token), std::string::npos) << second.output;
  EXPECT_NE(second.output.find(" running ("), std::string::npos) << second.output;
  EXPECT_TRUE(processes_using(state.path()).empty());
  EXPECT_FALSE(mounted(state.path() / "mnt"));
}

TEST(Cli, QueriesWithGoodAndBadInput) {
  testing::ScopedDatabase db;
  const std::string url = db.connection_string();
  auto load = vigo({"--db", url, "--json", "gis", "load-synthetic", "--hosts", "12", "--networks", "3", "--vms", "60"});
  ASSERT_EQ(load.exit_code, 0) << load.output;

  auto fit = vigo({"--db", url, "gis", "hosts-that-fit", "--memory-mb", "1024", "--limit", "2"});
  EXPECT_EQ(fit.exit_code, 0) << fit.output;
  EXPECT_NE(fit.output.find("free_memory_mb"), std::string::npos);

  auto bad = vigo({"--db", url, "gis", "vm-sets", "--n", "0", "--min-memory-mb", "1", "--max-memory-mb", "2"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("invalid n"), std::string::npos) << bad.output;

  auto unknown = vigo({"--db", url, "gis", "hosts-for-profile", "gigantic"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_NE(unknown.output.find("no profile named 'gigantic'"), std::string::npos) << unknown.output;

  auto not_a_number = vigo({"--db", url, "gis", "hosts-that-fit", "--memory-mb", "lots"});
  EXPECT_EQ(not_a_number.exit_code, 2);

  auto label = vigo({"--db", url, "gis", "hosts-that-fit", "--memory-mb", "1", "--label", "novalue"});
  EXPECT_EQ(label.exit_code, 2);
  EXPECT_NE(label.output.find("invalid label"), std::string::npos);

  auto no_db = vigo({"--db", "host=/nonexistent port=1 connect_timeout=1", "gis", "capacity"});
  EXPECT_EQ(no_db.exit_code, 5) << no_db.output;
}

}  // namespace
}  // namespace vigo
