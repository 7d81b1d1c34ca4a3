// SPDX-License-Identifier: Apache-2.0
// VmSpec: everything the hypervisor layer needs to run one VM, independent
// of any hypervisor: identity (name, UUID), size (vcpus, memory), disks,
// NICs, how it boots (a kernel, initrd and command line, or the first
// disk), where its serial console goes, and the accelerator. The profile
// file (vm_profile.h) fills the size and boot parts; the scheduler fills the
// identity, the disks' paths and the console.
//
// validate() checks every field and throws invalid_argument naming the first
// bad one ("vm.memory_mib", "vm.disks[1].path", ...). Plain data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vigo::scheduler {

enum class Accelerator { kTcg, kKvm };
[[nodiscard]] const char* accelerator_name(Accelerator a);

enum class DiskFormat { kRaw, kQcow2 };
[[nodiscard]] const char* disk_format_name(DiskFormat f);

struct DiskSpec {
  std::filesystem::path path;  // absolute
  DiskFormat format = DiskFormat::kQcow2;
  bool readonly = false;
};

// A NIC on QEMU's user-mode network (no host setup) or on a libvirt network.
struct NicSpec {
  std::string network;  // "user", or the name of a libvirt network
  std::string mac;      // "52:54:00:xx:xx:xx"; empty: libvirt picks one
};

struct DirectBoot {
  std::filesystem::path kernel;  // absolute
  std::filesystem::path initrd;  // absolute; empty: none
  std::string cmdline;
};

struct VmSpec {
  std::string name;  // names.h rule
  std::string uuid;  // canonical 8-4-4-4-12 lowercase hex
  std::uint32_t vcpus = 1;
  std::uint64_t memory_mib = 256;
  std::vector<DiskSpec> disks;  // vda, vdb, ... in this order
  std::vector<NicSpec> nics;
  std::optional<DirectBoot> direct_boot;  // none: boot from the first disk
  std::filesystem::path console_log;      // absolute: the serial console is appended here
  Accelerator accelerator = Accelerator::kTcg;

  void validate() const;  // throws invalid_argument naming the field
};

// A fresh random UUID (version 4), canonical form.
[[nodiscard]] std::string random_uuid();
[[nodiscard]] bool is_uuid(const std::string& s);
// A locally administered MAC in QEMU's 52:54:00 range, random.
[[nodiscard]] std::string random_mac();
[[nodiscard]] bool is_mac(const std::string& s);
// Throws invalid_argument(field, ...) unless `p` is absolute, without NUL or
// newline, at most 4096 bytes (the rule for every path in a VmSpec).
void check_path(const std::string& field, const std::filesystem::path& p);

}  // namespace vigo::scheduler
