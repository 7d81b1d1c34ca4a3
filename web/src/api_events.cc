// SPDX-License-Identifier: Apache-2.0
// GET /v1/events: server-sent events (text/event-stream) of the caller's
// workspaces and VMs changing state; an administrator gets everyone's.
// Each event:
//   id: <sequence number>
//   event: workspace | vm | resync
//   data: {"kind", "id", "workspace_id", "name", "state", "error", "at"}
// The first event is "ready" ({"kind": "ready", "after": N}): from then on
// nothing is missed (a client may list, then rely on the stream).
// A client that reconnects sends Last-Event-ID (or ?after=N) and gets what
// it missed, if the hub still holds it; otherwise a "resync" event first,
// after which it should read GET /v1/workspaces again. The stream starts
// with a retry hint and sends a comment every heartbeat when idle.
#include <charconv>

#include "api_internal.h"
#include "vigo/common/error.h"
#include "vigo/web/api_error.h"
#include "vigo/web/event_hub.h"

namespace vigo::web {
namespace {

class EventStream final : public ResponseStream {
 public:
  EventStream(EventHub& hub, const Caller& caller, std::uint64_t cursor, std::chrono::milliseconds heartbeat,
              std::shared_ptr<std::atomic<int>> open)
      : hub_(hub), owner_(caller.user_id), all_(caller.is_admin), cursor_(cursor), heartbeat_(heartbeat),
        open_(std::move(open)) {}
  ~EventStream() override { --*open_; }

  bool poll(std::string& out) override {
    const auto now = std::chrono::steady_clock::now();
    if (first_) {
      out += "retry: 2000\nevent: ready\ndata: {\"kind\":\"ready\",\"after\":" + std::to_string(cursor_) + "}\n\n";
      first_ = false;
    }
    for (auto& e : hub_.since(cursor_, owner_, all_, 256, cursor_)) {
      e.data["kind"] = e.kind;
      out += "id: " + std::to_string(e.seq != 0 ? e.seq : cursor_) + "\nevent: " + e.kind + "\ndata: " +
             e.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
    }
    if (out.empty() && now - last_write_ >= heartbeat_) out = ": keep-alive\n\n";
    if (!out.empty()) last_write_ = now;
    return true;
  }

 private:
  EventHub& hub_;
  std::int64_t owner_;
  bool all_;
  std::uint64_t cursor_;
  std::chrono::milliseconds heartbeat_;
  std::shared_ptr<std::atomic<int>> open_;
  bool first_ = true;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
};

// Last-Event-ID or ?after=: a sequence number; absent: from now on.
std::optional<std::uint64_t> resume_point(const Request& request) {
  auto text = request.header("last-event-id");
  std::string_view field = "Last-Event-ID";
  if (!text) {
    text = request.query_value("after");
    field = "after";
  }
  if (!text) return std::nullopt;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (text->empty() || ec != std::errc{} || end != text->data() + text->size()) {
    throw invalid_argument(std::string{field}, "must be an event id (a non-negative integer)");
  }
  return n;
}

Response events(ApiContext& ctx, RouteCall& call) {
  const auto resume = resume_point(call.request);
  if (ctx.open_event_streams->fetch_add(1) >= ctx.options.max_event_streams) {
    --*ctx.open_event_streams;
    throw Error{ErrorCode::kUnavailable, "too many event streams are open; try again later"};
  }
  auto open = ctx.open_event_streams;
  std::shared_ptr<EventStream> stream;
  try {
    ctx.events->start();  // the first stream starts listening
    const std::uint64_t cursor = resume.value_or(ctx.events->last());
    stream = std::make_shared<EventStream>(*ctx.events, *call.caller, cursor, ctx.options.event_heartbeat, open);
  } catch (...) {
    --*open;
    throw;
  }
  Response r;
  r.status = 200;
  r.content_type = "text/event-stream; charset=utf-8";
  r.headers.emplace_back("X-Accel-Buffering", "no");
  r.stream = std::move(stream);
  return r;
}

}  // namespace

void add_event_routes(RouteTable& t) { t.add("GET", "/v1/events", Access::kUser, events); }

}  // namespace vigo::web
