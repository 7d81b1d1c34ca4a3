// SPDX-License-Identifier: Apache-2.0
#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace vigo::bench {
namespace {

using json = nlohmann::json;
using Tags = std::map<std::string, std::string>;

std::string tag(const json& r, const std::string& key) {
  const auto& t = r.value("tags", json::object());
  return t.contains(key) ? t.at(key).get<std::string>() : std::string{};
}

// The last read record whose tags include all of `want`.
const json* find_record(const std::vector<json>& records, const Tags& want, const std::string& kind = "read") {
  const json* found = nullptr;
  for (const json& r : records) {
    if (r.value("kind", std::string{"read"}) != kind) continue;
    bool all = true;
    for (const auto& [k, v] : want) all = all && tag(r, k) == v;
    if (all) found = &r;
  }
  return found;
}

std::string num(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Three significant figures or so, for throughputs and latencies.
std::string fig(double v) {
  if (!std::isfinite(v)) return "-";
  const double a = std::fabs(v);
  return num(v, a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

std::string ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return "-";
  return num(*a / *b, 2) + "x";
}

std::optional<double> field(const json* r, const std::string& key) {
  if (r == nullptr || !r->contains(key)) return std::nullopt;
  return r->at(key).get<double>();
}

std::optional<double> lat(const json* r, const std::string& key) {
  if (r == nullptr || !r->contains("lat_ms")) return std::nullopt;
  return r->at("lat_ms").at(key).get<double>();
}

std::string opt(std::optional<double> v) { return v ? fig(*v) : "-"; }

std::string met(std::optional<bool> ok) {
  if (!ok) return "-";
  return *ok ? "met" : "**missed**";
}

std::string state_name(const std::string& s) {
  if (s == "warm") return "warm (page cache)";
  if (s == "warm-disk") return "warm (disk cache, remounted)";
  if (s == "cold-ra4m") return "cold, read_ahead_kb 4096";
  return s;
}

// Images, nets and extents that occur in the records, in order of appearance.
std::vector<std::string> values_of(const std::vector<json>& records, const std::string& key, const Tags& where) {
  std::vector<std::string> out;
  for (const json& r : records) {
    bool all = true;
    for (const auto& [k, v] : where) all = all && tag(r, k) == v;
    const std::string v = tag(r, key);
    if (all && !v.empty() && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

const std::vector<std::string> kStates = {"cold", "warm", "warm-disk"};
const std::vector<std::string> kSeqStates = {"cold", "cold-ra4m", "warm", "warm-disk"};

void sequential(std::ostringstream& o, const std::vector<json>& records, const ReportOptions& opt_) {
  const double link_mb = opt_.link_mbit / 8;
  o << "### Sequential reads, 1 MiB preads (MB/s)\n\n"
    << "| image | net | read | state | local | vigo-fs | sshfs | vigo-fs/local | vigo-fs/sshfs | target | |\n"
    << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const std::string& image : values_of(records, "image", {{"test", "seq"}})) {
    for (const std::string& net : {std::string{"LAN"}, std::string{"WAN"}}) {
      for (const std::string& extent :
           values_of(records, "extent", {{"test", "seq"}, {"image", image}, {"net", net}})) {
        for (const std::string& state : kSeqStates) {
          const Tags base{{"test", "seq"}, {"image", image}, {"extent", extent}};
          auto with = [&](Tags t) {
            t.insert(base.begin(), base.end());
            return t;
          };
          const json* v = find_record(records, with({{"system", "vigo-fs"}, {"net", net}, {"state", state}}));
          if (v == nullptr) continue;
          const bool cold = state.rfind("cold", 0) == 0;
          const json* l = find_record(records, with({{"system", "local"}, {"state", cold ? "cold" : "warm"}}));
          const json* s = find_record(records, with({{"system", "sshfs"}, {"net", net}, {"state", state}}));
          const auto vm = field(v, "mb_per_s"), lm = field(l, "mb_per_s"), sm = field(s, "mb_per_s");
          std::string target = "-";
          std::optional<bool> ok;
          if (!cold && vm && lm) {
            target = ">= 0.90x local";
            ok = *vm >= 0.9 * *lm;
          } else if (cold && net == "WAN" && vm) {
            if (image == "random") {
              target = ">= " + num(0.85 * link_mb, 2) + " MB/s (85% of link)";
              ok = *vm >= 0.85 * link_mb;
            } else {
              target = "> " + num(link_mb, 1) + " MB/s (link)";
              ok = *vm > link_mb;
            }
          }
          o << "| " << image << " | " << net << " | " << (extent == "all" ? "whole file" : "first " + extent + " MiB")
            << " | " << state_name(state) << " | " << opt(lm) << " | " << opt(vm) << " | " << opt(sm) << " | "
            << ratio(vm, lm) << " | " << ratio(vm, sm) << " | " << target << " | " << met(ok) << " |\n";
        }
      }
    }
  }
  o << "\n";
}

std::string lat_cell(const json* r, bool mean) {
  if (r == nullptr) return "-";
  std::string s = fig(*lat(r, "p50")) + " / " + fig(*lat(r, "p99"));
  if (mean) s += " (" + fig(*lat(r, "mean")) + ")";
  return s;
}

// QD1 random reads: latency p50 / p99 (mean), ratios of ops/s (1/mean).
void qd1(std::ostringstream& o, const std::vector<json>& records, const std::string& test, const std::string& title,
         bool targets, const ReportOptions& opt_) {
  if (find_record(records, {{"test", test}}) == nullptr) return;
  o << "### " << title << "\n\n"
    << "| net | state | local p50 / p99 (mean) ms | vigo-fs p50 / p99 (mean) ms | sshfs p50 / p99 (mean) ms | "
       "vigo-fs/local ops/s | vigo-fs/sshfs ops/s | target | |\n"
    << "|---|---|---|---|---|---|---|---|---|\n";
  for (const std::string& net : {std::string{"LAN"}, std::string{"WAN"}}) {
    for (const std::string& state : kStates) {
      const json* v = find_record(records, {{"test", test}, {"system", "vigo-fs"}, {"net", net}, {"state", state}});
      if (v == nullptr) continue;
      const json* l =
          find_record(records, {{"test", test}, {"system", "local"}, {"state", state == "cold" ? "cold" : "warm"}});
      const json* s = find_record(records, {{"test", test}, {"system", "sshfs"}, {"net", net}, {"state", state}});
      const auto vo = field(v, "ops_per_s"), lo = field(l, "ops_per_s"), so = field(s, "ops_per_s");
      std::string target = "-";
      std::optional<bool> ok;
      if (targets && state != "cold" && vo && lo) {
        target = ">= 0.50x local";
        ok = *vo >= 0.5 * *lo;
      } else if (targets && state == "cold" && net == "WAN") {
        target = "mean <= " + num(1.1 * opt_.rtt_ms, 0) + " ms (1.1 RTT)";
        ok = *lat(v, "mean") <= 1.1 * opt_.rtt_ms;
      }
      o << "| " << net << " | " << state_name(state) << " | " << lat_cell(l, true) << " | " << lat_cell(v, true)
        << " | " << lat_cell(s, true) << " | " << ratio(vo, lo) << " | " << ratio(vo, so) << " | " << target << " | "
        << met(ok) << " |\n";
    }
  }
  o << "\n";
}

void parallel(std::ostringstream& o, const std::vector<json>& records) {
  const json* any = find_record(records, {{"test", "par16"}});
  if (any == nullptr) return;
  o << "### " << any->value("threads", 0) << " parallel readers, random 4 KiB reads (ops/s, latency p50 / p99 ms)\n\n"
    << "| net | state | local | vigo-fs | sshfs | vigo-fs/local | vigo-fs/sshfs | target | |\n"
    << "|---|---|---|---|---|---|---|---|---|\n";
  auto cell = [](const json* r) {
    if (r == nullptr) return std::string{"-"};
    return fig(r->at("ops_per_s").get<double>()) + " (" + fig(*lat(r, "p50")) + " / " + fig(*lat(r, "p99")) + ")";
  };
  for (const std::string& net : {std::string{"LAN"}, std::string{"WAN"}}) {
    for (const std::string& state : kStates) {
      const json* v = find_record(records, {{"test", "par16"}, {"system", "vigo-fs"}, {"net", net}, {"state", state}});
      if (v == nullptr) continue;
      const json* l =
          find_record(records, {{"test", "par16"}, {"system", "local"}, {"state", state == "cold" ? "cold" : "warm"}});
      const json* s = find_record(records, {{"test", "par16"}, {"system", "sshfs"}, {"net", net}, {"state", state}});
      const auto vo = field(v, "ops_per_s"), lo = field(l, "ops_per_s"), so = field(s, "ops_per_s");
      std::optional<bool> ok;
      std::string target = "-";
      if (vo && so) {
        target = ">= sshfs";
        ok = *vo >= *so;
      }
      o << "| " << net << " | " << state_name(state) << " | " << cell(l) << " | " << cell(v) << " | " << cell(s)
        << " | " << ratio(vo, lo) << " | " << ratio(vo, so) << " | " << target << " | " << met(ok) << " |\n";
    }
  }
  o << "\n";
}

void memory(std::ostringstream& o, const std::vector<json>& records, const ReportOptions& opt_) {
  const json* r = find_record(records, {{"test", "memory"}});
  if (r == nullptr || !r->contains("watched")) return;
  const double hwm = r->at("watched").at("vmhwm_kib").get<double>() / 1024;
  const double buffers = std::stod(tag(*r, "buffers_mib"));
  const double limit = opt_.memory_base_mib + buffers;
  o << "### vigo-fs memory while reading an image sequentially (LAN)\n\n"
    << "| image | read | MB/s | vigo-fs VmHWM | configured buffers | target | |\n|---|---|---|---|---|---|---|\n"
    << "| " << fig(r->at("file_size").get<double>() / (1 << 30)) << " GiB " << tag(*r, "image") << " | "
    << fig(r->at("bytes").get<double>() / (1 << 30)) << " GiB | " << fig(r->at("mb_per_s").get<double>()) << " | "
    << num(hwm, 1) << " MiB | " << num(buffers, 0) << " MiB (" << tag(*r, "buffers") << ") | < " << num(limit, 0)
    << " MiB | " << met(hwm < limit) << " |\n\n";
}

// Relay and vigo-fs counters of each mount, in the order they ran.
void traffic(std::ostringstream& o, const std::vector<json>& records) {
  bool header = false;
  for (const json& r : records) {
    if (r.value("kind", std::string{}) != "relay" || !r.contains("relay")) continue;
    if (!header) {
      o << "### Where the bytes went on the WAN (per mount: relay counters, vigo-fs status)\n\n"
        << "| mount | system | link down MB | link up MB | link busy down s | connections | vigo-fs range / chunk "
           "fetches | vigo-fs bytes fetched MB | mean fetch ms |\n"
        << "|---|---|---|---|---|---|---|---|---|\n";
      header = true;
    }
    const json& rel = r.at("relay");
    const std::string cell = tag(r, "cell"), system = tag(r, "system"), image = tag(r, "image");
    const json* st =
        find_record(records, {{"cell", cell}, {"system", system}, {"net", "WAN"}, {"image", image}}, "status");
    std::string fetches = "-", fetched = "-", mean = "-";
    if (st != nullptr && st->contains("status")) {
      const json& s = st->at("status");
      fetches = std::to_string(s.value("range_fetches", 0)) + " / " + std::to_string(s.value("chunk_fetches", 0));
      fetched = fig(s.value("bytes_fetched", 0.0) / 1e6);
      mean = fig(s.value("mean_fetch_ms", 0.0));
    }
    o << "| " << image << " " << cell << " | " << system << " | " << fig(rel.at("down").value("bytes", 0.0) / 1e6)
      << " | " << fig(rel.at("up").value("bytes", 0.0) / 1e6) << " | "
      << fig(rel.at("down").value("busy_ms", 0.0) / 1e3) << " | " << rel.value("connections", 0) << " | " << fetches
      << " | " << fetched << " | " << mean << " |\n";
  }
  if (header) o << "\n";
}

// Every system must have read the same bytes for the same reads.
void identity(std::ostringstream& o, const std::vector<json>& records) {
  std::map<std::string, std::set<std::string>> sums;
  std::map<std::string, std::set<std::string>> who;
  for (const json& r : records) {
    if (r.value("kind", std::string{"read"}) != "read" || !r.contains("checksum")) continue;
    const std::string key = tag(r, "image") + " " + tag(r, "test") + " extent=" + tag(r, "extent") +
                            " ops=" + std::to_string(r.value("ops", 0)) + " seed=" + std::to_string(r.value("seed", 0));
    sums[key].insert(r.at("checksum").get<std::string>());
    who[key].insert(tag(r, "system"));
  }
  std::size_t bad = 0;
  for (const auto& [key, s] : sums) {
    if (s.size() > 1) {
      ++bad;
      o << "- DIFFERENT BYTES for " << key << "\n";
    }
  }
  if (bad == 0) o << "Data check: every system and pass read identical bytes (" << sums.size() << " read sets).\n\n";
}

}  // namespace

std::string render_report(const std::vector<json>& records, const ReportOptions& options) {
  std::ostringstream o;
  sequential(o, records, options);
  qd1(o, records, "rand4k", "Random 4 KiB reads, queue depth 1, `random` image", true, options);
  qd1(o, records, "rand64k", "Random 64 KiB reads, queue depth 1, `random` image", false, options);
  parallel(o, records);
  memory(o, records, options);
  traffic(o, records);
  identity(o, records);
  return o.str();
}

}  // namespace vigo::bench
