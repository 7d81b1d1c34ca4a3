// SPDX-License-Identifier: Apache-2.0
// `vigo gis ...`: registration, the compositional queries and claims.
#include <iostream>
#include <memory>

#include "commands.h"
#include "gis_tables.h"
#include "vigo/common/error.h"
#include "vigo/gis/claims.h"
#include "vigo/gis/queries.h"
#include "vigo/gis/registry.h"
#include "vigo/gis/synthetic_grid.h"
#include "vigo/gis/tokens.h"

namespace vigo::cli {
namespace {

std::optional<std::string> optional_text(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

void print_id(Context& ctx, const char* what, std::int64_t id) {
  if (ctx.options.json) {
    std::cout << nlohmann::json{{"id", id}}.dump() << '\n';
  } else {
    std::cout << what << " " << id << '\n';
  }
}

void add_registration(CLI::App& gis, Context& ctx) {
  struct Args {
    std::string name, site, network, uri = "qemu:///system", arch = "x86_64", owner, description, cidr;
    std::int32_t cpus = 0, vcpus = 1;
    std::int64_t memory_mb = 0, disk_gb = 0;
    bool admin = false, persistent = false;
    std::vector<std::string> labels;
  };
  auto a = std::make_shared<Args>();

  auto* site = gis.add_subcommand("add-site", "Register (or update) a site");
  site->add_option("name", a->name, "Site name")->required();
  site->add_option("--description", a->description, "Free text");
  site->callback([&ctx, a] { print_id(ctx, "site", gis::Registry{ctx.database()}.add_site(a->name, a->description)); });

  auto* net = gis.add_subcommand("add-network", "Register (or update) a network of a site");
  net->add_option("name", a->name, "Network name")->required();
  net->add_option("--site", a->site, "Site the network belongs to")->required();
  net->add_option("--cidr", a->cidr, "Address range, e.g. 10.0.0.0/24");
  net->callback([&ctx, a] {
    print_id(ctx, "network", gis::Registry{ctx.database()}.add_network(a->name, a->site, optional_text(a->cidr)));
  });

  auto* profile = gis.add_subcommand("add-profile", "Register (or update) a VM profile");
  profile->add_option("name", a->name, "Profile name")->required();
  profile->add_option("--vcpus", a->vcpus, "Virtual CPUs")->required();
  profile->add_option("--memory-mb", a->memory_mb, "Memory in MiB")->required();
  profile->add_option("--disk-gb", a->disk_gb, "Disk in GiB");
  profile->add_option("--arch", a->arch, "Architecture");
  profile->callback([&ctx, a] {
    print_id(ctx, "profile",
             gis::Registry{ctx.database()}.add_profile(a->name, a->vcpus, a->memory_mb, a->disk_gb, a->arch));
  });

  auto* host = gis.add_subcommand("register-host", "Register (or update) a physical host");
  host->add_option("name", a->name, "Host name")->required();
  host->add_option("--network", a->network, "Network the host is on")->required();
  host->add_option("--uri", a->uri, "libvirt URI, e.g. qemu+ssh://host/system");
  host->add_option("--cpus", a->cpus, "Schedulable vCPUs")->required();
  host->add_option("--memory-mb", a->memory_mb, "Memory for VMs in MiB")->required();
  host->add_option("--disk-gb", a->disk_gb, "Disk for VMs in GiB")->required();
  host->add_option("--arch", a->arch, "Architecture");
  host->add_option("--label", a->labels, "KEY=VALUE (repeatable)");
  host->callback([&ctx, a] {
    gis::HostSpec spec{a->name, a->network, a->uri, a->cpus, a->memory_mb, a->disk_gb, a->arch,
                       parse_labels(a->labels)};
    auto hosts = gis::Registry{ctx.database()}.register_hosts(std::span<const gis::HostSpec>{&spec, 1});
    print_id(ctx, "host", hosts.at(0).id);
  });

  auto* user = gis.add_subcommand("add-user", "Register a user");
  user->add_option("name", a->name, "User name")->required();
  user->add_flag("--admin", a->admin, "Give the admin role");
  user->callback([&ctx, a] { print_id(ctx, "user", gis::Registry{ctx.database()}.add_user(a->name, a->admin)); });

  auto* ws = gis.add_subcommand("add-workspace", "Create an empty workspace for a user");
  ws->add_option("name", a->name, "Workspace name")->required();
  ws->add_option("--owner", a->owner, "Owning user")->required();
  ws->add_flag("--persistent", a->persistent, "Keep the VMs' disks after they stop");
  ws->callback([&ctx, a] {
    print_id(ctx, "workspace", gis::Registry{ctx.database()}.add_workspace(a->owner, a->name, a->persistent));
  });

  auto* token = gis.add_subcommand("issue-token", "Issue an API token for a user (shown once)");
  token->add_option("user", a->name, "User name")->required();
  token->add_option("--label", a->description, "What the token is for");
  token->callback([&ctx, a] {
    std::string t = gis::Tokens{ctx.database()}.issue(a->name, a->description);
    if (ctx.options.json) {
      std::cout << nlohmann::json{{"token", t}}.dump() << '\n';
    } else {
      std::cout << t << '\n';
    }
  });
}

void add_liveness(CLI::App& gis, Context& ctx) {
  auto ids = std::make_shared<std::vector<std::int64_t>>();
  auto* hb = gis.add_subcommand("heartbeat", "Record heartbeats for host ids");
  hb->add_option("host_ids", *ids, "Host ids")->required();
  hb->callback([&ctx, ids] {
    auto unknown = gis::Registry{ctx.database()}.record_heartbeats(*ids);
    if (!unknown.empty()) {
      throw Error{ErrorCode::kNotFound,
                  "invalid host_ids: no host with id " + std::to_string(unknown.front()) + " (register it first)",
                  "host_ids"};
    }
  });

  auto silence = std::make_shared<std::int64_t>(60);
  auto* down = gis.add_subcommand("mark-down", "Mark hosts silent for too long as down (withdraws their futures)");
  down->add_option("--silence", *silence, "Seconds without a heartbeat");
  down->callback([&ctx, silence] {
    Table t{{"host"}};
    for (auto& h : gis::Registry{ctx.database()}.mark_silent_hosts_down(std::chrono::seconds{*silence})) t.add({h});
    t.emit(std::cout, ctx.options.json);
  });
}

void add_queries(CLI::App& gis, Context& ctx) {
  struct Args {
    gis::FitRequest fit;
    std::string arch, network, policy = "spread", profile, source = "vms", host;
    std::vector<std::string> labels;
    std::int32_t limit = 100, count = 0;
    bool packed = false;
    std::vector<std::string> vms;
    gis::VmSetRequest sets;
    double seed = 0;
    bool seeded = false;
    std::string by = "network";
    std::int64_t future = 0, workspace = 0;
    std::string name;
  };
  auto a = std::make_shared<Args>();

  auto* fit = gis.add_subcommand("hosts-that-fit", "Query 1: hosts that can instantiate a VM of this shape now");
  fit->add_option("--memory-mb", a->fit.memory_mb, "Memory in MiB")->required();
  fit->add_option("--vcpus", a->fit.vcpus, "Virtual CPUs");
  fit->add_option("--disk-gb", a->fit.disk_gb, "Disk in GiB");
  fit->add_option("--arch", a->arch, "Architecture");
  fit->add_option("--label", a->labels, "KEY=VALUE the host must have (repeatable)");
  fit->add_option("--network", a->network, "Only this network");
  fit->add_option("--policy", a->policy, "spread (emptiest first) or pack (fullest first)");
  fit->add_option("--limit", a->fit.limit, "At most this many hosts");
  fit->callback([&ctx, a] {
    gis::FitRequest q = a->fit;
    q.arch = optional_text(a->arch);
    q.network = optional_text(a->network);
    q.labels = parse_labels(a->labels);
    if (a->policy != "spread" && a->policy != "pack") {
      throw Error{ErrorCode::kInvalidArgument, "invalid policy: must be spread or pack", "policy"};
    }
    q.policy = a->policy == "pack" ? gis::Policy::kPack : gis::Policy::kSpread;
    hosts_table(gis::Queries{ctx.database()}.hosts_that_fit(q)).emit(std::cout, ctx.options.json);
  });

  auto* pf = gis.add_subcommand("hosts-for-profile", "Query 1 by profile: its futures, with ids to claim");
  pf->add_option("profile", a->profile, "Profile name")->required();
  pf->add_option("--label", a->labels, "KEY=VALUE the host must have (repeatable)");
  pf->add_option("--network", a->network, "Only this network");
  pf->add_option("--limit", a->limit, "At most this many futures");
  pf->callback([&ctx, a] {
    profile_fits_table(gis::Queries{ctx.database()}.hosts_for_profile(a->profile, parse_labels(a->labels),
                                                                       optional_text(a->network), a->limit))
        .emit(std::cout, ctx.options.json);
  });

  auto* sets = gis.add_subcommand("vm-sets", "Query 2: sets of N distinct VMs on one network, total memory in range");
  sets->add_option("--n", a->sets.n, "VMs per set")->required();
  sets->add_option("--min-memory-mb", a->sets.min_memory_mb, "Lowest total memory")->required();
  sets->add_option("--max-memory-mb", a->sets.max_memory_mb, "Highest total memory")->required();
  sets->add_option("--source", a->source, "vms, futures or both");
  sets->add_option("--limit", a->sets.limit, "At most this many sets");
  sets->add_option("--network", a->network, "Only this network");
  sets->add_option("--seed", a->seed, "Sample at random with this seed in [-1, 1]");
  sets->callback([&ctx, a, sets] {
    gis::VmSetRequest q = a->sets;
    if (a->source == "vms") {
      q.source = gis::SetSource::kVms;
    } else if (a->source == "futures") {
      q.source = gis::SetSource::kFutures;
    } else if (a->source == "both") {
      q.source = gis::SetSource::kBoth;
    } else {
      throw Error{ErrorCode::kInvalidArgument, "invalid source: must be vms, futures or both", "source"};
    }
    q.network = optional_text(a->network);
    if (sets->count("--seed") > 0) q.seed = a->seed;
    vm_sets_table(gis::Queries{ctx.database()}.vm_sets(q)).emit(std::cout, ctx.options.json);
  });

  auto* gang = gis.add_subcommand("gang", "Query 3: a host for each of N VMs on one network");
  gang->add_option("--profile", a->profile, "Profile of every VM (with --count)");
  gang->add_option("--count", a->count, "Number of VMs of --profile");
  gang->add_option("--vm", a->vms, "MEMORY_MB:VCPUS[:DISK_GB] (repeatable, instead of --profile)");
  gang->add_flag("--packed", a->packed, "Allow several VMs per host (default: distinct hosts)");
  gang->add_option("--network", a->network, "Only this network");
  gang->callback([&ctx, a] {
    gis::Queries queries{ctx.database()};
    std::vector<gis::GangSlot> slots;
    if (!a->profile.empty()) {
      if (!a->vms.empty()) {
        throw Error{ErrorCode::kInvalidArgument, "invalid vm: give either --profile/--count or --vm", "vm"};
      }
      slots = queries.gang_place_profile(a->profile, a->count, !a->packed, optional_text(a->network));
    } else {
      gis::GangRequest q;
      for (const std::string& spec : a->vms) {
        gis::VmShape shape;
        char extra = 0;
        long long mem = 0, disk = 0;
        int vcpus = 0;
        int got = std::sscanf(spec.c_str(), "%lld:%d:%lld%c", &mem, &vcpus, &disk, &extra);
        if (got < 2 || got > 3) {
          throw Error{ErrorCode::kInvalidArgument, "invalid vm: '" + spec + "' is not MEMORY_MB:VCPUS[:DISK_GB]",
                      "vm"};
        }
        shape.memory_mb = mem;
        shape.vcpus = vcpus;
        shape.disk_gb = got == 3 ? disk : 0;
        q.vms.push_back(shape);
      }
      q.distinct_hosts = !a->packed;
      q.network = optional_text(a->network);
      slots = queries.gang_place(q);
    }
    gang_table(slots).emit(std::cout, ctx.options.json);
    if (slots.empty()) throw Error{ErrorCode::kResourceExhausted, "no network has room for this gang now"};
  });

  auto* cap = gis.add_subcommand("capacity", "Query 4: free capacity per network or site");
  cap->add_option("--by", a->by, "network or site");
  cap->callback([&ctx, a] {
    gis::Queries q{ctx.database()};
    if (a->by == "network") {
      capacity_table(q.capacity_by_network(), true).emit(std::cout, ctx.options.json);
    } else if (a->by == "site") {
      capacity_table(q.capacity_by_site(), false).emit(std::cout, ctx.options.json);
    } else {
      throw Error{ErrorCode::kInvalidArgument, "invalid by: must be network or site", "by"};
    }
  });

  auto* placement = gis.add_subcommand("placement", "Query 4: what runs where (virtual to physical)");
  placement->callback(
      [&ctx] { placement_table(gis::Queries{ctx.database()}.vm_placement()).emit(std::cout, ctx.options.json); });

  auto* impact = gis.add_subcommand("impact", "Query 4: what a failure of the host would hit (physical to virtual)");
  impact->add_option("host", a->host, "Host name")->required();
  impact->callback([&ctx, a] {
    impact_table(gis::Queries{ctx.database()}.host_failure_impact(a->host)).emit(std::cout, ctx.options.json);
  });

  auto* claim = gis.add_subcommand("claim", "Claim a future atomically: creates a pending VM in a workspace");
  claim->add_option("--future", a->future, "Future id (from hosts-for-profile)")->required();
  claim->add_option("--workspace", a->workspace, "Workspace id")->required();
  claim->add_option("--name", a->name, "Name of the new VM")->required();
  claim->callback([&ctx, a] {
    print_id(ctx, "vm", gis::Claims{ctx.database()}.claim_future(a->future, a->workspace, a->name));
  });
}

void add_synthetic(CLI::App& gis, Context& ctx) {
  auto spec = std::make_shared<gis::SyntheticGridSpec>();
  auto* load = gis.add_subcommand("load-synthetic", "Load a synthetic grid into an empty GIS (demo, benchmarks)");
  load->add_option("--sites", spec->sites, "Sites");
  load->add_option("--networks", spec->networks, "Networks");
  load->add_option("--hosts", spec->hosts, "Hosts");
  load->add_option("--users", spec->users, "Users (one workspace each)");
  load->add_option("--vms", spec->vms, "Running VMs");
  load->add_option("--seed", spec->seed, "Random seed");
  load->callback([&ctx, spec] {
    auto stats = gis::load_synthetic_grid(ctx.database(), *spec);
    Table t{{"hosts", "vms", "futures", "elapsed_ms"}};
    t.add({stats.hosts, stats.vms, stats.futures, static_cast<std::int64_t>(stats.elapsed.count())});
    t.emit(std::cout, ctx.options.json);
  });
}

}  // namespace

gis::Labels parse_labels(const std::vector<std::string>& items) {
  gis::Labels labels;
  for (const std::string& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw Error{ErrorCode::kInvalidArgument, "invalid label: '" + item + "' is not KEY=VALUE", "label"};
    }
    labels[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return labels;
}

void add_gis_commands(CLI::App& app, Context& ctx) {
  auto* gis = app.add_subcommand("gis", "The grid information service: register, query, claim");
  gis->require_subcommand(1);
  add_registration(*gis, ctx);
  add_liveness(*gis, ctx);
  add_queries(*gis, ctx);
  add_synthetic(*gis, ctx);
}

}  // namespace vigo::cli
