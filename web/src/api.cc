// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/api.h"

#include <algorithm>
#include <charconv>

#include "api_internal.h"
#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/gis/tokens.h"
#include "vigo/web/api_error.h"
#include "vigo/web/event_hub.h"
#include "vigo/web/upload_store.h"
#include "vigo/web/metrics.h"
#include "vigo/web/rate_limiter.h"

namespace vigo::web {
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    const auto end = std::min(path.find('/', start), path.size());
    out.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

scheduler::WorkspaceManager& ApiContext::workspaces() const {
  if (manager == nullptr) throw Error{ErrorCode::kUnavailable, "this vigod runs no scheduler (no [host] configured)"};
  return *manager;
}

std::int64_t RouteCall::id(std::string_view param, std::string_view what) const {
  const auto it = params.find(param);
  const std::string& text = it == params.end() ? std::string{} : it->second;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value <= 0) {
    throw invalid_argument(std::string{what}, "'" + text + "' is not an id (a positive integer)");
  }
  return value;
}

void RouteTable::add(std::string method, std::string pattern, Access access, RouteFn fn) {
  Route r{RouteInfo{std::move(method), pattern, access}, split_path(pattern), std::move(fn)};
  routes_.push_back(std::move(r));
}

const Route* RouteTable::match(const Request& request, std::map<std::string, std::string, std::less<>>& params,
                               std::vector<std::string>& allowed) const {
  const auto segments = split_path(request.path);
  for (const auto& r : routes_) {
    if (r.segments.size() != segments.size()) continue;
    std::map<std::string, std::string, std::less<>> found;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      const auto& want = r.segments[i];
      if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
        if (segments[i].empty()) ok = false;
        else found[want.substr(1, want.size() - 2)] = segments[i];
      } else {
        ok = want == segments[i];
      }
    }
    if (!ok) continue;
    // HEAD is answered as GET (without a body, by the server).
    if (r.info.method == request.method || (request.method == "HEAD" && r.info.method == "GET")) {
      params = std::move(found);
      return &r;
    }
    allowed.push_back(r.info.method);
  }
  return nullptr;
}

struct Api::Impl {
  ApiOptions options;
  ApiContext ctx;
  RouteTable table;
  gis::Tokens tokens;
  Authenticator auth;
  RateLimiter limiter;
  Metrics metrics;
  EventHub events;
  std::unique_ptr<UploadStore> uploads;

  Impl(gis::Database& db, scheduler::WorkspaceManager* manager, ApiOptions o, scheduler::ImagePublisher* images)
      : options(std::move(o)),
        ctx{db, manager, options, {}},
        tokens(db),
        auth([this](const std::string& t) { return tokens.verify(t); }, options.token_cache_ttl),
        limiter(options.rate_per_token, options.burst_per_token),
        events(db.conninfo()) {
    ctx.metrics = &metrics;
    ctx.events = &events;
    if (images != nullptr && !options.upload_dir.empty()) {
      uploads = std::make_unique<UploadStore>(UploadOptions{options.upload_dir, options.max_upload_bytes,
                                                            options.max_uploads_per_user, std::chrono::hours{1}});
      ctx.images = images;
      ctx.uploads = uploads.get();
    }
    add_resource_routes(table);
    add_workspace_routes(table);
    add_gis_routes(table);
    add_portal_routes(table);
    add_event_routes(table);
    add_image_routes(table);
  }

  // Every failure, including the token check's (the database may be down),
  // becomes a JSON error; internal details stay in the log.
  Response dispatch(const Request& request, std::string& route_name) {
    try {
      return dispatch_unchecked(request, route_name);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kInternal) {
        log::error("request failed", {{"route", route_name}, {"error", e.what()}});
      }
      return error_response(e);
    } catch (const std::exception& e) {
      log::error("request failed", {{"route", route_name}, {"error", e.what()}});
      return error_response(500, "internal", "internal error");
    }
  }

  Response dispatch_unchecked(const Request& request, std::string& route_name) {
    std::map<std::string, std::string, std::less<>> params;
    std::vector<std::string> allowed;
    const Route* route = table.match(request, params, allowed);
    if (route == nullptr) {
      if (!allowed.empty()) {
        std::string list;
        if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end()) allowed.push_back("HEAD");
        for (const auto& m : allowed) list += (list.empty() ? "" : ", ") + m;
        auto r = error_response(405, "method_not_allowed", request.method + " is not allowed here; use " + list);
        r.headers.emplace_back("Allow", list);
        return r;
      }
      return error_response(404, "not_found", "no route for " + request.path);
    }
    route_name = route->info.method + " " + route->info.pattern;
    std::optional<Caller> caller;
    if (route->info.access != Access::kPublic) {
      caller = auth.authenticate(request);
      if (!caller) {
        // Failed attempts count against the client's address, so that
        // guessing tokens is as slow as the rate limit.
        const std::string address = request.peer.substr(0, request.peer.rfind(':'));
        if (!limiter.allow("unauthenticated " + address)) {
          auto r = error_response(429, "rate_limited", "too many requests without a valid token; slow down");
          r.headers.emplace_back("Retry-After", "1");
          return r;
        }
        auto r = error_response(401, "unauthenticated", "a valid bearer token is required (Authorization: Bearer ...)");
        r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"vigo\"");
        return r;
      }
      if (!limiter.allow(caller->token)) {
        const auto wait = limiter.retry_after(caller->token);
        auto r = error_response(429, "rate_limited", "too many requests for this token; slow down");
        r.headers.emplace_back("Retry-After", std::to_string(std::max<std::int64_t>(1, (wait.count() + 999) / 1000)));
        return r;
      }
      if (route->info.access == Access::kAdmin && !caller->is_admin) {
        return error_response(403, "permission_denied", "this route is for administrators");
      }
    }
    RouteCall call{request, caller ? &*caller : nullptr, std::move(params)};
    // Whatever a changing request did is done (or failed) when it returns:
    // cached listings read before are stale from then on.
    struct CountMutation {
      ListingCache& cache;
      bool changes;
      ~CountMutation() {
        if (changes) ++cache.mutations;
      }
    } count{*ctx.listings, route->info.method != "GET"};
    return route->fn(ctx, call);
  }
};

Api::Api(gis::Database& db, scheduler::WorkspaceManager* manager, ApiOptions options,
         scheduler::ImagePublisher* images)
    : impl_(std::make_unique<Impl>(db, manager, std::move(options), images)) {}

Api::~Api() = default;

Response Api::handle(const Request& request) {
  const auto start = std::chrono::steady_clock::now();
  std::string route = "unmatched";
  Response r = impl_->dispatch(request, route);
  if (request.method == "HEAD") {
    r.head_length = r.body.size();
    r.body.clear();
    r.stream.reset();
  }
  impl_->metrics.record(route, r.status, std::chrono::steady_clock::now() - start);
  return r;
}

void Api::set_server_stats(std::function<ServerStats()> stats) { impl_->ctx.server_stats = std::move(stats); }

std::vector<RouteInfo> Api::routes() const {
  std::vector<RouteInfo> out;
  for (const auto& r : impl_->table.all()) out.push_back(r.info);
  return out;
}

}  // namespace vigo::web
