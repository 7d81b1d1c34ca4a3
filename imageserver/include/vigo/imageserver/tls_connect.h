// SPDX-License-Identifier: Apache-2.0
// `vigo-imaged connect --tls HOST:PORT ...`: the client end of a TLS
// connection to `vigo-imaged --listen-tls`, bridged to a pair of descriptors
// (stdin/stdout), so that a command-based client reaches the server the way
// it does through `ssh host vigo-imaged --stdio` (vigo-fs --server "...").
// Like `ssh -W`: the end of in_fd is passed on as a TLS half-close, and the
// bridge returns once the server has closed and every byte it sent is
// written to out_fd. Once connected, SIGTERM, SIGINT and SIGHUP are blocked
// in the calling thread and end the bridge cleanly (close_notify, then
// return) instead of the process. Stateless; the caller must ignore SIGPIPE.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "vigo/common/tls.h"

namespace vigo::imageserver {

struct ConnectOptions {
  std::string address;  // HOST:PORT or [IPV6]:PORT; HOST may be a DNS name
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::filesystem::path ca_file;
  std::string server_name;  // the name the server certificate must carry; empty: HOST
  std::chrono::milliseconds timeout = tls::kDefaultHandshakeTimeout;  // TCP connect, then handshake
};

// Connects, handshakes and bridges until the server closes. Throws
// vigo::Error: bad options kInvalidArgument naming the option (--tls,
// --tls-cert, --tls-key, --tls-ca, --server-name); an unreachable server
// kUnavailable or kTimeout; a refused certificate kPermissionDenied.
void connect_and_bridge(const ConnectOptions& options, int in_fd, int out_fd);

}  // namespace vigo::imageserver
