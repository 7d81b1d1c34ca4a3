// SPDX-License-Identifier: Apache-2.0
// vigod's API end to end over real TLS on loopback: the real HttpsServer and
// Api on a migrated GIS in the test PostgreSQL cluster, reached by the real
// ApiClient (certificate checked against a throwaway CA). Tokens, roles and
// 401/403/404/405; errors naming the field; header, body and rate limits;
// a GIS-only vigod answering 503 on workspace routes; the event stream.
// With real guests: api_guest_itest.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "api_test_support.h"
#include "support/pg_fixture.h"
#include "support/test_pki.h"
#include "vigo/common/error.h"
#include "vigo/gis/registry.h"
#include "vigo/gis/tokens.h"
#include "vigo/scheduler/workspace_manager.h"
#include "vigo/web/api.h"
#include "vigo/web/api_client.h"
#include "vigo/web/https_server.h"

namespace vigo::web {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using namespace api_test;

// A vigod in the test process: GIS users alice, bob and admin with tokens.
class ApiServer {
 public:
  explicit ApiServer(scheduler::WorkspaceManager* manager = nullptr, ApiOptions api_options = {},
                     ServerOptions server_options = {})
      : manager_(manager) {
    gis::Registry reg{db_};
    reg.add_site("lab");
    reg.add_network("lan", "lab");
    reg.add_user("alice");
    reg.add_user("bob");
    reg.add_user("root-user", true);
    gis::Tokens tokens{db_};
    alice_ = tokens.issue("alice");
    bob_ = tokens.issue("bob");
    admin_ = tokens.issue("root-user");
    testing::TestCa ca{pki_.path(), "ca"};
    ca_file_ = ca.cert_file();
    const auto files = ca.issue("server", {"vigod", {"IP:127.0.0.1", "DNS:localhost"}, true, false});
    server_options.cert_file = files.cert;
    server_options.key_file = files.key;
    api_ = std::make_unique<Api>(db_, manager_, api_options);
    server_ = std::make_unique<HttpsServer>(server_options, [this](const Request& r) { return api_->handle(r); });
    api_->set_server_stats([this] { return server_->stats(); });
    server_->start();
  }
  ~ApiServer() { server_->stop(); }

  [[nodiscard]] std::string url() const { return "https://127.0.0.1:" + std::to_string(server_->port()); }
  [[nodiscard]] ApiClient client(const std::string& token) const {
    return ApiClient{ApiClientOptions{url(), token, ca_file_, 60s}};
  }
  [[nodiscard]] const fs::path& ca_file() const { return ca_file_; }
  gis::Database& db() { return db_; }

  std::string alice_, bob_, admin_;

 private:
  testing::ScopedDatabase scoped_;
  gis::Database db_{gis::DatabaseOptions{scoped_.connection_string(), 4}};
  testing::TempDir pki_{"vigo-api-pki"};
  fs::path ca_file_;
  scheduler::WorkspaceManager* manager_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpsServer> server_;
};


TEST(ApiServer, HealthAndMetricsArePublicAndEverythingElseNeedsAValidToken) {
  ApiServer s;
  auto anonymous = s.client("");
  EXPECT_EQ(anonymous.get("/v1/health")["status"], "ok");
  const auto metrics = anonymous.request("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("vigo_http_requests_total"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("vigo_database_up 1"), std::string::npos) << metrics.body;

  // HEAD: the GET's status and Content-Length, no body (and the connection
  // goes on: the next request on it is answered).
  const auto got = anonymous.request("GET", "/v1/health");
  const auto head = anonymous.request("HEAD", "/v1/health");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.headers.at("content-length"), std::to_string(got.body.size()));
  EXPECT_EQ(anonymous.get("/v1/health")["status"], "ok");

  EXPECT_EQ(anonymous.request("GET", "/v1/whoami").status, 401);
  EXPECT_EQ(s.client("vigo_not-a-real-token").request("GET", "/v1/whoami").status, 401);
  EXPECT_EQ(s.client("x").request("GET", "/v1/workspaces").status, 401);
  const auto me = s.client(s.alice_).get("/v1/whoami");
  EXPECT_EQ(me["user"], "alice");
  EXPECT_EQ(me["admin"], false);
  EXPECT_EQ(s.client(s.admin_).get("/v1/whoami")["admin"], true);
}

TEST(ApiServer, AdminRoutesRefuseUsersAndAnswerAdmins) {
  ApiServer s;
  auto alice = s.client(s.alice_);
  auto admin = s.client(s.admin_);
  for (const char* target : {"/v1/hosts", "/v1/gis/capacity?by=site"}) {
    EXPECT_EQ(alice.request("GET", target).status, 403) << target;
    EXPECT_EQ(admin.request("GET", target).status, 200) << target;
  }
  EXPECT_EQ(alice.request("GET", "/v1/workspaces?all=true").status, 403);
  EXPECT_EQ(alice.request("GET", "/v1/workspaces?owner=bob").status, 403);
}

TEST(ApiServer, BadRequestsAnswerAnErrorNamingTheField) {
  ApiServer s;
  auto alice = s.client(s.alice_);
  auto r = alice.request("POST", "/v1/gis/hosts-that-fit", "{\"memory_mb\": ");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(body_of(r)["error"]["code"], "invalid_argument");

  r = alice.request("POST", "/v1/gis/hosts-that-fit", R"({"memory_mb": "lots"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_field(r), "memory_mb") << r.body;

  r = alice.request("POST", "/v1/gis/hosts-that-fit", R"({"memory_mb": 512, "colour": "red"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_field(r), "colour") << r.body;

  r = alice.request("POST", "/v1/gis/hosts-that-fit", R"({"memory_mb": 512, "policy": "random"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_field(r), "policy") << r.body;

  r = alice.request("POST", "/v1/gis/vm-sets", "[1, 2]");
  EXPECT_EQ(r.status, 400) << r.body;

  r = alice.request("GET", "/v1/gis/capacity?by=planet");
  EXPECT_EQ(r.status, 403) << "capacity is an admin route";
  r = s.client(s.admin_).request("GET", "/v1/gis/capacity?by=planet");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_field(r), "by") << r.body;

  r = alice.request("GET", "/v1/no-such-thing");
  EXPECT_EQ(r.status, 404);
  r = alice.request("DELETE", "/v1/health");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"].find("GET") != std::string::npos, true) << r.headers["allow"];
  r = alice.request("GET", "/v1/../etc/passwd");
  EXPECT_EQ(r.status, 400) << r.body;

  // And the good request answers.
  EXPECT_TRUE(alice.post("/v1/gis/hosts-that-fit", {{"memory_mb", 512}})["hosts"].is_array());
}

TEST(ApiServer, HeaderAndBodyLimitsAndTheRateLimitHold) {
  ServerOptions so;
  so.body_limit = 4096;
  so.header_limit = 2048;
  ApiOptions ao;
  ao.rate_per_token = 1;
  ao.burst_per_token = 5;
  ApiServer s{nullptr, ao, so};
  auto bob = s.client(s.bob_);
  EXPECT_EQ(bob.request("POST", "/v1/gis/hosts-that-fit", std::string(8192, ' ')).status, 413);
  EXPECT_EQ(bob.request("GET", "/v1/whoami?pad=" + std::string(3000, 'x')).status, 431);

  auto alice = s.client(s.alice_);
  int ok = 0, limited = 0;
  std::string retry_after;
  for (int i = 0; i < 20; ++i) {
    const auto r = alice.request("GET", "/v1/whoami");
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      retry_after = r.headers.count("retry-after") ? r.headers.at("retry-after") : "";
    }
  }
  EXPECT_GE(ok, 5);
  EXPECT_LE(ok, 8) << "a burst of 5 at 1/s cannot pass 20 requests";
  EXPECT_GE(limited, 12);
  EXPECT_FALSE(retry_after.empty());
  // Another token has its own bucket.
  EXPECT_EQ(s.client(s.admin_).request("GET", "/v1/whoami").status, 200);
}


std::int64_t add_workspace(gis::Database& db, const std::string& owner, const std::string& name) {
  return db.write([&](pqxx::transaction_base& txn) {
    return txn.exec_params1("INSERT INTO gis.workspaces (owner_id, name) SELECT id, $2 FROM gis.users "
                            "WHERE name = $1 RETURNING id", owner, name)[0].as<std::int64_t>();
  });
}

void set_state(gis::Database& db, std::int64_t workspace, const std::string& state) {
  db.write([&](pqxx::transaction_base& txn) {
    txn.exec_params0("UPDATE gis.workspaces SET state = $2::gis.vm_state WHERE id = $1", workspace, state);
  });
}

TEST(ApiEvents, EachUserHearsOnlyTheirOwnStateChangesAndMayResume) {
  ApiOptions ao;
  ao.event_heartbeat = 200ms;
  ApiServer s{nullptr, ao};
  const auto reader = [&](const std::string& token, const std::string& target, std::size_t n) {
    return std::make_unique<EventReader>(s.url(), s.ca_file(), token, target,
                                         [&, n](const auto& v) { return count_of(v, "workspace") >= n; });
  };
  auto alice_events = reader(s.alice_, "/v1/events", 2);
  auto bob_events = reader(s.bob_, "/v1/events", 1);
  auto admin_events = reader(s.admin_, "/v1/events", 3);
  auto& alice = *alice_events;
  auto& bob = *bob_events;
  auto& admin = *admin_events;
  alice.wait_ready();
  bob.wait_ready();
  admin.wait_ready();

  // Changes made straight in the database (as psql would) are heard; a
  // rolled-back one is not.
  const auto w = add_workspace(s.db(), "alice", "w1");
  EXPECT_THROW(s.db().write([&](pqxx::transaction_base& txn) {
    txn.exec_params0("UPDATE gis.workspaces SET state = 'failed' WHERE id = $1", w);
    throw Error{ErrorCode::kConflict, "roll back"};
  }), Error);
  set_state(s.db(), w, "running");
  const auto b = add_workspace(s.db(), "bob", "b1");

  const auto seen = alice.finish();
  std::vector<json> mine;
  for (const auto& e : seen) {
    if (e.event == "workspace") mine.push_back(json::parse(e.data));
  }
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0]["id"], w);
  EXPECT_EQ(mine[0]["state"], "pending");
  EXPECT_EQ(mine[0]["name"], "w1");
  EXPECT_FALSE(mine[0].contains("owner_id"));
  EXPECT_EQ(mine[1]["state"], "running") << "the rolled-back 'failed' must not be heard";

  const auto bobs = bob.finish();
  ASSERT_EQ(count_of(bobs, "workspace"), 1u);
  for (const auto& e : bobs) {
    if (e.event == "workspace") {
      EXPECT_EQ(json::parse(e.data)["id"], b) << "bob heard: " << e.data;
    }
  }
  const auto all = admin.finish();
  EXPECT_EQ(count_of(all, "workspace"), 3u);

  // Resuming after the first event gives the second at once.
  std::string first_id;
  for (const auto& e : seen) {
    if (e.event == "workspace" && first_id.empty()) first_id = e.id;
  }
  const auto resumed = reader(s.alice_, "/v1/events?after=" + first_id, 1)->finish();
  ASSERT_EQ(count_of(resumed, "workspace"), 1u);
  for (const auto& e : resumed) {
    if (e.event == "workspace") {
      EXPECT_EQ(json::parse(e.data)["state"], "running");
    }
  }
  EXPECT_EQ(s.client(s.alice_).request("GET", "/v1/events?after=x").status, 400);
  EXPECT_EQ(s.client("").request("GET", "/v1/events").status, 401);
}

TEST(ApiServer, AGisOnlyVigodAnswers503OnWorkspaceRoutes) {
  ApiServer s;
  auto r = s.client(s.alice_).request("GET", "/v1/workspaces");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(body_of(r)["error"]["code"], "unavailable");
}

TEST(ApiServer, TheClientRefusesAServerItCannotVerify) {
  ApiServer s;
  testing::TempDir other{"vigo-api-other-ca"};
  testing::TestCa stranger{other.path(), "stranger"};
  ApiClient c{ApiClientOptions{s.url(), s.alice_, stranger.cert_file(), 10s}};
  try {
    (void)c.get("/v1/health");
    FAIL() << "a certificate from an unknown CA was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
  }
}
}  // namespace
}  // namespace vigo::web
