// SPDX-License-Identifier: Apache-2.0
// The Markdown report of bench/vfs: one table per section (sequential,
// random 4 KiB QD1, random 64 KiB QD1, parallel readers, memory), each cell
// side by side for local / vigo-fs / sshfs with the ratios and the issue's
// targets marked met or missed, then where the bytes went on the WAN (relay
// and vigo-fs counters) and whether every system read the same bytes.
//
// Input: the JSON records written by `vigo-bench-vfs read` and `note`, one
// per line. Records carry tags: system (local, vigo-fs, sshfs), net (LAN,
// WAN, -), state (cold, warm, warm-disk), image, test (seq, rand4k,
// rand64k, par16, memory), extent (MiB read sequentially, or "all"), and
// for notes a cell name.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vigo::bench {

struct ReportOptions {
  double rtt_ms = 40;           // the emulated WAN's round trip
  double link_mbit = 100;       // its rate per direction
  double memory_base_mib = 64;  // VmHWM target: this + the configured buffers
};

std::string render_report(const std::vector<nlohmann::json>& records, const ReportOptions& options);

}  // namespace vigo::bench
