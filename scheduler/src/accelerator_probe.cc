// SPDX-License-Identifier: Apache-2.0
// probe_accelerator: a tiny KVM domain that must print its first kernel line.
#include "vigo/scheduler/accelerator_probe.h"

#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/scheduler/console_watch.h"

namespace vigo::scheduler {
namespace fs = std::filesystem;

Accelerator probe_accelerator(Hypervisor& hv, const DirectBoot& kernel, const fs::path& scratch_dir,
                              std::chrono::milliseconds budget) {
  VmSpec spec;
  spec.uuid = random_uuid();
  spec.name = "vigo-probe-" + spec.uuid.substr(0, 8);
  spec.memory_mib = 128;
  spec.direct_boot = DirectBoot{kernel.kernel, kernel.initrd, "console=ttyS0 earlyprintk=serial panic=-1"};
  spec.accelerator = Accelerator::kKvm;
  fs::create_directories(scratch_dir);
  spec.console_log = scratch_dir / (spec.name + ".console");
  ConsoleWatch console{spec.console_log};
  bool printed = false;
  std::string why;
  try {
    hv.start(spec);
    printed = console.wait_for("Linux version", std::chrono::steady_clock::now() + budget).has_value();
    if (!printed) why = "the kernel printed nothing within " + std::to_string(budget.count()) + " ms";
  } catch (const Error& e) {
    why = e.what();  // no KVM at all: libvirt refuses the domain
  }
  try {
    if (hv.find(spec.name)) hv.destroy(spec.name);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) log::warn("probe domain not destroyed", {{"domain", spec.name}, {"error", e.what()}});
  }
  std::error_code ec;
  fs::remove(spec.console_log, ec);
  if (printed) {
    log::info("accelerator probe: KVM runs guests");
    return Accelerator::kKvm;
  }
  log::info("accelerator probe: TCG", {{"why", why}});
  return Accelerator::kTcg;
}

}  // namespace vigo::scheduler
