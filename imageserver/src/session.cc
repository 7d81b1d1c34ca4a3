// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/session.h"

#include "vigo/common/wire.h"

namespace vigo::imageserver {
namespace {

using wire::MessageType;

Reply ok(MessageType type, std::vector<std::uint8_t> payload = {}) {
  return {wire::reply_type(type), std::move(payload)};
}

}  // namespace

Reply error_reply(const Error& error, int sys_errno) {
  return {static_cast<std::uint8_t>(MessageType::kError), wire::encode_error(error, sys_errno)};
}

Session::Session(ImageCatalog& catalog, std::unique_ptr<UserData> user_data)
    : catalog_(catalog), user_data_(std::move(user_data)) {}

Reply Session::handle(std::uint8_t type, std::span<const std::uint8_t> payload) {
  try {
    return dispatch(type, payload);
  } catch (const FsError& e) {
    return error_reply(e, e.sys_errno());
  } catch (const Error& e) {
    return error_reply(e);
  } catch (const std::bad_alloc&) {
    return error_reply(Error{ErrorCode::kResourceExhausted, "out of memory"});
  } catch (const std::exception& e) {
    return error_reply(Error{ErrorCode::kInternal, e.what()});
  }
}

Reply Session::dispatch(std::uint8_t type, std::span<const std::uint8_t> payload) {
  switch (static_cast<MessageType>(type)) {
    case MessageType::kListImages: {
      wire::FieldReader{payload}.expect_end("list images");
      return ok(MessageType::kListImages, wire::encode(catalog_.list()));
    }
    case MessageType::kGetManifest:
      return get_manifest(payload);
    case MessageType::kGetChunk:
      return get_chunk(payload);
    case MessageType::kPutProfile: {
      const wire::PutProfile m = wire::decode_put_profile(payload);
      catalog_.put_profile(m.image.name, m.image.version, m.blob);
      return ok(MessageType::kPutProfile);
    }
    case MessageType::kGetProfile: {
      const wire::ImageRef m = wire::decode_image_ref(payload);
      return ok(MessageType::kGetProfile, catalog_.get_profile(m.name, m.version));
    }
    default:
      break;
  }
  if (type >= 0x20 && type <= 0x2B) return dispatch_data(type, payload);
  throw invalid_argument("message type", "unknown request type " + std::to_string(type));
}

Reply Session::get_manifest(std::span<const std::uint8_t> payload) {
  const wire::ImageRef m = wire::decode_image_ref(payload);
  ImageReader reader = catalog_.open(m.name, m.version);
  std::vector<std::uint8_t> bytes = encode_manifest(reader.manifest());
  const auto key = std::make_pair(m.name, reader.manifest().version);
  std::lock_guard lock{mu_};
  if (!open_images_.contains(key)) {
    if (open_images_.size() >= kMaxOpenImages) {
      throw Error{ErrorCode::kResourceExhausted, "this connection has too many images open"};
    }
    open_images_.emplace(key, std::move(reader));
  }
  return ok(MessageType::kGetManifest, std::move(bytes));
}

Reply Session::get_chunk(std::span<const std::uint8_t> payload) {
  const wire::GetChunk m = wire::decode_get_chunk(payload);
  wire::ChunkData out;
  if (m.mode == wire::ChunkMode::kStored) {
    StoredChunk stored = catalog_.chunks().read_stored(m.hash);
    out.encoding = stored.encoding;
    out.raw_length = stored.raw_length;
    out.data = std::move(stored.bytes);
  } else {
    out.data = catalog_.chunks().read_range(m.hash, m.offset, m.length, &out.raw_length);
    out.offset = m.offset;
  }
  return ok(MessageType::kGetChunk, wire::encode(out));
}

Reply Session::dispatch_data(std::uint8_t type, std::span<const std::uint8_t> payload) {
  if (!user_data_) throw Error{ErrorCode::kPermissionDenied, "this connection has no user data tree"};
  UserData& d = *user_data_;
  const auto t = static_cast<MessageType>(type);
  switch (t) {
    case MessageType::kDataStat:
      return ok(t, wire::encode(d.stat(wire::decode_path_request(payload).path)));
    case MessageType::kDataReadDir: {
      const wire::ReadDir m = wire::decode_read_dir(payload);
      return ok(t, wire::encode(d.read_dir(m.path, m.start)));
    }
    case MessageType::kDataRead: {
      const wire::Read m = wire::decode_read(payload);
      return ok(t, d.read(m.path, m.offset, m.length));
    }
    case MessageType::kDataWrite: {
      const wire::Write m = wire::decode_write(payload);
      return ok(t, wire::FieldWriter{}.u32(d.write(m.path, m.offset, m.data)).take());
    }
    case MessageType::kDataCreate: {
      const wire::Create m = wire::decode_create(payload);
      d.create(m.path, m.mode, m.flags);
      return ok(t, wire::encode(d.stat(m.path)));
    }
    case MessageType::kDataMkdir: {
      const wire::Create m = wire::decode_create(payload);
      if (m.flags != 0) throw invalid_argument("mkdir flags", "must be 0");
      d.mkdir(m.path, m.mode);
      return ok(t, wire::encode(d.stat(m.path)));
    }
    case MessageType::kDataUnlink:
      d.unlink(wire::decode_path_request(payload).path);
      return ok(t);
    case MessageType::kDataRmdir:
      d.rmdir(wire::decode_path_request(payload).path);
      return ok(t);
    case MessageType::kDataRename: {
      const wire::Rename m = wire::decode_rename(payload);
      d.rename(m.from, m.to, m.flags);
      return ok(t);
    }
    case MessageType::kDataTruncate: {
      const wire::Truncate m = wire::decode_truncate(payload);
      d.truncate(m.path, m.size);
      return ok(t);
    }
    case MessageType::kDataFsync:
      d.fsync(wire::decode_path_request(payload).path);
      return ok(t);
    case MessageType::kDataSetAttr:
      return ok(t, wire::encode(d.set_attr(wire::decode_set_attr(payload))));
    default:
      break;
  }
  throw invalid_argument("message type", "unknown request type " + std::to_string(type));
}

}  // namespace vigo::imageserver
