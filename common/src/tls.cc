// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "tls_internal.h"

namespace vigo::tls {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace internal {

std::string drain_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    std::string text;
    if (reason != nullptr) {
      text = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      text = buf;
    }
    if (out.find(text) != std::string::npos) continue;  // OpenSSL often repeats itself
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? "no OpenSSL error recorded" : out;
}

namespace {

bool refused_certificate(unsigned long reason) {
  switch (reason) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
      return true;
    default:
      return false;
  }
}

}  // namespace

Error ssl_failure(SSL* ssl, int ret, std::string_view what) {
  const int saved_errno = errno;
  const int kind = SSL_get_error(ssl, ret);
  const unsigned long first = ERR_peek_error();
  std::string message = std::string{what} + ": ";
  if (kind == SSL_ERROR_SYSCALL && first == 0) {
    char buf[256];
    message += saved_errno != 0 ? std::string{strerror_r(saved_errno, buf, sizeof buf)}
                                : std::string{"the peer closed the connection"};
  } else {
    message += drain_errors();
  }
  ERR_clear_error();
  bool refused = first != 0 && ERR_GET_LIB(first) == ERR_LIB_SSL && refused_certificate(ERR_GET_REASON(first));
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    message += std::string{" (certificate: "} + X509_verify_cert_error_string(verify) + ")";
    refused = true;
  }
  return Error{refused ? ErrorCode::kPermissionDenied : ErrorCode::kUnavailable, std::move(message)};
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno("fcntl O_NONBLOCK");
}

}  // namespace internal

namespace {

using internal::drain_errors;

// Refuses encrypted keys instead of prompting on the terminal.
int no_password(char*, int, int, void*) { return 0; }

void require_file(const std::string& field, const fs::path& path) {
  if (path.empty()) throw invalid_argument(field, "a file is required");
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::exists(st)) throw invalid_argument(field, "'" + path.string() + "' does not exist");
  if (!fs::is_regular_file(st)) throw invalid_argument(field, "'" + path.string() + "' is not a regular file");
  if (::access(path.c_str(), R_OK) != 0) throw invalid_argument(field, "'" + path.string() + "' is not readable");
}

EVP_PKEY* read_key(const ContextOptions& o) {
  std::FILE* f = std::fopen(o.key_file.c_str(), "re");
  if (f == nullptr) throw invalid_argument(o.key_field, "cannot open '" + o.key_file.string() + "'");
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, no_password, nullptr);
  std::fclose(f);
  if (key == nullptr) {
    throw invalid_argument(o.key_field,
                           "no unencrypted PEM private key in '" + o.key_file.string() + "': " + drain_errors());
  }
  return key;
}

void load_identity(SSL_CTX* ctx, const ContextOptions& o) {
  require_file(o.cert_field, o.cert_file);
  require_file(o.key_field, o.key_file);
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
    throw invalid_argument(o.cert_field, "no PEM certificate in '" + o.cert_file.string() + "': " + drain_errors());
  }
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    throw invalid_argument(o.cert_field, "the certificate in '" + o.cert_file.string() + "' has expired");
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    throw invalid_argument(o.cert_field, "the certificate in '" + o.cert_file.string() + "' is not valid yet");
  }
  EVP_PKEY* key = read_key(o);
  const bool matches = X509_check_private_key(leaf, key) == 1;
  ERR_clear_error();
  const bool used = matches && SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  if (!matches) {
    throw invalid_argument(o.key_field, "'" + o.key_file.string() + "' is not the key of the certificate in '" +
                                            o.cert_file.string() + "'");
  }
  if (!used) throw invalid_argument(o.key_field, "cannot use '" + o.key_file.string() + "': " + drain_errors());
}

void configure(SSL_CTX* ctx, const ContextOptions& o) {
  SSL_CTX_set_default_passwd_cb(ctx, no_password);
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      // TLS 1.2 only: forward secrecy and AEAD; TLS 1.3's suites all are.
      SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
    throw Error{ErrorCode::kInternal, "TLS settings: " + drain_errors()};
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  const bool server = o.role == Role::kServer;
  if (server || !o.cert_file.empty() || !o.key_file.empty()) load_identity(ctx, o);

  require_file(o.ca_field, o.ca_file);
  if (SSL_CTX_load_verify_file(ctx, o.ca_file.c_str()) != 1) {
    throw invalid_argument(o.ca_field, "no PEM CA certificate in '" + o.ca_file.string() + "': " + drain_errors());
  }
  if (server) {
    SSL_CTX_set_num_tickets(ctx, 0);
    // Tells clients which CAs are accepted (helps them pick a certificate).
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
    ERR_clear_error();
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
}

bool is_ip_address(const std::string& name) {
  in6_addr a6;
  in_addr a4;
  return ::inet_pton(AF_INET, name.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, name.c_str(), &a6) == 1;
}

}  // namespace

Context::Context(const ContextOptions& options) : role_(options.role) {
  ERR_clear_error();
  ctx_ = SSL_CTX_new(role_ == Role::kServer ? TLS_server_method() : TLS_client_method());
  if (ctx_ == nullptr) throw Error{ErrorCode::kInternal, "SSL_CTX_new: " + drain_errors()};
  try {
    configure(ctx_, options);
  } catch (...) {
    SSL_CTX_free(ctx_);
    ERR_clear_error();
    throw;
  }
}

Context::~Context() { SSL_CTX_free(ctx_); }

Stream Stream::accept(const Context& context, int socket, std::chrono::milliseconds timeout) {
  return handshake(context, Role::kServer, socket, {}, timeout);
}

Stream Stream::connect(const Context& context, int socket, const std::string& server_name,
                       std::chrono::milliseconds timeout) {
  return handshake(context, Role::kClient, socket, server_name, timeout);
}

Stream Stream::handshake(const Context& context, Role role, int socket, const std::string& server_name,
                         std::chrono::milliseconds timeout) {
  if (context.role() != role) throw Error{ErrorCode::kInternal, "TLS context of the wrong role for this handshake"};
  internal::set_nonblocking(socket);
  ERR_clear_error();
  SSL* ssl = SSL_new(context.native());
  if (ssl == nullptr) throw Error{ErrorCode::kInternal, "SSL_new: " + drain_errors()};
  Stream stream{ssl, socket};
  if (SSL_set_fd(ssl, socket) != 1) throw Error{ErrorCode::kInternal, "SSL_set_fd: " + drain_errors()};
  if (role == Role::kClient) {
    if (server_name.empty()) throw invalid_argument("--server-name", "must not be empty");
    bool ok = true;
    if (is_ip_address(server_name)) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str()) == 1;
    } else {
      ok = SSL_set_tlsext_host_name(ssl, server_name.c_str()) == 1 && SSL_set1_host(ssl, server_name.c_str()) == 1;
    }
    if (!ok) throw invalid_argument("--server-name", "'" + server_name + "': " + drain_errors());
    SSL_set_connect_state(ssl);
  } else {
    SSL_set_accept_state(ssl);
  }
  const auto deadline = Clock::now() + timeout;
  while (true) {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_do_handshake(ssl);
    if (r == 1) return stream;
    const int kind = SSL_get_error(ssl, r);
    if (kind != SSL_ERROR_WANT_READ && kind != SSL_ERROR_WANT_WRITE) {
      stream.failed_ = true;
      throw internal::ssl_failure(ssl, r, "TLS handshake failed");
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      stream.failed_ = true;
      throw Error{ErrorCode::kTimeout, "TLS handshake timed out after " + std::to_string(timeout.count()) + " ms"};
    }
    pollfd p{socket, static_cast<short>(kind == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) throw_errno("poll");
  }
}

Stream::Stream(Stream&& other) noexcept
    : ssl_(std::exchange(other.ssl_, nullptr)), socket_(other.socket_), failed_(other.failed_) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    SSL_free(ssl_);
    ssl_ = std::exchange(other.ssl_, nullptr);
    socket_ = other.socket_;
    failed_ = other.failed_;
  }
  return *this;
}

Stream::~Stream() { SSL_free(ssl_); }  // does not close the socket (SSL_set_fd: BIO_NOCLOSE)

std::string Stream::peer_common_name() const {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) throw Error{ErrorCode::kPermissionDenied, "the peer presented no certificate"};
  X509_NAME* subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0) throw Error{ErrorCode::kPermissionDenied, "the peer certificate's subject has no CN"};
  if (X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) {
    throw Error{ErrorCode::kPermissionDenied, "the peer certificate's subject has more than one CN"};
  }
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
  if (n < 0) throw Error{ErrorCode::kPermissionDenied, "the peer certificate's CN is not text: " + drain_errors()};
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  if (cn.find('\0') != std::string::npos) {
    throw Error{ErrorCode::kPermissionDenied, "the peer certificate's CN contains a NUL byte"};
  }
  return cn;
}

std::string Stream::protocol() const { return SSL_get_version(ssl_); }

void Stream::close_notify() {
  if (failed_ || (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0) return;
  const auto deadline = Clock::now() + std::chrono::seconds{1};
  while (true) {
    ERR_clear_error();
    const int r = SSL_shutdown(ssl_);
    if (r >= 0 || SSL_get_error(ssl_, r) != SSL_ERROR_WANT_WRITE || Clock::now() >= deadline) break;
    pollfd p{socket_, POLLOUT, 0};
    (void)::poll(&p, 1, 100);
  }
  ERR_clear_error();
}

}  // namespace vigo::tls
