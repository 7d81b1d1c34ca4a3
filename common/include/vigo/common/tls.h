// SPDX-License-Identifier: Apache-2.0
// TLS with certificates on both sides, over OpenSSL, for byte streams that
// the rest of vigo handles as plain descriptors.
//
// tls::Context holds one side's settings: its certificate chain and key, and
// the CA certificates its peer must chain to. Both sides always verify: a
// server requires a client certificate, a client checks the server's
// certificate and that it names the host (DNS name or IP address) it
// connects to. TLS 1.2 at least, 1.3 preferred; no session resumption. The
// files are loaded and checked once, at construction; an error names the
// option the file came from (ContextOptions::*_field). Immutable and
// thread-safe once built (many Streams may share it).
//
// tls::Stream is one established connection: accept() / connect() run the
// handshake on a connected socket (which they switch to non-blocking and
// which must outlive the Stream; the Stream does not close it) and give up
// after a timeout. pump() then moves bytes between the Stream and plain
// descriptors with poll(): everything read from `in_fd` is sent, everything
// received is written to `out_fd`, with at most 16 KiB buffered in each
// direction (a slow reader slows the writer down, nothing piles up). One
// thread at a time.
//
// tls::Bridge serves the fd-based code (Server::serve): it runs pump() on its
// own thread between a Stream and one end of a socketpair and hands out the
// other end. Create, use and finish it on one thread.
//
// Half-close: the end of the plain input is sent as close_notify and
// reading goes on; the peer's close_notify becomes shutdown(SHUT_WR) on a
// socket `out_fd` (a pipe is left to the caller). Both ends are OpenSSL and
// negotiate TLS 1.3, where this is well defined.
//
// Errors are vigo::Error with OpenSSL's reasons in the message: a bad file
// kInvalidArgument, a refused or failed handshake kPermissionDenied or
// kUnavailable, a timeout kTimeout, a broken stream kUnavailable. The TLS
// socket is written with write(2): the process must ignore SIGPIPE.
#pragma once

#include <chrono>
#include <exception>
#include <filesystem>
#include <string>
#include <thread>

#include "vigo/common/unique_fd.h"

struct ssl_ctx_st;
struct ssl_st;

namespace vigo::tls {

enum class Role { kServer, kClient };

struct ContextOptions {
  Role role = Role::kClient;
  // PEM: this side's certificate, then any intermediates. A client may give
  // neither certificate nor key (the server will refuse it, which tests use).
  std::filesystem::path cert_file;
  std::filesystem::path key_file;  // PEM private key, not encrypted
  // PEM CA certificates the peer's certificate must chain to (required).
  std::filesystem::path ca_file;
  // How errors name each file: the command-line options by default.
  std::string cert_field = "--tls-cert";
  std::string key_field = "--tls-key";
  std::string ca_field = "--tls-ca";
};

inline constexpr std::chrono::milliseconds kDefaultHandshakeTimeout{10000};

class Context {
 public:
  explicit Context(const ContextOptions& options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  [[nodiscard]] Role role() const { return role_; }
  [[nodiscard]] ssl_ctx_st* native() const { return ctx_; }

 private:
  Role role_;
  ssl_ctx_st* ctx_ = nullptr;
};

// How pump() ends.
enum class PumpEnd {
  // When both directions are closed: the plain input ended (and close_notify
  // went out) and the peer's close_notify arrived and its bytes are written.
  // For a server: the peer half-closes, the replies still go out.
  kBothClosed,
  // As soon as the peer's close_notify arrived and its bytes are written,
  // sending close_notify if the input had not ended. For a client bridge
  // (like `ssh -W`): the server hung up, so the bridge is done.
  kPeerClosed,
};

class Stream {
 public:
  // Server side: handshakes on `socket`; the client must present a
  // certificate that chains to the context's CA file.
  [[nodiscard]] static Stream accept(const Context& context, int socket,
                                     std::chrono::milliseconds timeout = kDefaultHandshakeTimeout);
  // Client side: handshakes on `socket`; the server's certificate must chain
  // to the CA file and name `server_name` (an IP address is matched against
  // IP subjectAltNames, anything else as a DNS name, also sent as SNI).
  [[nodiscard]] static Stream connect(const Context& context, int socket, const std::string& server_name,
                                      std::chrono::milliseconds timeout = kDefaultHandshakeTimeout);

  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();

  // The peer certificate's subject common name (exactly one, UTF-8, no NUL),
  // kPermissionDenied otherwise.
  [[nodiscard]] std::string peer_common_name() const;
  // "TLSv1.3" etc.
  [[nodiscard]] std::string protocol() const;
  [[nodiscard]] int socket() const { return socket_; }

  // Moves bytes both ways until `end` (see PumpEnd); throws on a TLS or I/O
  // error (a peer that vanishes without close_notify is one). `in_fd` and
  // `out_fd` may be the same socket; they are non-blocking while pump() runs
  // and get their flags back afterwards. A reader of out_fd that is gone
  // (EPIPE) is not an error: later bytes for it are dropped; a reset of
  // in_fd (ECONNRESET) counts as its end.
  // With kBothClosed, `linger` bounds the wait for the peer's close_notify
  // once ours is out; then pump() returns (not an error) and whatever the
  // peer still sends is dropped. When `stop_fd` (e.g. a signalfd) becomes
  // readable, pump() sends close_notify and returns at once, dropping what
  // is buffered.
  void pump(int in_fd, int out_fd, PumpEnd end, std::chrono::milliseconds linger = std::chrono::milliseconds::max(),
            int stop_fd = -1);

 private:
  Stream(ssl_st* ssl, int socket) : ssl_(ssl), socket_(socket) {}
  static Stream handshake(const Context& context, Role role, int socket, const std::string& server_name,
                          std::chrono::milliseconds timeout);
  // Sends close_notify without waiting (after a clean pump, best effort).
  void close_notify();
  ssl_st* ssl_ = nullptr;
  int socket_ = -1;
  bool failed_ = false;  // a fatal TLS error: no close_notify may follow
};

class Bridge {
 public:
  // Starts pumping (PumpEnd::kBothClosed, with `linger`) between `stream`
  // and one end of a new socketpair.
  explicit Bridge(Stream&& stream, std::chrono::milliseconds linger = std::chrono::seconds{2});
  // Like abort() when finish() was not called.
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // The plain end: read what the peer sent, write what it should get. Owned
  // by the Bridge; use it until finish() or abort(). Its end of input (the
  // peer's close_notify) reads as EOF; once the pump fails, reads see EOF
  // and writes fail with EPIPE.
  [[nodiscard]] int fd() const { return app_.get(); }
  // Closes the plain end (the peer gets every byte written to it, then
  // close_notify) and waits for the pump; throws its error, if any.
  void finish();
  // Cuts the TLS socket and the plain end and waits for the pump; drops its
  // error.
  void abort() noexcept;

 private:
  Stream stream_;
  UniqueFd app_;              // handed out by fd()
  UniqueFd pump_;             // the pump's end
  std::exception_ptr error_;  // written by the pump thread, read after join
  std::thread thread_;
};

}  // namespace vigo::tls
