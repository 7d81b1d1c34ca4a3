// SPDX-License-Identifier: Apache-2.0
// Roles, row-level security and tokens.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "support/pg_fixture.h"
#include "vigo/common/error.h"
#include "vigo/gis/claims.h"
#include "vigo/gis/queries.h"
#include "vigo/gis/registry.h"
#include "vigo/gis/tokens.h"

namespace vigo::gis {
namespace {

class Roles : public testing::GisTest {
 protected:
  void SetUp() override {
    registry_.add_site("s");
    registry_.add_network("n", "s");
    std::vector<HostSpec> hosts{{"h", "n", "qemu:///system", 8, 8192, 100, "x86_64", {}}};
    auto host = registry_.register_hosts(hosts).at(0).id;
    alice_ = registry_.add_user("alice");
    bob_ = registry_.add_user("bob");
    Claims claims{db_};
    claims.claim_on_host(host, registry_.add_workspace("alice", "a"), "a1", VmShape{512, 1, 0});
    claims.claim_on_host(host, registry_.add_workspace("bob", "b"), "b1", VmShape{512, 1, 0});
    claims.claim_on_host(host, registry_.add_workspace("bob", "b2"), "b2", VmShape{512, 1, 0});
  }
  Registry registry_{db_};
  std::int64_t alice_ = 0, bob_ = 0;
};

TEST_F(Roles, UsersSeeOnlyTheirOwnWorkspacesAndVms) {
  EXPECT_EQ(Queries{db_}.vm_placement().size(), 3u);
  auto as_alice = Queries{db_, alice_}.vm_placement();
  ASSERT_EQ(as_alice.size(), 1u);
  EXPECT_EQ(as_alice[0].vm, "a1");
  EXPECT_EQ((Queries{db_, bob_}.vm_placement().size()), 2u);
  auto seen = db_.read_as_user(alice_, [](pqxx::transaction_base& t) {
    return t.exec1("SELECT count(*) FROM gis.vms")[0].as<int>() * 100 +
           t.exec1("SELECT count(*) FROM gis.workspaces")[0].as<int>();
  });
  EXPECT_EQ(seen, 101);
  // Without a user id a user-scoped session sees nothing.
  auto nothing = db_.read_as_user(0, [](pqxx::transaction_base& t) {
    return t.exec1("SELECT count(*) FROM gis.vms")[0].as<int>();
  });
  EXPECT_EQ(nothing, 0);
}

TEST_F(Roles, UserScopeCannotWrite) {
  try {
    db_.read_as_user(alice_, [](pqxx::transaction_base& t) { t.exec0("SELECT gis.add_site('evil')"); });
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(e.code() == ErrorCode::kPermissionDenied || e.code() == ErrorCode::kInternal) << e.what();
  }
}

TEST_F(Roles, ReaderRoleReadsEverythingAndWritesNothing) {
  db_.write([](pqxx::transaction_base& t) {
    t.exec0("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'test_admin_reader') THEN "
            "CREATE ROLE test_admin_reader LOGIN IN ROLE vigo_reader; END IF; END $$");
  });
  pqxx::connection c{scoped_.connection_string() + " user=test_admin_reader"};
  {
    pqxx::read_transaction r{c};
    EXPECT_EQ(r.exec1("SELECT count(*) FROM gis.vms")[0].as<int>(), 3);
    EXPECT_EQ(r.exec1("SELECT count(*) FROM gis.machines")[0].as<int>() > 0, true);
    EXPECT_EQ(r.exec("SELECT * FROM gis.hosts_that_fit(512)").size(), 1u);
  }
  for (const char* sql : {"INSERT INTO gis.sites (name) VALUES ('x')", "SELECT gis.add_site('x')",
                          "UPDATE gis.hosts SET cpus = 1", "SELECT token_sha256 FROM gis.api_tokens",
                          "DELETE FROM gis.vms"}) {
    pqxx::work w{c};
    EXPECT_THROW(w.exec(sql), pqxx::insufficient_privilege) << sql;
  }
}

TEST_F(Roles, TokensAreStoredHashedAndVerify) {
  Tokens tokens{db_};
  const std::string t = tokens.issue("alice", "laptop");
  EXPECT_TRUE(t.starts_with("vigo_"));
  auto owner = tokens.verify(t);
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->user, "alice");
  EXPECT_EQ(owner->user_id, alice_);
  EXPECT_FALSE(tokens.verify(t + "x"));
  EXPECT_FALSE(tokens.verify("vigo_" + std::string(43, 'A')));
  auto stored = db_.read([&](pqxx::transaction_base& tx) {
    return tx.exec_params1("SELECT count(*) FROM gis.api_tokens WHERE encode(token_sha256, 'escape') LIKE '%' || $1 || '%'",
                           t.substr(5, 20))[0]
        .as<int>();
  });
  EXPECT_EQ(stored, 0) << "the clear token must not be stored";
  EXPECT_TRUE(tokens.revoke(t));
  EXPECT_FALSE(tokens.verify(t));
  EXPECT_THROW(tokens.issue("nobody-here"), Error);
}

}  // namespace
}  // namespace vigo::gis
