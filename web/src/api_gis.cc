// SPDX-License-Identifier: Apache-2.0
// The GIS's compositional queries as JSON (gis::Queries; the same SQL
// functions an administrator calls from psql). A user's queries run under
// row-level security as that user (their own VMs only); an admin's see all.
#include "api_internal.h"
#include "vigo/common/error.h"
#include "vigo/gis/queries.h"
#include "vigo/web/json_fields.h"

namespace vigo::web {
namespace {

gis::Queries queries(ApiContext& ctx, const RouteCall& call) {
  return call.admin() ? gis::Queries{ctx.db} : gis::Queries{ctx.db, call.caller->user_id};
}

gis::Policy read_policy(JsonFields& f) {
  const auto p = f.string("policy").value_or("spread");
  if (p == "pack") return gis::Policy::kPack;
  if (p == "spread") return gis::Policy::kSpread;
  throw invalid_argument("policy", "must be \"pack\" or \"spread\"");
}

Response hosts_that_fit(ApiContext& ctx, RouteCall& call) {
  auto f = JsonFields::parse(call.request.body);
  gis::FitRequest r;
  r.memory_mb = f.integer("memory_mb", 1, 1LL << 26).value_or(0);
  if (r.memory_mb == 0) throw invalid_argument("memory_mb", "is required");
  r.vcpus = static_cast<std::int32_t>(f.integer("vcpus", 1, 4096).value_or(1));
  r.disk_gb = f.integer("disk_gb", 0, 1 << 20).value_or(0);
  r.arch = f.string("arch");
  if (auto l = f.string_map("labels")) r.labels = std::move(*l);
  r.network = f.string("network");
  r.policy = read_policy(f);
  r.limit = static_cast<std::int32_t>(f.integer("limit", 1, 10'000).value_or(100));
  f.finish();
  nlohmann::json items = nlohmann::json::array();
  for (const auto& h : queries(ctx, call).hosts_that_fit(r)) {
    items.push_back({{"host", h.host}, {"network", h.network}, {"free_vcpus", h.free_vcpus},
                     {"free_memory_mb", h.free_memory_mb}, {"free_disk_gb", h.free_disk_gb}});
  }
  return Response::json(200, {{"hosts", items}});
}

Response vm_sets(ApiContext& ctx, RouteCall& call) {
  auto f = JsonFields::parse(call.request.body);
  gis::VmSetRequest r;
  r.n = static_cast<std::int32_t>(f.integer("n", 1, 1000).value_or(0));
  if (r.n == 0) throw invalid_argument("n", "is required");
  r.min_memory_mb = f.integer("min_memory_mb", 0, 1LL << 30).value_or(0);
  r.max_memory_mb = f.integer("max_memory_mb", 0, 1LL << 30).value_or(1LL << 30);  // the SQL bound
  const auto source = f.string("source").value_or("vms");
  if (source == "vms") r.source = gis::SetSource::kVms;
  else if (source == "futures") r.source = gis::SetSource::kFutures;
  else if (source == "both") r.source = gis::SetSource::kBoth;
  else throw invalid_argument("source", "must be \"vms\", \"futures\" or \"both\"");
  r.limit = static_cast<std::int32_t>(f.integer("limit", 1, 10'000).value_or(100));
  r.network = f.string("network");
  const auto seed_millis = f.integer("seed_permille", 0, 1000);
  if (seed_millis) r.seed = static_cast<double>(*seed_millis) / 1000.0;
  f.finish();
  nlohmann::json items = nlohmann::json::array();
  for (const auto& s : queries(ctx, call).vm_sets(r)) {
    items.push_back({{"network", s.network}, {"members", s.members}, {"member_names", s.member_names},
                     {"total_memory_mb", s.total_memory_mb}});
  }
  return Response::json(200, {{"sets", items}});
}

Response gang_place(ApiContext& ctx, RouteCall& call) {
  auto f = JsonFields::parse(call.request.body);
  const auto profile = f.required_string("profile");
  const auto count = static_cast<std::int32_t>(f.integer("count", 1, 1000).value_or(0));
  if (count == 0) throw invalid_argument("count", "is required");
  const bool distinct = f.boolean("distinct_hosts").value_or(true);
  const auto network = f.string("network");
  f.finish();
  nlohmann::json items = nlohmann::json::array();
  for (const auto& s : queries(ctx, call).gang_place_profile(profile, count, distinct, network)) {
    items.push_back({{"vm_index", s.vm_index}, {"host", s.host}, {"network", s.network}});
  }
  return Response::json(200, {{"slots", items}});
}

Response capacity(ApiContext& ctx, RouteCall& call) {
  const auto by = call.request.query_value("by").value_or("site");
  auto q = queries(ctx, call);
  std::vector<gis::Capacity> rows;
  if (by == "site") rows = q.capacity_by_site();
  else if (by == "network") rows = q.capacity_by_network();
  else throw invalid_argument("by", "must be \"site\" or \"network\"");
  nlohmann::json items = nlohmann::json::array();
  for (const auto& c : rows) {
    items.push_back({{"name", c.name}, {"site", c.site}, {"hosts_up", c.hosts_up}, {"hosts", c.hosts},
                     {"vcpus", c.vcpus}, {"free_vcpus", c.free_vcpus}, {"memory_mb", c.memory_mb},
                     {"free_memory_mb", c.free_memory_mb}, {"disk_gb", c.disk_gb}, {"free_disk_gb", c.free_disk_gb}});
  }
  return Response::json(200, {{"by", by}, {"capacity", items}});
}

}  // namespace

void add_gis_routes(RouteTable& t) {
  t.add("POST", "/v1/gis/hosts-that-fit", Access::kUser, hosts_that_fit);
  t.add("POST", "/v1/gis/vm-sets", Access::kUser, vm_sets);
  t.add("POST", "/v1/gis/gang-place", Access::kUser, gang_place);
  t.add("GET", "/v1/gis/capacity", Access::kAdmin, capacity);
}

}  // namespace vigo::web
