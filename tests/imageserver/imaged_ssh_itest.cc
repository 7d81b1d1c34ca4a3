// SPDX-License-Identifier: Apache-2.0
// vigo-imaged end to end: the real binary, run by a real sshd on loopback as
// the remote command of the system's ssh client (the way vigo-fs reaches
// it), and its command line and loopback TCP listener.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <thread>

#include "support/sshd_fixture.h"
#include "vigo/common/compress.h"
#include "vigo/common/digest.h"
#include "vigo/common/manifest.h"
#include "vigo/common/subprocess.h"
#include "vigo/common/system.h"
#include "vigo/common/wire_client.h"
#include "vigo/common/wire_messages.h"

namespace vigo::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using wire::MessageType;

std::vector<std::uint8_t> make_image(std::size_t n, std::uint32_t seed) {
  std::mt19937_64 gen{seed};
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    // Half random, half zero pages: some chunks compress, some do not.
    out[i] = (i / (256 * 1024)) % 2 == 0 ? static_cast<std::uint8_t>(gen()) : 0;
  }
  return out;
}

RunResult imaged(std::vector<std::string> args) {
  args.insert(args.begin(), imaged_path());
  return run_command(args, 60s);
}

class ImagedSshTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ::signal(SIGPIPE, SIG_IGN); }

  ImagedSshTest() {
    image_ = make_image((3u << 20) + 4321, 5);
    std::ofstream{dir_.path() / "disk.img", std::ios::binary}.write(reinterpret_cast<const char*>(image_.data()),
                                                                    static_cast<std::streamsize>(image_.size()));
    const RunResult r = imaged({"publish", "--root", store(), "--name", "disk", (dir_.path() / "disk.img").string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }

  std::string store() const { return (dir_.path() / "store").string(); }
  std::string remote() const { return imaged_path() + " --stdio --root " + store() + " --user alice"; }

  std::unique_ptr<wire::WireClient> connect(SshChannel& ch) {
    auto c = std::make_unique<wire::WireClient>(ch.from_remote(), ch.to_remote());
    ch.release_fds();
    return c;
  }

  TempDir dir_{"vigo-imaged-itest"};
  SshdFixture sshd_;
  std::vector<std::uint8_t> image_;
};

TEST_F(ImagedSshTest, ServesChunkRangesThroughSshWithManyInFlight) {
  SshChannel ch{sshd_, remote()};
  auto client = connect(ch);
  try {
    EXPECT_EQ(client->hello("itest").version, 1u);
  } catch (const Error& e) {
    FAIL() << e.what() << "\nssh: " << ch.stderr_text() << "\nsshd: " << sshd_.log();
  }
  const Manifest m = decode_manifest(client->call(MessageType::kGetManifest, wire::encode(wire::ImageRef{"disk", 0})));
  ASSERT_EQ(m.size, image_.size());
  ASSERT_EQ(m.chunks.size(), 4u);

  // Four threads, each with 64 random ranges in flight at once.
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0}, done{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 gen(static_cast<unsigned>(t));
      std::vector<std::pair<std::uint64_t, std::future<std::vector<std::uint8_t>>>> inflight;
      for (int i = 0; i < 64; ++i) {
        const std::uint64_t pos = gen() % image_.size();
        const auto& c = m.chunks[pos / m.chunk_size];
        const std::uint64_t off = pos % m.chunk_size;
        const wire::GetChunk g{c.hash, wire::ChunkMode::kRange, off, static_cast<std::uint32_t>(1 + gen() % 200000)};
        inflight.emplace_back(pos, client->start(MessageType::kGetChunk, wire::encode(g)));
      }
      for (auto& [pos, fut] : inflight) {
        const wire::ChunkData d = wire::decode_chunk_data(fut.get());
        if (d.data.empty() || !std::equal(d.data.begin(), d.data.end(), image_.begin() + static_cast<long>(pos))) {
          ++mismatches;
        }
        ++done;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(done.load(), 256);
  EXPECT_EQ(mismatches.load(), 0);

  // Whole stored chunks reassemble the image byte for byte.
  std::vector<std::uint8_t> whole;
  std::size_t compressed = 0;
  for (const auto& c : m.chunks) {
    const wire::ChunkData d = wire::decode_chunk_data(
        client->call(MessageType::kGetChunk, wire::encode(wire::GetChunk{c.hash, wire::ChunkMode::kStored, 0, 0})));
    compressed += d.encoding == wire::ChunkEncoding::kZstd;
    const auto raw = d.encoding == wire::ChunkEncoding::kZstd ? zstd_decompress(d.data, d.raw_length) : d.data;
    EXPECT_EQ(sha256({reinterpret_cast<const char*>(raw.data()), raw.size()}), c.hash);
    whole.insert(whole.end(), raw.begin(), raw.end());
  }
  EXPECT_EQ(whole, image_);
  EXPECT_GT(compressed, 0u);

  // The user's tree: written data is on the server's disk once fsync returns.
  client->call(MessageType::kDataCreate, wire::encode(wire::Create{"notes.txt", 0600, wire::kCreateExclusive}));
  const std::vector<std::uint8_t> text{'h', 'i', '\n'};
  client->call(MessageType::kDataWrite, wire::encode(wire::Write{"notes.txt", 0, text}));
  client->call(MessageType::kDataFsync, wire::encode(wire::PathRequest{"notes.txt"}));
  std::ifstream in{dir_.path() / "store" / "data" / "alice" / "notes.txt"};
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>{in}, {}), "hi\n");
  client.reset();  // closes the pipes: ssh and vigo-imaged exit
  EXPECT_EQ(ch.wait(), 0) << ch.stderr_text();
}

TEST_F(ImagedSshTest, MalformedFrameClosesOnlyThatConnection) {
  {
    SshChannel ch{sshd_, remote()};
    const auto hello = wire::encode(wire::Hello{});
    wire::write_frame(ch.to_remote(), 0x01, 1, hello);
    auto reply = wire::read_frame(ch.from_remote());
    ASSERT_TRUE(reply.has_value()) << ch.stderr_text();
    // A header claiming a 2 GiB payload.
    const auto bad = wire::encode_header({0x12, 0, 0x80000000u, 2});
    ASSERT_EQ(::write(ch.to_remote(), bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
    auto err = wire::read_frame(ch.from_remote());
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->header.type, 0xFF);
    EXPECT_EQ(err->header.id, 0u);
    EXPECT_NE(std::string{wire::decode_error(err->payload).what()}.find("frame length"), std::string::npos);
    EXPECT_FALSE(wire::read_frame(ch.from_remote()).has_value());  // the server hung up
    EXPECT_EQ(ch.wait(), 2);                                       // vigo-imaged's exit code, through ssh
  }
  // The next connection is served normally.
  SshChannel ch{sshd_, remote()};
  auto client = connect(ch);
  client->hello();
  EXPECT_EQ(wire::decode_image_list(client->call(MessageType::kListImages, {})).size(), 1u);
}

TEST_F(ImagedSshTest, DeleteKeepsChunksWhileAnotherProcessReadsTheImage) {
  SshChannel ch{sshd_, remote()};
  auto client = connect(ch);
  client->hello();
  const Manifest m = decode_manifest(client->call(MessageType::kGetManifest, wire::encode(wire::ImageRef{"disk", 1})));
  // Deleted by the command line (another process) while the connection has it open.
  RunResult r = imaged({"delete", "--root", store(), "--json", "disk@1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"deleted_versions_still_open\":1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"chunks_removed\":0"), std::string::npos) << r.output;
  for (const auto& c : m.chunks) {
    EXPECT_NO_THROW(
        client->call(MessageType::kGetChunk, wire::encode(wire::GetChunk{c.hash, wire::ChunkMode::kRange, 0, 16})));
  }
  client.reset();
  EXPECT_EQ(ch.wait(), 0);
  r = imaged({"gc", "--root", store(), "--json"});
  EXPECT_NE(r.output.find("\"chunks_removed\":4"), std::string::npos) << r.output;
  EXPECT_EQ(imaged({"stat", "--root", store(), "disk@1"}).exit_code, 3);
}

TEST(ImagedCli, ExitCodesAndLoopbackOnlyListener) {
  TempDir dir{"vigo-imaged-cli"};
  const std::string root = (dir.path() / "store").string();
  EXPECT_EQ(imaged({"stat", "--root", root, "nothing"}).exit_code, 3);
  EXPECT_EQ(imaged({"stat", "--root", root, "../etc"}).exit_code, 2);
  EXPECT_EQ(imaged({"publish", "--root", root, "--name", "x", "/nonexistent"}).exit_code, 3);
  EXPECT_EQ(imaged({"delete", "--root", root, "x"}).exit_code, 2);
  const RunResult refused = imaged({"--listen", "0.0.0.0:0", "--root", root});
  EXPECT_EQ(refused.exit_code, 6) << refused.output;
  EXPECT_NE(refused.output.find("loopback"), std::string::npos);

  // The loopback listener serves the protocol.
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  SpawnOptions o;
  o.argv = {imaged_path(), "--listen", "127.0.0.1:0", "--root", root};
  o.stdout_fd = out[1];
  Subprocess server = Subprocess::spawn(o);
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  ASSERT_TRUE(line.starts_with("listening on port ")) << line;
  const int port = std::stoi(line.substr(18));
  const int fd = connect_loopback(static_cast<std::uint16_t>(port)).release();
  {
    wire::WireClient client{fd, fd};
    client.hello();
    EXPECT_TRUE(wire::decode_image_list(client.call(MessageType::kListImages, {})).empty());
    // No --user: the data tree is out of reach.
    try {
      client.call(MessageType::kDataStat, wire::encode(wire::PathRequest{""}));
      FAIL();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
    }
  }
  EXPECT_EQ(server.terminate(10s), 0);  // SIGTERM: a clean stop
}

}  // namespace
}  // namespace vigo::testing
