// SPDX-License-Identifier: Apache-2.0
// `vigo up`: the whole local stack (local_stack.h): PostgreSQL, sshd with
// vigo-imaged, the vigo-fs mount, vigod, this machine as a host, the demo
// guest published and a workspace of the demo user running; then the portal
// URL, the demo token and commands to try. Stays up until Ctrl-C (or stops
// at once with --once) and stops everything it started, leaving no process,
// mount, domain or claim. --gis-only: just the GIS with the demo grid and
// the answers of the example compositional queries. A second run reuses the
// state directory and is fast.
#include <iostream>
#include <memory>

#include "commands.h"
#include "demo.h"
#include "local_stack.h"
#include "vigo/common/error.h"
#include "vigo/common/shutdown.h"
#include "vigo/gis/database.h"

namespace vigo::cli {
namespace {

struct UpArgs {
  std::string state_dir;
  bool once = false;
  bool gis_only = false;
  bool no_workspace = false;
  int api_port = 8443;
  std::string accelerator = "tcg";
  std::string domain_prefix = "vigo-";
  int ready_timeout_s = 300;
};

void print_tour(const LocalStackInfo& info, const std::filesystem::path& state) {
  std::cout << "\nThe local stack is up.\n"
            << "  portal:     " << info.api_url << "/   (sign in with the demo token; the certificate is "
            << info.ca_file.string() << ")\n"
            << "  demo token: " << info.demo_token << "\n"
            << "  admin token in " << (state / "tokens" / "admin").string() << "\n"
            << "  database:   psql \"" << info.database_url << "\"\n"
            << "Try:\n"
            << "  build/cli/vigo ws list\n";
  if (info.demo_workspace) {
    std::cout << "  build/cli/vigo ws console " << *info.demo_workspace << "\n"
              << "  build/cli/vigo ws checkpoint " << *info.demo_workspace << " --name first\n";
  }
}

int run_up(Context& ctx, const UpArgs& args) {
  ShutdownSignal shutdown;
  LocalStackOptions o;
  o.state_dir = args.state_dir.empty() ? default_state_dir() : std::filesystem::path{args.state_dir};
  // Only an explicit --db or VIGO_DATABASE_URL replaces the private cluster.
  const char* env_url = std::getenv("VIGO_DATABASE_URL");
  o.database_url = !ctx.options.db_url.empty() ? ctx.options.db_url : (env_url != nullptr ? env_url : "");
  o.api_port = static_cast<std::uint16_t>(args.api_port);
  o.accelerator = args.accelerator;
  o.domain_prefix = args.domain_prefix;
  o.gis_only = args.gis_only;
  o.demo_workspace = !args.no_workspace;
  o.ready_timeout = std::chrono::seconds{args.ready_timeout_s};
  LocalStack stack{o, std::cout};
  try {
    stack.start();
  } catch (...) {
    std::cout << "\nvigo up failed; stopping what started\n" << std::flush;
    stack.stop();
    throw;  // app.cc prints the error and picks the exit code
  }
  const auto& info = stack.info();
  if (args.gis_only) {
    gis::Database demo{gis::DatabaseOptions{info.demo_database_url, 1}};
    print_example_queries(demo, std::cout);
    std::cout << "\nThe GIS is up. Try:\n"
              << "  psql \"" << info.demo_database_url << "\" -c 'SELECT * FROM gis.machines LIMIT 10'\n"
              << "  build/cli/vigo gis hosts-that-fit --memory-mb 2048 --policy pack --limit 3\n"
              << "  build/cli/vigo gis vm-sets --n 4 --min-memory-mb 512 --max-memory-mb 1024 --seed 0.3\n"
              << "  build/cli/vigo gis capacity --by network\n";
  } else {
    print_tour(info, o.state_dir);
  }
  if (!args.once) {
    std::cout << "Press Ctrl-C to stop.\n" << std::flush;
    shutdown.wait();
  }
  std::cout << "\nstopping ...\n" << std::flush;
  stack.stop();
  std::cout << "stopped\n";
  return 0;
}

}  // namespace

void add_up_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<UpArgs>();
  auto* up = app.add_subcommand("up", "Start the whole local stack and keep it up until Ctrl-C");
  up->add_option("--state-dir", args->state_dir, "Where the stack keeps its state (default: " +
                                                      default_state_dir().string() + ")");
  up->add_flag("--once", args->once, "Start everything, print the tour and stop again");
  up->add_flag("--gis-only", args->gis_only, "Only the GIS: PostgreSQL, the demo grid and example queries");
  up->add_flag("--no-workspace", args->no_workspace, "Do not create and wait for the demo workspace");
  up->add_option("--api-port", args->api_port, "vigod's HTTPS port on 127.0.0.1 (0: a free one)")
      ->check(CLI::Range(0, 65535));
  up->add_option("--accelerator", args->accelerator, "tcg or kvm")->check(CLI::IsMember({"tcg", "kvm"}));
  up->add_option("--domain-prefix", args->domain_prefix,
                 "Prefix of vigod's libvirt domain names (two stacks on one libvirt need different ones)");
  up->add_option("--ready-timeout", args->ready_timeout_s, "Seconds the demo workspace may take to run")
      ->check(CLI::Range(10, 3600));
  up->callback([&ctx, args] { run_up(ctx, *args); });
}

}  // namespace vigo::cli
