// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the tls*.cc files (not a public header): OpenSSL's error
// queue and SSL_get_error results turned into vigo::Error, and descriptor
// flags. Thread-safe (OpenSSL's error queue is per thread).
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

#include "vigo/common/error.h"

namespace vigo::tls::internal {

// Drains this thread's OpenSSL error queue: "reason; reason" (or a
// placeholder when it is empty).
[[nodiscard]] std::string drain_errors();

// The Error for an SSL call on `ssl` that returned `ret` (SSL_get_error
// classifies it): "<what>: <OpenSSL reasons>[ (certificate: ...)]". Refused
// certificates are kPermissionDenied, anything else kUnavailable.
[[nodiscard]] Error ssl_failure(SSL* ssl, int ret, std::string_view what);

// Sets O_NONBLOCK on fd (throws on failure).
void set_nonblocking(int fd);

}  // namespace vigo::tls::internal
