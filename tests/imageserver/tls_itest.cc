// SPDX-License-Identifier: Apache-2.0
// vigo-imaged over TLS end to end: the real binary with --listen-tls on
// loopback, reached through the real `vigo-imaged connect` bridge (the way
// vigo-fs would run it as its --server command), with throwaway CAs and
// certificates. Who is let in and as whom, who is refused without
// disturbing anyone else, the command line's errors, and vigo-fs mounting
// through the bridge.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <thread>

#include "support/sshd_fixture.h"
#include "support/test_pki.h"
#include "support/text_file.h"
#include "support/vfs_fixture.h"
#include "vigo/common/manifest.h"
#include "vigo/common/subprocess.h"
#include "vigo/common/system.h"
#include "vigo/common/tls.h"
#include "vigo/common/wire_client.h"
#include "vigo/common/wire_messages.h"

namespace vigo::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using wire::MessageType;

RunResult imaged(std::vector<std::string> args) {
  args.insert(args.begin(), imaged_path());
  return run_command(args, 60s);
}

// Everything the peer sends until it closes (or `limit` passes).
std::string read_until_closed(int fd, std::chrono::milliseconds limit) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out + "<still open>";
}

// A running `vigo-imaged --listen-tls`; stopped (SIGTERM, then SIGKILL) by
// the destructor.
class TlsServer {
 public:
  TlsServer(const fs::path& dir, std::vector<std::string> args) : log_(dir / "imaged.log") {
    args.insert(args.begin(), imaged_path());
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw_errno("pipe2");
    SpawnOptions o;
    o.argv = std::move(args);
    o.stdout_fd = out[1];
    o.stderr_path = log_;
    process_ = std::make_unique<Subprocess>(Subprocess::spawn(o));
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    if (!line.starts_with("listening on port ")) throw std::runtime_error("vigo-imaged did not start: " + log());
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(18)));
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string log() const { return read_text_file(log_); }
  [[nodiscard]] bool running() { return process_->running(); }
  int stop() { return process_->terminate(10s); }

 private:
  fs::path log_;
  std::unique_ptr<Subprocess> process_;
  std::uint16_t port_ = 0;
};

// One `vigo-imaged connect` process; the test talks to it through two pipes
// (release_fds() hands them to a WireClient, which closes them).
class ConnectChannel {
 public:
  ConnectChannel(const fs::path& dir, const std::vector<std::string>& args) {
    static std::atomic<int> counter{0};
    stderr_path_ = dir / ("connect-" + std::to_string(counter++) + ".log");
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw_errno("pipe2");
    SpawnOptions o;
    o.argv = {imaged_path(), "connect"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.stdin_fd = in[0];
    o.stdout_fd = out[1];
    o.stderr_path = stderr_path_;
    process_ = std::make_unique<Subprocess>(Subprocess::spawn(o));
    ::close(in[0]);
    ::close(out[1]);
    to_server_ = in[1];
    from_server_ = out[0];
  }
  ~ConnectChannel() {
    if (to_server_ >= 0) ::close(to_server_);
    if (from_server_ >= 0) ::close(from_server_);
    if (!process_->wait_for(10s)) process_->terminate(2s, SIGKILL);
  }
  ConnectChannel(const ConnectChannel&) = delete;
  ConnectChannel& operator=(const ConnectChannel&) = delete;

  [[nodiscard]] int to_server() const { return to_server_; }
  [[nodiscard]] int from_server() const { return from_server_; }
  void close_to_server() {
    ::close(to_server_);
    to_server_ = -1;
  }
  std::unique_ptr<wire::WireClient> client() {
    auto c = std::make_unique<wire::WireClient>(from_server_, to_server_);
    to_server_ = from_server_ = -1;
    return c;
  }
  int wait() {
    auto s = process_->wait_for(30s);
    return s ? *s : process_->terminate(2s, SIGKILL);
  }
  [[nodiscard]] std::string stderr_text() const { return read_text_file(stderr_path_); }

 private:
  fs::path stderr_path_;
  int to_server_ = -1;
  int from_server_ = -1;
  std::unique_ptr<Subprocess> process_;
};

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937_64 gen{seed};
  std::vector<std::uint8_t> out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(gen());
  return out;
}

void write_file(const fs::path& path, std::span<const std::uint8_t> bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream{path, std::ios::binary}.write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
}

// Certificates for every test: one CA with the server (SAN IP:127.0.0.1)
// and clients alice, bob and a CN that breaks the name rule; a second CA
// with a client that also calls itself alice.
struct TlsPki {
  explicit TlsPki(const fs::path& dir)
      : ca(dir, "ca"),
        other_ca(dir, "other-ca"),
        server(ca.issue("server", {"imaged.test", {"IP:127.0.0.1"}, true})),
        alice(ca.issue("alice", {"alice", {}, false})),
        bob(ca.issue("bob", {"bob", {}, false})),
        bad_cn(ca.issue("bad-cn", {"../alice", {}, false})),
        mallory(other_ca.issue("mallory", {"alice", {}, false})) {}

  [[nodiscard]] std::string ca_file() const { return ca.cert_file().string(); }
  [[nodiscard]] std::vector<std::string> server_args(const std::string& root, const std::string& listen) const {
    return {"--listen-tls",    listen,
            "--root",          root,
            "--tls-cert",      server.cert.string(),
            "--tls-key",       server.key.string(),
            "--tls-client-ca", ca_file(),
            "--log-level",     "info"};
  }
  [[nodiscard]] std::vector<std::string> connect_args(std::uint16_t port, const CertFiles& id) const {
    return {"--tls",      "127.0.0.1:" + std::to_string(port),
            "--tls-cert", id.cert.string(),
            "--tls-key",  id.key.string(),
            "--tls-ca",   ca_file()};
  }

  TestCa ca;
  TestCa other_ca;
  CertFiles server, alice, bob, bad_cn, mallory;
};

class TlsItest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ::signal(SIGPIPE, SIG_IGN); }

  TlsItest() : pki_(dir_.path()) {
    image_ = random_bytes((2u << 20) + 999, 3);
    write_file(dir_.path() / "disk.img", image_);
    const RunResult r = imaged({"publish", "--root", store(), "--name", "disk", (dir_.path() / "disk.img").string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const std::string alice_note = "alice's note\n", bob_secret = "bob's secret\n";
    write_file(dir_.path() / "store" / "data" / "alice" / "note.txt",
               {reinterpret_cast<const std::uint8_t*>(alice_note.data()), alice_note.size()});
    write_file(dir_.path() / "store" / "data" / "bob" / "secret.txt",
               {reinterpret_cast<const std::uint8_t*>(bob_secret.data()), bob_secret.size()});
  }

  std::string store() const { return (dir_.path() / "store").string(); }
  std::unique_ptr<TlsServer> start_server(std::vector<std::string> extra = {}) {
    auto args = pki_.server_args(store(), "127.0.0.1:0");
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<TlsServer>(dir_.path(), args);
  }
  std::unique_ptr<ConnectChannel> connect(std::uint16_t port, const CertFiles& id) {
    return std::make_unique<ConnectChannel>(dir_.path(), pki_.connect_args(port, id));
  }
  static std::string text(const std::vector<std::uint8_t>& b) { return {b.begin(), b.end()}; }

  TempDir dir_{"vigo-tls-itest"};
  TlsPki pki_;
  std::vector<std::uint8_t> image_;
};

TEST_F(TlsItest, ConnectBridgeServesImagesAndTheCertificateCnsDataOnly) {
  auto server = start_server();
  auto ch = connect(server->port(), pki_.alice);
  auto client = ch->client();
  try {
    EXPECT_EQ(client->hello("tls-itest").version, 1u);
  } catch (const Error& e) {
    FAIL() << e.what() << "\nconnect: " << ch->stderr_text() << "\nserver: " << server->log();
  }
  const auto images = wire::decode_image_list(client->call(MessageType::kListImages, {}));
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].name, "disk");
  const Manifest m = decode_manifest(client->call(MessageType::kGetManifest, wire::encode(wire::ImageRef{"disk", 0})));
  ASSERT_EQ(m.size, image_.size());
  // Many ranges in flight at once, across chunk boundaries and sizes.
  std::vector<std::pair<std::uint64_t, std::future<std::vector<std::uint8_t>>>> inflight;
  std::mt19937 gen{11};
  for (int i = 0; i < 64; ++i) {
    const std::uint64_t pos = gen() % image_.size();
    const auto& c = m.chunks[pos / m.chunk_size];
    const wire::GetChunk g{c.hash, wire::ChunkMode::kRange, pos % m.chunk_size,
                           static_cast<std::uint32_t>(1 + gen() % 300000)};
    inflight.emplace_back(pos, client->start(MessageType::kGetChunk, wire::encode(g)));
  }
  for (auto& [pos, fut] : inflight) {
    const wire::ChunkData d = wire::decode_chunk_data(fut.get());
    ASSERT_FALSE(d.data.empty());
    ASSERT_TRUE(std::equal(d.data.begin(), d.data.end(), image_.begin() + static_cast<long>(pos))) << pos;
  }

  // The user is the certificate's CN: alice's tree, and nothing above it.
  EXPECT_EQ(text(client->call(MessageType::kDataRead, wire::encode(wire::Read{"note.txt", 0, 100}))), "alice's note\n");
  for (const std::string path : {"../bob/secret.txt", "/bob/secret.txt", "bob/secret.txt"}) {
    EXPECT_THROW(client->call(MessageType::kDataRead, wire::encode(wire::Read{path, 0, 100})), Error) << path;
  }
  client->call(MessageType::kDataCreate, wire::encode(wire::Create{"new.txt", 0600, wire::kCreateExclusive}));
  const std::vector<std::uint8_t> hi{'h', 'i'};
  client->call(MessageType::kDataWrite, wire::encode(wire::Write{"new.txt", 0, hi}));
  client->call(MessageType::kDataFsync, wire::encode(wire::PathRequest{"new.txt"}));
  EXPECT_EQ(read_text_file(dir_.path() / "store" / "data" / "alice" / "new.txt"), "hi");
  client.reset();  // closes the pipes: the bridge half-closes, the server closes, connect exits 0
  EXPECT_EQ(ch->wait(), 0) << ch->stderr_text();

  // bob, with his own certificate, reaches his tree.
  auto bob_ch = connect(server->port(), pki_.bob);
  auto bob = bob_ch->client();
  bob->hello();
  EXPECT_EQ(text(bob->call(MessageType::kDataRead, wire::encode(wire::Read{"secret.txt", 0, 100}))), "bob's secret\n");
  EXPECT_THROW(bob->call(MessageType::kDataRead, wire::encode(wire::Read{"note.txt", 0, 100})), Error);
  bob.reset();
  EXPECT_EQ(bob_ch->wait(), 0) << bob_ch->stderr_text();
  const std::string log = server->log();
  EXPECT_NE(log.find("user=alice protocol=TLSv1.3"), std::string::npos) << log;
  EXPECT_NE(log.find("user=bob"), std::string::npos) << log;
  EXPECT_EQ(server->stop(), 0);
}

TEST_F(TlsItest, RefusedClientsDoNotDisturbOthers) {
  auto server = start_server({"--tls-timeout-ms", "1000"});
  auto good_ch = connect(server->port(), pki_.alice);
  auto good = good_ch->client();
  good->hello();

  // A certificate from another CA, even one that says alice: refused in the
  // handshake, and the connect command says why.
  {
    auto ch = connect(server->port(), pki_.mallory);
    auto c = ch->client();
    EXPECT_THROW(c->hello(), Error);
    c.reset();
    EXPECT_EQ(ch->wait(), 6);
    const std::string err = ch->stderr_text();
    EXPECT_NE(err.find("vigo-imaged: error: connection to 127.0.0.1:"), std::string::npos) << err;
    EXPECT_NE(err.find("unknown ca"), std::string::npos) << err;
  }
  // A trusted certificate whose CN breaks the name rule: the client is told.
  {
    auto ch = connect(server->port(), pki_.bad_cn);
    auto c = ch->client();
    try {
      c->hello();
      ADD_FAILURE() << "a bad CN was let in";
    } catch (const Error& e) {  // WireClient: "connection closed: refused: invalid client certificate CN: ..."
      EXPECT_NE(std::string{e.what()}.find("client certificate CN: '../alice'"), std::string::npos) << e.what();
    }
    c.reset();
    EXPECT_EQ(ch->wait(), 0) << ch->stderr_text() << server->log();  // the bridge itself worked
  }

  // No client certificate at all (a client context without one).
  {
    tls::ContextOptions o;
    o.ca_file = pki_.ca_file();
    const tls::Context ctx{o};
    UniqueFd fd = connect_loopback(server->port());
    try {
      tls::Stream s = tls::Stream::connect(ctx, fd.get(), "127.0.0.1", 5s);
      int in[2], out[2];
      ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
      ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
      EXPECT_THROW(s.pump(in[0], out[1], tls::PumpEnd::kPeerClosed), Error);
      for (int f : {in[0], in[1], out[0], out[1]}) ::close(f);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied) << e.what();
    }
  }

  // Plaintext: a wire HELLO straight onto the TLS port is never answered
  // with a frame; the server hangs up.
  {
    UniqueFd fd = connect_loopback(server->port());
    const auto hello = wire::encode(wire::Hello{});
    wire::write_frame(fd.get(), 0x01, 1, hello);
    const std::string got = read_until_closed(fd.get(), 5s);
    EXPECT_TRUE(got.empty() || got[0] == 0x15) << "not refused: " << got.size() << " bytes";  // 0x15: a TLS alert
  }
  // A client that says nothing is cut off after the handshake timeout.
  {
    UniqueFd fd = connect_loopback(server->port());
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(read_until_closed(fd.get(), 8s), "");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 6s);
  }

  // The first client never noticed; a new one is served as usual.
  EXPECT_EQ(wire::decode_image_list(good->call(MessageType::kListImages, {})).size(), 1u);
  auto again_ch = connect(server->port(), pki_.alice);
  auto again = again_ch->client();
  again->hello();
  EXPECT_EQ(text(again->call(MessageType::kDataRead, wire::encode(wire::Read{"note.txt", 0, 100}))), "alice's note\n");
  EXPECT_TRUE(server->running());

  const std::string log = server->log();
  EXPECT_NE(log.find("TLS connection refused"), std::string::npos) << log;
  EXPECT_NE(log.find("certificate verify failed"), std::string::npos) << log;
  EXPECT_NE(log.find("peer did not return a certificate"), std::string::npos) << log;
  EXPECT_NE(log.find("client certificate CN"), std::string::npos) << log;
  EXPECT_NE(log.find("timed out"), std::string::npos) << log;
  good.reset();
  again.reset();
  EXPECT_EQ(good_ch->wait(), 0);
  EXPECT_EQ(again_ch->wait(), 0);
  EXPECT_EQ(server->stop(), 0);
}

TEST_F(TlsItest, HalfCloseThroughConnectDeliversEveryReply) {
  auto server = start_server();
  ConnectChannel ch{dir_.path(), pki_.connect_args(server->port(), pki_.alice)};
  // Three requests, then the end of input at once (like `printf ... | ssh -W`).
  wire::write_frame(ch.to_server(), static_cast<std::uint8_t>(MessageType::kHello), 1, wire::encode(wire::Hello{}));
  wire::write_frame(ch.to_server(), static_cast<std::uint8_t>(MessageType::kListImages), 2, {});
  wire::write_frame(ch.to_server(), static_cast<std::uint8_t>(MessageType::kDataRead), 3,
                    wire::encode(wire::Read{"note.txt", 0, 100}));
  ch.close_to_server();
  std::map<std::uint64_t, wire::Frame> replies;
  while (auto f = wire::read_frame(ch.from_server())) replies.emplace(f->header.id, std::move(*f));
  ASSERT_EQ(replies.size(), 3u) << ch.stderr_text();
  EXPECT_EQ(replies.at(1).header.type, wire::reply_type(MessageType::kHello));
  EXPECT_EQ(wire::decode_image_list(replies.at(2).payload).size(), 1u);
  EXPECT_EQ(text(replies.at(3).payload), "alice's note\n");
  EXPECT_EQ(ch.wait(), 0) << ch.stderr_text();
}

TEST_F(TlsItest, SigtermStopsTheServerWithConnectionsOpen) {
  auto server = start_server();
  auto ch = connect(server->port(), pki_.alice);
  auto client = ch->client();
  client->hello();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server->stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_THROW(client->call(MessageType::kListImages, {}), Error);
  client.reset();
  EXPECT_NE(ch->wait(), 0);  // the server went without close_notify
}

TEST_F(TlsItest, BadOptionsExitTwoAndNameTheOption) {
  const CertFiles& s = pki_.server;
  const std::string cert = s.cert.string(), key = s.key.string(), ca = pki_.ca_file(), root = store();
  const std::string missing = (dir_.path() / "missing.pem").string();
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  // clang-format off
  const std::vector<Case> cases = {
      {{"--listen-tls", "127.0.0.1:0", "--root", root, "--tls-key", key, "--tls-client-ca", ca}, "--tls-cert"},
      {{"--listen-tls", "127.0.0.1:0", "--root", root, "--tls-cert", missing, "--tls-key", key, "--tls-client-ca", ca},
       "--tls-cert"},
      {{"--listen-tls", "127.0.0.1:0", "--root", root, "--tls-cert", cert, "--tls-key", pki_.alice.key.string(),
        "--tls-client-ca", ca}, "--tls-key"},
      {{"--listen-tls", "127.0.0.1:0", "--root", root, "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", key},
       "--tls-client-ca"},
      {{"--listen-tls", "127.0.0.1:0", "--root", root, "--tls-cert", cert, "--tls-key", key}, "--tls-client-ca"},
      {{"--listen-tls", "127.0.0.1:0", "--root", root, "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca,
        "--user", "alice"}, "--user"},
      {{"--listen-tls", "localhost:0", "--root", root, "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca},
       "--listen-tls"},
      {{"--listen-tls", "127.0.0.1:70000", "--root", root, "--tls-cert", cert, "--tls-key", key, "--tls-client-ca",
        ca}, "--listen-tls"},
      {{"--listen-tls", "127.0.0.1:0", "--root", root, "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca,
        "--tls-timeout-ms", "5"}, "--tls-timeout-ms"},
      {{"--stdio", "--root", root, "--tls-cert", cert}, "--tls-cert"},
      {{"--listen-tls", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--root", root}, "--listen-tls"},
      {{"connect", "--tls-cert", cert, "--tls-key", key, "--tls-ca", ca}, "--tls"},
      {{"connect", "--tls", "127.0.0.1", "--tls-cert", cert, "--tls-key", key, "--tls-ca", ca}, "--tls"},
      {{"connect", "--tls", "127.0.0.1:1", "--tls-key", key, "--tls-ca", ca}, "--tls-cert"},
      {{"connect", "--tls", "127.0.0.1:1", "--tls-cert", cert, "--tls-key", key, "--tls-ca", missing}, "--tls-ca"},
      {{"connect", "--tls", "127.0.0.1:1", "--tls-cert", cert, "--tls-ca", ca}, "--tls-key"},
  };
  // clang-format on
  for (const auto& c : cases) {
    const RunResult r = imaged(c.args);
    std::string shown;
    for (const auto& a : c.args) shown += a + " ";
    EXPECT_EQ(r.exit_code, 2) << shown << "\n" << r.output;
    EXPECT_NE(r.output.find(c.names), std::string::npos) << shown << "\n" << r.output;
  }
  // Nobody listening: unavailable (5), and it says where it tried.
  const std::uint16_t closed = free_tcp_port();
  const RunResult r = imaged({"connect", "--tls", "127.0.0.1:" + std::to_string(closed), "--tls-cert",
                              pki_.alice.cert.string(), "--tls-key", pki_.alice.key.string(), "--tls-ca", ca});
  EXPECT_EQ(r.exit_code, 5) << r.output;
  EXPECT_NE(r.output.find("cannot connect to 127.0.0.1 port"), std::string::npos) << r.output;
}

TEST_F(TlsItest, AnyAddressForTlsLoopbackOnlyForPlain) {
  const RunResult plain = imaged({"--listen", "0.0.0.0:0", "--root", store()});
  EXPECT_EQ(plain.exit_code, 6) << plain.output;
  EXPECT_NE(plain.output.find("loopback"), std::string::npos) << plain.output;

  TlsServer server{dir_.path(), pki_.server_args(store(), "0.0.0.0:0")};
  auto ch = connect(server.port(), pki_.alice);
  auto client = ch->client();
  client->hello();
  EXPECT_EQ(wire::decode_image_list(client->call(MessageType::kListImages, {})).size(), 1u);
  client.reset();
  EXPECT_EQ(ch->wait(), 0) << ch->stderr_text();
  EXPECT_EQ(server.stop(), 0);
}

// vigo-fs itself, unchanged, mounting through `vigo-imaged connect`.
TEST(TlsVfsItest, VigoFsMountsThroughTheTlsBridge) {
  ::signal(SIGPIPE, SIG_IGN);
  VfsFixture vfs;
  TlsPki pki{vfs.mount().parent_path()};
  const auto bytes = random_bytes((3u << 20) + 4321, 9);
  vfs.publish("disk", bytes);
  TlsServer server{vfs.mount().parent_path(), pki.server_args(vfs.store().string(), "127.0.0.1:0")};
  FsStartOptions o;
  o.connections = 2;
  o.server_argv = {imaged_path(), "connect"};
  const auto args = pki.connect_args(server.port(), pki.alice);
  o.server_argv.insert(o.server_argv.end(), args.begin(), args.end());
  vfs.start_fs(o);
  EXPECT_EQ(fs::file_size(vfs.image("disk")), bytes.size());
  EXPECT_EQ(read_range(vfs.image("disk"), 0, bytes.size()), bytes);
  const auto part = read_range(vfs.image("disk@1"), (1u << 20) - 10, 100);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), bytes.begin() + (1 << 20) - 10));
  EXPECT_EQ(vfs.stop_fs(), 0) << vfs.fs_log();
  // vigo-fs ends its commands with SIGTERM: the bridges close properly.
  const std::string log = server.log();
  EXPECT_NE(log.find("user=alice"), std::string::npos) << log;
  for (int i = 0; i < 100 && server.log().find("TLS connection closed") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(server.log().find("TLS connection closed"), std::string::npos) << server.log();
  EXPECT_EQ(server.log().find("TLS connection failed"), std::string::npos) << server.log();
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace vigo::testing
