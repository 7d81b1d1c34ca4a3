// SPDX-License-Identifier: Apache-2.0
// vigo-bench-instantiation: the instantiation table (issue 6; plan.h what is
// measured, testbed.h through what, report.h what is printed). Run by
// bench/instantiation/run, which builds everything and starts libvirt first.
//   vigo-bench-instantiation --guest DIR --relay BIN --out DIR [--reps N]
//       [--boot-read-mib N] [--no-workloads] [--delay-ms N] [--rate-mbit N]
//       [--connections N] [--command TEXT]
//   vigo-bench-instantiation --report-only --out DIR   (report.md from DIR/results.jsonl again)
// Writes DIR/results.jsonl (JSON lines), DIR/report.md, DIR/instantiation.png.
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "plan.h"
#include "report.h"
#include "vigo/common/error.h"
#include "vigo/common/shutdown.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  vigo::bench::PlanOptions o;
  fs::path out;
  bool report_only = false;
  bool keep_work = false;
  std::string command = "bench/instantiation/run";
  CLI::App app{"vigo-bench-instantiation: VM instantiation through vigod, local file vs vigo-fs vs sshfs"};
  app.add_option("--guest", o.guest_dir, "The built guest (build/guest)");
  app.add_option("--relay", o.relay, "The vigo-wan-relay binary");
  app.add_option("--out", out, "Where results.jsonl, report.md and the plot go")->required();
  app.add_option("--reps", o.reps, "Starts per cell")->check(CLI::Range(1, 20));
  app.add_option("--boot-read-mib", o.boot_read_mib, "MiB of files the guest reads while booting")
      ->check(CLI::Range(0, 256));
  app.add_option("--delay-ms", o.delay_ms, "WAN delay each way")->check(CLI::Range(0, 1000));
  app.add_option("--rate-mbit", o.rate_mbit, "WAN rate each way")->check(CLI::Range(1, 10000));
  app.add_option("--connections", o.connections, "ssh connections of vigo-fs and of sshfs")->check(CLI::Range(1, 16));
  app.add_option("--ops", o.ops, "Only these starts (boot,resume)")->delimiter(',')->check(CLI::IsMember({"boot", "resume"}));
  app.add_option("--sources", o.sources, "Only these sources (local,vfs-lan,vfs-wan,sshfs-lan,sshfs-wan)")
      ->delimiter(',')
      ->check(CLI::IsMember({"local", "vfs-lan", "vfs-wan", "sshfs-lan", "sshfs-wan"}));
  app.add_flag("--no-workloads", [&o](std::int64_t) { o.workloads = false; }, "Skip the run-time overhead part");
  app.add_flag("--report-only", report_only, "Only make report.md from OUT/results.jsonl");
  app.add_flag("--keep-work", keep_work, "Keep the scratch directory (logs) after the run");
  app.add_option("--command", command, "The command line to name in the report");
  CLI11_PARSE(app, argc, argv);

  vigo::ShutdownSignal shutdown;  // Ctrl-C: ends through an exception, so the testbed is torn down
  try {
    fs::create_directories(out);
    o.results = out / "results.jsonl";
    if (!report_only) {
      if (o.guest_dir.empty() || o.relay.empty()) {
        std::cerr << "vigo-bench-instantiation: --guest and --relay are required\n";
        return 2;
      }
      char tmpl[] = "/tmp/vigo-bench-instantiation-XXXXXX";
      if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error{"mkdtemp failed"};
      o.work = tmpl;
      // PostgreSQL's initdb and server run as user postgres: they must reach the stack's pg/ below.
      fs::permissions(o.work, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
      o.stop = shutdown.token();
      std::ofstream{o.results, std::ios::trunc};
      try {
        vigo::bench::run_plan(o, std::cerr);
      } catch (...) {
        std::cerr << "vigo-bench-instantiation: logs kept in " << o.work.string() << "/logs and "
                  << o.work.string() << "/stack/logs\n";
        throw;
      }
      if (!keep_work) fs::remove_all(o.work);
    }
    const std::string report =
        vigo::bench::make_report({o.results, out / "instantiation.png", command});
    std::ofstream{out / "report.md"} << report;
    std::cout << report;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "vigo-bench-instantiation: " << e.what() << "\n";
    return 1;
  }
}
