// SPDX-License-Identifier: Apache-2.0
// tls::Context, Stream and Bridge with real OpenSSL on in-process socket
// pairs: what the files must be, who is refused, and that bytes, backpressure
// and half-close cross the bridge intact.
#include "vigo/common/tls.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "imageserver/store_test_util.h"
#include "support/test_pki.h"
#include "vigo/common/error.h"

namespace vigo::tls {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using vigo::testing::CertFiles;
using vigo::testing::TestCa;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ::signal(SIGPIPE, SIG_IGN); }

  TlsTest()
      : ca_(dir_.path(), "ca"),
        other_ca_(dir_.path(), "other-ca"),
        server_(ca_.issue("server", {"imaged", {"IP:127.0.0.1", "DNS:images.test"}, true})),
        alice_(ca_.issue("alice", {"alice", {}, false})),
        mallory_(other_ca_.issue("mallory", {"alice", {}, false})) {}

  std::shared_ptr<Context> server_context() {
    ContextOptions o;
    o.role = Role::kServer;
    o.cert_file = server_.cert;
    o.key_file = server_.key;
    o.ca_file = ca_.cert_file();
    return std::make_shared<Context>(o);
  }
  std::shared_ptr<Context> client_context(const CertFiles* id) {
    ContextOptions o;
    if (id != nullptr) {
      o.cert_file = id->cert;
      o.key_file = id->key;
    }
    o.ca_file = ca_.cert_file();
    return std::make_shared<Context>(o);
  }

  // Two connected sockets (the handshake runs over AF_UNIX as over TCP).
  static std::pair<UniqueFd, UniqueFd> socket_pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    return {UniqueFd{fds[0]}, UniqueFd{fds[1]}};
  }

  // Expects `f` to throw a vigo::Error with `code` whose message contains `text`.
  template <typename F>
  static void expect_error(F&& f, ErrorCode code, const std::string& text) {
    try {
      f();
      ADD_FAILURE() << "expected an error containing '" << text << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string{e.what()}.find(text), std::string::npos) << e.what();
    }
  }

  vigo::testing::TempDir dir_;
  TestCa ca_;
  TestCa other_ca_;
  CertFiles server_;
  CertFiles alice_;
  CertFiles mallory_;  // CN=alice, but from another CA
};

TEST_F(TlsTest, ContextFilesAreCheckedAndErrorsNameTheOption) {
  ContextOptions o;
  o.role = Role::kServer;
  o.cert_file = server_.cert;
  o.key_file = server_.key;
  o.ca_file = ca_.cert_file();
  o.ca_field = "--tls-client-ca";
  EXPECT_NO_THROW(Context{o});

  auto bad = [&](auto change, const std::string& field, const std::string& text) {
    ContextOptions b = o;
    change(b);
    try {
      Context c{b};
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
      EXPECT_NE(std::string{e.what()}.find(text), std::string::npos) << e.what();
    }
  };
  bad([&](ContextOptions& b) { b.cert_file = dir_.path() / "nope.crt"; }, "--tls-cert", "does not exist");
  bad([&](ContextOptions& b) { b.cert_file.clear(); }, "--tls-cert", "required");
  bad([&](ContextOptions& b) { b.key_file = alice_.key; }, "--tls-key", "is not the key of the certificate");
  bad([&](ContextOptions& b) { b.key_file = server_.cert; }, "--tls-key", "no unencrypted PEM private key");
  bad([&](ContextOptions& b) { b.cert_file = server_.key; }, "--tls-cert", "no PEM certificate");
  bad([&](ContextOptions& b) { b.ca_file = dir_.path() / "nope.pem"; }, "--tls-client-ca", "does not exist");
  bad([&](ContextOptions& b) { b.ca_file = server_.key; }, "--tls-client-ca", "no PEM CA certificate");
  bad([&](ContextOptions& b) { b.ca_file = dir_.path(); }, "--tls-client-ca", "not a regular file");
  const CertFiles old = ca_.issue("old", {"imaged", {"IP:127.0.0.1"}, true, true});
  bad(
      [&](ContextOptions& b) {
        b.cert_file = old.cert;
        b.key_file = old.key;
      },
      "--tls-cert", "has expired");

  // An encrypted key is refused, not prompted for.
  const fs::path encrypted = dir_.path() / "encrypted.key";
  const auto r = std::system(("openssl pkey -in " + server_.key.string() + " -aes256 -passout pass:x -out " +
                              encrypted.string() + " 2>/dev/null")
                                 .c_str());
  if (r == 0) bad([&](ContextOptions& b) { b.key_file = encrypted; }, "--tls-key", "no unencrypted PEM private key");

  // A client may have no certificate; it still needs the CA file.
  ContextOptions c;
  c.ca_file = ca_.cert_file();
  EXPECT_NO_THROW(Context{c});
  c.ca_file.clear();
  EXPECT_THROW(Context{c}, Error);
}

TEST_F(TlsTest, BridgeCarriesBytesBothWaysWithBackpressureAndHalfClose) {
  auto server_ctx = server_context();
  auto client_ctx = client_context(&alice_);
  auto [s, c] = socket_pair();

  // Server: an echo service behind a Bridge, reading until the client's
  // close_notify (EOF) and answering every byte after that too.
  auto server = std::async(std::launch::async, [&, sfd = s.get()] {
    Stream stream = Stream::accept(*server_ctx, sfd, 5s);
    EXPECT_EQ(stream.peer_common_name(), "alice");
    EXPECT_EQ(stream.protocol(), "TLSv1.3");
    Bridge bridge{std::move(stream)};
    std::vector<std::uint8_t> buf(50000);  // odd sizes on purpose
    std::size_t total = 0;
    while (true) {
      const ssize_t n = ::read(bridge.fd(), buf.data(), buf.size());
      if (n <= 0) break;
      total += static_cast<std::size_t>(n);
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::write(bridge.fd(), buf.data() + done, static_cast<std::size_t>(n - done));
        if (w <= 0) return total;
        done += w;
      }
    }
    const char tail[] = "after-eof";
    EXPECT_EQ(::write(bridge.fd(), tail, sizeof tail - 1), static_cast<ssize_t>(sizeof tail - 1));
    bridge.finish();
    return total;
  });

  Stream client = Stream::connect(*client_ctx, c.get(), "127.0.0.1", 5s);
  int to_tls[2], from_tls[2];
  ASSERT_EQ(::pipe2(to_tls, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(from_tls, O_CLOEXEC), 0);
  auto pump = std::async(std::launch::async, [&] {
    client.pump(to_tls[0], from_tls[1], PumpEnd::kPeerClosed);
    ::close(from_tls[1]);
  });

  std::vector<std::uint8_t> data(6 * 1024 * 1024 + 17);
  std::mt19937 gen{7};
  for (auto& b : data) b = static_cast<std::uint8_t>(gen());
  std::thread writer{[&] {
    for (std::size_t done = 0; done < data.size();) {
      // Writes of uneven sizes; the reader below is slow at first.
      const std::size_t len = std::min<std::size_t>(data.size() - done, 1 + gen() % 70000);
      const ssize_t w = ::write(to_tls[1], data.data() + done, len);
      ASSERT_GT(w, 0);
      done += static_cast<std::size_t>(w);
    }
    ::close(to_tls[1]);  // the half-close
  }};
  std::this_thread::sleep_for(300ms);  // everything in between fills up, and must wait
  std::vector<std::uint8_t> got;
  std::vector<std::uint8_t> buf(8192);
  while (true) {
    const ssize_t n = ::read(from_tls[0], buf.data(), buf.size());
    ASSERT_GE(n, 0);
    if (n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + n);
  }
  writer.join();
  pump.get();
  EXPECT_EQ(server.get(), data.size());
  ASSERT_EQ(got.size(), data.size() + 9);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), got.begin()));
  EXPECT_EQ(std::string(got.end() - 9, got.end()), "after-eof");
  ::close(to_tls[0]);
  ::close(from_tls[0]);
}

TEST_F(TlsTest, ClientFromAnotherCaOrWithoutCertificateIsRefused) {
  auto server_ctx = server_context();
  for (const CertFiles* id : std::vector<const CertFiles*>{&mallory_, nullptr}) {
    auto client_ctx = client_context(id);
    auto [s, c] = socket_pair();
    auto server = std::async(std::launch::async, [&, sfd = s.get()] {
      expect_error([&] { (void)Stream::accept(*server_ctx, sfd, 5s); }, ErrorCode::kPermissionDenied,
                   id != nullptr ? "certificate verify failed" : "peer did not return a certificate");
      ::shutdown(sfd, SHUT_RDWR);
    });
    // TLS 1.3: the client finishes its handshake first and learns of the
    // refusal on its first read.
    int in[2], out[2];
    ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    expect_error(
        [&] {
          Stream client = Stream::connect(*client_ctx, c.get(), "127.0.0.1", 5s);
          client.pump(in[0], out[1], PumpEnd::kPeerClosed);
        },
        ErrorCode::kPermissionDenied, id != nullptr ? "unknown ca" : "certificate required");
    server.get();
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
  }
}

TEST_F(TlsTest, ServerNameMustMatchTheCertificate) {
  auto server_ctx = server_context();
  auto client_ctx = client_context(&alice_);
  for (const std::string name : {"127.0.0.1", "images.test", "localhost", "10.1.2.3"}) {
    auto [s, c] = socket_pair();
    auto server = std::async(std::launch::async, [&, sfd = s.get()] {
      try {
        (void)Stream::accept(*server_ctx, sfd, 5s);
      } catch (const Error&) {
      }
    });
    if (name == "127.0.0.1" || name == "images.test") {
      EXPECT_NO_THROW((void)Stream::connect(*client_ctx, c.get(), name, 5s)) << name;
    } else {
      expect_error([&] { (void)Stream::connect(*client_ctx, c.get(), name, 5s); }, ErrorCode::kPermissionDenied,
                   name == "localhost" ? "hostname mismatch" : "IP address mismatch");
    }
    c.reset();
    server.get();
  }
}

TEST_F(TlsTest, SilentPeerTimesOutAndPlaintextIsRefused) {
  auto server_ctx = server_context();
  {
    auto [s, c] = socket_pair();
    const auto start = std::chrono::steady_clock::now();
    expect_error([&] { (void)Stream::accept(*server_ctx, s.get(), 300ms); }, ErrorCode::kTimeout, "timed out");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  }
  {
    auto [s, c] = socket_pair();
    const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::write(c.get(), junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    expect_error([&] { (void)Stream::accept(*server_ctx, s.get(), 5s); }, ErrorCode::kUnavailable,
                 "TLS handshake failed");
  }
}

TEST_F(TlsTest, PeerVanishingWithoutCloseNotifyIsAnError) {
  auto server_ctx = server_context();
  auto client_ctx = client_context(&alice_);
  auto [s, c] = socket_pair();
  auto server = std::async(std::launch::async, [&, sfd = s.get()] { return Stream::accept(*server_ctx, sfd, 5s); });
  {
    Stream client = Stream::connect(*client_ctx, c.get(), "127.0.0.1", 5s);
    (void)client;
  }
  Stream stream = server.get();
  c.reset();  // gone, no close_notify
  int in[2], out[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  expect_error([&] { stream.pump(in[0], out[1], PumpEnd::kBothClosed); }, ErrorCode::kUnavailable, "TLS read failed");
  for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
}

}  // namespace
}  // namespace vigo::tls
