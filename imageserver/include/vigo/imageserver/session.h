// SPDX-License-Identifier: Apache-2.0
// Session: what one connection may do, as a plain function from a request
// (type, payload) to a reply; it knows nothing about streams or threads, so
// tests call it directly. It decodes the request (wire_messages.h), runs it
// against the catalog or the connection user's data tree, and encodes the
// reply; every failure becomes a kError reply (with the errno for data
// operations), never an exception.
//
// GET_MANIFEST opens the image version (ImageReader) and keeps it open until
// the session ends, so a delete while the client reads the image cannot take
// its chunks away (at most kMaxOpenImages per session).
//
// Thread-safe: handle() may run on several threads at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vigo/imageserver/image_catalog.h"
#include "vigo/imageserver/user_data.h"

namespace vigo::imageserver {

struct Reply {
  std::uint8_t type = 0;
  std::vector<std::uint8_t> payload;
};

[[nodiscard]] Reply error_reply(const Error& error, int sys_errno = 0);

class Session {
 public:
  static constexpr std::size_t kMaxOpenImages = 1024;

  // user_data may be null: the connection has no data tree and every data
  // request is kPermissionDenied.
  Session(ImageCatalog& catalog, std::unique_ptr<UserData> user_data);

  // Any request type but HELLO (the connection handles that one).
  [[nodiscard]] Reply handle(std::uint8_t type, std::span<const std::uint8_t> payload);

 private:
  Reply dispatch(std::uint8_t type, std::span<const std::uint8_t> payload);
  Reply dispatch_data(std::uint8_t type, std::span<const std::uint8_t> payload);
  Reply get_manifest(std::span<const std::uint8_t> payload);
  Reply get_chunk(std::span<const std::uint8_t> payload);

  ImageCatalog& catalog_;
  std::unique_ptr<UserData> user_data_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::uint64_t>, ImageReader> open_images_;  // GUARDED_BY(mu_)
};

}  // namespace vigo::imageserver
