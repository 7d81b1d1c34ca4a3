// SPDX-License-Identifier: Apache-2.0
// Two machines for real: host a is this one (qemu:///system, the fixture's
// vigo-fs); host b is a second machine in its own network and mount
// namespaces (testing::NamespaceHost: its own sshd, libvirtd and a vigo-fs
// mount only it sees, reaching the image server over its veth), driven by
// the same WorkspaceManager through qemu+ssh:// and the host agent over
// ssh (RemoteHostFiles). Workspaces are placed on both; a checkpoint taken
// on b resumes on a, a workspace booted on a migrates to b and back; at
// the end neither machine holds anything.
#include "workspace_fixture.h"

#include "support/namespace_host.h"
#include "support/text_file.h"
#include "vigo/common/local_sshd.h"
#include "vigo/scheduler/remote_host_files.h"

namespace vigo::scheduler {
namespace {

class SecondHostTest : public WorkspaceTest {
 protected:
  SecondHostTest()
      : ns_(2),
        imaged_sshd_(imaged_ssh_dir_.path(), 0, {ns_.host_side_address()}),
        hv_b_(events_, ns_.libvirt_uri()),
        files_b_(remote_options()) {
    b_name_ = host_name_ + "-b";
    gis::Registry reg{db_};
    const gis::HostSpec host{b_name_, "lan", ns_.libvirt_uri(), 8, 2048, 100, "x86_64", {{"zone", "b"}}};
    reg.register_hosts(std::span{&host, 1});
    start_fs_inside();
  }

  ~SecondHostTest() override {
    for (const auto& d : testing::domains_named(hv_b_, prefix_)) {
      try {
        hv_b_.destroy(d);
      } catch (const Error&) {
      }
    }
    if (fs_b_) fs_b_->terminate(std::chrono::seconds{5});
  }

  RemoteHostOptions remote_options() const {
    RemoteHostOptions o;
    o.ssh = ns_.ssh_argv("");
    o.ssh.pop_back();  // the command: RemoteHostFiles adds its own
    o.agent = VIGO_HOST_AGENT_PATH;
    o.staging_dir = staging_.path();
    return o;
  }

  // vigo-fs of host b, inside its namespaces: ssh from there to the image
  // server's sshd on this side of the veth, as a real second machine would.
  void start_fs_inside() {
    std::string server;
    std::vector<std::string> ssh{"/usr/bin/ssh", "-p", std::to_string(imaged_sshd_.port())};
    for (const auto& o : imaged_sshd_.ssh_options()) {
      ssh.push_back("-o");
      ssh.push_back(o);
    }
    ssh.push_back("root@" + ns_.host_side_address());
    ssh.push_back(testing::imaged_path() + " --stdio --root " + vfs_.store().string() + " --user alice");
    for (const auto& a : ssh) server += shell_quote(a) + " ";
    fs::create_directories(mount_b());
    SpawnOptions so;
    so.argv = {testing::vigo_fs_path(), "--server", server, "--cache", (ns_.dir() / "cache").string(),
               "--mount", mount_b().string(), "--foreground"};
    so.stdout_path = ns_.dir() / "vigo-fs.log";
    so.stderr_path = so.stdout_path;
    fs_b_ = std::make_unique<Subprocess>(ns_.spawn_inside(so));
    for (int i = 0; i < 300; ++i) {
      const RunResult r = ns_.run_inside({"ls", (mount_b() / "images").string()}, std::chrono::seconds{10});
      if (r.exit_code == 0 && r.output.find("tiny-root") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
    FAIL() << "host b's vigo-fs did not mount: " << testing::read_text_file(ns_.dir() / "vigo-fs.log");
  }

  fs::path mount_b() const { return ns_.dir() / "mnt"; }
  fs::path state_b() const { return ns_.dir() / "state"; }
  HostContext host_b() { return HostContext{b_name_, &hv_b_, mount_b() / "images", state_b(), std::nullopt, &files_b_}; }
  // Host b's view of a console (its files are its own; this test shares the disk).
  std::string console_b(std::int64_t vm) { return files_b_.tail(state_b() / ("vm-" + std::to_string(vm)) / "console.log", 1 << 20); }

  testing::NamespaceHost ns_;
  testing::TempDir imaged_ssh_dir_{"vigo-imaged-sshd"};
  LocalSshd imaged_sshd_;
  LibvirtHypervisor hv_b_;
  testing::TempDir staging_{"vigo-staging"};
  RemoteHostFiles files_b_;
  std::unique_ptr<Subprocess> fs_b_;
  std::string b_name_;
};

TEST_F(SecondHostTest, WorkspacesRunOnBothMachinesAndMoveBetweenThem) {
  auto m = std::make_unique<WorkspaceManager>(db_, &publisher_, std::vector<HostContext>{first_host(), host_b()},
                                              options_);
  // One workspace on each machine, both booted from the image server.
  WorkspaceRequest here = boot("here");
  here.placement.labels = {{"zone", "a"}};
  WorkspaceRequest there = boot("there");
  there.placement.labels = {{"zone", "b"}};
  const auto ws_a = m->create(here);
  const auto ws_b = m->create(there);
  auto sa = m->wait(ws_a, Clock::now() + 240s);
  auto sb = m->wait(ws_b, Clock::now() + 240s);
  ASSERT_EQ(sa.state, "running") << sa.error;
  ASSERT_EQ(sb.state, "running") << sb.error;
  EXPECT_EQ(sa.vms[0].host, host_name_);
  EXPECT_EQ(sb.vms[0].host, b_name_);
  // Each domain lives on its own machine's libvirt only.
  EXPECT_TRUE(hv_.find(sa.vms[0].domain).has_value());
  EXPECT_FALSE(hv_b_.find(sa.vms[0].domain).has_value());
  EXPECT_TRUE(hv_b_.find(sb.vms[0].domain).has_value());
  EXPECT_FALSE(hv_.find(sb.vms[0].domain).has_value());
  // b's guest read its disk through b's own vigo-fs, which this side cannot see.
  EXPECT_FALSE(fs::exists(mount_b() / "images" / "tiny-root"));
  EXPECT_NE(console_b(sb.vms[0].id).find("VIGO-READY"), std::string::npos);
  ASSERT_TRUE(files_b_.wait_for_line(state_b() / ("vm-" + std::to_string(sb.vms[0].id)) / "console.log",
                                     "VIGO-ALIVE", Clock::now() + 30s, {}));

  // A checkpoint taken on b (saved there, published through this side's
  // image server) resumes on a: no boot, its clock goes on.
  const CheckpointInfo ck = m->checkpoint(ws_b, "from-b");
  EXPECT_EQ(m->status(ws_b).state, "running");
  WorkspaceRequest resumed;
  resumed.owner = "alice";
  resumed.name = "from-b-on-a";
  resumed.checkpoint = ck.name;
  resumed.placement.labels = {{"zone", "a"}};
  const auto ws_r = m->create(resumed);
  const auto sr = m->wait(ws_r, Clock::now() + 240s);
  ASSERT_EQ(sr.state, "running") << sr.error;
  EXPECT_EQ(sr.vms[0].host, host_name_);
  const std::string resumed_console = text_of(state_.path() / ("vm-" + std::to_string(sr.vms[0].id)) / "console.log");
  EXPECT_EQ(resumed_console.find("VIGO-READY"), std::string::npos) << resumed_console;
  EXPECT_NE(resumed_console.find("VIGO-ALIVE"), std::string::npos) << resumed_console;

  // a's workspace migrates to b (saved on a, resumed on b through b's
  // vigo-fs and the agent's clone stream) and back again.
  m->migrate(ws_a);
  sa = m->wait(ws_a, Clock::now() + 240s);
  ASSERT_EQ(sa.state, "running") << sa.error;
  EXPECT_EQ(sa.vms.back().host, b_name_);
  const std::string moved = console_b(sa.vms.back().id);
  EXPECT_EQ(moved.find("VIGO-READY"), std::string::npos) << moved;
  EXPECT_TRUE(hv_b_.find(sa.vms.back().domain).has_value());
  m->migrate(ws_a);
  sa = m->wait(ws_a, Clock::now() + 240s);
  ASSERT_EQ(sa.state, "running") << sa.error;
  EXPECT_EQ(sa.vms.back().host, host_name_);

  // Reconciliation finds nothing to mend on either machine.
  const ReconcileReport report = m->reconcile();
  EXPECT_TRUE(report.unreconciled_hosts.empty());  // both machines were asked
  EXPECT_TRUE(report.destroyed_domains.empty());
  EXPECT_TRUE(report.vanished_vms.empty());
  EXPECT_TRUE(report.removed_dirs.empty());

  for (const auto ws : {ws_a, ws_b, ws_r}) m->remove(ws);
  EXPECT_TRUE(testing::domains_named(hv_b_, prefix_).empty());
  EXPECT_TRUE(files_b_.list_dir(state_b()).empty());
  EXPECT_TRUE(fs::is_empty(staging_.path()));  // fetched checkpoint files are gone
  expect_nothing_left();
  EXPECT_EQ(count("SELECT coalesce(sum(alloc_memory_mb), 0) FROM gis.hosts WHERE name = '" + b_name_ + "'"), 0);
}

// A host whose machine cannot be reached holds up no other: reconciliation
// skips it (and says so) and does the rest; its console reads as empty.
TEST_F(WorkspaceTest, AHostThatCannotBeReachedHoldsUpNoOtherInReconciliation) {
  testing::TempDir staging{"vigo-staging"};
  RemoteHostOptions o;
  o.ssh = {"/usr/bin/ssh", "-p", "1", "root@127.0.0.1"};  // nothing listens on port 1
  o.agent = VIGO_HOST_AGENT_PATH;
  o.staging_dir = staging.path();
  RemoteHostFiles dead{o};
  testing::TempDir c_state{"vigo-ws-state-c"};
  HostContext c = second_host(c_state);
  c.files = &dead;
  // Its state directory cannot be made: a warning, not a failure to start.
  auto m = std::make_unique<WorkspaceManager>(db_, &publisher_, std::vector<HostContext>{first_host(), c}, options_);
  fs::create_directories(state_.path() / "vm-999999");  // a stray of host a
  const ReconcileReport report = m->reconcile();
  EXPECT_EQ(report.unreconciled_hosts, std::vector<std::string>{c.name});
  EXPECT_EQ(report.removed_dirs, std::vector<fs::path>{state_.path() / "vm-999999"});
  EXPECT_TRUE(state_dir_empty());
}

}  // namespace
}  // namespace vigo::scheduler
