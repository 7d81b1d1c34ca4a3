// SPDX-License-Identifier: Apache-2.0
// One TLS connection of `vigo-imaged --listen-tls`, on an accepted TCP
// socket: the handshake (the client must present a certificate that chains
// to the context's CA; handshake_timeout bounds it), the certificate's
// subject CN as the connection's user (it must satisfy the name rule,
// vigo/common/names.h), then Server::serve through a tls::Bridge.
//
// Refusals (no or untrusted certificate, not TLS at all, a bad CN) and
// failures are logged at warn with the peer's address and the reason, and
// never thrown: one bad client affects no other connection. A client whose
// trusted certificate has a bad CN also gets the reason, as a wire error
// frame with id 0, before the connection closes. Does not close
// the socket. Thread-safe: one call per connection, many at once.
#pragma once

#include <chrono>

#include "vigo/common/tls.h"
#include "vigo/imageserver/server.h"

namespace vigo::imageserver {

void serve_tls_connection(Server& server, int socket, const tls::Context& context,
                          std::chrono::milliseconds handshake_timeout);

}  // namespace vigo::imageserver
