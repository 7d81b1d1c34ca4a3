// SPDX-License-Identifier: Apache-2.0
// `vigo ws ...`: workspaces through vigod's API (docs/api.md): list, show,
// create (waiting until running, with the states as they pass), delete,
// pause, resume, stop, start, migrate, checkpoint, console, events (follows the
// server-sent event stream); `vigo checkpoints` lists the caller's
// checkpoints (`vigo images`: commands_images.cc). Tables for people,
// --json for scripts. Exit codes as every vigo command (app.cc): 0 done,
// 2 bad input, 3 not found, 4 conflict, 5 unavailable or timed out,
// 6 permission denied, 1 otherwise (also a workspace that failed).
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>
#include <unistd.h>

#include "commands.h"
#include "table.h"
#include "vigo/common/error.h"

namespace vigo::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

std::string path_of(std::int64_t id, const std::string& action = {}) {
  return "/v1/workspaces/" + std::to_string(id) + (action.empty() ? "" : "/" + action);
}

std::string vm_summary(const json& w) {
  std::string out;
  for (const auto& vm : w.value("vms", json::array())) {
    if (!out.empty()) out += ", ";
    out += vm.value("name", "") + "@" + vm.value("host", "") + " " + vm.value("state", "");
  }
  return out;
}

void print_workspaces(Context& ctx, const json& list) {
  Table t{{"id", "name", "owner", "state", "vms", "error"}};
  for (const auto& w : list) {
    t.add({w["id"].get<std::int64_t>(), w.value("name", ""), w.value("owner", ""), w.value("state", ""),
           vm_summary(w), w.value("error", "")});
  }
  t.emit(std::cout, ctx.options.json);
}

void print_one(Context& ctx, const json& w) {
  if (ctx.options.json) {
    std::cout << w.dump() << '\n';
    return;
  }
  std::cout << "workspace " << w["id"] << "  " << w.value("name", "") << "  owner " << w.value("owner", "")
            << "  state " << w.value("state", "") << '\n';
  if (!w.value("error", "").empty()) std::cout << "error: " << w.value("error", "") << '\n';
  Table t{{"vm", "name", "host", "domain", "state", "error"}};
  for (const auto& vm : w.value("vms", json::array())) {
    t.add({vm["id"].get<std::int64_t>(), vm.value("name", ""), vm.value("host", ""), vm.value("domain", ""),
           vm.value("state", ""), vm.value("error", "")});
  }
  t.print(std::cout);
}

// Polls until the workspace is settled (running, paused, stopped, failed,
// deleted); shows each state as it passes, on a terminal as one line.
json wait_settled(Context& ctx, std::int64_t id, std::chrono::seconds timeout) {
  const bool tty = ::isatty(STDERR_FILENO) != 0 && !ctx.options.json;
  const auto started = Clock::now();
  std::string last;
  for (;;) {
    json w = ctx.api().get(path_of(id));
    const std::string state = w.value("state", "");
    const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count();
    if (tty) {
      std::cerr << "\rworkspace " << id << ": " << state << " (" << elapsed << " s)   " << std::flush;
    } else if (state != last && !ctx.options.json) {
      std::cerr << "workspace " << id << ": " << state << '\n';
    }
    last = state;
    if (state == "running" || state == "paused" || state == "stopped" || state == "failed" || state == "deleted") {
      if (tty) std::cerr << '\n';
      return w;
    }
    if (Clock::now() - started > timeout) {
      if (tty) std::cerr << '\n';
      throw Error{ErrorCode::kTimeout, "workspace " + std::to_string(id) + " still " + state + " after " +
                                           std::to_string(timeout.count()) + " s"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
  }
}

struct CreateArgs {
  std::string name, profile, image, checkpoint, owner;
  int count = 1;
  bool persistent = false;
  bool no_wait = false;
  int timeout_s = 600;
};

void create(Context& ctx, const CreateArgs& a) {
  json body{{"name", a.name}, {"count", a.count}};
  if (!a.profile.empty()) body["profile"] = a.profile;
  if (!a.image.empty()) body["image"] = a.image;
  if (!a.checkpoint.empty()) body["checkpoint"] = a.checkpoint;
  if (!a.owner.empty()) body["owner"] = a.owner;
  if (a.persistent) body["persistent"] = true;
  json w = ctx.api().post("/v1/workspaces", body);
  const auto id = w["id"].get<std::int64_t>();
  if (!a.no_wait) w = wait_settled(ctx, id, std::chrono::seconds{a.timeout_s});
  print_one(ctx, w);
  if (w.value("state", "") == "failed") throw Error{ErrorCode::kInternal, "workspace " + std::to_string(id) + " failed"};
}

// ws pause|resume|stop|start|delete ID: one POST (or DELETE) and the result.
void add_action(CLI::App& ws, Context& ctx, const std::string& name, const std::string& help,
                const std::string& action, bool wait) {
  auto id = std::make_shared<std::int64_t>(0);
  auto* c = ws.add_subcommand(name, help);
  c->add_option("id", *id, "Workspace id")->required()->check(CLI::PositiveNumber);
  c->callback([&ctx, id, action, wait] {
    json w = action == "delete" ? ctx.api().del(path_of(*id)) : ctx.api().post(path_of(*id, action));
    if (wait) w = wait_settled(ctx, *id, std::chrono::seconds{600});
    print_one(ctx, w);
  });
}

void add_listing(CLI::App& app, Context& ctx, const std::string& name, const std::string& help,
                 const std::string& path, const std::string& key, std::vector<std::string> columns) {
  auto* c = app.add_subcommand(name, help);
  c->callback([&ctx, path, key, columns] {
    const json rows = ctx.api().get(path)[key];
    Table t{columns};
    for (const auto& r : rows) {
      std::vector<Table::Cell> cells;
      for (const auto& col : columns) {
        const json v = r.value(col, json{});
        if (v.is_number_integer()) cells.emplace_back(v.get<std::int64_t>());
        else if (v.is_string()) cells.emplace_back(v.get<std::string>());
        else cells.emplace_back(v);
      }
      t.add(std::move(cells));
    }
    t.emit(std::cout, ctx.options.json);
  });
}

}  // namespace

void add_workspace_commands(CLI::App& app, Context& ctx) {
  auto* ws = app.add_subcommand("ws", "Workspaces through vigod's API (list, create, delete, ...)");
  ws->require_subcommand(1);

  auto all = std::make_shared<bool>(false);
  auto* list = ws->add_subcommand("list", "Your workspaces (every user's with --all, as admin)");
  list->add_flag("--all", *all, "Every user's workspaces (admin)");
  list->callback([&ctx, all] {
    print_workspaces(ctx, ctx.api().get(*all ? "/v1/workspaces?all=true" : "/v1/workspaces")["workspaces"]);
  });

  auto show_id = std::make_shared<std::int64_t>(0);
  auto* show = ws->add_subcommand("show", "One workspace and its VMs");
  show->add_option("id", *show_id, "Workspace id")->required()->check(CLI::PositiveNumber);
  show->callback([&ctx, show_id] { print_one(ctx, ctx.api().get(path_of(*show_id))); });

  auto a = std::make_shared<CreateArgs>();
  auto* create_cmd = ws->add_subcommand("create", "Create a workspace (boot an image or resume/clone a checkpoint)");
  create_cmd->add_option("name", a->name, "Workspace name")->required();
  create_cmd->add_option("--profile", a->profile, "VM profile (e.g. tiny; a resume defaults to the checkpoint's)");
  auto* image = create_cmd->add_option("--image", a->image, "Boot this image");
  auto* checkpoint = create_cmd->add_option("--checkpoint", a->checkpoint, "Resume (clone) this checkpoint");
  image->excludes(checkpoint);
  create_cmd->add_option("--count", a->count, "How many VMs (clones of a checkpoint)")->check(CLI::Range(1, 64));
  create_cmd->add_flag("--persistent", a->persistent, "Keep its disk across stop/start");
  create_cmd->add_option("--owner", a->owner, "Create it for this user (admin)");
  create_cmd->add_flag("--no-wait", a->no_wait, "Return once placed, without waiting until it runs");
  create_cmd->add_option("--timeout", a->timeout_s, "Seconds to wait until it runs")->check(CLI::Range(1, 86400));
  create_cmd->callback([&ctx, a] {
    if (a->image.empty() == a->checkpoint.empty()) {
      throw Error{ErrorCode::kInvalidArgument, "give exactly one of --image and --checkpoint", "image"};
    }
    create(ctx, *a);
  });

  add_action(*ws, ctx, "delete", "Delete a workspace and everything of it", "delete", false);
  add_action(*ws, ctx, "pause", "Pause a workspace's VMs", "pause", false);
  add_action(*ws, ctx, "resume", "Resume a paused workspace", "resume", false);
  add_action(*ws, ctx, "stop", "Stop a persistent workspace (kept on the image server)", "stop", true);
  add_action(*ws, ctx, "start", "Start a stopped persistent workspace again", "start", true);

  // ws migrate ID [--label KEY=VALUE]...: to another host (one with these labels).
  auto mg_id = std::make_shared<std::int64_t>(0);
  auto mg_labels = std::make_shared<std::vector<std::string>>();
  auto* mg = ws->add_subcommand("migrate", "Move a workspace's VM to another host (saved there, resumed here)");
  mg->add_option("id", *mg_id, "Workspace id")->required()->check(CLI::PositiveNumber);
  mg->add_option("--label", *mg_labels, "Only a host with this label (KEY=VALUE; repeatable)");
  mg->callback([&ctx, mg_id, mg_labels] {
    const gis::Labels labels = parse_labels(*mg_labels);
    json body = json::object();
    if (!labels.empty()) body["placement"] = {{"labels", labels}};
    ctx.api().post(path_of(*mg_id, "migrate"), body);
    print_one(ctx, wait_settled(ctx, *mg_id, std::chrono::seconds{600}));
  });

  auto cp_id = std::make_shared<std::int64_t>(0);
  auto cp_name = std::make_shared<std::string>();
  auto* cp = ws->add_subcommand("checkpoint", "Checkpoint a workspace's VM (it runs on)");
  cp->add_option("id", *cp_id, "Workspace id")->required()->check(CLI::PositiveNumber);
  cp->add_option("--name", *cp_name, "Checkpoint name")->required();
  cp->callback([&ctx, cp_id, cp_name] {
    const json c = ctx.api().post(path_of(*cp_id, "checkpoint"), {{"name", *cp_name}});
    if (ctx.options.json) {
      std::cout << c.dump() << '\n';
    } else {
      std::cout << "checkpoint " << c["id"] << " " << c.value("name", "") << ": memory "
                << c["memory"].value("name", "") << "@" << c["memory"]["version"] << ", disk "
                << c["disk"].value("name", "") << "@" << c["disk"]["version"] << '\n';
    }
  });

  auto con_id = std::make_shared<std::int64_t>(0);
  auto con_bytes = std::make_shared<int>(4096);
  auto* con = ws->add_subcommand("console", "The end of each VM's serial console");
  con->add_option("id", *con_id, "Workspace id")->required()->check(CLI::PositiveNumber);
  con->add_option("--bytes", *con_bytes, "How much of the end")->check(CLI::Range(1, 1 << 20));
  con->callback([&ctx, con_id, con_bytes] {
    const json c = ctx.api().get(path_of(*con_id, "console") + "?bytes=" + std::to_string(*con_bytes));
    if (ctx.options.json) {
      std::cout << c.dump() << '\n';
      return;
    }
    for (const auto& vm : c["vms"]) {
      std::cout << "--- vm " << vm["id"] << " " << vm.value("name", "") << " ---\n" << vm.value("console", "") << '\n';
    }
  });

  struct EventArgs {
    std::int64_t workspace = 0;
    int count = 0;
    std::string after;
  };
  auto ev = std::make_shared<EventArgs>();
  auto* events = ws->add_subcommand("events", "Follow state changes of your workspaces as they happen (Ctrl-C ends)");
  events->add_option("--workspace", ev->workspace, "Only this workspace's events")->check(CLI::PositiveNumber);
  events->add_option("--count", ev->count, "Stop after this many events")->check(CLI::PositiveNumber);
  events->add_option("--after", ev->after, "Resume after this event id (what an earlier run printed)");
  events->callback([&ctx, ev] {
    int seen = 0;
    const std::string target = "/v1/events" + (ev->after.empty() ? "" : "?after=" + ev->after);
    ctx.api().events(target, [&](const web::ApiClient::ServerEvent& e) {
      const json data = json::parse(e.data, nullptr, false);
      if (data.is_discarded()) return true;
      if (ev->workspace != 0 && e.event != "resync" && data.value("workspace_id", std::int64_t{0}) != ev->workspace) {
        return true;
      }
      if (ctx.options.json) {
        json line = data;
        line["event_id"] = e.id;
        std::cout << line.dump() << std::endl;
      } else if (e.event == "resync") {
        std::cout << e.id << "  resync: " << data.value("reason", "") << " (list again to be current)" << std::endl;
      } else {
        std::cout << e.id << "  " << data.value("at", "") << "  " << e.event << " " << data.value("id", std::int64_t{0})
                  << " (" << data.value("name", "") << ", workspace " << data.value("workspace_id", std::int64_t{0})
                  << ")  " << data.value("state", "")
                  << (data.value("error", "").empty() ? "" : "  error: " + data.value("error", "")) << std::endl;
      }
      return ev->count == 0 || ++seen < ev->count;
    });
  });

  add_listing(app, ctx, "checkpoints", "Your checkpoints (through vigod's API)", "/v1/checkpoints", "checkpoints",
              {"id", "name", "owner", "workspace", "memory_image", "disk_image", "created_at"});
}

}  // namespace vigo::cli
