// SPDX-License-Identifier: Apache-2.0
// The whole read path under a real VM: the tiny guest's root disk is
// published to vigo-imaged, mounted by vigo-fs through sshd, and a libvirt
// guest boots to its readiness line from a qcow2 linked clone backed by the
// file on the mount. Only the blocks the boot reads travel.
#include <gtest/gtest.h>

#include <fstream>

#include "support/guest.h"
#include "support/vfs_fixture.h"
#include "vigo/scheduler/console_watch.h"
#include "vigo/scheduler/libvirt_hypervisor.h"
#include "vigo/scheduler/overlay.h"

namespace vigo::scheduler {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing::guest_dir;

TEST(BootThroughVfsTest, ALinkedCloneBootsFromTheMountFetchingOnlyWhatItReads) {
  testing::VfsFixture vfs;
  vfs.publish_file("tiny-root", guest_dir() / "root.ext4");
  vfs.start_fs();
  const fs::path image = vfs.image("tiny-root@1");
  ASSERT_EQ(fs::file_size(image), fs::file_size(guest_dir() / "root.ext4"));

  LibvirtEventLoop events;
  LibvirtHypervisor hv{events, "qemu:///system"};
  testing::TempDir dir{"vigo-boot-vfs"};
  VmSpec s;
  s.name = "vigo-itest-vfs-" + random_uuid().substr(0, 8);
  s.uuid = random_uuid();
  s.memory_mib = 256;
  create_overlay(image, DiskFormat::kRaw, dir.path() / "clone.qcow2");
  EXPECT_THROW(create_overlay(image, DiskFormat::kRaw, dir.path() / "clone.qcow2"), Error);  // never overwritten
  EXPECT_THROW(create_overlay(vfs.image("no-such-image"), DiskFormat::kRaw, dir.path() / "x.qcow2"), Error);
  EXPECT_FALSE(fs::exists(dir.path() / "x.qcow2"));
  s.disks.push_back({dir.path() / "clone.qcow2", DiskFormat::kQcow2, false});
  s.direct_boot = testing::guest_boot();
  s.console_log = dir.path() / "console.log";

  ConsoleWatch console{s.console_log};
  hv.start(s);
  const auto ready = console.wait_for("VIGO-READY", std::chrono::steady_clock::now() + 180s);
  const auto status = vfs.status();
  try {
    hv.destroy(s.name);
  } catch (const Error&) {
  }
  ASSERT_TRUE(ready.has_value()) << "console:\n" << console.tail(4000) << "\nvigo-fs:\n" << vfs.fs_log();
  // What travelled is a small part of the 1 GiB disk.
  const auto fetched = status["bytes_fetched"].get<std::uint64_t>();
  EXPECT_GT(fetched, 0u);
  EXPECT_LT(fetched, fs::file_size(image) / 4) << status.dump();
  RecordProperty("bytes_fetched", std::to_string(fetched));
}

}  // namespace
}  // namespace vigo::scheduler
