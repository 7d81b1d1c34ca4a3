// SPDX-License-Identifier: Apache-2.0
// The portal's static files (web/portal/, compiled in): GET /, /portal.js and
// /portal.css, public (the page asks for a token and sends it to the API).
// A strict Content-Security-Policy: only this origin's scripts and styles.
#include "api_internal.h"
#include "portal_assets.h"

namespace vigo::web {
namespace {

Response asset(std::string_view body, std::string content_type) {
  Response r = Response::text(200, std::string{body}, std::move(content_type));
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

}  // namespace

void add_portal_routes(RouteTable& t) {
  t.add("GET", "/", Access::kPublic,
        [](ApiContext&, RouteCall&) { return asset(portal::k_index_html, "text/html; charset=utf-8"); });
  t.add("GET", "/portal.js", Access::kPublic,
        [](ApiContext&, RouteCall&) { return asset(portal::k_portal_js, "text/javascript; charset=utf-8"); });
  t.add("GET", "/portal.css", Access::kPublic,
        [](ApiContext&, RouteCall&) { return asset(portal::k_portal_css, "text/css; charset=utf-8"); });
}

}  // namespace vigo::web
