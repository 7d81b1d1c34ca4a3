// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace vigo::web {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kRoute = "GET /v1/workspaces/{id}";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The value of the sample whose name and labels are exactly `series`.
std::optional<double> sample(const std::string& text, const std::string& series) {
  for (const auto& line : lines_of(text)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string bucket(std::string_view route, const char* le) {
  return "vigo_http_request_duration_seconds_bucket{route=\"" + std::string{route} + "\",le=\"" + le + "\"}";
}

TEST(Metrics, ServerCountersHaveHelpTypeAndValue) {
  Metrics m;
  const std::string text = m.render(ServerStats{3, 1, 2, 4, 5, 6}, {});
  EXPECT_NE(text.find("# HELP vigo_http_connections_accepted_total TCP connections accepted.\n"
                      "# TYPE vigo_http_connections_accepted_total counter\n"
                      "vigo_http_connections_accepted_total 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE vigo_http_connections_refused_total counter\nvigo_http_connections_refused_total 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE vigo_http_connections_open gauge\nvigo_http_connections_open 2\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE vigo_http_tls_handshake_failures_total counter\n"
                      "vigo_http_tls_handshake_failures_total 4\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE vigo_http_bad_requests_total counter\nvigo_http_bad_requests_total 5\n"),
            std::string::npos);
  // No request yet: the families are declared, without samples.
  EXPECT_EQ(count_of(text, "# TYPE vigo_http_requests_total counter\n"), 1u);
  EXPECT_EQ(count_of(text, "# TYPE vigo_http_request_duration_seconds histogram\n"), 1u);
  EXPECT_EQ(text.find("vigo_http_requests_total{"), std::string::npos);
  EXPECT_EQ(text.find("vigo_http_request_duration_seconds_bucket{"), std::string::npos);
}

TEST(Metrics, RequestsAreCountedByRouteAndStatus) {
  Metrics m;
  m.record(std::string{kRoute}, 200, milliseconds{2});
  m.record(std::string{kRoute}, 200, milliseconds{3});
  m.record(std::string{kRoute}, 404, milliseconds{1});
  m.record("unmatched", 404, milliseconds{1});
  const std::string text = m.render(ServerStats{}, {});
  EXPECT_EQ(sample(text, "vigo_http_requests_total{route=\"GET /v1/workspaces/{id}\",code=\"200\"}"), 2.0);
  EXPECT_EQ(sample(text, "vigo_http_requests_total{route=\"GET /v1/workspaces/{id}\",code=\"404\"}"), 1.0);
  EXPECT_EQ(sample(text, "vigo_http_requests_total{route=\"unmatched\",code=\"404\"}"), 1.0);
  EXPECT_FALSE(sample(text, "vigo_http_requests_total{route=\"unmatched\",code=\"200\"}").has_value());
  // One HELP and one TYPE line per family, however many series.
  EXPECT_EQ(count_of(text, "# HELP vigo_http_requests_total "), 1u);
  EXPECT_EQ(count_of(text, "# TYPE vigo_http_requests_total counter\n"), 1u);
  EXPECT_EQ(count_of(text, "# TYPE vigo_http_request_duration_seconds histogram\n"), 1u);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Metrics m;
  m.record(std::string{kRoute}, 200, milliseconds{2});   // le 0.0025
  m.record(std::string{kRoute}, 200, milliseconds{30});  // le 0.05
  m.record(std::string{kRoute}, 500, milliseconds{1});   // le 0.001 (bounds are inclusive)
  const std::string text = m.render(ServerStats{}, {});
  EXPECT_EQ(sample(text, bucket(kRoute, "0.0005")), 0.0);
  EXPECT_EQ(sample(text, bucket(kRoute, "0.001")), 1.0);
  EXPECT_EQ(sample(text, bucket(kRoute, "0.0025")), 2.0);
  EXPECT_EQ(sample(text, bucket(kRoute, "0.005")), 2.0);
  EXPECT_EQ(sample(text, bucket(kRoute, "0.025")), 2.0);
  EXPECT_EQ(sample(text, bucket(kRoute, "0.05")), 3.0);
  EXPECT_EQ(sample(text, bucket(kRoute, "0.5")), 3.0);
  EXPECT_EQ(sample(text, bucket(kRoute, "+Inf")), 3.0);
  EXPECT_EQ(sample(text, "vigo_http_request_duration_seconds_count{route=\"GET /v1/workspaces/{id}\"}"), 3.0);
  const auto sum = sample(text, "vigo_http_request_duration_seconds_sum{route=\"GET /v1/workspaces/{id}\"}");
  ASSERT_TRUE(sum.has_value());
  EXPECT_NEAR(*sum, 0.033, 1e-9);
  // Every bucket of the layout is there, plus +Inf.
  EXPECT_EQ(count_of(text, "vigo_http_request_duration_seconds_bucket{route=\"GET /v1/workspaces/{id}\",le="),
            Metrics::kBuckets.size() + 1);
}

TEST(Metrics, ASlowRequestCountsOnlyInInf) {
  Metrics m;
  m.record("POST /v1/workspaces", 201, std::chrono::seconds{10});
  const std::string text = m.render(ServerStats{}, {});
  EXPECT_EQ(sample(text, bucket("POST /v1/workspaces", "0.5")), 0.0);
  EXPECT_EQ(sample(text, bucket("POST /v1/workspaces", "+Inf")), 1.0);
  EXPECT_EQ(sample(text, "vigo_http_request_duration_seconds_count{route=\"POST /v1/workspaces\"}"), 1.0);
  EXPECT_EQ(sample(text, "vigo_http_request_duration_seconds_sum{route=\"POST /v1/workspaces\"}"), 10.0);
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label("plain /v1/x{id}"), "plain /v1/x{id}");
  EXPECT_EQ(escape_label(""), "");
  EXPECT_EQ(escape_label("a\"b"), "a\\\"b");
  EXPECT_EQ(escape_label("a\\b"), "a\\\\b");
  EXPECT_EQ(escape_label("a\nb"), "a\\nb");
  EXPECT_EQ(escape_label("\\\"\n"), "\\\\\\\"\\n");

  Metrics m;
  m.record("GET /a\"b\\c\nd", 200, milliseconds{1});
  const std::string text = m.render(ServerStats{}, {});
  EXPECT_EQ(sample(text, "vigo_http_requests_total{route=\"GET /a\\\"b\\\\c\\nd\",code=\"200\"}"), 1.0) << text;
  EXPECT_EQ(sample(text, "vigo_http_request_duration_seconds_count{route=\"GET /a\\\"b\\\\c\\nd\"}"), 1.0);
  EXPECT_EQ(text.find("c\nd"), std::string::npos);  // no raw newline inside a sample
}

TEST(Metrics, GaugesAreRenderedWithAndWithoutLabels) {
  Metrics m;
  const std::vector<Gauge> gauges{
      Gauge{"vigo_workspaces", "Workspaces by state.", {{"state=\"running\"", 3}, {"state=\"failed\"", 1}}},
      Gauge{"vigo_database_up", "Whether the GIS answered this scrape.", {{"", 0}}}};
  const std::string text = m.render(ServerStats{}, gauges);
  EXPECT_NE(text.find("# HELP vigo_workspaces Workspaces by state.\n# TYPE vigo_workspaces gauge\n"),
            std::string::npos);
  EXPECT_EQ(sample(text, "vigo_workspaces{state=\"running\"}"), 3.0);
  EXPECT_EQ(sample(text, "vigo_workspaces{state=\"failed\"}"), 1.0);
  EXPECT_NE(text.find("# TYPE vigo_database_up gauge\nvigo_database_up 0\n"), std::string::npos);
  EXPECT_EQ(text.find("vigo_database_up{"), std::string::npos);
}

TEST(Metrics, EveryLineIsACommentOrASample) {
  Metrics m;
  m.record(std::string{kRoute}, 200, milliseconds{7});
  m.record("unmatched", 404, milliseconds{1});
  const std::string text =
      m.render(ServerStats{1, 0, 1, 0, 0, 1}, {Gauge{"vigo_hosts", "Hosts by state.", {{"state=\"up\"", 16}}}});
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  for (const auto& line : lines_of(text)) {
    SCOPED_TRACE(line);
    ASSERT_FALSE(line.empty());
    if (line.front() == '#') {
      EXPECT_TRUE(line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0);
      continue;
    }
    const auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos);
    const std::string value = line.substr(space + 1);
    std::size_t used = 0;
    EXPECT_NO_THROW((void)std::stod(value, &used));
    EXPECT_EQ(used, value.size());
    const auto name_end = line.find_first_of("{ ");
    const std::string name = line.substr(0, name_end);
    EXPECT_EQ(name.rfind("vigo_", 0), 0u);
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string::npos);
    // Each sample's family was declared before it.
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (family.size() > s.size() && family.compare(family.size() - s.size(), s.size(), s) == 0 &&
          text.find("# TYPE " + family.substr(0, family.size() - s.size()) + " histogram") != std::string::npos) {
        family.resize(family.size() - s.size());
      }
    }
    EXPECT_LT(text.find("# TYPE " + family + " "), text.find(line)) << family;
  }
}

}  // namespace
}  // namespace vigo::web
