// SPDX-License-Identifier: Apache-2.0
// `vigo up`: the local stack. At this stage: a private PostgreSQL cluster in
// the state directory (or --db for an existing server), the schema migrated,
// the demo grid loaded, the example compositional queries answered; then it
// stays up until Ctrl-C (or exits at once with --once) and stops the cluster.
// A second run reuses the state directory and is fast.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.h"
#include "demo.h"
#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/common/shutdown.h"
#include "vigo/gis/local_cluster.h"
#include "vigo/gis/migrator.h"
#include "vigo/gis/pg_support.h"

namespace vigo::cli {
namespace {

struct UpArgs {
  std::string state_dir;
  bool once = false;
};

bool database_exists(const std::string& conninfo, const std::string& name) {
  try {
    pqxx::connection conn{conninfo};
    pqxx::read_transaction txn{conn};
    return !txn.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", name).empty();
  } catch (...) {
    gis::rethrow_as_vigo_error("vigo up");
  }
}

void write_config(const std::filesystem::path& file, const std::string& url) {
  const std::filesystem::path tmp = file.string() + ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    // TOML basic string: escape backslashes and quotes.
    std::string escaped;
    for (char c : url) {
      if (c == '\\' || c == '"') escaped += '\\';
      escaped += c;
    }
    out << "# Written by `vigo up`: how the vigo commands reach this local stack.\n"
        << "[database]\nurl = \"" << escaped << "\"\n";
    if (!out.flush()) throw_errno("write " + tmp.string());
  }
  std::filesystem::rename(tmp, file);
}

int run_up(Context& ctx, const UpArgs& args) {
  ShutdownSignal shutdown;
  const std::filesystem::path state = args.state_dir.empty() ? default_state_dir() : std::filesystem::path{args.state_dir};
  std::filesystem::create_directories(state);
  std::filesystem::permissions(state, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                          std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                          std::filesystem::perms::others_exec);

  std::optional<gis::LocalCluster> cluster;
  std::string url;
  // Only an explicit --db or VIGO_DATABASE_URL replaces the private cluster:
  // the state directory's own vigo.toml points at that cluster.
  const char* env_url = std::getenv("VIGO_DATABASE_URL");
  if (!ctx.options.db_url.empty() || (env_url != nullptr && *env_url != '\0')) {
    url = ctx.options.db_url.empty() ? std::string{env_url} : ctx.options.db_url;
    std::cout << "using the database given by " << (ctx.options.db_url.empty() ? "VIGO_DATABASE_URL" : "--db")
              << "\n";
  } else {
    gis::LocalClusterOptions options;
    options.data_dir = state / "pg";
    options.settings = {{"shared_buffers", "128MB"}};
    std::cout << "starting PostgreSQL in " << options.data_dir.string() << " ..." << std::flush;
    cluster.emplace(gis::LocalCluster::start(options));
    std::cout << " up\n";
    if (!database_exists(cluster->connection_string(), "vigo")) cluster->create_database("vigo");
    url = cluster->connection_string("vigo");
  }

  auto applied = gis::Migrator{url}.migrate();
  std::cout << (applied.empty() ? "schema up to date\n"
                                : "applied " + std::to_string(applied.size()) + " migrations\n");
  if (cluster) write_config(state / "vigo.toml", url);

  gis::Database db{gis::DatabaseOptions{url, 2}};
  std::cout << (ensure_demo_grid(db) ? "loaded the demo grid\n" : "reusing the grid already in the GIS\n");
  print_example_queries(db, std::cout);

  std::cout << "\nThe GIS is up. Try:\n"
            << "  psql \"" << url << "\" -c 'SELECT * FROM gis.machines LIMIT 10'\n"
            << "  build/cli/vigo gis hosts-that-fit --memory-mb 2048 --policy pack --limit 3\n"
            << "  build/cli/vigo gis vm-sets --n 4 --min-memory-mb 512 --max-memory-mb 1024 --seed 0.3\n"
            << "  build/cli/vigo gis capacity --by network\n";
  if (args.once) return 0;
  std::cout << "Press Ctrl-C to stop.\n" << std::flush;
  shutdown.wait();
  std::cout << "\nstopping ...\n";
  if (cluster) cluster->stop();
  std::cout << "stopped\n";
  return 0;
}

}  // namespace

void add_up_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<UpArgs>();
  auto* up = app.add_subcommand("up", "Start the local stack and keep it up until Ctrl-C");
  up->add_option("--state-dir", args->state_dir, "Where the stack keeps its state (default: " +
                                                      default_state_dir().string() + ")");
  up->add_flag("--once", args->once, "Set up, print the answers and stop again");
  up->callback([&ctx, args] { run_up(ctx, *args); });
}

}  // namespace vigo::cli
