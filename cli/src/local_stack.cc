// SPDX-License-Identifier: Apache-2.0
#include "local_stack.h"

#include <fstream>
#include <sstream>
#include <thread>

#include "local_stack_setup.h"
#include "vigo/common/error.h"
#include "vigo/common/local_sshd.h"
#include "vigo/common/names.h"
#include "vigo/common/subprocess.h"
#include "vigo/gis/local_cluster.h"
#include "vigo/gis/migrator.h"
#include "vigo/gis/pg_support.h"
#include "vigo/web/api_client.h"
#include "demo.h"

namespace vigo::cli {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

bool database_exists(const std::string& conninfo, const std::string& name) {
  try {
    pqxx::connection conn{conninfo};
    pqxx::read_transaction txn{conn};
    return !txn.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", name).empty();
  } catch (...) {
    gis::rethrow_as_vigo_error("vigo up");
  }
}

}  // namespace

struct LocalStack::Parts {
  LocalStackOptions o;
  std::ostream& out;
  LocalStackInfo info;
  fs::path vigod, imaged, vigo_fs, guest_dir;
  std::optional<gis::LocalCluster> cluster;
  std::unique_ptr<gis::Database> db;
  std::unique_ptr<LocalSshd> sshd;
  std::unique_ptr<Subprocess> fs_proc;
  std::unique_ptr<Subprocess> vigod_proc;

  Parts(LocalStackOptions options, std::ostream& progress) : o(std::move(options)), out(progress) {}

  [[nodiscard]] fs::path dir(const char* name) const { return o.state_dir / name; }

  void step(const std::string& what) { out << what << " ..." << std::flush; }
  void done(const std::string& what = "ok") { out << " " << what << "\n" << std::flush; }

  void find_binaries() {
    vigod = locate(o.vigod, "VIGO_VIGOD", "../web/vigod", "vigod");
    imaged = locate(o.imaged, "VIGO_IMAGED", "../imageserver/vigo-imaged", "vigo-imaged");
    vigo_fs = locate(o.vigo_fs, "VIGO_FS", "../vfs-proxy/vigo-fs", "vigo-fs");
    guest_dir = locate(o.guest_dir, "VIGO_GUEST_DIR", "../guest", "the demo guest");
    (void)locate(guest_dir / "root.ext4", "VIGO_GUEST_DIR", {}, "the demo guest's root disk");
    info.imaged = imaged;
    info.vigo_fs = vigo_fs;
    info.guest_dir = guest_dir;
    info.store_dir = dir("store");
    for (const auto& h : o.extra_hosts) validate_name("extra host", h.name);
  }

  void check_libvirt() {
    const RunResult r = run_command({"virsh", "-c", o.libvirt_uri, "uri"}, 30s);
    if (r.exit_code != 0) {
      throw Error{ErrorCode::kUnavailable, "libvirt at " + o.libvirt_uri +
                                               " does not answer (start it: bash scripts/libvirt-up.sh): " + r.output};
    }
  }

  void start_database() {
    std::string admin_url;
    if (o.database_url.empty()) {
      gis::LocalClusterOptions co;
      co.data_dir = dir("pg");
      co.settings = {{"shared_buffers", "128MB"}};
      step("starting PostgreSQL in " + co.data_dir.string());
      cluster.emplace(gis::LocalCluster::start(co));
      done();
      for (const char* name : {"vigo", "vigo_demo"}) {
        if (!database_exists(cluster->connection_string(), name)) cluster->create_database(name);
      }
      info.database_url = cluster->connection_string("vigo");
      info.demo_database_url = cluster->connection_string("vigo_demo");
    } else {
      out << "using the database given on the command line\n";
      info.database_url = o.database_url;
    }
    const auto applied = gis::Migrator{info.database_url}.migrate();
    out << (applied.empty() ? "schema up to date\n" : "applied " + std::to_string(applied.size()) + " migrations\n");
    db = std::make_unique<gis::Database>(gis::DatabaseOptions{info.database_url, 2});
    // The demo grid's made-up hosts stay out of the real grid: they get a
    // database of their own, except in a GIS-only run on a given database.
    if (o.gis_only && info.demo_database_url.empty()) info.demo_database_url = info.database_url;
    if (!info.demo_database_url.empty()) {
      if (info.demo_database_url != info.database_url) (void)gis::Migrator{info.demo_database_url}.migrate();
      gis::Database demo{gis::DatabaseOptions{info.demo_database_url, 1}};
      out << (ensure_demo_grid(demo) ? "loaded the demo grid" : "reusing the grid already in the GIS")
          << " (database " << (info.demo_database_url == info.database_url ? "as given" : "vigo_demo") << ")\n";
    }
  }

  void start_sshd_and_store() {
    step("starting sshd on loopback");
    sshd = std::make_unique<LocalSshd>(dir("sshd"));
    done("port " + std::to_string(sshd->port()));
    fs::create_directories(dir("store"));
    register_local_grid(*db, o.libvirt_uri, o.state_dir, sshd->port(), o.extra_hosts);
    step("publishing the demo guest as image tiny-root");
    done(ensure_demo_image(*db, imaged, dir("store"), guest_dir) ? "published" : "already there");
  }

  void start_vigo_fs() {
    const fs::path mnt = dir("mnt");
    unmount_lazily(mnt);  // a mount left by a killed earlier run
    fs::create_directories(mnt);
    fs::create_directories(dir("cache"));
    fs::create_directories(dir("logs"));
    SpawnOptions so;
    so.argv = {vigo_fs.string(), "--server", imaged_over_ssh(*sshd, imaged, dir("store")), "--cache",
               dir("cache").string(), "--mount", mnt.string(), "--foreground"};
    so.stderr_path = dir("logs") / "vigo-fs.log";
    step("mounting the image store with vigo-fs on " + mnt.string());
    fs_proc = std::make_unique<Subprocess>(Subprocess::spawn(so));
    try {
      wait_for_mount(mnt, *fs_proc, so.stderr_path, 30s, "vigo-fs");
    } catch (...) {
      if (!fs_proc->running()) fs_proc.reset();
      throw;
    }
    done();
  }

  void write_vigod_config() {
    fs::create_directories(dir("vms"));
    std::ostringstream t;
    t << "# Written by `vigo up` at every start: vigod of the local stack.\n"
      << "[database]\nurl = " << toml_quote(info.database_url) << "\npool = 8\n\n"
      << "[api]\nlisten = \"127.0.0.1:" << o.api_port << "\"\n"
      << "cert = " << toml_quote((dir("tls") / "cert.pem").string()) << "\n"
      << "key = " << toml_quote((dir("tls") / "key.pem").string()) << "\n\n"
      << "[scheduler]\nprofiles_dir = " << toml_quote((o.profiles_dir.empty() ? guest_dir : o.profiles_dir).string())
      << "\n"
      << "accelerator = " << toml_quote(o.accelerator) << "\n"
      << "domain_prefix = " << toml_quote(o.domain_prefix) << "\n"
      << "readiness_timeout_s = " << o.ready_timeout.count() << "\n\n"
      << "[imageserver]\nname = \"local-store\"\nstore = " << toml_quote(dir("store").string()) << "\n"
      << "imaged = " << toml_quote(imaged.string()) << "\n\n"
      << "[host]\nname = \"local\"\nuri = " << toml_quote(o.libvirt_uri) << "\n"
      << "images_dir = " << toml_quote((dir("mnt") / "images").string()) << "\n"
      << "state_dir = " << toml_quote(dir("vms").string()) << "\n\n";
    for (const auto& h : o.extra_hosts) {
      t << "[hosts." << h.name << "]\nuri = " << toml_quote(o.libvirt_uri) << "\n"
        << "images_dir = " << toml_quote(h.images_dir.string()) << "\n"
        << "state_dir = " << toml_quote((o.state_dir / ("vms-" + h.name)).string()) << "\n\n";
    }
    t
      << "[log]\nlevel = \"info\"\n";
    write_text_atomic(o.state_dir / "vigod.toml", t.str());
  }

  void start_vigod() {
    ensure_certificate(dir("tls"));
    info.ca_file = dir("tls") / "cert.pem";
    write_vigod_config();
    const fs::path out_file = dir("logs") / "vigod.out";
    fs::remove(out_file);
    SpawnOptions so;
    so.argv = {vigod.string(), "--config", (o.state_dir / "vigod.toml").string()};
    so.stdout_path = out_file;
    so.stderr_path = dir("logs") / "vigod.log";
    step("starting vigod");
    vigod_proc = std::make_unique<Subprocess>(Subprocess::spawn(so));
    try {
      // Up to 120 s: it reconciles what an earlier run left first.
      info.api_url = wait_for_marker(out_file, "vigod: listening on ", *vigod_proc, so.stderr_path, 120s, "vigod");
    } catch (...) {
      if (!vigod_proc->running()) vigod_proc.reset();
      throw;
    }
    done(info.api_url);
  }

  void write_cli_config() {
    std::ostringstream t;
    t << "# Written by `vigo up`: how the vigo commands reach this local stack.\n"
      << "[database]\nurl = " << toml_quote(o.gis_only ? info.demo_database_url : info.database_url) << "\n";
    if (!o.gis_only) {
      t << "\n[api]\nurl = " << toml_quote(info.api_url) << "\n"
      << "ca = " << toml_quote(info.ca_file.string()) << "\n"
        << "token_file = " << toml_quote((dir("tokens") / "demo").string()) << "\n";
    }
    write_text_atomic(o.state_dir / "vigo.toml", t.str());
  }

  web::ApiClient client(const std::string& token) const {
    return web::ApiClient{web::ApiClientOptions{info.api_url, token, info.ca_file, 60s}};
  }

  void run_demo_workspace() {
    auto api = client(info.demo_token);
    std::optional<std::int64_t> id;
    const nlohmann::json existing = api.get("/v1/workspaces")["workspaces"];
    for (const auto& w : existing) {
      if (w["name"] == "demo" && w["state"] != "failed") id = w["id"].get<std::int64_t>();
    }
    if (!id) {
      step("creating the demo user's workspace 'demo' (profile tiny, image tiny-root)");
      const auto w = api.post("/v1/workspaces", {{"name", "demo"}, {"profile", "tiny"}, {"image", "tiny-root"}});
      id = w["id"].get<std::int64_t>();
      done("id " + std::to_string(*id));
    }
    info.demo_workspace = id;
    out << "waiting for workspace " << *id << " to run:" << std::flush;
    std::string last;
    const auto deadline = Clock::now() + o.ready_timeout;
    const auto started = Clock::now();
    for (;;) {
      const auto w = api.get("/v1/workspaces/" + std::to_string(*id));
      const std::string state = w["state"];
      if (state != last) {
        out << " " << state << std::flush;
        last = state;
      }
      if (state == "running") break;
      if (state == "failed" || state == "deleted") {
        out << "\n";
        throw Error{ErrorCode::kInternal, "the demo workspace " + state + ": " + w.value("error", std::string{})};
      }
      if (Clock::now() > deadline) {
        out << "\n";
        throw Error{ErrorCode::kTimeout, "the demo workspace did not run within " +
                                             std::to_string(o.ready_timeout.count()) + " s (last state " + state +
                                             ")"};
      }
      std::this_thread::sleep_for(500ms);
    }
    const auto seconds = std::chrono::duration<double>(Clock::now() - started).count();
    out << " (" << static_cast<int>(seconds * 10) / 10.0 << " s)\n" << std::flush;
  }

  // Deletes every workspace through the API and waits until they are gone.
  void delete_workspaces() {
    if (!vigod_proc || info.admin_token.empty() || info.api_url.empty()) return;
    try {
      auto api = client(info.admin_token);
      auto all = api.get("/v1/workspaces?all=true")["workspaces"];
      if (all.empty()) return;
      step("deleting " + std::to_string(all.size()) + " workspace(s)");
      for (const auto& w : all) api.del("/v1/workspaces/" + std::to_string(w["id"].get<std::int64_t>()));
      const auto deadline = Clock::now() + 120s;
      while (!api.get("/v1/workspaces?all=true")["workspaces"].empty() && Clock::now() < deadline) {
        std::this_thread::sleep_for(200ms);
      }
      done();
    } catch (const std::exception& e) {
      out << "\ncould not delete the workspaces: " << e.what() << "\n";
    }
  }

  void stop() noexcept {
    delete_workspaces();
    try {
      if (vigod_proc) {
        step("stopping vigod");
        vigod_proc->terminate(60s);
        vigod_proc.reset();
        done();
      }
      if (fs_proc) {
        step("unmounting vigo-fs");
        fs_proc->terminate(20s);
        fs_proc.reset();
        unmount_lazily(dir("mnt"));
        done();
      }
      if (sshd) {
        sshd.reset();
      }
      db.reset();
      if (cluster) {
        step("stopping PostgreSQL");
        cluster->stop();
        cluster.reset();
        done();
      }
    } catch (const std::exception& e) {
      out << "\nerror while stopping: " << e.what() << "\n";
    }
  }
};

void LocalStack::kill_and_restart_vigod() {
  if (!parts_->vigod_proc) throw Error{ErrorCode::kUnavailable, "vigod is not running", "vigod"};
  parts_->vigod_proc->terminate(std::chrono::seconds{0}, SIGKILL);
  parts_->vigod_proc.reset();
  parts_->start_vigod();
}

LocalStack::LocalStack(LocalStackOptions options, std::ostream& progress)
    : parts_(std::make_unique<Parts>(std::move(options), progress)) {}

LocalStack::~LocalStack() { stop(); }

void LocalStack::start() {
  Parts& p = *parts_;
  fs::create_directories(p.o.state_dir);
  if (p.o.gis_only) {
    p.start_database();
    p.write_cli_config();
    return;
  }
  p.find_binaries();
  p.check_libvirt();
  p.start_database();
  p.start_sshd_and_store();  // also registers the users
  p.info.demo_token = ensure_token(*p.db, p.dir("tokens") / "demo", "demo");
  p.info.admin_token = ensure_token(*p.db, p.dir("tokens") / "admin", "admin");
  p.start_vigo_fs();
  p.start_vigod();
  p.write_cli_config();
  if (p.o.demo_workspace) p.run_demo_workspace();
}

void LocalStack::stop() noexcept { parts_->stop(); }

const LocalStackInfo& LocalStack::info() const { return parts_->info; }

const LocalSshd& LocalStack::sshd() const {
  if (!parts_->sshd) throw Error{ErrorCode::kConflict, "the local stack's sshd is not running"};
  return *parts_->sshd;
}

}  // namespace vigo::cli
