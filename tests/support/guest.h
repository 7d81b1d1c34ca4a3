// SPDX-License-Identifier: Apache-2.0
// The tiny test guest that guest/build.sh builds into the build tree
// (VIGO_GUEST_DIR; target vigo-guest): where it is, and how to boot it
// directly (kernel, initramfs, the command line it was built with).
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "vigo/scheduler/vm_spec.h"

namespace vigo::testing {

inline std::filesystem::path guest_dir() { return VIGO_GUEST_DIR; }

inline scheduler::DirectBoot guest_boot() {
  std::string cmdline;
  std::getline(std::ifstream{guest_dir() / "cmdline"}, cmdline);
  return scheduler::DirectBoot{guest_dir() / "vmlinuz", guest_dir() / "initrd.img", cmdline};
}

}  // namespace vigo::testing
