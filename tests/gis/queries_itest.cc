// SPDX-License-Identifier: Apache-2.0
// The compositional queries on a synthetic grid, checked against brute force.
#include "vigo/gis/queries.h"

#include <gtest/gtest.h>

#include <map>
#include <pqxx/pqxx>
#include <set>

#include "support/pg_fixture.h"
#include "vigo/common/error.h"
#include "vigo/gis/synthetic_grid.h"

namespace vigo::gis {
namespace {

class QueriesTest : public testing::GisTest {
 protected:
  void SetUp() override {
    SyntheticGridSpec spec;
    spec.sites = 2;
    spec.networks = 4;
    spec.hosts = 24;
    spec.users = 3;
    spec.vms = 240;
    spec.seed = 9;
    stats_ = load_synthetic_grid(db_, spec);
    db_.read([&](pqxx::transaction_base& t) {
      for (const auto& r : t.exec("SELECT v.id, v.memory_mb, h.network_id, h.name FROM gis.vms v "
                                  "JOIN gis.hosts h ON h.id = v.host_id")) {
        vm_memory_[r[0].as<std::int64_t>()] = r[1].as<std::int64_t>();
        vm_network_[r[0].as<std::int64_t>()] = r[2].as<std::int64_t>();
      }
    });
  }
  SyntheticGridStats stats_;
  Queries q_{db_};
  std::map<std::int64_t, std::int64_t> vm_memory_, vm_network_;
};

TEST_F(QueriesTest, GridLoaded) {
  EXPECT_EQ(stats_.hosts, 24);
  EXPECT_EQ(stats_.vms, 240);
  EXPECT_GT(stats_.futures, 24);
}

TEST_F(QueriesTest, HostsThatFitMatchBruteForce) {
  FitRequest fit;
  fit.memory_mb = 2048;
  fit.vcpus = 4;
  fit.limit = 1000;
  auto rows = q_.hosts_that_fit(fit);
  std::set<std::string> got;
  for (const auto& r : rows) got.insert(r.host);
  std::set<std::string> expected = db_.read([](pqxx::transaction_base& t) {
    std::set<std::string> out;
    for (const auto& r : t.exec("SELECT h.name FROM gis.hosts h LEFT JOIN gis.vms v ON v.host_id = h.id "
                                "AND gis.holds_capacity(v.state) GROUP BY h.id "
                                "HAVING h.memory_mb - coalesce(sum(v.memory_mb), 0) >= 2048 "
                                "AND h.cpus - coalesce(sum(v.vcpus), 0) >= 4")) {
      out.insert(r[0].as<std::string>());
    }
    return out;
  });
  EXPECT_EQ(got, expected);
  for (std::size_t i = 1; i < rows.size(); ++i) EXPECT_GE(rows[i - 1].free_memory_mb, rows[i].free_memory_mb);
  fit.policy = Policy::kPack;
  fit.limit = 3;
  auto packed = q_.hosts_that_fit(fit);
  ASSERT_FALSE(packed.empty());
  EXPECT_LE(packed.front().free_memory_mb, rows.back().free_memory_mb);
}

TEST_F(QueriesTest, HostsThatFitFilterByLabelAndNetwork) {
  FitRequest fit;
  fit.memory_mb = 128;
  fit.labels = {{"gpu", "none"}};
  fit.limit = 1000;
  auto rows = q_.hosts_that_fit(fit);
  EXPECT_EQ(rows.size(), 3u);  // host-00000, -00010, -00020
  fit.labels.clear();
  fit.network = "net-001";
  for (const auto& r : q_.hosts_that_fit(fit)) EXPECT_EQ(r.network, "net-001");
}

TEST_F(QueriesTest, VmSetsAreValidAndComplete) {
  // Brute force over one network's VMs, for a range with a few thousand answers.
  const std::int64_t net = db_.read(
      [](pqxx::transaction_base& t) { return t.exec1("SELECT id FROM gis.networks WHERE name = 'net-002'")[0].as<std::int64_t>(); });
  std::vector<std::int64_t> ids;
  for (const auto& [id, n] : vm_network_) {
    if (n == net) ids.push_back(id);
  }
  auto brute = [&](std::int64_t lo, std::int64_t hi) {
    std::size_t count = 0;
    for (std::size_t a = 0; a < ids.size(); ++a)
      for (std::size_t b = a + 1; b < ids.size(); ++b)
        for (std::size_t c = b + 1; c < ids.size(); ++c) {
          const auto m = vm_memory_[ids[a]] + vm_memory_[ids[b]] + vm_memory_[ids[c]];
          if (m >= lo && m <= hi) ++count;
        }
    return count;
  };
  VmSetRequest req;
  req.n = 3;
  req.limit = 10000;
  req.network = "net-002";
  std::size_t expected = 0;
  for (std::int64_t lo : {2048, 3072, 4096, 6144}) {
    req.min_memory_mb = lo;
    req.max_memory_mb = lo + 512;
    expected = brute(req.min_memory_mb, req.max_memory_mb);
    if (expected > 0 && expected < 10000) break;
  }
  ASSERT_GT(expected, 0u);
  ASSERT_LT(expected, 10000u);
  auto sets = q_.vm_sets(req);
  std::set<std::vector<std::int64_t>> got;
  for (const auto& s : sets) {
    ASSERT_EQ(s.members.size(), 3u);
    std::int64_t total = 0;
    for (auto id : s.members) total += vm_memory_.at(id);
    EXPECT_EQ(total, s.total_memory_mb);
    EXPECT_GE(total, req.min_memory_mb);
    EXPECT_LE(total, req.max_memory_mb);
    auto sorted = s.members;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "members must be distinct";
    EXPECT_TRUE(got.insert(sorted).second) << "each set once";
  }
  EXPECT_EQ(got.size(), expected);
}

TEST_F(QueriesTest, VmSetsStopAtTheLimitAndSampleWithASeed) {
  VmSetRequest req;
  req.n = 4;
  req.min_memory_mb = 512;
  req.max_memory_mb = 1024;
  req.limit = 25;
  EXPECT_EQ(q_.vm_sets(req).size(), 25u);
  req.source = SetSource::kBoth;
  req.seed = 0.25;
  auto a = q_.vm_sets(req);
  auto b = q_.vm_sets(req);
  ASSERT_EQ(a.size(), 25u);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].members, b[i].members) << "same seed, same sample";
  req.seed = -0.5;
  auto c = q_.vm_sets(req);
  bool differs = c.size() != a.size();
  for (std::size_t i = 0; !differs && i < a.size(); ++i) differs = a[i].members != c[i].members;
  EXPECT_TRUE(differs);
  for (const auto& s : c) {
    EXPECT_GE(s.total_memory_mb, 512);
    EXPECT_LE(s.total_memory_mb, 1024);
  }
}

TEST_F(QueriesTest, GangPlacementDistinctAndPacked) {
  auto gang = q_.gang_place_profile("large", 5, true);
  ASSERT_EQ(gang.size(), 5u);
  std::set<std::int64_t> hosts;
  for (const auto& g : gang) {
    hosts.insert(g.host_id);
    EXPECT_EQ(g.network, gang.front().network);
  }
  EXPECT_EQ(hosts.size(), 5u);

  GangRequest req;
  req.vms = std::vector<VmShape>(8, VmShape{4096, 2, 10});
  req.distinct_hosts = false;
  auto packed = q_.gang_place(req);
  ASSERT_EQ(packed.size(), 8u);
  std::map<std::int64_t, std::int64_t> per_host;
  for (const auto& g : packed) per_host[g.host_id] += 4096;
  for (const auto& [host, mem] : per_host) {
    auto free = db_.read([&, h = host](pqxx::transaction_base& t) {
      return t.exec_params1("SELECT free_memory_mb FROM gis.hosts WHERE id = $1", h)[0].as<std::int64_t>();
    });
    EXPECT_LE(mem, free);
  }
  EXPECT_LT(per_host.size(), 8u) << "packing should share hosts";

  EXPECT_TRUE(q_.gang_place_profile("huge", 7, true, std::string{"net-000"}).empty()) << "6 hosts per network";
}

TEST_F(QueriesTest, CapacityAndImpactAgreeWithTheTables) {
  auto nets = q_.capacity_by_network();
  ASSERT_EQ(nets.size(), 4u);
  std::int64_t free = 0;
  for (const auto& n : nets) free += n.free_memory_mb;
  auto sites = q_.capacity_by_site();
  std::int64_t free_sites = 0;
  for (const auto& s : sites) free_sites += s.free_memory_mb;
  EXPECT_EQ(free, free_sites);
  auto total_vm_memory = db_.read([](pqxx::transaction_base& t) {
    return t.exec1("SELECT sum(memory_mb) - (SELECT sum(v.memory_mb) FROM gis.vms v) FROM gis.hosts")[0]
        .as<std::int64_t>();
  });
  EXPECT_EQ(free, total_vm_memory);

  auto impact = q_.host_failure_impact("host-00003");
  auto on_host = db_.read([](pqxx::transaction_base& t) {
    return t.exec1("SELECT count(*) FROM gis.vms v JOIN gis.hosts h ON h.id = v.host_id WHERE h.name = 'host-00003'")[0]
        .as<std::size_t>();
  });
  EXPECT_EQ(impact.size(), on_host);
  EXPECT_EQ(q_.vm_placement().size(), 240u);
}

TEST_F(QueriesTest, ViewsShowAllNaturesAlikeAndTheNatureOnlyWhenAsked) {
  db_.read([](pqxx::transaction_base& t) {
    auto cols = t.exec("SELECT column_name FROM information_schema.columns WHERE table_schema = 'gis' AND "
                       "table_name = 'machines' AND column_name = 'nature'");
    EXPECT_TRUE(cols.empty());
    auto natures = t.exec("SELECT nature, count(*) FROM gis.machines_with_nature GROUP BY nature ORDER BY nature");
    ASSERT_EQ(natures.size(), 3u);
    EXPECT_EQ(natures[0][0].as<std::string>(), "future");
    EXPECT_EQ(natures[1][0].as<std::string>(), "physical");
    EXPECT_EQ(natures[1][1].as<int>(), 24);
    EXPECT_EQ(natures[2][1].as<int>(), 240);
    // Every running VM maps to the host that runs it and to its network.
    EXPECT_EQ(t.exec1("SELECT count(*) FROM gis.vms v WHERE NOT EXISTS (SELECT 1 FROM gis.virtualization z "
                      "WHERE z.virtual_id = v.id AND z.physical_id = v.host_id AND z.role = 'runs_on')")[0]
                  .as<int>(),
              0);
    EXPECT_EQ(t.exec1("SELECT count(*) FROM gis.virtualization WHERE role = 'attached_to' AND virtual_kind = 'vm'")[0]
                  .as<int>(),
              240);
    EXPECT_EQ(t.exec1("SELECT count(DISTINCT kind) FROM gis.resources")[0].as<int>(), 6);
  });
}

TEST_F(QueriesTest, BadInputNamesTheField) {
  auto expect = [&](auto&& fn, const std::string& field, ErrorCode code = ErrorCode::kInvalidArgument) {
    try {
      fn();
      FAIL() << "expected an error for " << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
    }
  };
  VmSetRequest sets;
  sets.n = 0;
  sets.min_memory_mb = 1;
  sets.max_memory_mb = 2;
  expect([&] { (void)q_.vm_sets(sets); }, "n");
  sets.n = 4;
  sets.min_memory_mb = 2048;
  sets.max_memory_mb = 1024;
  expect([&] { (void)q_.vm_sets(sets); }, "min_memory_mb");
  sets.min_memory_mb = 0;
  sets.limit = 0;
  expect([&] { (void)q_.vm_sets(sets); }, "limit");
  sets.limit = 10;
  sets.network = "atlantis";
  expect([&] { (void)q_.vm_sets(sets); }, "network", ErrorCode::kNotFound);
  FitRequest fit;
  fit.memory_mb = -5;
  expect([&] { (void)q_.hosts_that_fit(fit); }, "memory_mb");
  fit.memory_mb = 1LL << 40;
  expect([&] { (void)q_.hosts_that_fit(fit); }, "memory_mb");
  expect([&] { (void)q_.hosts_for_profile("nope"); }, "profile", ErrorCode::kNotFound);
  expect([&] { (void)q_.hosts_for_profile("x'; DROP TABLE gis.hosts; --"); }, "profile");
  expect([&] { (void)q_.gang_place_profile("large", 0); }, "count");
  expect([&] { (void)q_.host_failure_impact("ghost"); }, "host", ErrorCode::kNotFound);
  GangRequest gang;
  gang.vms = {VmShape{512, 1, 0}, VmShape{512, -1, 0}};
  expect([&] { (void)q_.gang_place(gang); }, "vcpus[2]");
  auto hosts = db_.read([](pqxx::transaction_base& t) { return t.exec1("SELECT count(*) FROM gis.hosts")[0].as<int>(); });
  EXPECT_EQ(hosts, 24);
}

}  // namespace
}  // namespace vigo::gis
