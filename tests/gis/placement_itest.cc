// SPDX-License-Identifier: Apache-2.0
// gis.place_vm (sql/006, 008) against a real PostgreSQL: policies, the
// workspace's own constraints, the hosts of one vigod, the errors that tell
// "never" from "not now", and no overcommit when many placements race for
// little room.
#include <gtest/gtest.h>

#include <atomic>
#include <pqxx/pqxx>
#include <functional>
#include <set>
#include <thread>

#include "support/pg_fixture.h"
#include "vigo/common/error.h"
#include "vigo/gis/pg_support.h"
#include "vigo/gis/registry.h"

namespace vigo::gis {
namespace {

class Placement : public testing::GisTest {
 protected:
  void SetUp() override {
    registry_.add_site("ufl");
    registry_.add_network("lan-a", "ufl");
    registry_.add_network("lan-b", "ufl");
    std::vector<HostSpec> hosts{{"big", "lan-a", "qemu:///system", 16, 8192, 100, "x86_64", {{"gpu", "yes"}}},
                                {"mid", "lan-a", "qemu:///system", 16, 4096, 100, "x86_64", {}},
                                {"small", "lan-b", "qemu:///system", 16, 2048, 100, "x86_64", {}}};
    registry_.register_hosts(hosts);
    registry_.add_user("alice");
    ws_ = registry_.add_workspace("alice", "main");
  }

  // The host the VM went to.
  std::string place(const std::string& vm, std::int64_t memory_mb, const std::string& policy = "spread",
                    const std::string& labels = "{}", bool same_network = false, bool distinct = false,
                    std::int64_t ws = 0) {
    return db_.write([&](pqxx::transaction_base& t) {
      return t
          .exec_params1("SELECT host FROM gis.place_vm($1, $2, 1, $3, 0, $4, $5::jsonb, NULL, $6, $7)",
                        ws == 0 ? ws_ : ws, vm, memory_mb, policy, labels, same_network, distinct)[0]
          .as<std::string>();
    });
  }
  ErrorCode error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.code();
    }
    ADD_FAILURE() << "no error";
    return ErrorCode::kInternal;
  }

  Registry registry_{db_};
  std::int64_t ws_ = 0;
};

TEST_F(Placement, SpreadTakesTheEmptiestAndPackTheFullestThatFits) {
  EXPECT_EQ(place("a", 1024, "spread"), "big");
  EXPECT_EQ(place("b", 1024, "pack"), "small");
  EXPECT_EQ(place("c", 1536, "pack"), "mid");  // small has 1024 left
  EXPECT_EQ(place("d", 1024, "spread", R"({"gpu": "yes"})"), "big");
}

// A vigod places only on the hosts it drives (p_hosts), whatever is emptier
// elsewhere; none of its hosts could ever take the VM: 22023, not "no room".
TEST_F(Placement, OnlyTheGivenHostsAreClaimed) {
  auto place_on = [&](const std::string& vm, std::int64_t memory_mb, const std::string& labels,
                      const std::vector<std::string>& hosts) {
    return db_.write([&](pqxx::transaction_base& t) {
      return t
          .exec_params1("SELECT host FROM gis.place_vm($1, $2, 1, $3, 0, 'spread', $4::jsonb, p_hosts => $5::text[])",
                        ws_, vm, memory_mb, labels, pg_array(hosts))[0]
          .as<std::string>();
    });
  };
  EXPECT_EQ(place_on("a", 512, "{}", {"small", "mid"}), "mid");  // big is emptier, but not ours
  EXPECT_EQ(place_on("b", 512, "{}", {"small"}), "small");
  EXPECT_EQ(error_of([&] { place_on("c", 512, R"({"gpu": "yes"})", {"small", "mid"}); }),
            ErrorCode::kInvalidArgument);  // big carries the label; ours do not
  EXPECT_EQ(error_of([&] { place_on("d", 4096, "{}", {"small"}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_of([&] { place_on("e", 2048, "{}", {"small"}); }), ErrorCode::kResourceExhausted);  // not now
  EXPECT_EQ(place("f", 512), "big");  // no list: any host, as before
}

TEST_F(Placement, TheWorkspacesOwnConstraintsHold) {
  const auto ws = registry_.add_workspace("alice", "gang");
  std::set<std::string> hosts;
  for (int i = 0; i < 3; ++i) hosts.insert(place("g" + std::to_string(i), 512, "pack", "{}", false, true, ws));
  EXPECT_EQ(hosts.size(), 3u);  // three hosts, though one could hold them all
  EXPECT_EQ(error_of([&] { place("g4", 512, "pack", "{}", false, true, ws); }), ErrorCode::kResourceExhausted);

  const auto net = registry_.add_workspace("alice", "net");
  const std::string first = place("n1", 512, "pack", "{}", true, false, net);  // small, on lan-b
  EXPECT_EQ(first, "small");
  // small is full for 2048 MiB; same_network keeps the next on lan-b: no room there.
  EXPECT_EQ(error_of([&] { place("n2", 2048, "pack", "{}", true, false, net); }), ErrorCode::kResourceExhausted);
  EXPECT_EQ(place("n3", 1024, "spread", "{}", true, false, net), "small");
}

TEST_F(Placement, NeverAndNotNowAreDifferentErrorsAndLeaveNoClaim) {
  EXPECT_EQ(error_of([&] { place("x", 16384); }), ErrorCode::kInvalidArgument);          // larger than any host
  EXPECT_EQ(error_of([&] { place("x", 512, "spread", R"({"ssd": "yes"})"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_of([&] { place("x", 512, "random"); }), ErrorCode::kInvalidArgument);  // policy
  place("fill1", 8192);
  place("fill2", 4096);
  place("fill3", 2048);
  EXPECT_EQ(error_of([&] { place("x", 512); }), ErrorCode::kResourceExhausted);  // fits, but not now
  EXPECT_EQ(error_of([&] { place("fill1", 16); }), ErrorCode::kAlreadyExists);   // a taken VM name
  db_.read([&](pqxx::transaction_base& t) {
    EXPECT_EQ(t.exec1("SELECT count(*) FROM gis.vms")[0].as<int>(), 3);
  });
}

TEST_F(Placement, RacingPlacementsNeverOvercommit) {
  std::atomic<int> placed{0}, full{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        try {
          place("r" + std::to_string(t) + "-" + std::to_string(i), 512);
          ++placed;
        } catch (const Error& e) {
          (e.code() == ErrorCode::kResourceExhausted ? full : other)++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  // 14 GiB in all: 28 VMs of 512 MiB fit, and exactly that many are placed.
  EXPECT_EQ(placed.load(), 28);
  EXPECT_EQ(full.load(), 80 - 28);
  EXPECT_EQ(other.load(), 0);
  db_.read([&](pqxx::transaction_base& t) {
    EXPECT_EQ(t.exec1("SELECT count(*) FROM gis.hosts WHERE alloc_memory_mb > memory_mb")[0].as<int>(), 0);
    EXPECT_EQ(t.exec1("SELECT sum(alloc_memory_mb) FROM gis.hosts")[0].as<int>(), 28 * 512);
  });
}

}  // namespace
}  // namespace vigo::gis
