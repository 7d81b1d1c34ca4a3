// SPDX-License-Identifier: Apache-2.0
// vigo-bench-gis: the GIS against a synthetic grid (default 10,000 hosts on
// 100 networks, 100,000 running VMs and their futures) in a real, private
// PostgreSQL, with the plain SQL a user would write as the baseline in the
// same run. Prints a Markdown table of figures. See docs/benchmarks.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <pqxx/pqxx>

#include "vigo/common/error.h"
#include "vigo/gis/claims.h"
#include "vigo/gis/database.h"
#include "vigo/gis/local_cluster.h"
#include "vigo/gis/migrator.h"
#include "vigo/gis/queries.h"
#include "vigo/gis/registry.h"
#include "vigo/gis/synthetic_grid.h"

namespace {

using Clock = std::chrono::steady_clock;
using vigo::gis::Database;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Stats {
  double p50 = 0, p99 = 0, max = 0;
  std::size_t rows = 0;
};

Stats percentiles(std::vector<double> samples, std::size_t rows) {
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) { return samples[std::min(samples.size() - 1, static_cast<std::size_t>(q * samples.size()))]; };
  return {at(0.50), at(0.99), samples.back(), rows};
}

template <typename F>
Stats time_runs(int runs, F&& once) {
  std::vector<double> samples;
  std::size_t rows = 0;
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    rows = once(i);
    samples.push_back(ms_since(start));
  }
  return percentiles(std::move(samples), rows);
}

struct Row {
  std::string what, figure, baseline, note;
};

std::string fmt(const char* f, double a, double b = 0) {
  char buf[128];
  std::snprintf(buf, sizeof buf, f, a, b);
  return buf;
}

std::string latency(const Stats& s) { return fmt("p50 %.2f ms, p99 %.2f ms", s.p50, s.p99); }

// Runs plain SQL with a statement timeout; nullopt on timeout.
std::optional<Stats> time_sql(Database& db, const std::string& sql, int runs, int timeout_ms) {
  std::vector<double> samples;
  std::size_t rows = 0;
  for (int i = 0; i < runs; ++i) {
    try {
      auto start = Clock::now();
      rows = db.read([&](pqxx::transaction_base& txn) {
        txn.exec("SET LOCAL statement_timeout = " + std::to_string(timeout_ms));
        return txn.exec(sql).size();
      });
      samples.push_back(ms_since(start));
    } catch (const vigo::Error&) {
      return std::nullopt;
    }
  }
  return percentiles(std::move(samples), rows);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigo GIS benchmark"};
  std::string db_url, state_dir;
  vigo::gis::SyntheticGridSpec grid;
  grid.sites = 10;
  grid.networks = 100;
  grid.hosts = 10'000;
  grid.users = 100;
  grid.vms = 100'000;
  grid.seed = 42;
  int runs = 200, claim_threads = 32, claims = 1000, baseline_timeout_s = 30;
  double heartbeat_seconds = 5;
  app.add_option("--db", db_url, "Use this (empty) database instead of a private cluster");
  app.add_option("--state-dir", state_dir, "Where the private cluster lives (default: a temp dir)");
  app.add_option("--hosts", grid.hosts, "Hosts");
  app.add_option("--networks", grid.networks, "Networks");
  app.add_option("--vms", grid.vms, "Running VMs");
  app.add_option("--runs", runs, "Runs per latency figure");
  app.add_option("--claims", claims, "Concurrent claims in total");
  app.add_option("--claim-threads", claim_threads, "Connections making claims");
  app.add_option("--heartbeat-seconds", heartbeat_seconds, "How long to sustain heartbeats");
  app.add_option("--baseline-timeout", baseline_timeout_s, "Seconds before a baseline query is given up");
  CLI11_PARSE(app, argc, argv);

  try {
    std::optional<vigo::gis::LocalCluster> cluster;
    std::filesystem::path tmp;
    if (db_url.empty()) {
      tmp = state_dir.empty() ? std::filesystem::temp_directory_path() / ("vigo-bench-gis-" + std::to_string(::getpid()))
                              : std::filesystem::path{state_dir};
      vigo::gis::LocalClusterOptions options;
      options.data_dir = tmp / "pg";
      options.settings = {{"shared_buffers", "1GB"}, {"max_connections", "100"}, {"work_mem", "16MB"}};
      cluster.emplace(vigo::gis::LocalCluster::start(options));
      cluster->create_database("bench");
      db_url = cluster->connection_string("bench");
    }
    vigo::gis::Migrator{db_url}.migrate();
    Database db{vigo::gis::DatabaseOptions{db_url, static_cast<std::size_t>(claim_threads + 2)}};

    std::vector<Row> rows;
    auto load = vigo::gis::load_synthetic_grid(db, grid);
    db.write([](pqxx::transaction_base& txn) { txn.exec("ANALYZE"); });
    rows.push_back({"load synthetic grid", fmt("%.1f s", load.elapsed.count() / 1000.0), "",
                    std::to_string(load.hosts) + " hosts, " + std::to_string(load.vms) + " VMs, " +
                        std::to_string(load.futures) + " futures"});
    std::cerr << "loaded: " << rows.back().note << "\n";

    vigo::gis::Queries q{db};
    // Query 1.
    vigo::gis::FitRequest fit;
    fit.memory_mb = 1024;
    auto q1 = time_runs(runs, [&](int) { return q.hosts_that_fit(fit).size(); });
    auto q1_base = time_sql(db,
                            "SELECT h.id, h.name FROM gis.hosts h LEFT JOIN gis.vms v ON v.host_id = h.id "
                            "AND v.state IN ('pending','preparing','starting','running','paused','stopping') "
                            "WHERE h.state = 'up' GROUP BY h.id "
                            "HAVING h.memory_mb - coalesce(sum(v.memory_mb), 0) >= 1024 "
                            "AND h.cpus - coalesce(sum(v.vcpus), 0) >= 1 "
                            "ORDER BY h.memory_mb - coalesce(sum(v.memory_mb), 0) DESC LIMIT 100",
                            std::max(5, runs / 10), baseline_timeout_s * 1000);
    rows.push_back({"Q1 hosts for a 1 GB VM (100 rows)", latency(q1),
                    q1_base ? latency(*q1_base) : "timeout", "target p50 and p99 < 5 ms"});
    std::cerr << "Q1 done\n";

    // Query 2: deterministic, sampled, over futures.
    vigo::gis::VmSetRequest sets;
    sets.n = 4;
    sets.min_memory_mb = 512;
    sets.max_memory_mb = 1024;
    sets.limit = 100;
    auto q2 = time_runs(std::max(10, runs / 4), [&](int) { return q.vm_sets(sets).size(); });
    auto q2_base = time_sql(
        db,
        "SELECT a.id, b.id, c.id, d.id FROM gis.vms a JOIN gis.hosts ha ON ha.id = a.host_id "
        "JOIN gis.vms b ON b.id > a.id JOIN gis.hosts hb ON hb.id = b.host_id AND hb.network_id = ha.network_id "
        "JOIN gis.vms c ON c.id > b.id JOIN gis.hosts hc ON hc.id = c.host_id AND hc.network_id = ha.network_id "
        "JOIN gis.vms d ON d.id > c.id JOIN gis.hosts hd ON hd.id = d.host_id AND hd.network_id = ha.network_id "
        "WHERE a.memory_mb + b.memory_mb + c.memory_mb + d.memory_mb BETWEEN 512 AND 1024 LIMIT 100",
        3, baseline_timeout_s * 1000);
    rows.push_back({"Q2 4 VMs, 512 MB-1 GB total, first 100 sets", latency(q2),
                    q2_base ? latency(*q2_base) : fmt("no answer within %.0f s", baseline_timeout_s),
                    "target < 50 ms; " + std::to_string(q2.rows) + " sets"});
    sets.source = vigo::gis::SetSource::kBoth;
    std::mt19937 seeds{7};
    auto q2s = time_runs(std::max(10, runs / 4), [&](int) {
      sets.seed = std::uniform_real_distribution<double>{-1, 1}(seeds);
      return q.vm_sets(sets).size();
    });
    rows.push_back({"Q2 sampled, VMs and futures, first 100 sets", latency(q2s), "", std::to_string(q2s.rows) + " sets"});
    std::cerr << "Q2 done\n";

    // Query 3.
    auto q3 = time_runs(runs, [&](int) { return q.gang_place_profile("large", 16, true).size(); });
    rows.push_back({"Q3 16 'large' VMs on distinct hosts, one network", latency(q3), "", "target < 20 ms"});
    auto q3p = time_runs(runs, [&](int) { return q.gang_place_profile("xlarge", 16, false).size(); });
    rows.push_back({"Q3 16 'xlarge' VMs packed, one network", latency(q3p), "", ""});
    std::cerr << "Q3 done\n";

    // Query 4.
    auto q4 = time_runs(std::max(10, runs / 10), [&](int) { return q.capacity_by_network().size(); });
    rows.push_back({"Q4 capacity of all 100 networks", latency(q4), "", ""});
    auto q4i = time_runs(runs, [&](int i) { return q.host_failure_impact("host-" + fmt("%05.0f", i % grid.hosts)).size(); });
    rows.push_back({"Q4 failure impact of one host", latency(q4i), "", ""});

    // Heartbeats: batches of every host's id, sustained.
    vigo::gis::Registry registry{db};
    std::vector<std::int64_t> ids = db.read([](pqxx::transaction_base& txn) {
      std::vector<std::int64_t> out;
      for (const auto& r : txn.exec("SELECT id FROM gis.hosts ORDER BY id")) out.push_back(r[0].as<std::int64_t>());
      return out;
    });
    // Re-registration: every host registers again (an upsert per host; the
    // hosts' sizes are unchanged, so their futures stay as they are).
    std::vector<vigo::gis::HostSpec> specs = db.read([](pqxx::transaction_base& txn) {
      std::vector<vigo::gis::HostSpec> out;
      for (const auto& r : txn.exec("SELECT h.name, n.name, h.libvirt_uri, h.cpus, h.memory_mb, h.disk_gb, h.arch "
                                    "FROM gis.hosts h JOIN gis.networks n ON n.id = h.network_id ORDER BY h.id")) {
        out.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(), r[3].as<std::int32_t>(),
                       r[4].as<std::int64_t>(), r[5].as<std::int64_t>(), r[6].as<std::string>(), {}});
      }
      return out;
    });
    auto reg_start = Clock::now();
    for (std::size_t off = 0; off < specs.size(); off += 2500) {
      registry.register_hosts(std::span<const vigo::gis::HostSpec>{specs.data() + off,
                                                                  std::min<std::size_t>(2500, specs.size() - off)});
    }
    rows.push_back({"host re-registration, batches of 2,500, one connection",
                    fmt("%.0f /s", specs.size() / (ms_since(reg_start) / 1000.0)), "", "target >= 10,000 /s"});
    std::cerr << "heartbeats done\n";

    std::int64_t beats = 0;
    auto hb_start = Clock::now();
    while (ms_since(hb_start) < heartbeat_seconds * 1000) {
      for (std::size_t off = 0; off < ids.size(); off += 2500) {
        std::span<const std::int64_t> batch{ids.data() + off, std::min<std::size_t>(2500, ids.size() - off)};
        if (!registry.record_heartbeats(batch).empty()) throw vigo::Error{vigo::ErrorCode::kInternal, "unknown host"};
        beats += static_cast<std::int64_t>(batch.size());
      }
    }
    double hb_rate = beats / (ms_since(hb_start) / 1000.0);
    rows.push_back({"heartbeats, batches of 2,500, one connection", fmt("%.0f /s", hb_rate), "",
                    "target >= 10,000 /s"});

    // Concurrent claims from many connections, then an audit of every host
    // computed from the VM rows themselves (independent of the counters).
    std::vector<std::int64_t> workspace_ids = db.read([](pqxx::transaction_base& txn) {
      std::vector<std::int64_t> out;
      for (const auto& r : txn.exec("SELECT id FROM gis.workspaces ORDER BY id")) out.push_back(r[0].as<std::int64_t>());
      return out;
    });
    // Hosts whose VMs exceed them, or whose counters disagree with their VMs.
    auto audit = [&db] {
      return db.read([](pqxx::transaction_base& txn) {
        return txn.exec1(
            "SELECT count(*) FROM gis.hosts h JOIN (SELECT host_id, sum(vcpus) c, sum(memory_mb) m, sum(disk_gb) d "
            "FROM gis.vms WHERE gis.holds_capacity(state) GROUP BY host_id) s ON s.host_id = h.id "
            "WHERE s.c > h.cpus OR s.m > h.memory_mb OR s.d > h.disk_gb "
            "OR s.c <> h.alloc_vcpus OR s.m <> h.alloc_memory_mb OR s.d <> h.alloc_disk_gb")[0].as<std::int64_t>();
      });
    };
    vigo::gis::Claims claims_api{db};
    int claim_serial = 0;
    // record = false: a warm-up round (each pooled connection plans the claim path once).
    auto run_claims = [&](const std::string& label, const std::vector<vigo::gis::ProfileFit>& futures,
                          bool record = true) {
      std::atomic<int> next{0}, won{0}, lost{0}, failed{0};
      const int base = claim_serial;
      claim_serial += claims;
      auto claim_start = Clock::now();
      std::vector<std::thread> threads;
      for (int t = 0; t < claim_threads; ++t) {
        threads.emplace_back([&, t] {
          std::mt19937 rng(static_cast<unsigned>(t));
          for (int i = next++; i < claims; i = next++) {
            const auto& f = futures[rng() % futures.size()];
            try {
              claims_api.claim_future(f.future_id, workspace_ids[i % workspace_ids.size()],
                                      "claim-" + std::to_string(base + i));
              ++won;
            } catch (const vigo::Error& e) {
              (e.code() == vigo::ErrorCode::kConflict ? lost : failed)++;
            }
          }
        });
      }
      for (auto& th : threads) th.join();
      const double secs = ms_since(claim_start) / 1000.0;
      const auto bad_hosts = audit();
      if (!record) return bad_hosts == 0 && failed == 0;
      rows.push_back({"claims: " + std::to_string(claims) + " from " + std::to_string(claim_threads) +
                          " connections, " + label,
                      fmt("%.0f claims/s", claims / secs), "",
                      std::to_string(won.load()) + " won, " + std::to_string(lost.load()) + " refused (room gone), " +
                          std::to_string(failed.load()) + " other errors; hosts overcommitted or miscounted: " +
                          std::to_string(bad_hosts)});
      return bad_hosts == 0 && failed == 0;
    };
    const auto small_futures = q.hosts_for_profile("small", {}, std::nullopt, 10000);
    bool sound = run_claims("warm-up", small_futures, false);
    sound = run_claims("spread over all hosts ('small')", small_futures) && sound;
    sound = run_claims("contending for 50 scarce futures ('huge', one network)",
                       q.hosts_for_profile("huge", {}, std::string{"net-007"}, 50)) && sound;
    std::cerr << "claims done\n";

    // Placement decisions as the scheduler makes them: gis.place_vm, the
    // compositional query and the claim in one statement (no future named).
    auto run_placements = [&](const std::string& policy, int vcpus, std::int64_t memory_mb) {
      std::atomic<int> next{0}, won{0}, full{0}, failed{0};
      const int base = claim_serial;
      claim_serial += claims;
      auto start = Clock::now();
      std::vector<std::thread> threads;
      for (int t = 0; t < claim_threads; ++t) {
        threads.emplace_back([&] {
          for (int i = next++; i < claims; i = next++) {
            try {
              db.write([&](pqxx::transaction_base& txn) {
                txn.exec_params("SELECT vm_id FROM gis.place_vm($1, $2, $3, $4, 0, $5)",
                                workspace_ids[i % workspace_ids.size()], "place-" + std::to_string(base + i), vcpus,
                                memory_mb, policy);
              });
              ++won;
            } catch (const vigo::Error& e) {
              (e.code() == vigo::ErrorCode::kResourceExhausted ? full : failed)++;
            }
          }
        });
      }
      for (auto& th : threads) th.join();
      const double secs = ms_since(start) / 1000.0;
      const auto bad_hosts = audit();
      rows.push_back({"placements (gis.place_vm): " + std::to_string(claims) + " from " +
                          std::to_string(claim_threads) + " connections, " + policy + ", " + std::to_string(vcpus) +
                          " vCPU / " + std::to_string(memory_mb) + " MiB",
                      fmt("%.0f placements/s", claims / secs), "",
                      std::to_string(won.load()) + " placed, " + std::to_string(full.load()) + " no room, " +
                          std::to_string(failed.load()) + " other errors; hosts overcommitted or miscounted: " +
                          std::to_string(bad_hosts) + "; target >= 500 /s"});
      return bad_hosts == 0 && failed == 0;
    };
    sound = run_placements("spread", 1, 1024) && sound;
    sound = run_placements("pack", 1, 1024) && sound;
    sound = run_placements("spread", 4, 16384) && sound;
    std::cerr << "placements done\n";

    std::cout << "\n| measure | vigo | plain SQL baseline | note |\n|---|---|---|---|\n";
    for (const Row& r : rows) {
      std::cout << "| " << r.what << " | " << r.figure << " | " << (r.baseline.empty() ? "-" : r.baseline) << " | "
                << r.note << " |\n";
    }
    if (cluster) cluster->stop();
    if (!tmp.empty() && state_dir.empty()) std::filesystem::remove_all(tmp);
    return sound ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "vigo-bench-gis: error: " << e.what() << "\n";
    return 1;
  }
}
