// SPDX-License-Identifier: Apache-2.0
// Inside Api: the route table and what a route's function gets. Each
// api_*.cc file adds the routes of one resource.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vigo/web/api.h"
#include "vigo/web/authenticator.h"

namespace vigo::web {

// Recent GET /v1/workspaces answers by owner ("*": everyone's), so that a
// client polling its list costs no database round trip. An answer is
// reused only while (1) no state change was heard since it was read
// (EventHub::last(), fed by the GIS's notifications, also other vigods'),
// (2) no request to this vigod that could change anything (any method but
// GET and HEAD) has finished since, and (3) it is younger than max_age,
// which bounds what the notifications do not carry (a column changed
// without a state change, a listener that is reconnecting).
struct ListingCache {
  struct Entry {
    std::string body;
    std::uint64_t events = 0;
    std::uint64_t mutations = 0;
    std::chrono::steady_clock::time_point at;
  };
  static constexpr std::chrono::milliseconds max_age{1000};
  static constexpr std::size_t max_entries = 10'000;
  std::atomic<std::uint64_t> mutations{0};
  std::mutex mutex;
  std::map<std::string, Entry, std::less<>> entries;  // GUARDED_BY(mutex)
};

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
  std::shared_ptr<ListingCache> listings = std::make_shared<ListingCache>();
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
