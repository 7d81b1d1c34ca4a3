// SPDX-License-Identifier: Apache-2.0
// The instantiation table's measurements (bench/instantiation/run): for one
// guest, boot and resume from its post-boot checkpoint, through vigod's API,
// from every source (testbed.h) and cache state, repeated; then the run-time
// overhead of a CPU-bound and an IO-bound workload inside the guest, image
// local against on vigo-fs. Each measurement is one JSON line in the
// results file (report.h reads them):
//   {"kind":"start","op":"boot|resume","source":"vfs-wan","mode":"cold|prefetch|warm",
//    "rep":1,"seconds":..,"bytes_at_ready":..,"bytes_total":..,"guest_read_bytes":..}
//   {"kind":"workload","workload":"bench-cpu","source":"local","rep":1,"seconds":..}
//   {"kind":"setup", ...}: the guest, the checkpoint, the link rates.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <ostream>
#include <stop_token>

namespace vigo::bench {

struct PlanOptions {
  int reps = 3;
  int boot_read_mib = 64;   // what the guest reads from its root disk while booting
  bool workloads = true;    // the run-time overhead part
  // Only these (empty: all): "boot", "resume"; "local", "vfs-lan", "vfs-wan",
  // "sshfs-lan", "sshfs-wan" (for a quick look at a few cells; the local
  // file is always measured, as every ratio needs it).
  std::set<std::string> ops, sources;
  int delay_ms = 20, rate_mbit = 100, connections = 4;
  std::filesystem::path guest_dir;  // the built guest (vmlinuz, initrd.img, root.ext4)
  std::filesystem::path relay;      // vigo-wan-relay
  std::filesystem::path work;       // an empty scratch directory
  std::filesystem::path results;    // JSON lines, appended
  std::stop_token stop;             // asked: ends at the next step by an exception
};

// Runs everything; progress on `log`. Throws on the first failure (the
// testbed is torn down either way).
void run_plan(const PlanOptions& options, std::ostream& log);

}  // namespace vigo::bench
