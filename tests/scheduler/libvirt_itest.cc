// SPDX-License-Identifier: Apache-2.0
// LibvirtHypervisor against the real qemu:///system (libvirtd started by
// scripts/libvirt-up.sh) with the real tiny guest (guest/build.sh, target
// vigo-guest): boot to the readiness line, pause, save, restore, destroy,
// with every lifecycle change seen as a libvirt event; bad requests are
// clear errors and leave no domain behind.
#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <mutex>

#include "support/guest.h"
#include "support/pg_fixture.h"
#include "vigo/common/error.h"
#include "vigo/common/subprocess.h"
#include "vigo/scheduler/accelerator_probe.h"
#include "vigo/scheduler/console_watch.h"
#include "vigo/scheduler/libvirt_hypervisor.h"

namespace vigo::scheduler {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using testing::guest_dir;

class LibvirtTest : public ::testing::Test {
 protected:
  LibvirtTest() : hv_(events_, "qemu:///system") {
    hv_.on_event([this](const DomainEvent& e) {
      std::lock_guard lock{mu_};
      if (e.name == name_) seen_.push_back(e.kind);
      cv_.notify_all();
    });
  }
  ~LibvirtTest() override {
    try {
      if (hv_.find(name_)) hv_.destroy(name_);
    } catch (const std::exception&) {
    }
  }

  // A spec for the tiny guest on its own qcow2 overlay.
  VmSpec spec() {
    const fs::path overlay = dir_.path() / (name_ + ".qcow2");
    if (!fs::exists(overlay)) {
      const auto r = run_command({"qemu-img", "create", "-q", "-f", "qcow2", "-b", (guest_dir() / "root.ext4").string(),
                                  "-F", "raw", overlay.string()},
                                 30s);
      EXPECT_EQ(r.exit_code, 0) << r.output;
    }
    VmSpec s;
    s.name = name_;
    s.uuid = uuid_;
    s.memory_mib = 256;
    s.disks.push_back({overlay, DiskFormat::kQcow2, false});
    s.direct_boot = testing::guest_boot();
    s.console_log = dir_.path() / (name_ + ".console");
    return s;
  }
  bool saw(DomainEvent::Kind k, std::chrono::seconds within = 30s) {
    std::unique_lock lock{mu_};
    return cv_.wait_for(lock, within, [&] { return std::find(seen_.begin(), seen_.end(), k) != seen_.end(); });
  }
  void forget_events() {
    std::lock_guard lock{mu_};
    seen_.clear();
  }

  testing::TempDir dir_{"vigo-libvirt-itest"};
  std::string name_ = "vigo-itest-" + random_uuid().substr(0, 8);
  std::string uuid_ = random_uuid();
  LibvirtEventLoop events_;
  LibvirtHypervisor hv_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<DomainEvent::Kind> seen_;
};

TEST_F(LibvirtTest, BootsToReadinessPausesSavesRestoresAndDestroys) {
  const VmSpec s = spec();
  ConsoleWatch console{s.console_log};
  hv_.start(s);
  EXPECT_TRUE(saw(DomainEvent::Kind::kStarted));
  const auto ready = console.wait_for("VIGO-READY", Clock::now() + 180s);
  ASSERT_TRUE(ready.has_value()) << "no readiness line; console:\n" << console.tail(4000);
  auto info = hv_.find(name_);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->uuid, uuid_);
  EXPECT_EQ(info->state, DomainState::kRunning);
  bool listed = false;
  for (const auto& d : hv_.list()) listed = listed || d.name == name_;
  EXPECT_TRUE(listed);

  hv_.pause(name_);
  EXPECT_TRUE(saw(DomainEvent::Kind::kPaused));
  EXPECT_EQ(hv_.find(name_)->state, DomainState::kPaused);
  hv_.unpause(name_);
  EXPECT_TRUE(saw(DomainEvent::Kind::kResumed));

  const fs::path saved = dir_.path() / "state.sav";
  hv_.save(name_, saved);
  EXPECT_TRUE(saw(DomainEvent::Kind::kSaved));
  EXPECT_FALSE(hv_.find(name_).has_value());  // transient: gone once saved
  EXPECT_GT(fs::file_size(saved), 1u << 20);

  forget_events();
  hv_.restore(saved, s, false);
  EXPECT_TRUE(saw(DomainEvent::Kind::kRestored));
  EXPECT_EQ(hv_.find(name_)->state, DomainState::kRunning);

  hv_.destroy(name_);
  EXPECT_TRUE(saw(DomainEvent::Kind::kStopped));
  EXPECT_FALSE(hv_.find(name_).has_value());
}

// `auto`: the probe picks what runs guests here (TCG on these machines, where
// /dev/kvm exists but a KVM guest never prints), leaves no domain and no
// file, and a guest started with what it picked boots to readiness.
TEST_F(LibvirtTest, TheAcceleratorProbePicksOneThatBootsAndLeavesNothing) {
  const fs::path scratch = dir_.path() / "probe";
  const Accelerator picked = probe_accelerator(hv_, testing::guest_boot(), scratch, 5s);
  EXPECT_TRUE(fs::is_empty(scratch));
  EXPECT_TRUE(testing::domains_named(hv_, "vigo-probe-").empty());

  VmSpec s = spec();
  s.accelerator = picked;
  ConsoleWatch console{s.console_log};
  hv_.start(s);
  const auto ready = console.wait_for("VIGO-READY", Clock::now() + 180s);
  EXPECT_TRUE(ready.has_value()) << "picked " << accelerator_name(picked) << "; console:\n" << console.tail(4000);
  hv_.destroy(name_);
}

TEST_F(LibvirtTest, BadRequestsAreClearErrorsAndLeaveNothing) {
  try {
    hv_.destroy(name_);
    ADD_FAILURE() << "destroyed a domain that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound) << e.what();
  }
  VmSpec missing_kernel = spec();
  missing_kernel.direct_boot->kernel = dir_.path() / "no-such-kernel";
  EXPECT_THROW(hv_.start(missing_kernel), Error);
  EXPECT_FALSE(hv_.find(name_).has_value());

  VmSpec bad = spec();
  bad.memory_mib = 0;
  try {
    hv_.start(bad);
    ADD_FAILURE() << "started a VM with no memory";
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "vm.memory_mib");
  }

  hv_.start(spec());
  try {
    VmSpec twin = spec();
    twin.uuid = random_uuid();
    hv_.start(twin);
    ADD_FAILURE() << "two domains with one name";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists) << e.what();
  }
  hv_.destroy(name_);
  EXPECT_FALSE(hv_.find(name_).has_value());
}

}  // namespace
}  // namespace vigo::scheduler
