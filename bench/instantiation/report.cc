// SPDX-License-Identifier: Apache-2.0
#include "report.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "vigo/common/error.h"
#include "vigo/common/subprocess.h"

namespace vigo::bench {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Stat {
  double median = 0, min = 0, max = 0;
  int n = 0;
};

Stat stat_of(std::vector<double> v) {
  Stat s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = static_cast<int>(v.size());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return s;
}

std::string fmt(const char* format, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, a);
  return buf;
}

// The columns of the table: (source, mode) with its heading.
struct Column {
  const char* source;
  const char* mode;
  const char* heading;
  const char* net;  // "" for local
};
constexpr Column kColumns[] = {
    {"local", "cold", "local file (disk)", ""},
    {"local", "warm", "local file (page cache)", ""},
    {"vfs-lan", "cold", "vigo-fs cold LAN", "LAN"},
    {"vfs-lan", "prefetch", "vigo-fs cold + prefetch LAN", "LAN"},
    {"vfs-lan", "warm", "vigo-fs warm LAN", "LAN"},
    {"sshfs-lan", "cold", "sshfs LAN", "LAN"},
    {"vfs-wan", "cold", "vigo-fs cold WAN", "WAN"},
    {"vfs-wan", "prefetch", "vigo-fs cold + prefetch WAN", "WAN"},
    {"vfs-wan", "warm", "vigo-fs warm WAN", "WAN"},
    {"sshfs-wan", "cold", "sshfs WAN", "WAN"},
};

constexpr std::size_t kBaseline = 1;     // local file, page cache: what the targets compare with
constexpr std::size_t kFirstRemote = 2;  // the columns that fetch over a mount

struct Results {
  json setup;
  // op -> "source/mode" -> values
  std::map<std::string, std::map<std::string, std::vector<double>>> seconds, bytes_ready, bytes_total;
  std::map<std::string, std::vector<double>> guest_read;  // op -> bytes the guest read (boot)
  std::map<std::string, std::map<std::string, std::vector<double>>> workload;  // workload -> source -> s
};

Results read_results(const fs::path& file) {
  std::ifstream in{file};
  if (!in) throw Error{ErrorCode::kInvalidArgument, "cannot read " + file.string(), "results"};
  Results r;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      throw Error{ErrorCode::kInvalidArgument, file.string() + ":" + std::to_string(n) + ": not a JSON object",
                  "results"};
    }
    const std::string kind = j.value("kind", "");
    if (kind == "setup") {
      r.setup = j;
    } else if (kind == "start") {
      const std::string mode = j.value("mode", "");
      if (mode == "warmup" || mode == "record") continue;
      const std::string op = j.value("op", ""), key = j.value("source", "") + "/" + mode;
      r.seconds[op][key].push_back(j.value("seconds", 0.0));
      r.bytes_ready[op][key].push_back(j.value("bytes_at_ready", 0.0));
      r.bytes_total[op][key].push_back(j.value("bytes_total", 0.0));
      if (j.value("guest_read_bytes", 0.0) > 0) r.guest_read[op].push_back(j.value("guest_read_bytes", 0.0));
    } else if (kind == "workload") {
      r.workload[j.value("workload", "")][j.value("source", "")].push_back(j.value("seconds", 0.0));
    }
  }
  if (r.setup.is_null()) throw Error{ErrorCode::kInvalidArgument, file.string() + " has no setup record", "results"};
  return r;
}

std::optional<Stat> cell(const Results& r, const std::string& op, const std::string& source, const std::string& mode,
                         const std::map<std::string, std::map<std::string, std::vector<double>>>& of) {
  const auto o = of.find(op);
  if (o == of.end()) return std::nullopt;
  const auto c = o->second.find(source + "/" + mode);
  if (c == o->second.end() || c->second.empty()) return std::nullopt;
  (void)r;
  return stat_of(c->second);
}

std::string mb(double bytes) { return fmt("%.1f", bytes / 1e6); }

void target(std::ostringstream& t, const std::string& what, const std::string& measured, bool met) {
  t << "| " << what << " | " << measured << " | " << (met ? "met" : "**missed**") << " |\n";
}

// Plots the ops that have a measured cell (a run of --ops boot has no
// resume series: gnuplot refuses an all-NaN histogram); false if there is
// none (no plot made).
bool plot(const Results& r, const fs::path& png) {
  const fs::path data = png.parent_path() / "instantiation.dat";
  const fs::path script = png.parent_path() / "instantiation.gp";
  std::vector<std::string> series;
  for (const auto& [op, column] : {std::pair{"boot", 2}, std::pair{"resume", 5}}) {
    const bool measured = std::any_of(std::begin(kColumns), std::end(kColumns), [&, op = op](const auto& c) {
      return cell(r, op, c.source, c.mode, r.seconds).has_value();
    });
    if (!measured) continue;
    const std::string using_ =
        "using " + std::to_string(column) + ":" + std::to_string(column + 1) + ":" + std::to_string(column + 2);
    series.push_back((series.empty() ? "'" + data.string() + "' " + using_ + ":xtic(1)" : "'' " + using_) +
                     " title '" + std::string{op} + "'");
  }
  if (series.empty()) return false;
  {
    std::ofstream d{data};
    d << "# column boot_median boot_min boot_max resume_median resume_min resume_max\n";
    for (const auto& c : kColumns) {
      d << '"' << c.heading << '"';
      for (const char* op : {"boot", "resume"}) {
        const auto s = cell(r, op, c.source, c.mode, r.seconds);
        if (s) {
          d << ' ' << s->median << ' ' << s->min << ' ' << s->max;
        } else {
          d << " NaN NaN NaN";
        }
      }
      d << '\n';
    }
  }
  std::ofstream g{script};
  g << "set terminal pngcairo size 1200,600 font 'DejaVu Sans,10'\n"
    << "set output '" << png.string() << "'\n"
    << "set title 'vigo: time from the API request to a running workspace (median of " << r.setup.value("reps", 0)
    << ", bars: min-max)'\n"
    << "set ylabel 'seconds'\nset style data histogram\nset style histogram errorbars gap 1 lw 1\n"
    << "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset xtics rotate by -30 scale 0\n"
    << "set key top left\nset grid ytics\nset yrange [0:*]\n"
    << "plot ";
  for (std::size_t i = 0; i < series.size(); ++i) g << (i ? ", " : "") << series[i];
  g << "\n";
  g.close();
  const RunResult res = run_command({"gnuplot", script.string()}, std::chrono::seconds{60});
  if (res.exit_code != 0) throw Error{ErrorCode::kInternal, "gnuplot failed: " + res.output};
  return true;
}

}  // namespace

std::string make_report(const ReportOptions& o) {
  const Results r = read_results(o.results);
  const json& s = r.setup;
  const double wan_rate = s.value("rate_mbit", 100) / 8.0;  // MB/s
  const double lan_rate = s.value("lan_link_mb_per_s", 0.0);
  std::ostringstream t;

  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  const json& ck = s["checkpoint"];
  t << "`" << o.command << "`, " << date << ". Guest: 1 vCPU, " << s.value("memory_mib", 0)
    << " MiB, TCG; root disk " << mb(s.value("image_bytes", 0.0)) << " MB (image " << s.value("image", "")
    << "), of which it reads " << mb(s.value("guest_boot_read_bytes", 0.0)) << " MB while booting ("
    << s.value("boot_read_mib", 0) << " MiB of files plus the system); post-boot checkpoint: memory "
    << mb(ck["memory"].value("size_bytes", 0.0)) << " MB, disk overlay " << mb(ck["disk"].value("size_bytes", 0.0))
    << " MB. WAN: vigo-wan-relay, " << 2 * s.value("delay_ms", 0) << " ms round trip, " << s.value("rate_mbit", 0)
    << " Mbit/s each way; LAN: loopback, one ssh channel " << fmt("%.0f", lan_rate)
    << " MB/s. vigo-fs and sshfs: " << s.value("connections", 0) << " ssh connections each. Each cell "
    << s.value("reps", 0) << " times; median (min-max) in seconds from POST /v1/workspaces to `running`.\n\n";

  t << "| start |";
  for (const auto& c : kColumns) t << ' ' << c.heading << " |";
  t << "\n|---|";
  for (std::size_t i = 0; i < std::size(kColumns); ++i) t << "---|";
  t << '\n';
  for (const char* op : {"boot", "resume"}) {
    t << "| " << op << " |";
    for (const auto& c : kColumns) {
      const auto st = cell(r, op, c.source, c.mode, r.seconds);
      t << ' ' << (st ? fmt("%.2f", st->median) + " (" + fmt("%.2f", st->min) + "-" + fmt("%.2f", st->max) + ")" : "-")
        << " |";
    }
    t << '\n';
  }
  t << "\nIn-VIGO 2003 (local disk; GVFS cold LAN, cold WAN, warm LAN, warm WAN): "
       "reboot 48 / 121 / 434 / 52 / 56 s, resume 4 / 80 / 1386 / 7 / 16 s.\n\n";

  t << "Ratios to the local file in the page cache (same run; the targets' baseline):\n\n| start |";
  for (std::size_t i = 0; i < std::size(kColumns); ++i) {
    if (i != kBaseline) t << ' ' << kColumns[i].heading << " |";
  }
  t << "\n|---|";
  for (std::size_t i = 1; i < std::size(kColumns); ++i) t << "---|";
  t << '\n';
  for (const char* op : {"boot", "resume"}) {
    const auto local = cell(r, op, "local", "warm", r.seconds);
    t << "| " << op << " |";
    for (std::size_t i = 0; i < std::size(kColumns); ++i) {
      if (i == kBaseline) continue;
      const auto st = cell(r, op, kColumns[i].source, kColumns[i].mode, r.seconds);
      t << ' ' << (st && local ? fmt("%.2fx", st->median / local->median) : "-") << " |";
    }
    t << '\n';
  }

  t << "\nBytes that came over the mount (median, MB): by the time the workspace ran / in all, once idle "
       "(background prefetch and fills included). vigo-fs: chunk bytes as sent (zstd where it pays); sshfs: "
       "SFTP bytes read from ssh.\n\n| start |";
  for (std::size_t i = kFirstRemote; i < std::size(kColumns); ++i) t << ' ' << kColumns[i].heading << " |";
  t << "\n|---|";
  for (std::size_t i = kFirstRemote; i < std::size(kColumns); ++i) t << "---|";
  t << '\n';
  for (const char* op : {"boot", "resume"}) {
    t << "| " << op << " |";
    for (std::size_t i = kFirstRemote; i < std::size(kColumns); ++i) {
      const auto a = cell(r, op, kColumns[i].source, kColumns[i].mode, r.bytes_ready);
      const auto b = cell(r, op, kColumns[i].source, kColumns[i].mode, r.bytes_total);
      t << ' ' << (a && b ? mb(a->median) + " / " + mb(b->median) : "-") << " |";
    }
    t << '\n';
  }

  // The targets (issue 6), each from medians of this run.
  t << "\nTargets:\n\n| target | measured | |\n|---|---|---|\n";
  for (const char* op : {"boot", "resume"}) {
    const auto local = cell(r, op, "local", "warm", r.seconds);
    if (!local) continue;
    for (const char* net : {"LAN", "WAN"}) {
      const std::string vfs = std::string{"vfs-"} + (net[0] == 'L' ? "lan" : "wan");
      const std::string sshfs = std::string{"sshfs-"} + (net[0] == 'L' ? "lan" : "wan");
      const double rate = net[0] == 'L' ? lan_rate : wan_rate;
      if (const auto w = cell(r, op, vfs, "warm", r.seconds)) {
        target(t, std::string{op} + " " + net + ": warm <= 1.1x local", fmt("%.2fx", w->median / local->median),
               w->median <= 1.1 * local->median);
      }
      const auto p = cell(r, op, vfs, "prefetch", r.seconds);
      const auto pb = cell(r, op, vfs, "prefetch", r.bytes_ready);
      if (p && pb && rate > 0) {
        const double transfer = pb->median / 1e6 / rate;
        const double serial = local->median + transfer;
        const double overlap = std::max(local->median, transfer);
        target(t,
               std::string{op} + " " + net + ": cold + prefetch <= 1.25x (local + bytes / link) = 1.25 x (" +
                   fmt("%.2f", local->median) + " + " + fmt("%.2f", transfer) + ") s",
               fmt("%.2f s", p->median) + " = " + fmt("%.2fx", p->median / serial) + "; overlap bound " +
                   fmt("%.2f s", overlap) + " (" + fmt("%.2fx", p->median / overlap) + ")",
               p->median <= 1.25 * serial);
      }
      const auto sh = cell(r, op, sshfs, "cold", r.seconds);
      for (const char* mode : {"cold", "prefetch"}) {
        const auto c = cell(r, op, vfs, mode, r.seconds);
        if (!c || !sh) continue;
        const double need = net[0] == 'W' ? 2.0 : 1.0;
        target(t,
               std::string{op} + " " + net + ": vigo-fs " + mode + " faster than sshfs" +
                   (need > 1 ? " by >= 2x" : ""),
               fmt("%.2fx", sh->median / c->median) + " (" + fmt("%.2f", c->median) + " s vs " +
                   fmt("%.2f", sh->median) + " s)",
               sh->median >= need * c->median && sh->median > c->median);
      }
    }
  }
  const auto boot_read = r.guest_read.contains("boot") ? stat_of(r.guest_read.at("boot")).median : 0.0;
  for (const char* net : {"lan", "wan"}) {
    const auto pb = cell(r, "boot", std::string{"vfs-"} + net, "prefetch", r.bytes_total);
    if (pb && boot_read > 0) {
      target(t, std::string{"boot "} + net + ": bytes fetched <= what the guest reads",
             mb(pb->median) + " MB fetched, guest read " + mb(boot_read) + " MB", pb->median <= boot_read);
    }
  }
  for (const auto& [w, by_source] : r.workload) {
    if (!by_source.contains("local") || !by_source.contains("vfs-lan")) continue;
    const Stat l = stat_of(by_source.at("local")), v = stat_of(by_source.at("vfs-lan"));
    const double overhead = (v.median / l.median - 1) * 100;
    target(t, w + ": run-time overhead on vigo-fs < 2%",
           fmt("%+.1f%%", overhead) + " (" + fmt("%.2f", v.median) + " s vs " + fmt("%.2f", l.median) + " s local)",
           overhead < 2.0);
  }

  if (!r.workload.empty()) {
    t << "\nWorkloads inside the guest (host clock, `running` to the result line; median (min-max) s; vigo-fs LAN "
         "with the chunks cached, after one unmeasured run per source):\n\n| workload | local file | vigo-fs | overhead |\n|---|---|---|---|\n";
    for (const auto& [w, by_source] : r.workload) {
      const Stat l = stat_of(by_source.contains("local") ? by_source.at("local") : std::vector<double>{});
      const Stat v = stat_of(by_source.contains("vfs-lan") ? by_source.at("vfs-lan") : std::vector<double>{});
      t << "| " << w << " | " << fmt("%.2f", l.median) << " (" << fmt("%.2f", l.min) << "-" << fmt("%.2f", l.max)
        << ") | " << fmt("%.2f", v.median) << " (" << fmt("%.2f", v.min) << "-" << fmt("%.2f", v.max) << ") | "
        << (l.median > 0 ? fmt("%+.1f%%", (v.median / l.median - 1) * 100) : "-") << " |\n";
    }
  }
  if (!o.plot_png.empty()) {
    if (plot(r, o.plot_png)) t << "\n![instantiation times](" << o.plot_png.filename().string() << ")\n";
  }
  return t.str();
}

}  // namespace vigo::bench
