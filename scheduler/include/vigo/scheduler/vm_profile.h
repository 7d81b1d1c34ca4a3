// SPDX-License-Identifier: Apache-2.0
// VmProfile: a VM described in a small TOML file, in the spirit of
// OSCAR-V's simple profiles (guest/profiles/tiny.toml is the example):
//
//   name = "tiny"            profile name (names.h rule)
//   vcpus = 1                1..64
//   memory_mib = 512         32..1048576
//   [boot]                   kernel + initrd + cmdline (direct kernel boot),
//   kernel = "vmlinuz"       or disk = "<role>" to boot that disk
//   [[disks]]                path, role (unique), format (raw|qcow2),
//   path = "root.ext4"       readonly (default false); relative paths are
//   role = "root"            relative to the profile file's directory
//   [[nics]]                 network ("user" or a network name), mac
//
// parse_vm_profile() reads and checks every key, refusing unknown ones, and
// throws invalid_argument naming the key ("profile.disks[0].format") and
// the file. to_spec() turns a profile into a VmSpec for one VM: its name,
// UUID, console file, and the disk paths the instantiation chose (a
// writable disk is normally replaced by its overlay). Stateless.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vigo/scheduler/vm_spec.h"

namespace vigo::scheduler {

struct ProfileDisk {
  std::filesystem::path path;  // absolute after parsing
  std::string role;
  DiskFormat format = DiskFormat::kRaw;
  bool readonly = false;
};

struct VmProfile {
  std::string name;
  std::uint32_t vcpus = 1;
  std::uint64_t memory_mib = 256;
  std::optional<DirectBoot> direct_boot;  // absolute paths after parsing
  std::string boot_disk_role;             // when not direct boot
  std::vector<ProfileDisk> disks;
  std::vector<NicSpec> nics;
};

[[nodiscard]] VmProfile parse_vm_profile(const std::string& text, const std::filesystem::path& base_dir,
                                         const std::string& source_name = "profile");
[[nodiscard]] VmProfile load_vm_profile(const std::filesystem::path& file);

// A VmSpec for one VM of the profile. disk_paths replaces the path (and
// format) of disks by role; the boot disk goes first.
[[nodiscard]] VmSpec to_spec(const VmProfile& profile, const std::string& vm_name, const std::string& uuid,
                             const std::filesystem::path& console_log,
                             const std::map<std::string, DiskSpec>& disk_paths = {});

}  // namespace vigo::scheduler
