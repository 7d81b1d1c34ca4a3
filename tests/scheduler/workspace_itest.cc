// SPDX-License-Identifier: Apache-2.0
// WorkspaceManager end to end on real parts: a migrated GIS in the test
// PostgreSQL cluster, the tiny guest's root disk published to vigo-imaged and
// mounted by vigo-fs through sshd, libvirt's qemu:///system running the
// guests. Boot to running; a readiness timeout that fails and cleans up; bad
// requests that leave nothing; a checkpoint published to the image server
// and resumed as three clones; reconciliation after a manager that went away
// mid-instantiation, and of a domain nobody owns. Every test ends with
// nothing of vigo's in libvirt, in the state directory or holding capacity.
#include "workspace_fixture.h"

namespace vigo::scheduler {
namespace {

TEST_F(WorkspaceTest, BootsToRunningThroughTheMountAndDeleteLeavesNothing) {
  auto m = manager();
  const auto ws = m->create(boot("desk"));
  const auto s = m->wait(ws, Clock::now() + 200s);
  ASSERT_EQ(s.state, "running") << s.error;
  ASSERT_EQ(s.vms.size(), 1u);
  EXPECT_EQ(s.vms[0].host, host_name_);
  const auto d = hv_.find(s.vms[0].domain);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->state, DomainState::kRunning);
  EXPECT_EQ(allocated_memory(), 256);
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms WHERE uuid IS NOT NULL AND ready_at IS NOT NULL"), 1);

  m->pause(ws);
  EXPECT_EQ(m->status(ws).state, "paused");
  EXPECT_EQ(hv_.find(s.vms[0].domain)->state, DomainState::kPaused);
  m->unpause(ws);
  EXPECT_EQ(m->status(ws).state, "running");

  // The name is taken while the workspace lives.
  try {
    m->create(boot("desk"));
    ADD_FAILURE() << "a second workspace named desk";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists) << e.what();
  }

  m->remove(ws);
  EXPECT_EQ(m->status(ws).state, "deleted");
  EXPECT_EQ(m->status(ws).vms[0].state, "deleted");
  expect_nothing_left();
}

TEST_F(WorkspaceTest, BadRequestsAreClearErrorsAndLeaveNothing) {
  auto m = manager();
  auto expect_error = [&](WorkspaceRequest r, ErrorCode code, const std::string& field) {
    try {
      m->create(r);
      ADD_FAILURE() << "accepted: " << r.name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      if (!field.empty()) {
        EXPECT_NE(std::string{e.what()}.find(field), std::string::npos) << e.what();
      }
    }
  };
  auto r = boot("x");
  r.image = "no-such-image";
  expect_error(r, ErrorCode::kNotFound, "no-such-image");
  r = boot("x");
  r.image = "tiny-root@7";
  expect_error(r, ErrorCode::kNotFound, "tiny-root@7");
  r = boot("x");
  r.image = "tiny-root@one";
  expect_error(r, ErrorCode::kInvalidArgument, "image");
  r = boot("x");
  r.image.clear();
  r.checkpoint = "never-taken";
  expect_error(r, ErrorCode::kNotFound, "never-taken");
  r = boot("x");
  r.profile = "huge";
  expect_error(r, ErrorCode::kInvalidArgument, "large enough");
  r = boot("x");
  r.profile = "nope";
  expect_error(r, ErrorCode::kInvalidArgument, "profile");
  r = boot("bad name!");
  expect_error(r, ErrorCode::kInvalidArgument, "name");
  r = boot("x");
  r.placement.labels = {{"zone", "b"}};
  expect_error(r, ErrorCode::kInvalidArgument, "labels");
  r = boot("x");
  r.placement.future_id = 424242424242;
  expect_error(r, ErrorCode::kConflict, "future");
  r = boot("x");
  r.count = 9;  // 9 x 256 MiB > 2048 MiB: no room, and nothing half-placed
  expect_error(r, ErrorCode::kResourceExhausted, "room");
  r = boot("x");
  r.count = 2;
  r.placement.distinct_hosts = true;  // one host only
  expect_error(r, ErrorCode::kResourceExhausted, "room");

  EXPECT_EQ(count("SELECT count(*) FROM gis.workspaces"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms"), 0);
  expect_nothing_left();
}

TEST_F(WorkspaceTest, AGuestThatIsNotReadyInTimeFailsAndIsCleanedUp) {
  auto m = manager();
  auto r = boot("slow");
  r.readiness_timeout = 1s;  // TCG takes seconds to boot
  const auto ws = m->create(r);
  const auto s = m->wait(ws, Clock::now() + 60s);
  EXPECT_EQ(s.state, "failed");
  ASSERT_EQ(s.vms.size(), 1u);
  EXPECT_NE(s.vms[0].error.find("not ready within 1 s"), std::string::npos) << s.vms[0].error;
  expect_nothing_left();
  // The name stays with the failed workspace until it is deleted.
  m->remove(ws);
  EXPECT_EQ(m->status(ws).state, "deleted");
  expect_nothing_left();
}

TEST_F(WorkspaceTest, ACheckpointResumesAsThreeClonesWhileTheOriginalRunsOn) {
  auto m = manager();
  const auto ws = m->create(boot("base"));
  ASSERT_EQ(m->wait(ws, Clock::now() + 200s).state, "running");
  const auto first = m->status(ws).vms[0];
  // Let the heartbeat start, so that the saved state has it running.
  ConsoleWatch console{state_.path() / ("vm-" + std::to_string(first.id)) / "console.log"};
  ASSERT_TRUE(console.wait_for("VIGO-ALIVE", Clock::now() + 30s).has_value());

  const CheckpointInfo ck = m->checkpoint(ws, "after-boot");
  EXPECT_GT(ck.id, 0);
  EXPECT_EQ(ck.memory.file_name(), "after-boot-memory@1");
  EXPECT_EQ(ck.disk.file_name(), "after-boot-disk@1");
  EXPECT_EQ(m->status(ws).state, "running");
  EXPECT_EQ(hv_.find(first.domain)->state, DomainState::kRunning);
  EXPECT_EQ(count("SELECT count(*) FROM gis.checkpoints c JOIN gis.images m ON m.id = c.memory_image_id "
                  "WHERE c.name = 'after-boot' AND m.kind = 'memory' AND m.owner_id IS NOT NULL"),
            1);
  try {
    m->checkpoint(ws, "after-boot");
    ADD_FAILURE() << "a second checkpoint with the same name";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists) << e.what();
  }
  // Another user cannot resume alice's checkpoint.
  WorkspaceRequest theirs;
  theirs.owner = "bob";
  theirs.name = "stolen";
  theirs.checkpoint = "after-boot";
  EXPECT_THROW(m->create(theirs), Error);

  WorkspaceRequest clones;
  clones.owner = "alice";
  clones.name = "trio";
  clones.checkpoint = "after-boot";  // the profile comes from the checkpoint's workspace
  clones.count = 3;
  const auto trio = m->create(clones);
  const auto s = m->wait(trio, Clock::now() + 200s);
  ASSERT_EQ(s.state, "running") << s.error;
  ASSERT_EQ(s.vms.size(), 3u);
  std::set<std::string> names, uuids;
  for (const auto& v : s.vms) {
    const auto d = hv_.find(v.domain);
    ASSERT_TRUE(d.has_value()) << v.domain;
    EXPECT_EQ(d->state, DomainState::kRunning);
    names.insert(d->name);
    uuids.insert(d->uuid);
    // Resumed, not booted: a heartbeat and no readiness line in its own console.
    std::ifstream in{state_.path() / ("vm-" + std::to_string(v.id)) / "console.log"};
    const std::string text{std::istreambuf_iterator<char>{in}, {}};
    EXPECT_NE(text.find("VIGO-ALIVE"), std::string::npos) << text;
    EXPECT_EQ(text.find("VIGO-READY"), std::string::npos) << text;
  }
  EXPECT_EQ(names.size(), 3u);
  EXPECT_EQ(uuids.size(), 3u);
  EXPECT_EQ(allocated_memory(), 4 * 256);

  m->remove(trio);
  m->remove(ws);
  expect_nothing_left();
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms WHERE state <> 'deleted'"), 0);
}


TEST_F(WorkspaceTest, APersistentWorkspaceStopsToTheImageServerAndStartsAgainWhereItWas) {
  auto m = manager();
  auto r = boot("home");
  r.persistent = true;
  const auto ws = m->create(r);
  ASSERT_EQ(m->wait(ws, Clock::now() + 200s).state, "running");
  const auto before = m->status(ws).vms[0];
  const fs::path console = state_.path() / ("vm-" + std::to_string(before.id)) / "console.log";
  ConsoleWatch watch{console};
  ASSERT_TRUE(watch.wait_for("VIGO-ALIVE", Clock::now() + 30s).has_value());

  // A workspace that is not persistent is not stopped.
  const auto other = m->create(boot("scratch"));
  ASSERT_EQ(m->wait(other, Clock::now() + 200s).state, "running");
  try {
    m->stop(other);
    ADD_FAILURE() << "stopped a non-persistent workspace";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConflict) << e.what();
  }
  m->remove(other);

  const double uptime_at_stop = last_heartbeat(console);  // the console goes with the VM
  EXPECT_GT(uptime_at_stop, 0);
  m->stop(ws);
  EXPECT_EQ(m->status(ws).state, "stopped");
  EXPECT_FALSE(hv_.find(before.domain).has_value());
  EXPECT_EQ(allocated_memory(), 0);
  EXPECT_TRUE(state_dir_empty());
  // A full raw copy of the disk, on the image server, recorded in the GIS.
  EXPECT_EQ(count("SELECT count(*) FROM gis.checkpoints c JOIN gis.images d ON d.id = c.disk_image_id "
                  "WHERE c.disk_format = 'raw' AND d.size_bytes = " +
                  std::to_string(fs::file_size(guest_dir() / "root.ext4"))),
            1);
  EXPECT_THROW(m->stop(ws), Error);  // nothing runs

  m->start(ws);
  const auto s = m->wait(ws, Clock::now() + 200s);
  ASSERT_EQ(s.state, "running") << s.error;
  const auto after = s.vms.back();
  EXPECT_NE(after.id, before.id);
  EXPECT_EQ(after.name, "home");
  const fs::path console2 = state_.path() / ("vm-" + std::to_string(after.id)) / "console.log";
  // The same guest, resumed: its clock goes on from where it stopped, no boot.
  EXPECT_GE(last_heartbeat(console2), uptime_at_stop);
  std::ifstream in{console2};
  const std::string text{std::istreambuf_iterator<char>{in}, {}};
  EXPECT_EQ(text.find("VIGO-READY"), std::string::npos) << text;
  EXPECT_THROW(m->start(ws), Error);  // already running

  m->remove(ws);
  expect_nothing_left();
}

TEST_F(WorkspaceTest, PeriodicCheckpointsAreTakenWhileTheWorkspaceRuns) {
  options_.checkpoint_tick = 1s;
  auto m = manager();
  auto bad = boot("eager");
  bad.checkpoint_interval = 2s;  // below the 10 s floor
  EXPECT_THROW(m->create(bad), Error);
  auto r = boot("guarded");
  r.checkpoint_interval = 10s;
  const auto ws = m->create(r);
  ASSERT_EQ(m->wait(ws, Clock::now() + 200s).state, "running");
  const auto vm = m->status(ws).vms[0];
  auto taken = [&] {
    return count("SELECT count(*) FROM gis.checkpoints WHERE vm_id = " + std::to_string(vm.id) +
                 " AND name LIKE 'ws%-auto%'");
  };
  // Two intervals and some: two checkpoints, the guest running throughout.
  const auto deadline = Clock::now() + 120s;
  while (taken() < 2 && Clock::now() < deadline) std::this_thread::sleep_for(1s);
  EXPECT_GE(taken(), 2);
  EXPECT_EQ(m->status(ws).state, "running");
  EXPECT_EQ(hv_.find(vm.domain)->state, DomainState::kRunning);
  m->remove(ws);
  expect_nothing_left();
}

TEST_F(WorkspaceTest, ReconciliationCleansUpAfterAManagerThatWentAwayAndAfterStrangers) {
  std::int64_t ws = 0;
  {
    auto m = manager();
    ws = m->create(boot("interrupted"));
    // Gone while the VM is being prepared or started: as if vigod died.
  }
  // A domain with one of our names that no VM row owns (a crashed vigod's leftover).
  const std::int64_t stray_id = db_.write(
      [](pqxx::transaction_base& txn) { return txn.exec1("SELECT nextval('gis.resource_id')")[0].as<std::int64_t>(); });
  VmSpec stray;
  stray.name = prefix_ + std::to_string(stray_id);
  stray.uuid = random_uuid();
  stray.memory_mib = 128;
  stray.direct_boot = testing::guest_boot();
  stray.console_log = state_.path() / "stray.console";
  hv_.start(stray);
  fs::create_directories(state_.path() / ("vm-" + std::to_string(stray_id)));

  auto m = manager();  // reconciles at start
  EXPECT_FALSE(hv_.find(stray.name).has_value()) << "the stray domain survived";
  EXPECT_FALSE(fs::exists(state_.path() / ("vm-" + std::to_string(stray_id))));
  const auto s = m->status(ws);
  ASSERT_EQ(s.vms.size(), 1u);
  EXPECT_EQ(s.vms[0].state, "failed");
  EXPECT_NE(s.vms[0].error.find("interrupted"), std::string::npos) << s.vms[0].error;
  EXPECT_FALSE(hv_.find(s.vms[0].domain).has_value());
  fs::remove(state_.path() / "stray.console");
  expect_nothing_left();

  // And a running VM whose domain disappears behind vigod's back is failed:
  // at once by libvirt's stop event, or by the next reconciliation, which
  // runs after the event's job on the host's queue.
  const auto ws2 = m->create(boot("vanishing"));
  ASSERT_EQ(m->wait(ws2, Clock::now() + 200s).state, "running");
  hv_.destroy(m->status(ws2).vms[0].domain);
  m->reconcile();
  const auto s2 = m->status(ws2);
  EXPECT_EQ(s2.state, "failed");
  EXPECT_FALSE(s2.vms[0].error.empty());
  expect_nothing_left();
}

// Two GIS hosts driven through one libvirt (as vigod's [hosts.NAME] and
// bench/instantiation have them): a domain of one is not the other's
// orphan, and a domain that stops is failed on the host its row names.
TEST_F(WorkspaceTest, HostsThatShareAHypervisorKeepEachOthersDomains) {
  testing::TempDir other_state{"vigo-ws-state-b"};
  const HostContext a = first_host();
  const HostContext b = second_host(other_state);
  const std::string other = b.name;

  // The same name or state directory twice is refused.
  for (const auto& twice : {std::vector<HostContext>{a, a},
                            std::vector<HostContext>{a, HostContext{other, &hv_, a.images_dir, a.state_dir}}}) {
    try {
      WorkspaceManager bad{db_, &publisher_, twice, options_};
      ADD_FAILURE() << "two hosts with one name or state directory were accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    }
  }

  auto m = std::make_unique<WorkspaceManager>(db_, &publisher_, std::vector<HostContext>{a, b}, options_);
  WorkspaceRequest r = boot("on-b");
  r.placement.labels = {{"zone", "b"}};
  const auto ws = m->create(r);
  const auto s = m->wait(ws, Clock::now() + 200s);
  ASSERT_EQ(s.state, "running") << s.error;
  EXPECT_EQ(s.vms[0].host, other);
  EXPECT_TRUE(fs::exists(other_state.path() / ("vm-" + std::to_string(s.vms[0].id))));

  // Host a's reconciliation sees b's domain on the shared libvirt and leaves it.
  const ReconcileReport report = m->reconcile();
  EXPECT_TRUE(report.destroyed_domains.empty());
  EXPECT_TRUE(report.vanished_vms.empty());
  EXPECT_EQ(m->status(ws).state, "running");
  EXPECT_TRUE(hv_.find(s.vms[0].domain).has_value());

  // A new manager adopts it the same way.
  m.reset();
  m = std::make_unique<WorkspaceManager>(db_, &publisher_, std::vector<HostContext>{a, b}, options_);
  EXPECT_EQ(m->status(ws).state, "running");

  // Its domain gone behind the manager's back: failed (the event, on b's
  // queue, or the reconciliation after it), and b's files are removed.
  hv_.destroy(s.vms[0].domain);
  m->reconcile();
  EXPECT_EQ(m->status(ws).state, "failed");
  EXPECT_TRUE(fs::is_empty(other_state.path()));
  expect_nothing_left();
}

// Another vigod's host in the same GIS, emptier than ours: placement never
// claims it (it could not start a VM there), and the workspace runs here.
TEST_F(WorkspaceTest, PlacementClaimsOnlyTheHostsThisManagerDrives) {
  gis::Registry reg{db_};
  const gis::HostSpec theirs{host_name_ + "-theirs", "lan", "qemu+ssh://elsewhere/system", 64, 65536, 1000, "x86_64",
                             {{"zone", "a"}}};
  reg.register_hosts(std::span{&theirs, 1});
  auto m = manager();
  const auto ws = m->create(boot("ours"));
  EXPECT_EQ(m->status(ws).vms[0].host, host_name_);
  m->remove(ws);
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms v JOIN gis.hosts h ON h.id = v.host_id WHERE h.name = '" +
                  theirs.name + "'"),
            0);
  expect_nothing_left();
}

}  // namespace
}  // namespace vigo::scheduler
