// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/metrics.h"

#include <sstream>

namespace vigo::web {

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Metrics::record(const std::string& route, int status, std::chrono::nanoseconds elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::lock_guard lock{mu_};
  ++requests_[{route, status}];
  auto& h = latency_[route];
  ++h.count;
  h.sum += seconds;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
}

std::string Metrics::render(const ServerStats& server, const std::vector<Gauge>& gauges) const {
  std::ostringstream out;
  out.precision(9);
  auto counter = [&](std::string_view name, std::string_view help, std::uint64_t value, bool gauge = false) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << (gauge ? " gauge\n" : " counter\n") << name
        << ' ' << value << '\n';
  };
  counter("vigo_http_connections_accepted_total", "TCP connections accepted.", server.connections_accepted);
  counter("vigo_http_connections_refused_total", "Connections closed at once: over the connection limit.",
          server.connections_refused);
  counter("vigo_http_connections_open", "Connections open now.", server.connections_open, true);
  counter("vigo_http_tls_handshake_failures_total", "TLS handshakes that failed or timed out.",
          server.handshake_failures);
  counter("vigo_http_bad_requests_total", "Requests the server refused before any route (400, 413, 431).",
          server.bad_requests);
  counter("vigo_http_event_streams_open", "Event streams (GET /v1/events) open now.", server.event_streams_open, true);
  {
    std::lock_guard lock{mu_};
    out << "# HELP vigo_http_requests_total Requests answered, by route and status.\n"
        << "# TYPE vigo_http_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      out << "vigo_http_requests_total{route=\"" << escape_label(key.first) << "\",code=\"" << key.second << "\"} "
          << n << '\n';
    }
    out << "# HELP vigo_http_request_duration_seconds Time from a request read to its response ready, by route.\n"
        << "# TYPE vigo_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) {
      const std::string label = "route=\"" + escape_label(route) + "\"";
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < kBuckets.size(); ++i) {
        cumulative += h.buckets[i];
        out << "vigo_http_request_duration_seconds_bucket{" << label << ",le=\"" << kBuckets[i] << "\"} " << cumulative
            << '\n';
      }
      out << "vigo_http_request_duration_seconds_bucket{" << label << ",le=\"+Inf\"} " << h.count << '\n'
          << "vigo_http_request_duration_seconds_sum{" << label << "} " << h.sum << '\n'
          << "vigo_http_request_duration_seconds_count{" << label << "} " << h.count << '\n';
    }
  }
  for (const auto& g : gauges) {
    out << "# HELP " << g.name << ' ' << g.help << "\n# TYPE " << g.name << " gauge\n";
    for (const auto& [labels, value] : g.samples) {
      out << g.name;
      if (!labels.empty()) out << '{' << labels << '}';
      out << ' ' << value << '\n';
    }
  }
  return out.str();
}

}  // namespace vigo::web
