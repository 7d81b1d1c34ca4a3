// SPDX-License-Identifier: Apache-2.0
// Server: speaks the wire protocol (vigo/common/wire.h) on one byte stream, a
// pair of descriptors (stdin/stdout behind ssh, or both ends of a socket).
//
// The first frame must be HELLO; after it, requests are served with up to
// max_in_flight of them at once: the calling thread reads and checks frames,
// a pool of `workers` threads runs them through a Session, and the replies
// go out in whatever order they finish (the request id matches them up),
// one frame at a time: a worker that finds nobody writing writes its reply
// itself, otherwise the reply queues for a writer thread. A request waits for a free slot before its payload is
// read, so memory stays bounded by max_in_flight frames of at most
// wire::kMaxPayload each.
//
// Hostile input: an unknown type, non-zero flags or a malformed payload gets
// an error reply and the connection goes on; a frame header that is not ours
// (bad magic, length over the limit) or a stream that ends inside a frame
// gets an error reply with id 0 (when the stream still takes it) and the
// connection is closed. serve() never throws for anything the peer sends.
//
// Thread-safe: serve() may run for many connections at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "vigo/imageserver/image_catalog.h"

namespace vigo::imageserver {

struct ServerOptions {
  std::size_t workers = 4;
  std::size_t max_in_flight = 32;
  std::filesystem::path data_root;  // <root>/data; users' trees live below
};

struct ConnectionStats {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;         // error replies sent
  bool protocol_violation = false;  // closed because of a bad frame
};

class Server {
 public:
  Server(ImageCatalog& catalog, ServerOptions options);

  // Serves until the peer closes its side or breaks the framing. `user`
  // (a valid name) is whose data tree the connection reaches; nullopt: none.
  // Does not close the descriptors.
  ConnectionStats serve(int in_fd, int out_fd, const std::optional<std::string>& user);

 private:
  ImageCatalog& catalog_;
  ServerOptions options_;
};

}  // namespace vigo::imageserver
