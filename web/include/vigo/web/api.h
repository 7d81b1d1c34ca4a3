// SPDX-License-Identifier: Apache-2.0
// Api: vigod's REST API as one Handler (Request -> Response) over the GIS
// and the WorkspaceManager; docs/api.md lists every route and
// web/openapi.json describes them (a test checks the two agree with
// routes()).
//
// Every route but GET /v1/health and GET /metrics needs a bearer token
// (401 without a valid one); admin routes need an admin's token (403). A
// user sees and changes only their own workspaces and checkpoints: another
// user's workspace id answers 404, exactly as an id that does not exist, so
// ids reveal nothing. Each token may make rate_per_token requests per second
// (bursts of burst_per_token); beyond that 429 with Retry-After. Errors are
// api_error.h's JSON. Every request is counted in the Prometheus metrics.
// Thread-safe (the server calls handle() from its handler pool).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vigo/gis/database.h"
#include "vigo/scheduler/image_publisher.h"
#include "vigo/scheduler/workspace_manager.h"
#include "vigo/web/http.h"
#include "vigo/web/https_server.h"

namespace vigo::web {

struct ApiOptions {
  double rate_per_token = 200;   // requests per second, on average
  double burst_per_token = 400;  // at once
  std::chrono::seconds token_cache_ttl{5};
  std::string version = "0.1.0";
  // GET /v1/events: a comment line this often when nothing happens (keeps
  // proxies from closing the stream and finds clients that went), and at
  // most this many streams open at once (beyond: 503).
  std::chrono::milliseconds event_heartbeat{15'000};
  int max_event_streams = 256;
  // Image uploads (POST /v1/uploads ...), when vigod has an image publisher.
  // Empty upload_dir: uploads are refused (503).
  std::filesystem::path upload_dir;
  std::uint64_t max_upload_bytes = 64ULL << 30;
  int max_uploads_per_user = 4;
};

enum class Access { kPublic, kUser, kAdmin };

struct RouteInfo {
  std::string method;
  std::string pattern;  // "/v1/workspaces/{id}"
  Access access = Access::kUser;
};

class Api {
 public:
  // manager may be null (a GIS-only vigod): workspace routes then answer 503;
  // so do the image publishing routes without images (and an upload_dir).
  Api(gis::Database& db, scheduler::WorkspaceManager* manager, ApiOptions options = {},
      scheduler::ImagePublisher* images = nullptr);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  [[nodiscard]] Response handle(const Request& request);
  // Where /metrics gets the server's connection counters.
  void set_server_stats(std::function<ServerStats()> stats);
  [[nodiscard]] std::vector<RouteInfo> routes() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigo::web
