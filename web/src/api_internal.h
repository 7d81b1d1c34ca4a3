// SPDX-License-Identifier: Apache-2.0
// Inside Api: the route table and what a route's function gets. Each
// api_*.cc file adds the routes of one resource.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vigo/web/api.h"
#include "vigo/web/authenticator.h"

namespace vigo::web {

struct ApiContext {
  gis::Database& db;
  scheduler::WorkspaceManager* manager;
  const ApiOptions& options;
  std::function<ServerStats()> server_stats;
  const class Metrics* metrics = nullptr;
  class EventHub* events = nullptr;
  scheduler::ImagePublisher* images = nullptr;  // null: no publishing (503)
  class UploadStore* uploads = nullptr;         // with images
  std::shared_ptr<std::atomic<int>> open_event_streams = std::make_shared<std::atomic<int>>(0);
  // The manager, or kUnavailable.
  [[nodiscard]] scheduler::WorkspaceManager& workspaces() const;
};

struct RouteCall {
  const Request& request;
  const Caller* caller;  // null on public routes
  std::map<std::string, std::string, std::less<>> params;  // {id} -> "42"
  // A path parameter as a positive id; kInvalidArgument naming `what` otherwise.
  [[nodiscard]] std::int64_t id(std::string_view param, std::string_view what) const;
  [[nodiscard]] bool admin() const { return caller != nullptr && caller->is_admin; }
};

using RouteFn = std::function<Response(ApiContext&, RouteCall&)>;

struct Route {
  RouteInfo info;
  std::vector<std::string> segments;  // "{id}" matches one segment
  RouteFn fn;
};

class RouteTable {
 public:
  void add(std::string method, std::string pattern, Access access, RouteFn fn);
  // The route for the request, with its parameters; nullptr when none.
  // allowed: the methods of routes that match the path (for 405).
  const Route* match(const Request& request, std::map<std::string, std::string, std::less<>>& params,
                     std::vector<std::string>& allowed) const;
  [[nodiscard]] const std::vector<Route>& all() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

void add_workspace_routes(RouteTable& table);
void add_resource_routes(RouteTable& table);
void add_gis_routes(RouteTable& table);
void add_portal_routes(RouteTable& table);
void add_event_routes(RouteTable& table);
void add_image_routes(RouteTable& table);

}  // namespace vigo::web
