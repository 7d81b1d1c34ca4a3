// SPDX-License-Identifier: Apache-2.0
// probe_accelerator: the `auto` accelerator. Whether KVM runs guests on a
// hypervisor's host is known only by running one: /dev/kvm may exist where
// nested virtualization runs no guest at all (these machines: a KVM guest
// prints nothing and never boots). So a tiny domain of type kvm is started
// from a direct-boot kernel with an early serial console; if the kernel's
// first line ("Linux version") reaches the console within `budget`, the
// host has KVM; otherwise (or when libvirt refuses a kvm domain) TCG.
//
// The probe domain is "vigo-probe-<random>" (never a name reconciliation
// claims), transient, and destroyed before the call returns; its console
// file lives in `scratch_dir` and is removed too.
#pragma once

#include <chrono>
#include <filesystem>

#include "vigo/scheduler/hypervisor.h"
#include "vigo/scheduler/vm_spec.h"

namespace vigo::scheduler {

[[nodiscard]] Accelerator probe_accelerator(Hypervisor& hv, const DirectBoot& kernel,
                                            const std::filesystem::path& scratch_dir,
                                            std::chrono::milliseconds budget = std::chrono::seconds{5});

}  // namespace vigo::scheduler
