// SPDX-License-Identifier: Apache-2.0
// vigod's API with real guests (libvirt, vigo-fs through sshd), a vigod in
// the test process over a WorkspaceManager on this machine's libvirt: one
// user's workspace is invisible and untouchable to another on every
// workspace route, the admin sees it, and the `vigo ws` commands drive it;
// images uploaded, published and deleted; the portal in headless Chromium.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "support/guest.h"
#include "api_test_support.h"
#include "support/pg_fixture.h"
#include "support/test_pki.h"
#include "support/vfs_fixture.h"
#include "vigo/common/error.h"
#include "vigo/common/subprocess.h"
#include "vigo/gis/registry.h"
#include "vigo/gis/tokens.h"
#include "vigo/scheduler/libvirt_hypervisor.h"
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

// With real guests: one workspace of alice's, and what bob and the admin can
// do with it, route by route. A vigod in the test process with a
// WorkspaceManager on this machine's libvirt.
class WorkspaceStack {
 public:
  WorkspaceStack(testing::VfsFixture& vfs, const fs::path& state, scheduler::LibvirtHypervisor& hv,
                 scheduler::StorePublisher& publisher, const std::string& prefix)
      : hv_(hv) {
    gis::Registry reg{db_};
    reg.add_site("lab");
    reg.add_network("lan", "lab");
    reg.add_image_server("store", "lab", "ssh://127.0.0.1");
    reg.add_user("alice");
    reg.add_user("bob");
    reg.add_user("root-user", true);
    host_ = "node-" + scheduler::random_uuid().substr(0, 6);
    const gis::HostSpec host{host_, "lan", "qemu:///system", 8, 2048, 100, "x86_64", {}};
    reg.register_hosts(std::span{&host, 1});
    vfs.publish_file("tiny-root", testing::guest_dir() / "root.ext4");
    vfs.start_fs();
    db_.write([&](pqxx::transaction_base& txn) {
      txn.exec_params("SELECT gis.add_image('tiny-root', 1, 'disk', NULL, 'store', $1)",
                      static_cast<std::int64_t>(fs::file_size(testing::guest_dir() / "root.ext4")));
    });
    scheduler::WorkspaceManagerOptions o;
    auto tiny = scheduler::load_vm_profile(testing::guest_dir() / "tiny.toml");
    tiny.memory_mib = 256;
    o.profiles["tiny"] = tiny;
    o.readiness_timeout = 180s;
    o.reconcile_interval = 0s;
    o.domain_prefix = prefix;
    prefix_ = prefix;
    scheduler::HostContext h{host_, &hv, vfs.mount() / "images", state};
    manager_ = std::make_unique<scheduler::WorkspaceManager>(db_, &publisher, std::vector{h}, o);
    gis::Tokens tokens{db_};
    alice = tokens.issue("alice");
    bob = tokens.issue("bob");
    admin = tokens.issue("root-user");
    ca_ = std::make_unique<testing::TestCa>(pki_.path(), "ca");
    const auto files = ca_->issue("server", {"vigod", {"IP:127.0.0.1"}, true, false});
    cert_file_ = files.cert;
    ServerOptions so;
    so.cert_file = files.cert;
    so.key_file = files.key;
    ApiOptions ao;
    ao.upload_dir = state / "uploads";
    api_ = std::make_unique<Api>(db_, manager_.get(), ao, &publisher);
    server_ = std::make_unique<HttpsServer>(so, [this](const Request& r) { return api_->handle(r); });
    server_->start();
  }
  ~WorkspaceStack() {
    server_->stop();
    manager_.reset();
    for (const auto& d : hv_.list()) {
      if (d.name.rfind(prefix_, 0) == 0) {
        try {
          hv_.destroy(d.name);
        } catch (const Error&) {
        }
      }
    }
  }
  [[nodiscard]] std::string url() const { return "https://127.0.0.1:" + std::to_string(server_->port()); }
  [[nodiscard]] ApiClient client(const std::string& token) const {
    return ApiClient{ApiClientOptions{url(), token, ca_->cert_file(), 120s}};
  }
  [[nodiscard]] fs::path ca_file() const { return ca_->cert_file(); }
  [[nodiscard]] const fs::path& cert_file() const { return cert_file_; }
  std::int64_t count(const std::string& sql) {
    return db_.read([&](pqxx::transaction_base& txn) { return txn.exec1(sql)[0].as<std::int64_t>(); });
  }
  std::vector<std::string> domains() { return testing::domains_named(hv_, prefix_); }

  std::string alice, bob, admin;

 private:
  scheduler::LibvirtHypervisor& hv_;
  testing::ScopedDatabase scoped_;
  gis::Database db_{gis::DatabaseOptions{scoped_.connection_string(), 4}};
  testing::TempDir pki_{"vigo-api-pki"};
  std::unique_ptr<testing::TestCa> ca_;
  fs::path cert_file_;
  std::string host_, prefix_;
  std::unique_ptr<scheduler::WorkspaceManager> manager_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpsServer> server_;
};

// What a test with real guests needs, built in order: the image store and
// vigo-fs mount, libvirt, the publisher, and the vigod over them.
struct GuestStack {
  GuestStack(const std::string& state_name, const std::string& domain_prefix)
      : state{state_name},
        hv{events, "qemu:///system"},
        publisher{testing::imaged_path(), vfs.store(), "store"},
        stack{vfs, state.path(), hv, publisher, domain_prefix + scheduler::random_uuid().substr(0, 8) + "-"} {}
  testing::VfsFixture vfs;
  testing::TempDir state;
  scheduler::LibvirtEventLoop events;
  scheduler::LibvirtHypervisor hv;
  scheduler::StorePublisher publisher;
  WorkspaceStack stack;
};

json wait_for_state(ApiClient& c, std::int64_t id, const std::string& want) {
  const auto deadline = std::chrono::steady_clock::now() + 240s;
  for (;;) {
    json w = c.get("/v1/workspaces/" + std::to_string(id));
    if (w["state"] == want || w["state"] == "failed") return w;
    if (std::chrono::steady_clock::now() > deadline) return w;
    std::this_thread::sleep_for(300ms);
  }
}

RunResult vigo_cli(const fs::path& config, const std::string& token, std::vector<std::string> args) {
  args.insert(args.begin(), {testing::vigo_cli_path(), "--config", config.string(), "--token", token});
  return run_command(args, 300s);
}

TEST(ApiWorkspaces, AUsersWorkspaceIsInvisibleToOthersOnEveryRouteAndTheCliDrivesIt) {
  GuestStack g{"vigo-api-state", "vigo-a"};
  auto& s = g.stack;
  auto alice = s.client(s.alice);
  auto bob = s.client(s.bob);
  auto admin = s.client(s.admin);

  // A bad create leaves nothing and names the field.
  auto bad = alice.request("POST", "/v1/workspaces", R"({"name": "desk", "profile": "tiny"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(error_field(bad), "image");
  bad = alice.request("POST", "/v1/workspaces", R"({"name": "desk", "profile": "tiny", "image": "tiny-root",
                                                    "owner": "bob"})");
  EXPECT_EQ(bad.status, 403) << bad.body;
  bad = alice.request("POST", "/v1/workspaces", R"({"name": "desk", "image": "tiny-root"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(error_field(bad), "profile");
  bad = alice.request("POST", "/v1/workspaces", R"({"name": "desk", "profile": "nope", "image": "tiny-root"})");
  EXPECT_EQ(bad.status / 100, 4) << bad.body;
  EXPECT_EQ(s.count("SELECT count(*) FROM gis.workspaces"), 0);

  // alice follows her events while the workspace comes up.
  const auto runs = [](const ApiClient::ServerEvent& e) {
    return e.event == "workspace" && json::parse(e.data)["state"] == "running";
  };
  EventReader followed{s.url(), s.ca_file(), s.alice, "/v1/events",
                       [&](const auto& v) { return std::any_of(v.begin(), v.end(), runs); }};
  followed.wait_ready();
  const json created = alice.post("/v1/workspaces", {{"name", "desk"}, {"profile", "tiny"}, {"image", "tiny-root"}});
  const auto id = created["id"].get<std::int64_t>();
  const std::string ws = "/v1/workspaces/" + std::to_string(id);
  EXPECT_EQ(created["owner"], "alice");
  const json running = wait_for_state(alice, id, "running");
  ASSERT_EQ(running["state"], "running") << running.dump();
  std::vector<std::string> states;
  for (const auto& e : followed.finish()) {
    if (e.event == "vm" || e.event == "workspace") states.push_back(e.event + ":" + json::parse(e.data)["state"].get<std::string>());
  }
  EXPECT_EQ(states.front(), "workspace:pending") << ::testing::PrintToString(states);
  EXPECT_EQ(states.back(), "workspace:running") << ::testing::PrintToString(states);
  EXPECT_NE(std::find(states.begin(), states.end(), "vm:running"), states.end()) << ::testing::PrintToString(states);

  // bob: every route on alice's workspace answers exactly as a missing one.
  const std::string missing = "/v1/workspaces/999999999";
  struct Call {
    std::string method, suffix, body;
  };
  const std::vector<Call> calls{{"GET", "", ""},
                                {"DELETE", "", ""},
                                {"POST", "/pause", ""},
                                {"POST", "/resume", ""},
                                {"POST", "/stop", ""},
                                {"POST", "/start", ""},
                                {"POST", "/migrate", ""},
                                {"POST", "/checkpoint", R"({"name": "mine"})"},
                                {"GET", "/console", ""}};
  for (const auto& c : calls) {
    const auto theirs = bob.request(c.method, ws + c.suffix, c.body);
    const auto none = bob.request(c.method, missing + c.suffix, c.body);
    EXPECT_EQ(theirs.status, 404) << c.method << " " << c.suffix << ": " << theirs.body;
    EXPECT_EQ(theirs.status, none.status) << c.method << " " << c.suffix;
    EXPECT_EQ(body_of(theirs)["error"]["code"], body_of(none)["error"]["code"]);
  }
  EXPECT_TRUE(bob.get("/v1/workspaces")["workspaces"].empty());
  EXPECT_EQ(bob.request("GET", "/v1/workspaces?all=true").status, 403);
  EXPECT_EQ(wait_for_state(alice, id, "running")["state"], "running") << "bob's calls changed nothing";

  // The admin sees it and every user's list.
  EXPECT_EQ(admin.get(ws)["owner"], "alice");
  EXPECT_EQ(admin.get("/v1/workspaces?all=true")["workspaces"].size(), 1u);
  EXPECT_EQ(admin.get("/v1/workspaces?owner=alice")["workspaces"].size(), 1u);

  // alice: pause, resume, console, a checkpoint only she (and the admin) sees
  // (resumed below by `vigo ws create --checkpoint` with the checkpointed workspace's profile).
  EXPECT_EQ(alice.post(ws + "/pause")["state"], "paused");
  EXPECT_EQ(alice.post(ws + "/resume")["state"], "running");
  // A migration needs another host; this vigod drives one: no room, nothing changed.
  const auto nowhere = alice.request("POST", ws + "/migrate", R"({"placement": {"policy": "pack"}})");
  EXPECT_EQ(nowhere.status, 503) << nowhere.body;
  EXPECT_EQ(body_of(nowhere)["error"]["code"], "resource_exhausted") << nowhere.body;
  EXPECT_EQ(alice.request("POST", ws + "/migrate", R"({"placement": {"bogus": 1}})").status, 400);
  EXPECT_EQ(alice.get(ws)["state"], "running");
  const json console = alice.get(ws + "/console?bytes=65536");
  ASSERT_EQ(console["vms"].size(), 1u);
  EXPECT_FALSE(console["vms"][0]["console"].get<std::string>().empty());
  EXPECT_EQ(alice.request("GET", ws + "/console?bytes=0").status, 400);
  const json cp = alice.post(ws + "/checkpoint", {{"name", "first"}});
  EXPECT_EQ(cp["name"], "first");
  EXPECT_EQ(alice.get("/v1/checkpoints")["checkpoints"].size(), 1u);
  EXPECT_TRUE(bob.get("/v1/checkpoints")["checkpoints"].empty());
  EXPECT_EQ(admin.get("/v1/checkpoints?all=true")["checkpoints"].size(), 1u);

  // The command line over the same API.
  testing::TempDir cli_dir{"vigo-api-cli"};
  const fs::path config = cli_dir.path() / "vigo.toml";
  std::ofstream{config} << "[api]\nurl = \"" << s.url() << "\"\nca = \"" << s.ca_file().string() << "\"\n";
  auto list = vigo_cli(config, s.alice, {"ws", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("desk"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("running"), std::string::npos) << list.output;
  auto shown = vigo_cli(config, s.alice, {"--json", "ws", "show", std::to_string(id)});
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_EQ(json::parse(shown.output)["name"], "desk");
  auto hidden = vigo_cli(config, s.bob, {"ws", "show", std::to_string(id)});
  EXPECT_EQ(hidden.exit_code, 3) << hidden.output;  // not found
  EXPECT_NE(hidden.output.find("no workspace"), std::string::npos) << hidden.output;
  auto clone = vigo_cli(config, s.alice, {"ws", "create", "twin", "--checkpoint", "first"});
  ASSERT_EQ(clone.exit_code, 0) << clone.output;
  EXPECT_NE(clone.output.find("running"), std::string::npos) << clone.output;
  auto no_token = run_command({testing::vigo_cli_path(), "--config", config.string(), "ws", "list"}, 60s);
  EXPECT_EQ(no_token.exit_code, 2) << no_token.output;

  // Deleting through the API leaves nothing.
  const json all = alice.get("/v1/workspaces")["workspaces"];
  for (const auto& w : all) {
    alice.del("/v1/workspaces/" + std::to_string(w["id"].get<std::int64_t>()));
  }
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!alice.get("/v1/workspaces")["workspaces"].empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(alice.get("/v1/workspaces")["workspaces"].empty()) << alice.get("/v1/workspaces").dump();
  EXPECT_TRUE(s.domains().empty()) << ::testing::PrintToString(s.domains());
  EXPECT_EQ(s.count("SELECT coalesce(sum(alloc_memory_mb), 0) FROM gis.hosts"), 0);
}

// Images through the API: an upload in pieces (a retried piece refused, the
// offset to resume from), publish as a private image that only its owner
// sees, its bytes through the real vigo-fs mount, names that belong to
// someone, deletion with its rules, and `vigo images` doing the same.
TEST(ApiImages, UploadPublishSeeAndDeleteOwnImagesOnly) {
  GuestStack g{"vigo-api-images", "vigo-i"};
  auto& s = g.stack;
  auto& vfs = g.vfs;
  auto alice = s.client(s.alice);
  auto bob = s.client(s.bob);
  auto admin = s.client(s.admin);

  std::string bytes(700 * 1024, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  const std::string id = alice.post("/v1/uploads")["id"].get<std::string>();
  const std::string up = "/v1/uploads/" + id;
  EXPECT_EQ(alice.put_bytes(up + "?offset=0", std::string_view{bytes}.substr(0, 400 * 1024))["offset"], 400 * 1024);
  auto again = alice.request("PUT", up + "?offset=0", bytes.substr(0, 1000), "application/octet-stream");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(error_field(again), "offset");
  EXPECT_EQ(alice.get(up)["offset"], 400 * 1024);
  EXPECT_EQ(bob.request("GET", up).status, 404);
  EXPECT_EQ(bob.request("PUT", up + "?offset=409600", "x", "application/octet-stream").status, 404);
  EXPECT_EQ(error_field(alice.request("PUT", up, "x", "application/octet-stream")), "offset");
  EXPECT_EQ(error_field(alice.request("GET", "/v1/uploads/zz")), "upload");
  EXPECT_EQ(alice.put_bytes(up + "?offset=409600", std::string_view{bytes}.substr(400 * 1024))["offset"],
            bytes.size());

  auto bad = alice.request("POST", "/v1/images", R"({"name": "Bad Name", "upload": ")" + id + "\"}");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(error_field(bad), "name");
  bad = alice.request("POST", "/v1/images", R"({"name": "mine", "upload": ")" + id + R"(", "public": true})");
  EXPECT_EQ(bad.status, 403) << bad.body;
  EXPECT_EQ(error_field(alice.request("POST", "/v1/images", R"({"name": "mine"})")), "upload");
  EXPECT_EQ(alice.get(up)["offset"], bytes.size()) << "a refused publish keeps the upload";

  const json image = alice.post("/v1/images", {{"name", "mine"}, {"upload", id}});
  EXPECT_EQ(image["name"], "mine");
  EXPECT_EQ(image["version"], 1);
  EXPECT_EQ(image["size_bytes"], bytes.size());
  EXPECT_EQ(image["owner"], "alice");
  EXPECT_EQ(alice.request("GET", up).status, 404) << "a published upload is gone";
  const auto names = [](const json& list) {
    std::vector<std::string> out;
    for (const auto& i : list["images"]) out.push_back(i["name"].get<std::string>() + "@" + std::to_string(i["version"].get<int>()));
    return out;
  };
  const auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  EXPECT_TRUE(has(names(alice.get("/v1/images")), "mine@1"));
  EXPECT_TRUE(has(names(alice.get("/v1/images")), "tiny-root@1"));
  EXPECT_FALSE(has(names(bob.get("/v1/images")), "mine@1"));
  EXPECT_TRUE(has(names(admin.get("/v1/images")), "mine@1"));

  // The bytes, through the real FUSE mount.
  const fs::path through = vfs.mount() / "images" / "mine@1";
  std::string read_back;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (read_back != bytes && std::chrono::steady_clock::now() < deadline) {
    std::ifstream in{through, std::ios::binary};
    read_back.assign(std::istreambuf_iterator<char>{in}, {});
    if (read_back != bytes) std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(read_back == bytes) << "read " << read_back.size() << " bytes from " << through;

  // The name is alice's: bob cannot add a version of it.
  const std::string bobs = bob.post("/v1/uploads")["id"].get<std::string>();
  bob.put_bytes("/v1/uploads/" + bobs + "?offset=0", "hello");
  auto taken = bob.request("POST", "/v1/images", json{{"name", "mine"}, {"upload", bobs}}.dump());
  EXPECT_EQ(taken.status, 409) << taken.body;
  EXPECT_EQ(error_field(taken), "name");
  bob.del("/v1/uploads/" + bobs);

  // Deleting: not another's, not a public one (for a user), then gone.
  EXPECT_EQ(bob.request("DELETE", "/v1/images/mine@1").status, 404);
  EXPECT_EQ(alice.request("DELETE", "/v1/images/tiny-root@1").status, 403);
  EXPECT_EQ(error_field(alice.request("DELETE", "/v1/images/mine")), "image");
  EXPECT_EQ(alice.del("/v1/images/mine@1")["deleted"], true);
  EXPECT_FALSE(has(names(alice.get("/v1/images")), "mine@1"));
  EXPECT_EQ(alice.request("DELETE", "/v1/images/mine@1").status, 404);

  // The command line: publish with a progress bar (in pieces), list, delete.
  testing::TempDir cli_dir{"vigo-api-images-cli"};
  const fs::path config = cli_dir.path() / "vigo.toml";
  std::ofstream{config} << "[api]\nurl = \"" << s.url() << "\"\nca = \"" << s.ca_file().string() << "\"\n";
  const fs::path file = cli_dir.path() / "disk.raw";
  std::ofstream{file, std::ios::binary} << bytes;
  auto published = vigo_cli(config, s.alice, {"images", "publish", file.string(), "--name", "cli-img", "--piece-kib", "64"});
  ASSERT_EQ(published.exit_code, 0) << published.output;
  EXPECT_NE(published.output.find("published cli-img@1"), std::string::npos) << published.output;
  auto listed = vigo_cli(config, s.alice, {"images"});
  EXPECT_NE(listed.output.find("cli-img"), std::string::npos) << listed.output;
  auto deleted = vigo_cli(config, s.alice, {"images", "delete", "cli-img@1"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.output;
  EXPECT_EQ(vigo_cli(config, s.bob, {"images", "delete", "tiny-root@1"}).exit_code, 6);  // permission denied
}

// SHA-256 of a certificate's public key (SubjectPublicKeyInfo), base64:
// what Chromium's --ignore-certificate-errors-spki-list takes.
std::string spki_sha256_base64(const fs::path& cert_file) {
  std::unique_ptr<FILE, int (*)(FILE*)> f{std::fopen(cert_file.c_str(), "r"), &std::fclose};
  if (!f) throw Error{ErrorCode::kNotFound, "cannot open " + cert_file.string()};
  std::unique_ptr<X509, void (*)(X509*)> cert{PEM_read_X509(f.get(), nullptr, nullptr, nullptr), &X509_free};
  if (!cert) throw Error{ErrorCode::kInvalidArgument, cert_file.string() + " holds no certificate"};
  unsigned char* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
  if (len <= 0) throw Error{ErrorCode::kInternal, "cannot encode the public key"};
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<std::size_t>(len), digest);
  OPENSSL_free(der);
  std::string out(4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1, '\0');
  out.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), digest,
                                                      SHA256_DIGEST_LENGTH)));
  return out;
}

// The portal in Debian's headless Chromium (web/e2e/portal_e2e.mjs, driven
// by playwright-core): sign in, create a workspace, see it run, delete it.
TEST(PortalE2e, SignInCreateSeeItRunAndDeleteInHeadlessChromium) {
  GuestStack g{"vigo-portal-state", "vigo-p"};
  auto& s = g.stack;
  testing::TempDir shots{"vigo-portal-shots"};
  const fs::path script = fs::path{VIGO_SOURCE_DIR} / "web" / "e2e" / "portal_e2e.mjs";
  ASSERT_TRUE(fs::exists(script.parent_path() / "node_modules" / "playwright-core"))
      << "run scripts/setup.sh: it installs web/e2e's node modules";
  const auto run = run_command({"env", "VIGO_URL=" + s.url(), "VIGO_TOKEN=" + s.alice,
                                "VIGO_SPKI=" + spki_sha256_base64(s.cert_file()), "VIGO_SOURCE=image:tiny-root",
                                "VIGO_PROFILE=tiny", "VIGO_NAME=e2e", "VIGO_TIMEOUT_S=240",
                                "VIGO_SCREENSHOT_DIR=" + shots.path().string(), "node", script.string()},
                               420s);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("portal e2e: ok"), std::string::npos) << run.output;
  EXPECT_TRUE(fs::exists(shots.path() / "portal-running.png"));
  // What the page did is real: the workspace ran and is gone.
  EXPECT_EQ(s.count("SELECT count(*) FROM gis.workspaces WHERE name = 'e2e' AND state = 'deleted'"), 1);
  EXPECT_EQ(s.count("SELECT count(*) FROM gis.workspaces WHERE state <> 'deleted'"), 0);
  EXPECT_TRUE(s.domains().empty());
}

}  // namespace
}  // namespace vigo::web
