// SPDX-License-Identifier: Apache-2.0
// Routes of what is not a workspace: health, metrics, whoami, images,
// checkpoints, hosts (admin), futures.
#include <charconv>

#include "api_internal.h"
#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/gis/queries.h"
#include "vigo/web/metrics.h"

namespace vigo::web {
namespace {

std::int32_t limit_of(const Request& request, std::int32_t fallback) {
  const auto text = request.query_value("limit");
  if (!text) return fallback;
  std::int32_t n = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (ec != std::errc{} || end != text->data() + text->size() || n < 1 || n > 10'000) {
    throw invalid_argument("limit", "must be an integer from 1 to 10000");
  }
  return n;
}

Response health(ApiContext& ctx, RouteCall&) {
  try {
    ctx.db.read([](pqxx::transaction_base& txn) { txn.exec1("SELECT 1"); });
  } catch (const std::exception& e) {
    // The reason goes to the log, not to an unauthenticated caller.
    log::warn("health check: database unreachable", {{"error", e.what()}});
    return Response::json(503, {{"status", "unavailable"}, {"database", "unreachable"}});
  }
  return Response::json(200, {{"status", "ok"}, {"version", ctx.options.version},
                              {"scheduler", ctx.manager != nullptr}});
}

Response metrics(ApiContext& ctx, RouteCall&) {
  std::vector<Gauge> gauges;
  try {
    ctx.db.read([&](pqxx::transaction_base& txn) {
      Gauge ws{"vigo_workspaces", "Workspaces by state (deleted ones not counted).", {}};
      for (const auto& row : txn.exec("SELECT state::text, count(*) FROM gis.workspaces WHERE state <> 'deleted' "
                                      "GROUP BY 1 ORDER BY 1")) {
        ws.samples.emplace_back("state=\"" + escape_label(row[0].as<std::string>()) + "\"", row[1].as<double>());
      }
      Gauge vms{"vigo_vms", "VMs by state (deleted ones not counted).", {}};
      for (const auto& row : txn.exec("SELECT state::text, count(*) FROM gis.vms WHERE state <> 'deleted' "
                                      "GROUP BY 1 ORDER BY 1")) {
        vms.samples.emplace_back("state=\"" + escape_label(row[0].as<std::string>()) + "\"", row[1].as<double>());
      }
      Gauge hosts{"vigo_hosts", "Hosts by state.", {}};
      for (const auto& row : txn.exec("SELECT state::text, count(*) FROM gis.hosts GROUP BY 1 ORDER BY 1")) {
        hosts.samples.emplace_back("state=\"" + escape_label(row[0].as<std::string>()) + "\"", row[1].as<double>());
      }
      gauges = {std::move(ws), std::move(vms), std::move(hosts),
                Gauge{"vigo_database_up", "Whether the GIS answered this scrape.", {{"", 1}}}};
    });
  } catch (const Error&) {
    gauges.push_back(Gauge{"vigo_database_up", "Whether the GIS answered this scrape.", {{"", 0}}});
  }
  const ServerStats server = ctx.server_stats ? ctx.server_stats() : ServerStats{};
  return Response::text(200, ctx.metrics->render(server, gauges), "text/plain; version=0.0.4; charset=utf-8");
}

Response whoami(ApiContext&, RouteCall& call) {
  return Response::json(200, {{"user", call.caller->user}, {"admin", call.caller->is_admin}});
}

Response images(ApiContext& ctx, RouteCall& call) {
  const std::optional<std::int64_t> viewer =
      call.admin() ? std::nullopt : std::optional<std::int64_t>{call.caller->user_id};
  nlohmann::json items = nlohmann::json::array();
  ctx.db.read([&](pqxx::transaction_base& txn) {
    for (const auto& row : txn.exec_params(
             "SELECT i.name, i.version, i.kind::text, i.size_bytes, coalesce(u.name, ''), s.name, "
             "to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
             "FROM gis.images i JOIN gis.image_servers s ON s.id = i.image_server_id "
             "LEFT JOIN gis.users u ON u.id = i.owner_id "
             "WHERE i.deleted_at IS NULL AND ($1::bigint IS NULL OR i.owner_id IS NULL OR i.owner_id = $1) "
             "ORDER BY i.name, i.version",
             viewer)) {
      items.push_back({{"name", row[0].as<std::string>()},
                       {"version", row[1].as<std::int64_t>()},
                       {"kind", row[2].as<std::string>()},
                       {"size_bytes", row[3].as<std::int64_t>()},
                       {"owner", row[4].as<std::string>()},
                       {"image_server", row[5].as<std::string>()},
                       {"created_at", row[6].as<std::string>()}});
    }
  });
  return Response::json(200, {{"images", items}});
}

Response checkpoints(ApiContext& ctx, RouteCall& call) {
  std::optional<std::string> owner = call.caller->user;
  if (call.admin() && call.request.query_value("all") == "true") owner.reset();
  nlohmann::json items = nlohmann::json::array();
  ctx.db.read([&](pqxx::transaction_base& txn) {
    for (const auto& row : txn.exec_params(
             "SELECT c.id, c.name, u.name, v.workspace_id, m.name || '@' || m.version, d.name || '@' || d.version, "
             "m.size_bytes + d.size_bytes, "
             "to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
             "FROM gis.checkpoints c JOIN gis.users u ON u.id = c.owner_id "
             "JOIN gis.images m ON m.id = c.memory_image_id JOIN gis.images d ON d.id = c.disk_image_id "
             "LEFT JOIN gis.vms v ON v.id = c.vm_id "
             "WHERE ($1::text IS NULL OR u.name = $1) ORDER BY c.id",
             owner)) {
      items.push_back({{"id", row[0].as<std::int64_t>()},
                       {"name", row[1].as<std::string>()},
                       {"owner", row[2].as<std::string>()},
                       {"workspace", row[3].is_null() ? nlohmann::json{} : nlohmann::json(row[3].as<std::int64_t>())},
                       {"memory_image", row[4].as<std::string>()},
                       {"disk_image", row[5].as<std::string>()},
                       {"size_bytes", row[6].as<std::int64_t>()},
                       {"created_at", row[7].as<std::string>()}});
    }
  });
  return Response::json(200, {{"checkpoints", items}});
}

Response hosts(ApiContext& ctx, RouteCall& call) {
  const auto limit = limit_of(call.request, 1000);
  nlohmann::json items = nlohmann::json::array();
  ctx.db.read([&](pqxx::transaction_base& txn) {
    for (const auto& row : txn.exec_params(
             "SELECT h.name, n.name, h.state::text, h.libvirt_uri, h.cpus, h.alloc_vcpus, h.memory_mb, "
             "h.alloc_memory_mb, h.disk_gb, h.alloc_disk_gb, h.labels::text, "
             "(SELECT count(*) FROM gis.vms v WHERE v.host_id = h.id AND gis.holds_capacity(v.state)) "
             "FROM gis.hosts h JOIN gis.networks n ON n.id = h.network_id ORDER BY h.name LIMIT $1",
             limit)) {
      items.push_back({{"name", row[0].as<std::string>()},
                       {"network", row[1].as<std::string>()},
                       {"state", row[2].as<std::string>()},
                       {"uri", row[3].as<std::string>()},
                       {"vcpus", row[4].as<std::int64_t>()},
                       {"alloc_vcpus", row[5].as<std::int64_t>()},
                       {"memory_mb", row[6].as<std::int64_t>()},
                       {"alloc_memory_mb", row[7].as<std::int64_t>()},
                       {"disk_gb", row[8].as<std::int64_t>()},
                       {"alloc_disk_gb", row[9].as<std::int64_t>()},
                       {"labels", nlohmann::json::parse(row[10].as<std::string>())},
                       {"vms", row[11].as<std::int64_t>()}});
    }
  });
  return Response::json(200, {{"hosts", items}});
}

Response futures(ApiContext& ctx, RouteCall& call) {
  const auto profile = call.request.query_value("profile");
  if (!profile || profile->empty()) throw invalid_argument("profile", "is required (?profile=NAME)");
  std::optional<std::string> network;
  if (const auto n = call.request.query_value("network")) network = std::string{*n};
  gis::Queries q{ctx.db};
  nlohmann::json items = nlohmann::json::array();
  for (const auto& f : q.hosts_for_profile(std::string{*profile}, {}, network, limit_of(call.request, 100))) {
    items.push_back({{"id", f.future_id}, {"host", f.host}, {"network", f.network}, {"slots", f.slots}});
  }
  return Response::json(200, {{"profile", *profile}, {"futures", items}});
}

}  // namespace

void add_resource_routes(RouteTable& t) {
  t.add("GET", "/v1/health", Access::kPublic, health);
  t.add("GET", "/metrics", Access::kPublic, metrics);
  t.add("GET", "/v1/whoami", Access::kUser, whoami);
  t.add("GET", "/v1/images", Access::kUser, images);
  t.add("GET", "/v1/checkpoints", Access::kUser, checkpoints);
  t.add("GET", "/v1/hosts", Access::kAdmin, hosts);
  t.add("GET", "/v1/futures", Access::kUser, futures);
}

}  // namespace vigo::web
