// SPDX-License-Identifier: Apache-2.0
// The tiny test guest that guest/build.sh builds into the build tree
// (VIGO_GUEST_DIR; target vigo-guest): where it is, and how to boot it
// directly (kernel, initramfs, the command line it was built with), and
// which domains of a hypervisor are a test's (by their name prefix).
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "vigo/scheduler/hypervisor.h"
#include "vigo/scheduler/vm_spec.h"

namespace vigo::testing {

inline std::filesystem::path guest_dir() { return VIGO_GUEST_DIR; }

inline scheduler::DirectBoot guest_boot() {
  std::string cmdline;
  std::getline(std::ifstream{guest_dir() / "cmdline"}, cmdline);
  return scheduler::DirectBoot{guest_dir() / "vmlinuz", guest_dir() / "initrd.img", cmdline};
}

// The names of hv's domains that start with `prefix` (a test's own:
// other test processes run guests on the same libvirt at the same time).
inline std::vector<std::string> domains_named(scheduler::Hypervisor& hv, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& d : hv.list()) {
    if (d.name.rfind(prefix, 0) == 0) out.push_back(d.name);
  }
  return out;
}

}  // namespace vigo::testing
