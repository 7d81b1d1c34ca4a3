// SPDX-License-Identifier: Apache-2.0
// The vigo-imaged command line:
//   vigo-imaged --stdio --root DIR [--user NAME]    serve stdin/stdout (behind ssh)
//   vigo-imaged --listen 127.0.0.1:PORT --root DIR [--user NAME]  plain TCP, loopback only
//   vigo-imaged --listen-tls ADDR:PORT --root DIR --tls-cert F --tls-key F --tls-client-ca F
//                                                    TLS, any address; the client certificate's CN is the user
//   vigo-imaged connect --tls HOST:PORT --tls-cert F --tls-key F --tls-ca F [--server-name N]
//                                                    bridge stdin/stdout to a --listen-tls server
//   vigo-imaged publish --root DIR --name NAME FILE
//   vigo-imaged list|stat NAME[@VERSION]|delete NAME@VERSION|gc --root DIR [--json]
// Exit codes: 0 ok, 2 invalid argument, 3 not found, 4 conflict, 5 unavailable,
// 6 permission denied, 1 anything else.
#pragma once

namespace vigo::imageserver {

int run(int argc, char** argv);

}  // namespace vigo::imageserver
