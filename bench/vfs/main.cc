// SPDX-License-Identifier: Apache-2.0
// vigo-bench-vfs: the load generator and report of bench/vfs/run, which
// compares vigo-fs with sshfs and the local file (docs/benchmarks.md).
//
//   read --file F --pattern seq|rand [--block-kib N] [--ops N] [--threads K]
//        [--limit-mib M] [--seed S] [--repeat N] [--watch-pid PID] [--tag k=v ...]
//       times the reads (load.h) and prints one JSON record (of the median
//       pass when repeated);
//   evict PATH...       drops the page cache of files (posix_fadvise);
//   wait-idle --status MOUNT/.vigo-status [--timeout-s N]
//       waits until vigo-fs has nothing queued or in flight;
//   note --kind K --tag k=v ... --json NAME=FILE
//       prints a record holding the last JSON line of FILE under NAME;
//   free-port           prints a free loopback port;
//   report --results FILE [--rtt-ms 40] [--link-mbit 100]
//       prints the Markdown tables (report.h).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "load.h"
#include "report.h"
#include "vigo/common/system.h"

namespace {

using json = nlohmann::json;
using namespace vigo::bench;

json tags_of(const std::vector<std::string>& kv) {
  json t = json::object();
  for (const std::string& s : kv) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw std::runtime_error("--tag wants key=value, got " + s);
    t[s.substr(0, eq)] = s.substr(eq + 1);
  }
  return t;
}

// VmHWM and VmRSS of a process, in KiB.
json memory_of(int pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  if (!in) throw std::runtime_error("no process " + std::to_string(pid));
  json out{{"pid", pid}};
  std::string line;
  while (std::getline(in, line)) {
    for (const char* key : {"VmHWM", "VmRSS"}) {
      if (line.rfind(std::string{key} + ":", 0) == 0) {
        std::string lower = key;
        for (char& c : lower) c = static_cast<char>(std::tolower(c));
        out[lower + "_kib"] = std::stoull(line.substr(line.find(':') + 1));
      }
    }
  }
  return out;
}

// The JSON in a file: the whole file (vigo-fs's pretty-printed status), or
// else its last line that is an object (the relay prints text, then JSON).
json json_in_file(const std::string& path) {
  std::ifstream in{path};
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream all;
  all << in.rdbuf();
  const std::string text = all.str();
  json whole = json::parse(text, nullptr, false);
  if (!whole.is_discarded()) return whole;
  std::istringstream lines{text};
  std::string line, last;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.front() == '{') last = line;
  }
  if (last.empty()) throw std::runtime_error("no JSON in " + path);
  return json::parse(last);
}

// Prints a loopback port that was free a moment ago.
int free_port() {
  std::cout << vigo::free_tcp_port() << "\n";
  return 0;
}

int do_read(const LoadSpec& spec, const std::vector<std::string>& tags, int watch_pid, int repeat) {
  // Several passes (cache-speed cells on a noisy machine): keep the median.
  std::vector<LoadResult> passes;
  for (int i = 0; i < repeat; ++i) passes.push_back(run_load(spec));
  std::vector<double> pass_mb_s;
  for (const LoadResult& p : passes)
    pass_mb_s.push_back(p.seconds > 0 ? static_cast<double>(p.bytes) / 1e6 / p.seconds : 0);
  std::sort(passes.begin(), passes.end(),
            [](const LoadResult& a, const LoadResult& b) { return a.seconds < b.seconds; });
  const LoadResult& r = passes[passes.size() / 2];
  json j;
  j["kind"] = "read";
  j["tags"] = tags_of(tags);
  j["file"] = spec.file;
  j["file_size"] = r.file_size;
  j["pattern"] = spec.pattern == Pattern::kSequential ? "seq" : "rand";
  j["block"] = spec.block;
  j["threads"] = spec.threads;
  j["seed"] = spec.pattern == Pattern::kSequential ? 0 : spec.seed;
  j["loops"] = spec.loops;
  j["ops"] = r.ops;
  j["bytes"] = r.bytes;
  j["seconds"] = r.seconds;
  j["open_ms"] = r.open_ms;
  j["mb_per_s"] = r.seconds > 0 ? static_cast<double>(r.bytes) / 1e6 / r.seconds : 0.0;
  j["ops_per_s"] = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0.0;
  double sum = 0;
  for (double v : r.latency_ms) sum += v;
  j["lat_ms"] = {{"mean", r.latency_ms.empty() ? 0.0 : sum / static_cast<double>(r.latency_ms.size())},
                 {"p50", percentile(r.latency_ms, 0.50)},
                 {"p90", percentile(r.latency_ms, 0.90)},
                 {"p95", percentile(r.latency_ms, 0.95)},
                 {"p99", percentile(r.latency_ms, 0.99)},
                 {"max", r.latency_ms.empty() ? 0.0 : r.latency_ms.back()}};
  char sum_hex[17];
  std::snprintf(sum_hex, sizeof sum_hex, "%016" PRIx64, r.checksum);
  j["checksum"] = sum_hex;
  if (repeat > 1) j["passes_mb_per_s"] = pass_mb_s;
  if (watch_pid > 0) j["watched"] = memory_of(watch_pid);
  std::cout << j.dump() << std::endl;
  return 0;
}

int do_wait_idle(const std::string& status, int timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{timeout_s};
  while (true) {
    std::ifstream in{status};
    json s = json::parse(in, nullptr, false);
    if (fetches_idle(s)) return 0;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "vigo-bench-vfs: " << status << " not idle after " << timeout_s << " s\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
}

int do_report(const std::string& results, const ReportOptions& o) {
  std::ifstream in{results};
  if (!in) throw std::runtime_error("cannot read " + results);
  std::vector<json> records;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) records.push_back(json::parse(line));
  }
  std::cout << render_report(records, o);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigo-bench-vfs: reads a file with a pattern and reports (bench/vfs/run)"};
  app.require_subcommand(1);

  LoadSpec spec;
  std::string pattern = "seq";
  std::size_t block_kib = 1024;
  std::uint64_t limit_mib = 0;
  std::vector<std::string> tags;
  int watch_pid = 0;
  int repeat = 1;
  auto* read = app.add_subcommand("read", "Time reads of a file and print a JSON record");
  read->add_option("--file", spec.file, "The file")->required();
  read->add_option("--pattern", pattern, "seq or rand")->check(CLI::IsMember({"seq", "rand"}));
  read->add_option("--block-kib", block_kib, "Read size, KiB")->check(CLI::Range(1, 16384));
  read->add_option("--ops", spec.ops, "rand: reads in total")->check(CLI::Range(1, 100'000'000));
  read->add_option("--threads", spec.threads, "rand: parallel readers")->check(CLI::Range(1, 256));
  read->add_option("--limit-mib", limit_mib, "Only the first MiB of the file (0: all)");
  read->add_option("--seed", spec.seed, "rand: seed of reader 0 (reader t: seed + t * 1000003)");
  read->add_option("--loops", spec.loops, "rand: each reader reads its offsets this many times")
      ->check(CLI::Range(1, 100000));
  read->add_option("--think-ms", spec.think_ms, "rand: pause after each read, ms (not in the latencies)")
      ->check(CLI::Range(0.0, 60000.0));
  read->add_option("--repeat", repeat, "Passes; the median one is reported (all passes' MB/s too)")
      ->check(CLI::Range(1, 100));
  read->add_option("--watch-pid", watch_pid, "Report this process's VmHWM/VmRSS after the reads");
  read->add_option("--tag", tags, "key=value, copied into the record");

  std::vector<std::string> evict_paths;
  auto* evict = app.add_subcommand("evict", "Drop the page cache of files or directory trees");
  evict->add_option("paths", evict_paths, "Files or directories")->required();

  std::string status;
  int timeout_s = 600;
  auto* wait = app.add_subcommand("wait-idle", "Wait until vigo-fs has no request queued or in flight");
  wait->add_option("--status", status, "MOUNT/.vigo-status")->required();
  wait->add_option("--timeout-s", timeout_s, "Give up after this long")->check(CLI::Range(1, 86400));

  std::string kind;
  std::vector<std::string> note_tags, note_json;
  auto* note = app.add_subcommand("note", "Print a record wrapping another tool's JSON");
  note->add_option("--kind", kind, "Record kind (relay, status, ...)")->required();
  note->add_option("--tag", note_tags, "key=value");
  note->add_option("--json", note_json, "NAME=FILE: the last JSON line (or whole JSON) of FILE as NAME");

  std::string results;
  ReportOptions ro;
  auto* report = app.add_subcommand("report", "Print the Markdown tables of a results file");
  report->add_option("--results", results, "JSON lines from read and note")->required();
  report->add_option("--rtt-ms", ro.rtt_ms, "The WAN's round trip");
  report->add_option("--link-mbit", ro.link_mbit, "The WAN's rate per direction");

  auto* port = app.add_subcommand("free-port", "Print a free loopback TCP port");

  CLI11_PARSE(app, argc, argv);
  try {
    if (read->parsed()) {
      spec.pattern = pattern == "seq" ? Pattern::kSequential : Pattern::kRandom;
      spec.block = block_kib << 10;
      spec.limit = limit_mib << 20;
      if (spec.pattern == Pattern::kRandom && spec.ops == 0) throw std::runtime_error("rand needs --ops");
      if (spec.pattern == Pattern::kSequential && spec.threads != 1) throw std::runtime_error("seq uses one reader");
      return do_read(spec, tags, watch_pid, repeat);
    }
    if (evict->parsed()) {
      for (const auto& p : evict_paths) (void)evict_page_cache(p);
      return 0;
    }
    if (wait->parsed()) return do_wait_idle(status, timeout_s);
    if (port->parsed()) return free_port();
    if (note->parsed()) {
      json j{{"kind", kind}, {"tags", tags_of(note_tags)}};
      for (const std::string& nj : note_json) {
        const auto eq = nj.find('=');
        if (eq == std::string::npos) throw std::runtime_error("--json wants NAME=FILE, got " + nj);
        j[nj.substr(0, eq)] = json_in_file(nj.substr(eq + 1));
      }
      std::cout << j.dump() << std::endl;
      return 0;
    }
    return do_report(results, ro);
  } catch (const std::exception& e) {
    std::cerr << "vigo-bench-vfs: " << e.what() << "\n";
    return 1;
  }
}
