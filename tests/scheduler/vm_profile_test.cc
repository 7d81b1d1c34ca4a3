// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/vm_profile.h"

#include <gtest/gtest.h>

#include "vigo/common/error.h"

namespace vigo::scheduler {
namespace {

constexpr const char* kTiny = R"(
name = "tiny"
vcpus = 2
memory_mib = 512
[boot]
kernel = "vmlinuz"
initrd = "/abs/initrd.img"
cmdline = "console=ttyS0 root=/dev/vda rw"
[[disks]]
path = "root.ext4"
role = "root"
format = "raw"
[[disks]]
path = "../shared/data.qcow2"
role = "data"
format = "qcow2"
readonly = true
[[nics]]
network = "user"
)";

std::string field_of(const std::string& text) {
  try {
    (void)parse_vm_profile(text, "/srv/guest");
  } catch (const Error& e) {
    return e.field();
  }
  return "accepted";
}

TEST(VmProfileTest, ParsesTheExampleShape) {
  const VmProfile p = parse_vm_profile(kTiny, "/srv/guest");
  EXPECT_EQ(p.name, "tiny");
  EXPECT_EQ(p.vcpus, 2u);
  EXPECT_EQ(p.memory_mib, 512u);
  ASSERT_TRUE(p.direct_boot.has_value());
  EXPECT_EQ(p.direct_boot->kernel, "/srv/guest/vmlinuz");
  EXPECT_EQ(p.direct_boot->initrd, "/abs/initrd.img");
  ASSERT_EQ(p.disks.size(), 2u);
  EXPECT_EQ(p.disks[1].path, "/srv/shared/data.qcow2");
  EXPECT_EQ(p.disks[1].format, DiskFormat::kQcow2);
  EXPECT_TRUE(p.disks[1].readonly);
  ASSERT_EQ(p.nics.size(), 1u);

  const VmSpec s = to_spec(p, "ws-7", random_uuid(), "/var/lib/vigo/ws-7.console",
                           {{"root", DiskSpec{"/var/lib/vigo/ws-7.qcow2", DiskFormat::kQcow2, false}}});
  EXPECT_EQ(s.disks[0].path, "/var/lib/vigo/ws-7.qcow2");
  EXPECT_EQ(s.disks[1].path, "/srv/shared/data.qcow2");
  EXPECT_EQ(s.vcpus, 2u);
}

TEST(VmProfileTest, TheShippedExampleParses) {
  const VmProfile p = load_vm_profile(std::filesystem::path{VIGO_SOURCE_DIR} / "guest" / "profiles" / "tiny.toml");
  EXPECT_EQ(p.name, "tiny");
  EXPECT_TRUE(p.direct_boot.has_value());
}

TEST(VmProfileTest, BadProfilesNameTheKey) {
  std::string t = kTiny;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = t;
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return field_of(s.replace(at, from.size(), to));
  };
  EXPECT_EQ(field_of(kTiny), "accepted");
  EXPECT_EQ(with("vcpus = 2", "vcpus = 0"), "profile.vcpus");
  EXPECT_EQ(with("vcpus = 2", "vcpus = \"two\""), "profile.vcpus");
  EXPECT_EQ(with("memory_mib = 512", "memory_mb = 512"), "profile.memory_mb");
  EXPECT_EQ(with("format = \"qcow2\"", "format = \"vmdk\""), "profile.disks[1].format");
  EXPECT_EQ(with("role = \"data\"", "role = \"root\""), "profile.disks[1].role");
  EXPECT_EQ(with("network = \"user\"", "network = \"a b\""), "profile.nics[0].network");
  EXPECT_EQ(with("kernel = \"vmlinuz\"", "disk = \"root\"\nkernel = \"vmlinuz\""), "profile.boot");
  EXPECT_EQ(with("kernel = \"vmlinuz\"", "disk = \"nope\""), "profile.boot.disk");
  EXPECT_EQ(with("name = \"tiny\"", "name = \"../x\""), "profile.name");
  EXPECT_EQ(field_of("name = \"x\"\n[boot\n"), "profile");  // not TOML
  EXPECT_EQ(field_of("name = \"x\"\n"), "profile.boot");
}

}  // namespace
}  // namespace vigo::scheduler
