// SPDX-License-Identifier: Apache-2.0
// The WorkspaceManager integration tests' fixture (workspace_itest.cc,
// workspace_moves_itest.cc): a migrated GIS in the test PostgreSQL cluster
// with one host (and a second on request), the tiny guest's root disk
// published to vigo-imaged and mounted by vigo-fs through sshd, libvirt's
// qemu:///system running the guests under a prefix of this test's own.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <thread>

#include "support/guest.h"
#include "support/pg_fixture.h"
#include "support/sshd_fixture.h"
#include "support/vfs_fixture.h"
#include "vigo/common/error.h"
#include "vigo/gis/registry.h"
#include "vigo/scheduler/console_watch.h"
#include "vigo/scheduler/libvirt_hypervisor.h"
#include "vigo/scheduler/workspace_manager.h"

namespace vigo::scheduler {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using testing::guest_dir;

class WorkspaceTest : public ::testing::Test {
 protected:
  WorkspaceTest() : hv_(events_, "qemu:///system"), publisher_(testing::imaged_path(), vfs_.store(), "store") {
    gis::Registry reg{db_};
    reg.add_site("lab");
    reg.add_network("lan", "lab");
    reg.add_image_server("store", "lab", "ssh://127.0.0.1");
    reg.add_user("alice");
    reg.add_user("bob");
    host_name_ = "node-" + random_uuid().substr(0, 6);
    const gis::HostSpec host{host_name_, "lan", "qemu:///system", 8, 2048, 100, "x86_64", {{"zone", "a"}}};
    reg.register_hosts(std::span{&host, 1});

    vfs_.publish_file("tiny-root", guest_dir() / "root.ext4");
    vfs_.start_fs();
    db_.write([&](pqxx::transaction_base& txn) {
      txn.exec_params("SELECT gis.add_image('tiny-root', 1, 'disk', NULL, 'store', $1)",
                      static_cast<std::int64_t>(fs::file_size(guest_dir() / "root.ext4")));
    });
    VmProfile tiny = load_vm_profile(guest_dir() / "tiny.toml");
    tiny.memory_mib = 256;
    options_.profiles["tiny"] = tiny;
    VmProfile huge = tiny;
    huge.name = "huge";
    huge.memory_mib = 1 << 20;
    options_.profiles["huge"] = huge;
    options_.readiness_timeout = 180s;
    options_.reconcile_interval = 0s;
    options_.domain_prefix = prefix_;
  }

  ~WorkspaceTest() override {
    for (const auto& d : our_domains()) {
      try {
        hv_.destroy(d);
      } catch (const Error&) {
      }
    }
  }

  std::unique_ptr<WorkspaceManager> manager() {
    HostContext h{host_name_, &hv_, vfs_.mount() / "images", state_.path()};
    return std::make_unique<WorkspaceManager>(db_, &publisher_, std::vector<HostContext>{h}, options_);
  }

  WorkspaceRequest boot(const std::string& name) {
    WorkspaceRequest r;
    r.owner = "alice";
    r.name = name;
    r.profile = "tiny";
    r.image = "tiny-root";
    return r;
  }

  std::int64_t allocated_memory() {
    return db_.read([&](pqxx::transaction_base& txn) {
      return txn.exec_params1("SELECT alloc_memory_mb FROM gis.hosts WHERE name = $1", host_name_)[0]
          .as<std::int64_t>();
    });
  }
  std::int64_t count(const std::string& sql) {
    return db_.read([&](pqxx::transaction_base& txn) { return txn.exec1(sql)[0].as<std::int64_t>(); });
  }
  std::vector<std::string> our_domains() { return testing::domains_named(hv_, prefix_); }
  bool state_dir_empty() { return fs::is_empty(state_.path()); }
  // A second GIS host (zone b) on the same libvirt, with its own state directory.
  HostContext second_host(const testing::TempDir& state) {
    gis::Registry reg{db_};
    const gis::HostSpec host{host_name_ + "-b", "lan", "qemu:///system", 8, 2048, 100, "x86_64", {{"zone", "b"}}};
    reg.register_hosts(std::span{&host, 1});
    return HostContext{host.name, &hv_, vfs_.mount() / "images", state.path()};
  }
  HostContext first_host() { return HostContext{host_name_, &hv_, vfs_.mount() / "images", state_.path()}; }
  std::string text_of(const fs::path& file) {
    std::ifstream in{file};
    return std::string{std::istreambuf_iterator<char>{in}, {}};
  }

  void expect_nothing_left() {
    EXPECT_TRUE(our_domains().empty());
    EXPECT_TRUE(state_dir_empty());
    EXPECT_EQ(allocated_memory(), 0);
  }

  testing::ScopedDatabase scoped_;
  gis::Database db_{gis::DatabaseOptions{scoped_.connection_string(), 4}};
  testing::VfsFixture vfs_;
  testing::TempDir state_{"vigo-ws-state"};
  LibvirtEventLoop events_;
  LibvirtHypervisor hv_;
  StorePublisher publisher_;
  WorkspaceManagerOptions options_;
  std::string host_name_;
  // This test's domains (other test processes run guests of their own at the same time).
  std::string prefix_ = "vigo-t" + random_uuid().substr(0, 8) + "-";
};

// The uptime in a console's last "VIGO-ALIVE <uptime>" line (0 if none).
inline double last_heartbeat(const fs::path& console) {
  std::ifstream in{console};
  std::string line;
  double last = 0;
  while (std::getline(in, line)) {
    if (const auto at = line.find("VIGO-ALIVE "); at != std::string::npos) last = std::stod(line.substr(at + 11));
  }
  return last;
}

}  // namespace vigo::scheduler
