// SPDX-License-Identifier: Apache-2.0
// Registration, heartbeats, futures and atomic claims against a real PostgreSQL.
#include <gtest/gtest.h>

#include <atomic>
#include <pqxx/pqxx>
#include <thread>

#include "support/pg_fixture.h"
#include "vigo/common/error.h"
#include "vigo/gis/claims.h"
#include "vigo/gis/queries.h"
#include "vigo/gis/registry.h"

namespace vigo::gis {
namespace {

class Capacity : public testing::GisTest {
 protected:
  void SetUp() override {
    registry_.add_site("ufl");
    registry_.add_network("lan", "ufl", "10.0.0.0/24");
    registry_.add_profile("small", 1, 512, 1);
    registry_.add_profile("big", 4, 4096, 10);
    std::vector<HostSpec> hosts{{"h1", "lan", "qemu:///system", 4, 8192, 100, "x86_64", {{"rack", "a"}}},
                                {"h2", "lan", "qemu:///system", 2, 2048, 100, "x86_64", {}}};
    for (const auto& h : registry_.register_hosts(hosts)) ids_[h.name] = h.id;
    registry_.add_user("alice");
    ws_ = registry_.add_workspace("alice", "main");
  }

  std::int64_t count(const std::string& sql) {
    return db_.read([&](pqxx::transaction_base& t) { return t.exec1(sql)[0].as<std::int64_t>(); });
  }
  std::int64_t slots(const std::string& host, const std::string& profile) {
    return db_.read([&](pqxx::transaction_base& t) {
      auto r = t.exec_params(
          "SELECT f.slots FROM gis.futures f JOIN gis.hosts h ON h.id = f.host_id JOIN gis.profiles p ON "
          "p.id = f.profile_id WHERE h.name = $1 AND p.name = $2",
          host, profile);
      return r.empty() ? std::int64_t{0} : r[0][0].as<std::int64_t>();
    });
  }
  std::int64_t future_of(const std::string& host, const std::string& profile) {
    for (const auto& f : Queries{db_}.hosts_for_profile(profile)) {
      if (f.host == host) return f.future_id;
    }
    return 0;
  }

  Registry registry_{db_};
  Claims claims_{db_};
  std::map<std::string, std::int64_t> ids_;
  std::int64_t ws_ = 0;
};

TEST_F(Capacity, FuturesFollowCapacity) {
  EXPECT_EQ(slots("h1", "small"), 4);  // vcpus bind before memory (16 x 512 MiB would fit)
  EXPECT_EQ(slots("h1", "big"), 1);
  EXPECT_EQ(slots("h2", "small"), 2);
  EXPECT_EQ(slots("h2", "big"), 0);

  const auto f = future_of("h1", "big");
  ASSERT_NE(f, 0);
  const auto vm = claims_.claim_future(f, ws_, "vm1");
  EXPECT_EQ(slots("h1", "big"), 0);
  EXPECT_EQ(slots("h1", "small"), 0);
  EXPECT_EQ(count("SELECT alloc_memory_mb FROM gis.hosts WHERE name = 'h1'"), 4096);

  // The withdrawn future cannot be claimed again.
  try {
    claims_.claim_future(f, ws_, "vm2");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConflict);
  }
  claims_.set_vm_state(vm, "deleted");
  EXPECT_EQ(slots("h1", "big"), 1);
  EXPECT_EQ(slots("h1", "small"), 4);

  const auto small = future_of("h1", "small");
  claims_.claim_future(small, ws_, "vm3");
  EXPECT_EQ(slots("h1", "small"), 3);
  EXPECT_EQ(future_of("h1", "small"), small) << "a future keeps its id while its host has room";
}

TEST_F(Capacity, HostsGoingDownWithdrawFuturesAndHeartbeatsBringThemBack) {
  db_.write([](pqxx::transaction_base& t) {
    t.exec0("UPDATE gis.host_heartbeats SET last_seen = now() - interval '10 minutes' WHERE host_id = "
            "(SELECT id FROM gis.hosts WHERE name = 'h2')");
  });
  auto down = registry_.mark_silent_hosts_down(std::chrono::seconds{60});
  ASSERT_EQ(down, std::vector<std::string>{"h2"});
  EXPECT_EQ(slots("h2", "small"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM gis.hosts_that_fit(512, p_network => 'lan')"), 1);

  std::vector<std::int64_t> beats{ids_["h2"], 999999};
  EXPECT_EQ(registry_.record_heartbeats(beats), std::vector<std::int64_t>{999999});
  EXPECT_EQ(slots("h2", "small"), 2);
}

TEST_F(Capacity, ClaimsOnAHostThatIsNotUpFail) {
  db_.write([](pqxx::transaction_base& t) { t.exec("SELECT gis.set_host_state('h1', 'draining')"); });
  try {
    claims_.claim_on_host(ids_["h1"], ws_, "vm1", VmShape{512, 1, 0});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    EXPECT_NE(std::string{e.what()}.find("draining"), std::string::npos);
  }
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms"), 0);
}

TEST_F(Capacity, ConcurrentClaimsNeverOvercommit) {
  const auto f = future_of("h1", "small");  // room for 4
  std::atomic<int> won{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) {
        try {
          claims_.claim_future(f, ws_, "vm-" + std::to_string(t) + "-" + std::to_string(i));
          ++won;
        } catch (const Error& e) {
          (e.code() == ErrorCode::kConflict ? refused : other)++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(won, 4);
  EXPECT_EQ(refused, 28);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(count("SELECT alloc_vcpus FROM gis.hosts WHERE name = 'h1'"), 4);
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms WHERE state = 'pending'"), 4);
}

TEST_F(Capacity, TheDatabaseRefusesOvercommitEvenWithoutTheFunctions) {
  try {
    db_.write([&](pqxx::transaction_base& t) {
      t.exec_params("INSERT INTO gis.vms (workspace_id, owner_id, name, vcpus, memory_mb, state, host_id) "
                    "SELECT $1, owner_id, 'greedy', 3, 512, 'running', $2 FROM gis.workspaces WHERE id = $1",
                    ws_, ids_["h2"]);
    });
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
  }
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms"), 0);
}

TEST_F(Capacity, BadHostBatchNamesTheFieldAndWritesNothing) {
  const auto before = count("SELECT count(*) FROM gis.hosts");
  auto expect_field = [&](std::vector<HostSpec> hosts, const std::string& field, ErrorCode code) {
    try {
      registry_.register_hosts(hosts);
      FAIL() << "expected an error for " << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
    }
    EXPECT_EQ(count("SELECT count(*) FROM gis.hosts"), before);
  };
  HostSpec ok{"h3", "lan", "qemu:///system", 4, 4096, 10, "x86_64", {}};
  auto bad = ok;
  bad.cpus = -1;
  expect_field({ok, bad}, "hosts[2].cpus", ErrorCode::kInvalidArgument);
  bad = ok;
  bad.name = "../etc";
  expect_field({bad}, "hosts[1].name", ErrorCode::kInvalidArgument);
  bad = ok;
  bad.network = "nowhere";
  expect_field({ok, ok, bad}, "hosts[3].network", ErrorCode::kNotFound);
  bad = ok;
  bad.memory_mb = 1LL << 40;
  expect_field({bad}, "hosts[1].memory_mb", ErrorCode::kInvalidArgument);
  bad = ok;
  bad.arch = "x86 64";
  expect_field({bad}, "hosts[1].arch", ErrorCode::kInvalidArgument);
  expect_field({ok, ok}, "hosts[2].name", ErrorCode::kInvalidArgument);
  expect_field({}, "hosts", ErrorCode::kInvalidArgument);
}

TEST_F(Capacity, ShrinkingAHostBelowItsVmsIsRefused) {
  claims_.claim_on_host(ids_["h1"], ws_, "vm1", VmShape{4096, 3, 0});
  HostSpec smaller{"h1", "lan", "qemu:///system", 2, 8192, 100, "x86_64", {}};
  try {
    registry_.register_hosts(std::span<const HostSpec>{&smaller, 1});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(count("SELECT cpus FROM gis.hosts WHERE name = 'h1'"), 4);
}

TEST_F(Capacity, ImageAndDataServersRegisterAndValidate) {
  const auto img = registry_.add_image_server("images-1", "ufl", "ssh://images-1");
  EXPECT_EQ(registry_.add_image_server("images-1", "ufl", "ssh://images-1b"), img) << "an update keeps the id";
  EXPECT_GT(registry_.add_data_server("data-1", "ufl", "ssh://data-1"), img);
  try {
    registry_.add_data_server("data-2", "nowhere", "ssh://x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(e.field(), "site");
  }
  try {
    registry_.add_image_server("images-2", "ufl", "");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "endpoint");
  }
  EXPECT_EQ(count("SELECT count(*) FROM gis.resources WHERE kind IN ('image_server', 'data_server')"), 2);
}

TEST_F(Capacity, RegistrationOfKnownHostsUpdatesThem) {
  HostSpec bigger{"h2", "lan", "qemu+ssh://h2/system", 8, 16384, 100, "x86_64", {{"gpu", "none"}}};
  auto r = registry_.register_hosts(std::span<const HostSpec>{&bigger, 1});
  EXPECT_EQ(r.at(0).id, ids_["h2"]);
  EXPECT_EQ(slots("h2", "big"), 2);
}

TEST_F(Capacity, BadClaimInput) {
  auto expect = [&](auto&& fn, ErrorCode code, const std::string& field) {
    try {
      fn();
      FAIL() << "expected " << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
    }
  };
  expect([&] { claims_.claim_on_host(ids_["h1"], ws_, "vm1", VmShape{0, 1, 0}); }, ErrorCode::kInvalidArgument,
         "memory_mb");
  expect([&] { claims_.claim_on_host(ids_["h1"], ws_, "vm1", VmShape{512, 0, 0}); }, ErrorCode::kInvalidArgument,
         "vcpus");
  expect([&] { claims_.claim_on_host(ids_["h1"], 424242, "vm1", VmShape{512, 1, 0}); }, ErrorCode::kNotFound,
         "workspace");
  expect([&] { claims_.claim_on_host(424242, ws_, "vm1", VmShape{512, 1, 0}); }, ErrorCode::kNotFound, "host");
  claims_.claim_on_host(ids_["h1"], ws_, "vm1", VmShape{512, 1, 0});
  expect([&] { claims_.claim_on_host(ids_["h1"], ws_, "vm1", VmShape{512, 1, 0}); }, ErrorCode::kAlreadyExists,
         "name");
  EXPECT_EQ(count("SELECT count(*) FROM gis.vms"), 1);
}

}  // namespace
}  // namespace vigo::gis
