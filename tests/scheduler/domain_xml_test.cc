// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/domain_xml.h"

#include <gtest/gtest.h>

#include "vigo/common/error.h"

namespace vigo::scheduler {
namespace {

VmSpec tiny() {
  VmSpec s;
  s.name = "ws-1";
  s.uuid = random_uuid();
  s.vcpus = 2;
  s.memory_mib = 512;
  s.disks.push_back({"/var/lib/vigo/overlays/ws-1.qcow2", DiskFormat::kQcow2, false});
  s.disks.push_back({"/mnt/vigo/images/data@3", DiskFormat::kRaw, true});
  s.nics.push_back({"user", random_mac()});
  s.direct_boot = DirectBoot{"/srv/guest/vmlinuz", "/srv/guest/initrd.img", "console=ttyS0 root=/dev/vda rw"};
  s.console_log = "/var/lib/vigo/consoles/ws-1.log";
  return s;
}

std::string field_of(const VmSpec& s) {
  try {
    (void)domain_xml(s);
  } catch (const Error& e) {
    return e.field();
  }
  return "accepted";
}

TEST(DomainXmlTest, MatchesLibvirtsSchema) {
  const DomainSchema schema;
  const std::string xml = domain_xml(tiny());
  EXPECT_NO_THROW(schema.validate(xml)) << xml;
  EXPECT_NE(xml.find("<domain type=\"qemu\">"), std::string::npos);
  EXPECT_NE(xml.find("<target dev=\"vdb\" bus=\"virtio\"/>"), std::string::npos);
  EXPECT_NE(xml.find("append=\"on\""), std::string::npos);

  VmSpec disk_boot = tiny();
  disk_boot.direct_boot.reset();
  disk_boot.accelerator = Accelerator::kKvm;
  disk_boot.nics = {{"default", ""}};
  const std::string xml2 = domain_xml(disk_boot);
  EXPECT_NO_THROW(schema.validate(xml2)) << xml2;
  EXPECT_NE(xml2.find("<boot dev=\"hd\"/>"), std::string::npos);
}

TEST(DomainXmlTest, ValuesAreEscapedNotPasted) {
  VmSpec s = tiny();
  s.direct_boot->cmdline = "console=ttyS0 x=\"<evil>&</os>\"";
  s.disks[0].path = "/tmp/a&b<c>.qcow2";
  const std::string xml = domain_xml(s);
  EXPECT_NO_THROW(DomainSchema{}.validate(xml)) << xml;
  EXPECT_NE(xml.find("x=\"&lt;evil&gt;&amp;&lt;/os&gt;\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("/tmp/a&amp;b&lt;c&gt;.qcow2"), std::string::npos) << xml;
}

TEST(DomainXmlTest, BadSpecsNameTheField) {
  auto with = [](auto change) {
    VmSpec s = tiny();
    change(s);
    return field_of(s);
  };
  EXPECT_EQ(with([](VmSpec&) {}), "accepted");
  EXPECT_EQ(with([](VmSpec& s) { s.name = "../x"; }), "vm.name");
  EXPECT_EQ(with([](VmSpec& s) { s.uuid = "not-a-uuid"; }), "vm.uuid");
  EXPECT_EQ(with([](VmSpec& s) { s.vcpus = 0; }), "vm.vcpus");
  EXPECT_EQ(with([](VmSpec& s) { s.memory_mib = 1; }), "vm.memory_mib");
  EXPECT_EQ(with([](VmSpec& s) { s.disks[1].path = "relative.img"; }), "vm.disks[1].path");
  EXPECT_EQ(with([](VmSpec& s) { s.nics[0].mac = "53:54:00:00:00:01"; }), "vm.nics[0].mac");  // multicast
  EXPECT_EQ(with([](VmSpec& s) { s.nics[0].network = "a b"; }), "vm.nics[0].network");
  EXPECT_EQ(with([](VmSpec& s) { s.direct_boot->kernel = ""; }), "vm.kernel");
  EXPECT_EQ(with([](VmSpec& s) { s.console_log = "console.log"; }), "vm.console_log");
  EXPECT_EQ(with([](VmSpec& s) {
              s.direct_boot.reset();
              s.disks.clear();
            }),
            "vm.disks");
}

TEST(DomainXmlTest, SchemaRefusesWhatLibvirtWould) {
  const DomainSchema schema;
  try {
    schema.validate("<domain type='qemu'><name>x</name><bogus/></domain>");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "domain xml");
  }
  EXPECT_THROW(schema.validate("<domain"), Error);
}

TEST(VmSpecTest, RandomIdentitiesAreWellFormed) {
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(is_uuid(random_uuid()));
    EXPECT_TRUE(is_mac(random_mac()));
  }
  EXPECT_NE(random_uuid(), random_uuid());
}

}  // namespace
}  // namespace vigo::scheduler
