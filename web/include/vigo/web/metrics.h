// SPDX-License-Identifier: Apache-2.0
// Metrics: request counters and latency histograms per route, rendered with
// the server's connection counters and caller-supplied gauges in the
// Prometheus text exposition format (version 0.0.4) for GET /metrics.
// Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vigo/web/https_server.h"

namespace vigo::web {

struct Gauge {
  std::string name;    // e.g. vigo_workspaces
  std::string help;
  std::vector<std::pair<std::string, double>> samples;  // label text ("state=\"running\"") or "" -> value
};

class Metrics {
 public:
  // route: the matched pattern ("GET /v1/workspaces/{id}"), or "unmatched".
  void record(const std::string& route, int status, std::chrono::nanoseconds elapsed);
  [[nodiscard]] std::string render(const ServerStats& server, const std::vector<Gauge>& gauges) const;

  static constexpr std::array<double, 12> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // not cumulative here
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;  // GUARDED_BY(mu_) (route, status)
  std::map<std::string, Histogram> latency_;                       // GUARDED_BY(mu_) by route
};

// A label value escaped for the exposition format (backslash, quote, newline).
[[nodiscard]] std::string escape_label(std::string_view value);

}  // namespace vigo::web
