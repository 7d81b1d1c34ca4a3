// SPDX-License-Identifier: Apache-2.0
// vigod killed with SIGKILL in the middle of an instantiation, on the whole
// local stack (`vigo up`'s parts: PostgreSQL, sshd, vigo-imaged, vigo-fs,
// vigod over qemu:///system): the VM's domain is being started when vigod
// dies; the restarted vigod reconciles (the VM failed as interrupted, its
// domain destroyed, its files removed, its capacity released) and serves
// the next workspace as if nothing had happened.
#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "local_stack.h"
#include "support/guest.h"
#include "support/pg_fixture.h"
#include "support/sshd_fixture.h"
#include "support/vfs_fixture.h"
#include "vigo/common/subprocess.h"
#include "vigo/gis/database.h"
#include "vigo/scheduler/vm_spec.h"
#include "vigo/web/api_client.h"

namespace vigo::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

TEST(VigodCrash, KilledMidInstantiationTheRestartedVigodLeavesNothingBehind) {
  testing::TempDir state{"vigo-crash"};
  LocalStackOptions o;
  o.state_dir = state.path();
  o.api_port = 0;
  o.domain_prefix = "vigo-k" + scheduler::random_uuid().substr(0, 6) + "-";
  o.demo_workspace = false;
  o.vigod = fs::path{testing::vigo_cli_path()}.parent_path().parent_path() / "web" / "vigod";
  o.imaged = testing::imaged_path();
  o.vigo_fs = testing::vigo_fs_path();
  o.guest_dir = testing::guest_dir();
  std::ostringstream progress;
  LocalStack stack{o, progress};
  ASSERT_NO_THROW(stack.start()) << progress.str();
  auto api = [&] {
    return web::ApiClient{web::ApiClientOptions{stack.info().api_url, stack.info().demo_token, stack.info().ca_file, 60s}};
  };
  auto domains = [&] {
    const auto r = run_command({"virsh", "-c", "qemu:///system", "list", "--all", "--name"}, 30s);
    std::vector<std::string> out;
    std::istringstream in{r.output};
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(o.domain_prefix, 0) == 0) out.push_back(line);
    }
    return out;
  };
  const json request{{"name", "doomed"}, {"profile", "tiny"}, {"image", "tiny-root"}};

  // Killed while the VM is `starting`: its domain exists, the guest boots.
  std::int64_t id = 0;
  {
    auto client = api();
    id = client.post("/v1/workspaces", request)["id"].get<std::int64_t>();
    const auto deadline = Clock::now() + 120s;
    std::string seen;
    while (seen != "starting" && Clock::now() < deadline) {
      seen = client.get("/v1/workspaces/" + std::to_string(id))["state"].get<std::string>();
      ASSERT_NE(seen, "failed");
      ASSERT_NE(seen, "running") << "the boot finished before it could be interrupted";
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(seen, "starting");
    // The state turns `starting` just before libvirt is asked to start the
    // domain: wait for the domain itself, the boot still in progress.
    while (domains().empty() && Clock::now() < deadline) {
      seen = client.get("/v1/workspaces/" + std::to_string(id))["state"].get<std::string>();
      ASSERT_EQ(seen, "starting") << "the VM left `starting` before its domain was listed";
      std::this_thread::sleep_for(10ms);
    }
  }
  ASSERT_EQ(domains().size(), 1u) << "the domain is started while the VM is starting";
  stack.kill_and_restart_vigod();

  auto client = api();
  const json w = client.get("/v1/workspaces/" + std::to_string(id));
  EXPECT_EQ(w["state"], "failed") << w.dump();
  EXPECT_NE(w["error"].get<std::string>().find("interrupted"), std::string::npos) << w.dump();
  EXPECT_TRUE(domains().empty()) << domains().front();
  for (const auto& e : fs::directory_iterator(state.path() / "vms")) {  // (uploads/ lives there too)
    EXPECT_NE(e.path().filename().string().rfind("vm-", 0), 0u) << e.path() << " was left behind";
  }
  gis::Database db{gis::DatabaseOptions{stack.info().database_url, 1}};
  const auto held = db.read([](pqxx::transaction_base& txn) {
    return txn.exec1("SELECT sum(alloc_memory_mb) FROM gis.hosts")[0].as<std::int64_t>();
  });
  EXPECT_EQ(held, 0);

  // The restarted vigod serves the next workspace.
  const auto next = client.post("/v1/workspaces", {{"name", "after"}, {"profile", "tiny"}, {"image", "tiny-root"}});
  const auto next_id = next["id"].get<std::int64_t>();
  std::string s;
  const auto deadline = Clock::now() + 200s;
  while (s != "running" && s != "failed" && Clock::now() < deadline) {
    s = client.get("/v1/workspaces/" + std::to_string(next_id))["state"].get<std::string>();
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(s, "running");
  stack.stop();  // deletes the workspaces: nothing of ours is left in libvirt
  EXPECT_TRUE(domains().empty());
}

}  // namespace
}  // namespace vigo::cli
