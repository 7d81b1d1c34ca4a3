// SPDX-License-Identifier: Apache-2.0
// Workspace routes: list, create (boot from an image, resume or clone N from
// a checkpoint, or take a future), show, delete, pause/resume, stop/start, migrate,
// checkpoint, console tail.
#include <charconv>
#include <limits>
#include <set>

#include "api_internal.h"
#include "vigo/common/error.h"
#include "vigo/gis/queries.h"
#include "vigo/web/event_hub.h"
#include "vigo/web/json_fields.h"

namespace vigo::web {
namespace {

nlohmann::json to_json(const scheduler::WorkspaceStatus& s) {
  nlohmann::json vms = nlohmann::json::array();
  for (const auto& v : s.vms) {
    vms.push_back({{"id", v.id}, {"name", v.name}, {"domain", v.domain}, {"host", v.host}, {"state", v.state},
                   {"error", v.error}});
  }
  return {{"id", s.id}, {"owner", s.owner}, {"name", s.name}, {"state", s.state}, {"error", s.error}, {"vms", vms}};
}

// The workspace, if the caller may see it; others' answer as missing ones.
scheduler::WorkspaceStatus visible(ApiContext& ctx, RouteCall& call) {
  const auto id = call.id("id", "workspace id");
  const auto not_found = Error{ErrorCode::kNotFound, "no workspace with id " + std::to_string(id), "workspace"};
  scheduler::WorkspaceStatus s;
  try {
    s = ctx.workspaces().status(id);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) throw not_found;
    throw;
  }
  if (!call.admin() && s.owner != call.caller->user) throw not_found;
  return s;
}

scheduler::PlacementRequest read_placement(JsonFields& f) {
  scheduler::PlacementRequest p;
  if (const auto policy = f.string("policy")) {
    if (*policy == "pack") p.policy = gis::Policy::kPack;
    else if (*policy == "spread") p.policy = gis::Policy::kSpread;
    else throw invalid_argument("placement.policy", "must be \"pack\" or \"spread\"");
  }
  if (auto labels = f.string_map("labels")) p.labels = std::move(*labels);
  p.network = f.string("network");
  p.same_network = f.boolean("same_network").value_or(false);
  p.distinct_hosts = f.boolean("distinct_hosts").value_or(false);
  p.future_id = f.integer("future_id", 1, std::numeric_limits<std::int64_t>::max());
  f.finish();
  return p;
}

// The body of a create (also of a future's claim, which fixes the future).
scheduler::WorkspaceRequest read_create(const RouteCall& call, JsonFields& f) {
  scheduler::WorkspaceRequest r;
  r.owner = call.caller->user;
  if (auto owner = f.string("owner")) {
    if (!call.admin() && *owner != call.caller->user) {
      throw Error{ErrorCode::kPermissionDenied, "only an administrator creates workspaces for another user", "owner"};
    }
    r.owner = std::move(*owner);
  }
  r.name = f.required_string("name");
  r.profile = f.string("profile").value_or("");
  r.image = f.string("image").value_or("");
  r.checkpoint = f.string("checkpoint").value_or("");
  if (r.image.empty() == r.checkpoint.empty()) {
    throw invalid_argument("image", "give exactly one of \"image\" (boot) and \"checkpoint\" (resume)");
  }
  // A resume defaults to the profile of the workspace the checkpoint is of.
  if (r.profile.empty() && !r.image.empty()) throw invalid_argument("profile", "required to boot an image");
  r.count = static_cast<std::uint32_t>(f.integer("count", 1, 64).value_or(1));
  r.persistent = f.boolean("persistent").value_or(false);
  if (const auto s = f.integer("checkpoint_interval_s", 10, 7 * 86400)) r.checkpoint_interval = std::chrono::seconds{*s};
  if (const auto s = f.integer("readiness_timeout_s", 5, 3600)) r.readiness_timeout = std::chrono::seconds{*s};
  if (auto p = f.object("placement")) r.placement = read_placement(*p);
  return r;
}

// Creates; an error about a placement field (from the scheduler or the
// GIS, which know them by their short names) names it as the body does.
std::int64_t create_workspace(ApiContext& ctx, const scheduler::WorkspaceRequest& r) {
  try {
    return ctx.workspaces().create(r);
  } catch (const Error& e) {
    static const std::set<std::string, std::less<>> kPlacement{"policy",         "labels",         "network",
                                                                "same_network", "distinct_hosts", "future_id"};
    if (!kPlacement.contains(e.field())) throw;
    throw Error{e.code(), e.what(), "placement." + e.field()};
  }
}

Response created(ApiContext& ctx, std::int64_t id) {
  auto r = Response::json(201, to_json(ctx.workspaces().status(id)));
  r.headers.emplace_back("Location", "/v1/workspaces/" + std::to_string(id));
  return r;
}

Response list(ApiContext& ctx, RouteCall& call) {
  std::optional<std::string> owner = call.caller->user;
  if (call.admin()) {
    if (const auto o = call.request.query_value("owner")) owner = std::string{*o};
    else if (call.request.query_value("all") == "true") owner.reset();
  } else if (call.request.query_value("owner") && call.request.query_value("owner") != call.caller->user) {
    throw Error{ErrorCode::kPermissionDenied, "only an administrator lists another user's workspaces", "owner"};
  } else if (call.request.query_value("all") == "true") {
    throw Error{ErrorCode::kPermissionDenied, "only an administrator lists every user's workspaces", "all"};
  }
  auto& manager = ctx.workspaces();
  auto& cache = *ctx.listings;
  const std::string key = owner ? "u:" + *owner : "*";
  ctx.events->start();  // (once) so that state changes are heard
  // What the answer would be checked against, read before the database is.
  const auto events = ctx.events->last();
  const auto mutations = cache.mutations.load();
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock{cache.mutex};
    const auto it = cache.entries.find(key);
    if (it != cache.entries.end() && it->second.events == events && it->second.mutations == mutations &&
        now - it->second.at < ListingCache::max_age) {
      return Response::text(200, it->second.body, "application/json");
    }
  }
  nlohmann::json items = nlohmann::json::array();
  for (const auto& s : manager.list(owner)) items.push_back(to_json(s));
  Response r = Response::json(200, {{"workspaces", items}});
  std::lock_guard lock{cache.mutex};
  if (cache.entries.size() >= ListingCache::max_entries) cache.entries.clear();
  cache.entries[key] = ListingCache::Entry{r.body, events, mutations, now};
  return r;
}

Response create(ApiContext& ctx, RouteCall& call) {
  auto f = JsonFields::parse(call.request.body);
  auto r = read_create(call, f);
  f.finish();
  return created(ctx, create_workspace(ctx, r));
}

Response show(ApiContext& ctx, RouteCall& call) { return Response::json(200, to_json(visible(ctx, call))); }

Response remove(ApiContext& ctx, RouteCall& call) {
  const auto s = visible(ctx, call);
  ctx.workspaces().remove(s.id);
  return Response::json(200, to_json(ctx.workspaces().status(s.id)));
}

// An action with no body (or an empty object).
template <typename Action>
Response act(ApiContext& ctx, RouteCall& call, Action action) {
  JsonFields::parse(call.request.body).finish();
  const auto s = visible(ctx, call);
  action(ctx.workspaces(), s.id);
  return Response::json(200, to_json(ctx.workspaces().status(s.id)));
}

// An action whose body may carry a placement (start, migrate).
template <typename Action>
Response act_placed(ApiContext& ctx, RouteCall& call, Action action) {
  auto f = JsonFields::parse(call.request.body);
  scheduler::PlacementRequest placement;
  if (auto p = f.object("placement")) placement = read_placement(*p);
  f.finish();
  const auto s = visible(ctx, call);
  action(ctx.workspaces(), s.id, placement);
  return Response::json(200, to_json(ctx.workspaces().status(s.id)));
}

Response checkpoint(ApiContext& ctx, RouteCall& call) {
  auto f = JsonFields::parse(call.request.body);
  const auto name = f.required_string("name");
  f.finish();
  const auto s = visible(ctx, call);
  const auto c = ctx.workspaces().checkpoint(s.id, name);
  auto image = [](const scheduler::PublishedImage& i) {
    return nlohmann::json{{"name", i.name}, {"version", i.version}, {"size_bytes", i.size}};
  };
  return Response::json(201, {{"id", c.id}, {"name", c.name}, {"workspace", s.id}, {"memory", image(c.memory)},
                              {"disk", image(c.disk)}});
}

Response console(ApiContext& ctx, RouteCall& call) {
  std::size_t bytes = 16 * 1024;
  if (const auto b = call.request.query_value("bytes")) {
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(b->data(), b->data() + b->size(), n);
    if (ec != std::errc{} || end != b->data() + b->size() || n < 1 || n > 1024 * 1024) {
      throw invalid_argument("bytes", "must be an integer from 1 to 1048576");
    }
    bytes = n;
  }
  const auto s = visible(ctx, call);
  nlohmann::json vms = nlohmann::json::array();
  for (const auto& v : s.vms) {
    vms.push_back({{"id", v.id}, {"name", v.name}, {"console", ctx.workspaces().console_tail(v.id, bytes)}});
  }
  return Response::json(200, {{"id", s.id}, {"vms", vms}});
}

Response claim_future(ApiContext& ctx, RouteCall& call) {
  const auto future = call.id("id", "future id");
  auto f = JsonFields::parse(call.request.body);
  auto r = read_create(call, f);
  f.finish();
  if (r.placement.future_id && *r.placement.future_id != future) {
    throw invalid_argument("placement.future_id", "differs from the future in the path");
  }
  r.placement.future_id = future;
  return created(ctx, create_workspace(ctx, r));
}

}  // namespace

void add_workspace_routes(RouteTable& t) {
  t.add("GET", "/v1/workspaces", Access::kUser, list);
  t.add("POST", "/v1/workspaces", Access::kUser, create);
  t.add("GET", "/v1/workspaces/{id}", Access::kUser, show);
  t.add("DELETE", "/v1/workspaces/{id}", Access::kUser, remove);
  t.add("POST", "/v1/workspaces/{id}/pause", Access::kUser,
        [](ApiContext& c, RouteCall& r) { return act(c, r, [](auto& m, auto id) { m.pause(id); }); });
  t.add("POST", "/v1/workspaces/{id}/resume", Access::kUser,
        [](ApiContext& c, RouteCall& r) { return act(c, r, [](auto& m, auto id) { m.unpause(id); }); });
  t.add("POST", "/v1/workspaces/{id}/stop", Access::kUser,
        [](ApiContext& c, RouteCall& r) { return act(c, r, [](auto& m, auto id) { m.stop(id); }); });
  t.add("POST", "/v1/workspaces/{id}/start", Access::kUser, [](ApiContext& c, RouteCall& r) {
    return act_placed(c, r, [](auto& m, auto id, const auto& p) { m.start(id, p); });
  });
  t.add("POST", "/v1/workspaces/{id}/migrate", Access::kUser, [](ApiContext& c, RouteCall& r) {
    return act_placed(c, r, [](auto& m, auto id, const auto& p) { m.migrate(id, p); });
  });
  t.add("POST", "/v1/workspaces/{id}/checkpoint", Access::kUser, checkpoint);
  t.add("GET", "/v1/workspaces/{id}/console", Access::kUser, console);
  t.add("POST", "/v1/futures/{id}/claim", Access::kUser, claim_future);
}

}  // namespace vigo::web
