// SPDX-License-Identifier: Apache-2.0
// WorkspaceManager moving workspaces between two hosts on real parts (the
// fixture of workspace_fixture.h, a second GIS host on the same libvirt):
// an offline migration, and the failover of a host that falls silent.
#include "workspace_fixture.h"

namespace vigo::scheduler {
namespace {

// Offline migration between two hosts: the guest goes on where it was (its
// clock continues, it does not boot again) on the other host; the old host
// keeps nothing; a migration with no room elsewhere changes nothing.
TEST_F(WorkspaceTest, AWorkspaceMigratesToAnotherHostAndGoesOnWhereItWas) {
  testing::TempDir b_state{"vigo-ws-state-b"};
  const HostContext b = second_host(b_state);
  auto m = std::make_unique<WorkspaceManager>(db_, &publisher_, std::vector<HostContext>{first_host(), b}, options_);
  WorkspaceRequest r = boot("nomad");
  r.placement.labels = {{"zone", "a"}};
  const auto ws = m->create(r);
  ASSERT_EQ(m->wait(ws, Clock::now() + 200s).state, "running");
  const auto before = m->status(ws).vms[0];
  EXPECT_EQ(before.host, host_name_);
  const fs::path console = state_.path() / ("vm-" + std::to_string(before.id)) / "console.log";
  ConsoleWatch watch{console};
  ASSERT_TRUE(watch.wait_for("VIGO-ALIVE", Clock::now() + 30s).has_value());

  // No host with zone c: a clear error, and the VM runs on as it was.
  PlacementRequest nowhere;
  nowhere.labels = {{"zone", "c"}};
  EXPECT_THROW(m->migrate(ws, nowhere), Error);
  auto s = m->status(ws);
  ASSERT_EQ(s.vms.size(), 1u);
  EXPECT_EQ(s.vms[0].name, "nomad");
  EXPECT_EQ(s.vms[0].state, "running");
  EXPECT_EQ(hv_.find(before.domain)->state, DomainState::kRunning);

  const double uptime = last_heartbeat(console);
  m->migrate(ws);
  s = m->wait(ws, Clock::now() + 200s);
  ASSERT_EQ(s.state, "running") << s.error;
  ASSERT_EQ(s.vms.size(), 2u);  // the old VM's row is kept, deleted
  EXPECT_EQ(s.vms[0].state, "deleted");
  const auto after = s.vms[1];
  EXPECT_EQ(after.name, "nomad");
  EXPECT_EQ(after.host, b.name);
  EXPECT_FALSE(hv_.find(before.domain).has_value());
  EXPECT_TRUE(state_dir_empty());
  EXPECT_EQ(allocated_memory(), 0);  // host a holds nothing
  const std::string text = text_of(b_state.path() / ("vm-" + std::to_string(after.id)) / "console.log");
  EXPECT_EQ(text.find("VIGO-READY"), std::string::npos) << text;
  EXPECT_GE(last_heartbeat(b_state.path() / ("vm-" + std::to_string(after.id)) / "console.log"), uptime);
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms WHERE id = " + std::to_string(before.id) +
                  " AND state = 'deleted' AND error LIKE 'moved to host%'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM gis.checkpoints WHERE name = 'ws" + std::to_string(ws) + "-move1'"), 1);

  // Only a workspace that runs is moved.
  m->pause(ws);
  m->migrate(ws);  // a paused one is (it runs after)
  s = m->wait(ws, Clock::now() + 200s);
  ASSERT_EQ(s.state, "running") << s.error;
  EXPECT_EQ(s.vms.back().host, host_name_);
  m->remove(ws);
  EXPECT_THROW(m->migrate(ws), Error);
  expect_nothing_left();
  EXPECT_TRUE(fs::is_empty(b_state.path()));
}

// Failover: host a's vigod and guests are gone and its heartbeats stop; a
// manager of host b marks it down and resumes a's workspace that has a
// checkpoint on b from that checkpoint; one without a checkpoint is failed.
TEST_F(WorkspaceTest, AHostThatFallsSilentIsMarkedDownAndItsCheckpointedWorkspacesResumeElsewhere) {
  testing::TempDir b_state{"vigo-ws-state-b"};
  const HostContext b = second_host(b_state);
  std::int64_t guarded = 0, bare = 0;
  double uptime = 0;
  std::vector<std::string> a_domains;
  {
    auto m = std::make_unique<WorkspaceManager>(db_, &publisher_, std::vector<HostContext>{first_host(), b}, options_);
    WorkspaceRequest r = boot("guarded");
    r.placement.labels = {{"zone", "a"}};
    guarded = m->create(r);
    r.name = "bare";
    bare = m->create(r);
    ASSERT_EQ(m->wait(guarded, Clock::now() + 200s).state, "running");
    ASSERT_EQ(m->wait(bare, Clock::now() + 200s).state, "running");
    const auto vm = m->status(guarded).vms[0];
    ConsoleWatch watch{state_.path() / ("vm-" + std::to_string(vm.id)) / "console.log"};
    ASSERT_TRUE(watch.wait_for("VIGO-ALIVE", Clock::now() + 30s).has_value());
    // The guest's clock before the checkpoint: the resumed guest goes on
    // from the checkpoint, not from what it printed after it.
    uptime = last_heartbeat(state_.path() / ("vm-" + std::to_string(vm.id)) / "console.log");
    m->checkpoint(guarded, "before-the-fall");
    a_domains = {vm.domain, m->status(bare).vms[0].domain};
  }
  // Host a is gone: its guests with it.
  for (const auto& d : a_domains) hv_.destroy(d);
  fs::remove_all(state_.path());
  fs::create_directories(state_.path());

  options_.host_silence = 3s;
  options_.heartbeat_interval = 1s;
  auto m = std::make_unique<WorkspaceManager>(db_, &publisher_, std::vector<HostContext>{b}, options_);
  const auto deadline = Clock::now() + 60s;
  while (m->status(guarded).vms.back().host != b.name && Clock::now() < deadline) std::this_thread::sleep_for(500ms);
  EXPECT_EQ(count("SELECT count(*) FROM gis.hosts WHERE name = '" + host_name_ + "' AND state = 'down'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM gis.hosts WHERE name = '" + b.name + "' AND state = 'up'"), 1);

  auto s = m->wait(guarded, Clock::now() + 200s);
  ASSERT_EQ(s.state, "running") << s.error;
  const auto moved = s.vms.back();
  EXPECT_EQ(moved.name, "guarded");
  EXPECT_EQ(moved.host, b.name);
  const fs::path console = b_state.path() / ("vm-" + std::to_string(moved.id)) / "console.log";
  EXPECT_EQ(text_of(console).find("VIGO-READY"), std::string::npos);
  EXPECT_GE(last_heartbeat(console), uptime);
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms WHERE workspace_id = " + std::to_string(guarded) +
                  " AND state = 'deleted' AND error LIKE '%is down: resumed from checkpoint before-the-fall%'"),
            1);

  const auto s2 = m->status(bare);
  EXPECT_EQ(s2.state, "failed");
  EXPECT_NE(s2.error.find("no checkpoint"), std::string::npos) << s2.error;
  EXPECT_EQ(allocated_memory(), 0);  // the down host holds nothing

  m->remove(guarded);
  m->remove(bare);
  expect_nothing_left();
  EXPECT_TRUE(fs::is_empty(b_state.path()));
}

}  // namespace
}  // namespace vigo::scheduler
