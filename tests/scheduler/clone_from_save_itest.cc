// SPDX-License-Identifier: Apache-2.0
// Clone-N from a saved state against the real qemu:///system (libvirtd from
// scripts/libvirt-up.sh) with the real tiny guest: boot one guest to
// readiness and save it; its overlay, as it was at the save, becomes the
// read-only base of three clones, each with its own qcow2 overlay on it and
// its own save file (save_file.h: new name, UUID, MAC, disk and console in
// front of the parent's stream). All three restore at once as distinct
// running domains, and each one's heartbeat (VIGO-ALIVE) appears in its own
// console file: they resumed, they did not boot. The parent's overlay is not
// written. Every domain is destroyed and every file removed, also on failure.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <set>

#include "support/guest.h"
#include "support/temp_dir.h"
#include "support/text_file.h"
#include "vigo/common/digest.h"
#include "vigo/common/error.h"
#include "vigo/scheduler/console_watch.h"
#include "vigo/scheduler/libvirt_hypervisor.h"
#include "vigo/scheduler/overlay.h"
#include "vigo/scheduler/save_file.h"

namespace vigo::scheduler {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using testing::guest_dir;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The guest's uptime in a "VIGO-READY 3.61" / "VIGO-ALIVE 12.02" line.
double uptime_of(const std::string& line) {
  const auto at = line.rfind(' ');
  return at == std::string::npos ? -1 : std::stod(line.substr(at + 1));
}

class CloneFromSaveTest : public ::testing::Test {
 protected:
  CloneFromSaveTest() : hv_(events_, "qemu:///system") {}
  ~CloneFromSaveTest() override {
    for (const std::string& name : names_) {
      try {
        if (hv_.find(name)) hv_.destroy(name);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cannot destroy " << name << ": " << e.what();
      }
    }
  }

  VmSpec parent_spec() {
    VmSpec s;
    s.name = prefix_ + "-parent";
    s.uuid = random_uuid();
    s.memory_mib = 256;
    s.disks.push_back({dir_.path() / "parent.qcow2", DiskFormat::kQcow2, false});
    s.nics.push_back({"user", random_mac()});
    s.direct_boot = testing::guest_boot();
    s.console_log = dir_.path() / "parent.console";
    return s;
  }

  CloneIdentity identity(int i) {
    CloneIdentity id;
    id.name = prefix_ + "-clone" + std::to_string(i);
    id.uuid = random_uuid();
    id.macs = {random_mac()};
    id.disks = {{"vda", dir_.path() / ("clone" + std::to_string(i) + ".qcow2")}};
    id.console_log = dir_.path() / ("clone" + std::to_string(i) + ".console");
    return id;
  }

  // The spec that describes clone `id` of a parent with spec `parent`.
  static VmSpec clone_spec(VmSpec parent, const CloneIdentity& id) {
    parent.name = id.name;
    parent.uuid = id.uuid;
    parent.nics[0].mac = id.macs[0];
    parent.disks[0].path = id.disks.at("vda");
    parent.console_log = id.console_log;
    return parent;
  }

  testing::TempDir dir_{"vigo-clone-itest"};
  std::string prefix_ = "vigo-clone-" + random_uuid().substr(0, 8);
  std::vector<std::string> names_;  // every domain the test may have made, destroyed at the end
  LibvirtEventLoop events_;
  LibvirtHypervisor hv_;
};

TEST_F(CloneFromSaveTest, ThreeClonesOfOneSavedGuestRunAtOnce) {
  constexpr int kClones = 3;
  const VmSpec parent = parent_spec();
  names_.push_back(parent.name);
  for (int i = 0; i < kClones; ++i) names_.push_back(prefix_ + "-clone" + std::to_string(i));

  create_overlay(guest_dir() / "root.ext4", DiskFormat::kRaw, parent.disks[0].path);
  ConsoleWatch parent_console{parent.console_log};
  hv_.start(parent);
  const auto ready = parent_console.wait_for("VIGO-READY", Clock::now() + 180s);
  ASSERT_TRUE(ready.has_value()) << "no readiness line; console:\n" << parent_console.tail(4000);
  // The heartbeat runs before the state is saved.
  ASSERT_TRUE(parent_console.wait_for("VIGO-ALIVE", Clock::now() + 30s).has_value()) << parent_console.tail(4000);

  const fs::path saved = dir_.path() / "parent.sav";
  hv_.save(parent.name, saved);
  ASSERT_FALSE(hv_.find(parent.name).has_value());
  const SaveFileHeader header = read_save_file_header(saved);
  EXPECT_NE(header.xml.find(parent.uuid), std::string::npos);
  EXPECT_EQ(header.was_running, 1u);
  // From here on the parent's overlay is the clones' shared base: never written again.
  const std::string base_digest = sha256_hex(testing::read_text_file(parent.disks[0].path));

  // What libvirt 9.0 refuses, and why clones need their own save files.
  std::vector<CloneIdentity> ids;
  for (int i = 0; i < kClones; ++i) ids.push_back(identity(i));
  try {
    hv_.restore(saved, clone_spec(parent, ids[0]));
    ADD_FAILURE() << "libvirt restored a saved state under another name and UUID";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
  EXPECT_FALSE(hv_.find(ids[0].name).has_value());

  std::vector<fs::path> files;
  for (int i = 0; i < kClones; ++i) {
    create_overlay(parent.disks[0].path, DiskFormat::kQcow2, ids[i].disks.at("vda"));
    files.push_back(dir_.path() / ("clone" + std::to_string(i) + ".sav"));
    const auto t = Clock::now();
    const CloneSaveResult r = write_clone_save_file(saved, ids[i], files[i]);
    std::cout << "clone save file " << i << ": " << r.file_bytes << " bytes in " << seconds_since(t) << " s\n";
    EXPECT_TRUE(r.offset_kept);
    EXPECT_EQ(r.stream_offset, header.stream_offset);
    EXPECT_EQ(fs::file_size(files[i]), fs::file_size(saved));
  }

  std::vector<std::unique_ptr<ConsoleWatch>> consoles;
  for (int i = 0; i < kClones; ++i) consoles.push_back(std::make_unique<ConsoleWatch>(ids[i].console_log));
  for (int i = 0; i < kClones; ++i) {
    const auto t = Clock::now();
    if (i < kClones - 1) {
      hv_.restore_as_saved(files[i]);  // as the file says
    } else {
      hv_.restore(files[i], clone_spec(parent, ids[i]));  // with a spec that matches it
    }
    std::cout << "clone " << i << " restored in " << seconds_since(t) << " s\n";
  }

  std::set<std::string> uuids;
  for (const CloneIdentity& id : ids) {
    bool listed = false;
    for (const DomainInfo& d : hv_.list()) {
      if (d.name != id.name) continue;
      listed = true;
      EXPECT_EQ(d.uuid, id.uuid);
      EXPECT_EQ(d.state, DomainState::kRunning) << domain_state_name(d.state);
      uuids.insert(d.uuid);
    }
    EXPECT_TRUE(listed) << id.name << " is not in the hypervisor's list";
  }
  EXPECT_EQ(uuids.size(), static_cast<std::size_t>(kClones));
  EXPECT_FALSE(hv_.find(parent.name).has_value());

  // Each clone resumed the parent's guest: a fresh heartbeat in its own
  // console, later than the parent's readiness, and no boot.
  for (int i = 0; i < kClones; ++i) {
    const auto alive = consoles[i]->wait_for("VIGO-ALIVE", Clock::now() + 60s);
    ASSERT_TRUE(alive.has_value()) << ids[i].name << " shows no heartbeat; console:\n" << consoles[i]->tail(4000);
    EXPECT_GT(uptime_of(*alive), uptime_of(*ready)) << *alive;
    const std::string text = testing::read_text_file(ids[i].console_log);
    EXPECT_EQ(text.find("VIGO-READY"), std::string::npos) << ids[i].name << " booted:\n" << text;
  }
  EXPECT_EQ(sha256_hex(testing::read_text_file(parent.disks[0].path)), base_digest)
      << "the clones' shared base overlay was written";

  for (const CloneIdentity& id : ids) hv_.destroy(id.name);
  for (const CloneIdentity& id : ids) EXPECT_FALSE(hv_.find(id.name).has_value());
}

}  // namespace
}  // namespace vigo::scheduler
