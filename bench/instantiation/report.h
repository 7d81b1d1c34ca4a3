// SPDX-License-Identifier: Apache-2.0
// The instantiation table from a results file (plan.h's JSON lines):
// Markdown with the medians and spreads next to In-VIGO's 2003 figures,
// the bytes that travelled, the targets of issue 6 (met or missed, with the
// ratios), the workloads' run-time overhead; and a bar chart drawn by
// gnuplot (Debian's gnuplot-nox) into plot_png. Throws kInvalidArgument
// for a results file without a setup record or with a malformed line.
#pragma once

#include <filesystem>
#include <string>

namespace vigo::bench {

struct ReportOptions {
  std::filesystem::path results;
  std::filesystem::path plot_png;  // empty: no plot
  std::string command;             // the command that made the results, for the header
};

// Returns the Markdown text.
[[nodiscard]] std::string make_report(const ReportOptions& options);

}  // namespace vigo::bench
