// SPDX-License-Identifier: Apache-2.0
// Publishing and deleting images, and the resumable uploads that carry an
// image's bytes to vigod (upload_store.h):
//   POST   /v1/uploads            a new upload           -> {"id", "offset": 0}
//   PUT    /v1/uploads/{id}?offset=N   the next piece (raw body) -> {"offset"}
//   GET    /v1/uploads/{id}       where to go on        -> {"offset"}
//   DELETE /v1/uploads/{id}       give up
//   POST   /v1/images {"name", "upload", "kind", "public"}: publish the
//          upload as the next version of the image (the image server
//          chunks, hashes and dedups it), then register it in the GIS
//   DELETE /v1/images/{name@version}
// A user's images are private (only they see and boot them); "public": true
// is for administrators. A name belongs to whoever published it first: a
// user cannot add versions to another user's image or to a public one.
// Deleting refuses an image that a live VM, a workspace or a checkpoint
// uses (409). Without an image publisher (a vigod with no [host]) these
// routes answer 503.
#include <charconv>

#include "api_internal.h"
#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/scheduler/image_publisher.h"
#include "vigo/web/api_error.h"
#include "vigo/web/json_fields.h"
#include "vigo/web/upload_store.h"

namespace vigo::web {
namespace {

UploadStore& uploads_of(ApiContext& ctx) {
  if (ctx.uploads == nullptr || ctx.images == nullptr) {
    throw Error{ErrorCode::kUnavailable, "this vigod publishes no images (no [host] and image server configured)"};
  }
  return *ctx.uploads;
}

std::string upload_id(const RouteCall& call) {
  const auto it = call.params.find("id");
  const std::string id = it == call.params.end() ? std::string{} : it->second;
  if (id.size() != 32 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw invalid_argument("upload", "'" + id + "' is not an upload id");
  }
  return id;
}

Response upload_state(const std::string& id, std::uint64_t offset, int status = 200) {
  return Response::json(status, {{"id", id}, {"offset", offset}});
}

Response create_upload(ApiContext& ctx, RouteCall& call) {
  auto& uploads = uploads_of(ctx);
  if (!call.request.body.empty()) JsonFields::parse(call.request.body).finish();  // no fields
  auto r = upload_state(uploads.create(call.caller->user_id), 0, 201);
  return r;
}

Response put_piece(ApiContext& ctx, RouteCall& call) {
  auto& uploads = uploads_of(ctx);
  const auto id = upload_id(call);
  const auto text = call.request.query_value("offset");
  if (!text) throw invalid_argument("offset", "is required (?offset=N, the upload's size so far)");
  std::uint64_t offset = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), offset);
  if (text->empty() || ec != std::errc{} || end != text->data() + text->size()) {
    throw invalid_argument("offset", "must be a non-negative integer");
  }
  return upload_state(id, uploads.append(id, call.caller->user_id, offset, call.request.body));
}

Response get_upload(ApiContext& ctx, RouteCall& call) {
  const auto id = upload_id(call);
  return upload_state(id, uploads_of(ctx).size(id, call.caller->user_id));
}

Response delete_upload(ApiContext& ctx, RouteCall& call) {
  const auto id = upload_id(call);
  uploads_of(ctx).remove(id, call.caller->user_id);
  return Response::json(200, {{"id", id}, {"deleted", true}});
}

// The owner an image of this name must have (the caller's id, or null for
// a public image); kConflict when the name is another's.
void check_name_is_free_for(pqxx::transaction_base& txn, const std::string& name, std::optional<std::int64_t> owner) {
  txn.exec_params("SELECT gis.check_name('name', $1)", name);
  for (const auto& row : txn.exec_params("SELECT DISTINCT owner_id FROM gis.images WHERE name = $1", name)) {
    const auto other = row[0].is_null() ? std::nullopt : std::optional<std::int64_t>{row[0].as<std::int64_t>()};
    if (other != owner) {
      throw Error{ErrorCode::kConflict,
                  "the image name '" + name + "' is taken by " + (other ? "another user" : "a public image"), "name"};
    }
  }
}

Response publish(ApiContext& ctx, RouteCall& call) {
  auto& uploads = uploads_of(ctx);
  auto f = JsonFields::parse(call.request.body);
  const std::string name = f.required_string("name");
  const std::string upload = f.required_string("upload");
  const std::string kind = f.string("kind").value_or("disk");
  const bool is_public = f.boolean("public").value_or(false);
  f.finish();
  if (kind != "disk" && kind != "memory") throw invalid_argument("kind", "must be \"disk\" or \"memory\"");
  if (is_public && !call.admin()) {
    throw Error{ErrorCode::kPermissionDenied, "only administrators publish public images", "public"};
  }
  const std::optional<std::int64_t> owner =
      is_public ? std::nullopt : std::optional<std::int64_t>{call.caller->user_id};
  ctx.db.read([&](pqxx::transaction_base& txn) { check_name_is_free_for(txn, name, owner); });

  const std::filesystem::path file = uploads.take(upload, call.caller->user_id);
  struct RemoveFile {
    std::filesystem::path path;
    ~RemoveFile() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } remove_file{file};
  const auto published = ctx.images->publish(file, name);
  try {
    ctx.db.write([&](pqxx::transaction_base& txn) {
      check_name_is_free_for(txn, name, owner);  // again: another publish may have come between
      txn.exec_params("SELECT gis.add_image($1, $2, $3::gis.image_kind, $4, $5, $6)", name,
                      static_cast<std::int64_t>(published.version), kind,
                      is_public ? std::nullopt : std::optional<std::string>{call.caller->user},
                      ctx.images->server_name(), static_cast<std::int64_t>(published.size));
    });
  } catch (...) {
    // Nothing half done: the version leaves the store again.
    try {
      ctx.images->remove(published.name, published.version);
    } catch (const std::exception& e) {
      log::warn("could not take back an image the GIS refused", {{"image", published.file_name()}, {"error", e.what()}});
    }
    throw;
  }
  log::info("image published", {{"image", published.file_name()}, {"owner", is_public ? "(public)" : call.caller->user},
                                {"bytes", std::to_string(published.size)},
                                {"new_chunks", std::to_string(published.chunks_written)}});
  return Response::json(201, {{"name", published.name},
                              {"version", published.version},
                              {"kind", kind},
                              {"size_bytes", published.size},
                              {"owner", is_public ? "" : call.caller->user},
                              {"image_server", ctx.images->server_name()},
                              {"chunks_written", published.chunks_written}});
}

Response delete_image(ApiContext& ctx, RouteCall& call) {
  if (ctx.images == nullptr) uploads_of(ctx);  // 503
  const std::string spec = call.params.at("image");
  const auto at = spec.rfind('@');
  std::uint32_t version = 0;
  const char* begin = spec.data() + (at == std::string::npos ? spec.size() : at + 1);
  const auto [end, ec] = std::from_chars(begin, spec.data() + spec.size(), version);
  if (at == std::string::npos || at == 0 || ec != std::errc{} || end != spec.data() + spec.size() || version == 0) {
    throw invalid_argument("image", "'" + spec + "' is not NAME@VERSION");
  }
  const std::string name = spec.substr(0, at);
  const Error not_found{ErrorCode::kNotFound, "no image " + spec, "image"};
  ctx.db.write([&](pqxx::transaction_base& txn) {
    const auto rows = txn.exec_params(
        "SELECT id, owner_id FROM gis.images WHERE name = $1 AND version = $2 AND deleted_at IS NULL FOR UPDATE", name,
        static_cast<std::int64_t>(version));
    if (rows.empty()) throw not_found;
    const auto id = rows[0][0].as<std::int64_t>();
    const auto owner = rows[0][1].is_null() ? std::nullopt : std::optional<std::int64_t>{rows[0][1].as<std::int64_t>()};
    if (!call.admin()) {
      if (owner && *owner != call.caller->user_id) throw not_found;  // another's private image is not there
      if (!owner) throw Error{ErrorCode::kPermissionDenied, "only administrators delete public images", "image"};
    }
    const auto users = txn.exec_params1(
        "SELECT (SELECT count(*) FROM gis.vms WHERE image_id = $1 AND state <> 'deleted') + "
        "(SELECT count(*) FROM gis.workspaces WHERE image_id = $1 AND state <> 'deleted'), "
        "(SELECT count(*) FROM gis.checkpoints WHERE memory_image_id = $1 OR disk_image_id = $1)",
        id);
    if (users[0].as<std::int64_t>() > 0) {
      throw Error{ErrorCode::kConflict, spec + " is in use by live workspaces; delete them first", "image"};
    }
    if (users[1].as<std::int64_t>() > 0) {
      throw Error{ErrorCode::kConflict, spec + " holds a checkpoint; delete the checkpoint instead", "image"};
    }
    txn.exec_params0("UPDATE gis.images SET deleted_at = now() WHERE id = $1", id);
  });
  // The GIS no longer offers it; now its chunks may go.
  try {
    ctx.images->remove(name, version);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) {
      log::warn("image deleted in the GIS, not yet on the image server (vigo-imaged delete/gc will)",
                {{"image", spec}, {"error", e.what()}});
    }
  }
  return Response::json(200, {{"name", name}, {"version", version}, {"deleted", true}});
}

}  // namespace

void add_image_routes(RouteTable& t) {
  t.add("POST", "/v1/uploads", Access::kUser, create_upload);
  t.add("GET", "/v1/uploads/{id}", Access::kUser, get_upload);
  t.add("PUT", "/v1/uploads/{id}", Access::kUser, put_piece);
  t.add("DELETE", "/v1/uploads/{id}", Access::kUser, delete_upload);
  t.add("POST", "/v1/images", Access::kUser, publish);
  t.add("DELETE", "/v1/images/{image}", Access::kUser, delete_image);
}

}  // namespace vigo::web
