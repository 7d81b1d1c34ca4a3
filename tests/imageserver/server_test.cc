// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <future>
#include <thread>

#include "store_test_util.h"
#include "vigo/common/compress.h"
#include "vigo/common/wire_client.h"
#include "vigo/common/wire_messages.h"

namespace vigo::imageserver {
namespace {

using testing::random_data;
using testing::TempDir;
using wire::MessageType;

constexpr std::uint32_t kChunk = 64u << 10;

// A catalog with one published image and a server on one end of a socketpair.
class ServerTest : public ::testing::Test {
 protected:
  ServerTest()
      : catalog_(dir_.path() / "store", CatalogOptions{kChunk, {}}),
        server_(catalog_, ServerOptions{3, 8, dir_.path() / "store" / "data"}) {
    image_ = random_data(5 * kChunk + 999, 11);
    testing::write_file(dir_.path() / "img", image_);
    manifest_ = catalog_.publish(dir_.path() / "img", "img");
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    server_fd_ = fds[0];
    client_fd_ = fds[1];
    serving_ = std::async(std::launch::async, [this] {
      ConnectionStats s = server_.serve(server_fd_, server_fd_, std::string{"alice"});
      ::shutdown(server_fd_, SHUT_RDWR);
      return s;
    });
  }
  ~ServerTest() override {
    ::shutdown(server_fd_, SHUT_RDWR);
    if (serving_.valid()) serving_.wait();
    ::close(server_fd_);
  }

  // Raw frames, for the hostile-input tests.
  void send_raw(const std::vector<std::uint8_t>& bytes) {
    ASSERT_EQ(::write(client_fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void send(std::uint8_t type, std::uint64_t id, const std::vector<std::uint8_t>& payload, std::uint16_t flags = 0) {
    wire::write_frame(client_fd_, wire::FrameHeader{type, flags, static_cast<std::uint32_t>(payload.size()), id},
                      payload);
  }
  wire::Frame receive() {
    auto f = wire::read_frame(client_fd_);
    EXPECT_TRUE(f.has_value());
    return f ? std::move(*f) : wire::Frame{};
  }
  void hello() {
    send(0x01, 1, wire::encode(wire::Hello{}));
    EXPECT_EQ(receive().header.type, wire::reply_type(MessageType::kHello));
  }
  static Error error_of(const wire::Frame& f) {
    EXPECT_EQ(f.header.type, 0xFF);
    return wire::decode_error(f.payload);
  }

  TempDir dir_;
  ImageCatalog catalog_;
  Server server_;
  std::vector<std::uint8_t> image_;
  Manifest manifest_;
  int server_fd_ = -1;
  int client_fd_ = -1;
  std::future<ConnectionStats> serving_;
};

TEST_F(ServerTest, ServesManifestsAndChunkRangesWithManyInFlight) {
  wire::WireClient client{client_fd_, client_fd_};
  EXPECT_EQ(client.hello().version, 1u);
  const auto list = wire::decode_image_list(client.call(MessageType::kListImages, {}));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "img");
  const Manifest m = decode_manifest(client.call(MessageType::kGetManifest, wire::encode(wire::ImageRef{"img", 0})));
  EXPECT_EQ(m, manifest_);

  // 4 KiB ranges of every chunk, all sent before any reply is read.
  std::vector<std::pair<std::uint64_t, std::future<std::vector<std::uint8_t>>>> inflight;
  for (std::size_t i = 0; i < m.chunks.size(); ++i) {
    for (std::uint64_t off : {0ull, 4096ull, 60000ull}) {
      if (off > m.chunks[i].raw_length) continue;
      wire::GetChunk g{m.chunks[i].hash, wire::ChunkMode::kRange, off, 4096};
      inflight.emplace_back(i * kChunk + off, client.start(MessageType::kGetChunk, wire::encode(g)));
    }
  }
  for (auto& [pos, fut] : inflight) {
    const wire::ChunkData d = wire::decode_chunk_data(fut.get());
    const std::size_t n = std::min<std::size_t>(4096, image_.size() - pos);
    ASSERT_EQ(d.data.size(), std::min<std::size_t>(n, d.raw_length - d.offset));
    EXPECT_TRUE(std::equal(d.data.begin(), d.data.end(), image_.begin() + static_cast<std::ptrdiff_t>(pos)));
  }
  // Whole stored chunks verify against their hash after decoding.
  for (const auto& c : m.chunks) {
    const wire::ChunkData d = wire::decode_chunk_data(
        client.call(MessageType::kGetChunk, wire::encode(wire::GetChunk{c.hash, wire::ChunkMode::kStored, 0, 0})));
    const auto raw = d.encoding == wire::ChunkEncoding::kZstd ? zstd_decompress(d.data, d.raw_length) : d.data;
    EXPECT_EQ(hash_chunk(raw), c.hash);
  }
  // A range past the end and an unknown chunk are errors, not crashes.
  wire::GetChunk past{m.chunks[0].hash, wire::ChunkMode::kRange, kChunk + 1, 10};
  EXPECT_THROW(client.call(MessageType::kGetChunk, wire::encode(past)), Error);
  wire::GetChunk unknown{};
  try {
    client.call(MessageType::kGetChunk, wire::encode(unknown));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST_F(ServerTest, ProfilesAndUserDataOverTheWire) {
  wire::WireClient client{client_fd_, client_fd_};
  client.hello();
  const wire::PutProfile put{{"img", 1}, {9, 9, 9}};
  client.call(MessageType::kPutProfile, wire::encode(put));
  EXPECT_EQ(client.call(MessageType::kGetProfile, wire::encode(wire::ImageRef{"img", 1})), put.blob);

  client.call(MessageType::kDataMkdir, wire::encode(wire::Create{"dir", 0755, 0}));
  client.call(MessageType::kDataCreate, wire::encode(wire::Create{"dir/f", 0644, wire::kCreateExclusive}));
  const auto data = random_data(3000, 2);
  client.call(MessageType::kDataWrite, wire::encode(wire::Write{"dir/f", 0, data}));
  client.call(MessageType::kDataFsync, wire::encode(wire::PathRequest{"dir/f"}));
  EXPECT_EQ(client.call(MessageType::kDataRead, wire::encode(wire::Read{"dir/f", 0, 10000})), data);
  EXPECT_EQ(wire::decode_attr(client.call(MessageType::kDataStat, wire::encode(wire::PathRequest{"dir/f"}))).size,
            3000u);
  EXPECT_EQ(testing::read_file(dir_.path() / "store" / "data" / "alice" / "dir" / "f"), data);
  try {
    client.call(MessageType::kDataRead, wire::encode(wire::Read{"../bob/x", 0, 1}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST_F(ServerTest, BadRequestsGetErrorRepliesAndTheConnectionGoesOn) {
  hello();
  send(0x3c, 7, {});  // unknown type
  Error e = error_of(receive());
  EXPECT_NE(std::string{e.what()}.find("message type"), std::string::npos);
  send(0x10, 8, {}, 0x4);  // flags
  EXPECT_NE(std::string{error_of(receive()).what()}.find("flags"), std::string::npos);
  send(0x12, 9, {1, 2, 3});  // truncated GET_CHUNK
  const wire::Frame f = receive();
  EXPECT_EQ(f.header.id, 9u);
  EXPECT_EQ(error_of(f).code(), ErrorCode::kInvalidArgument);
  send(0x01, 10, wire::encode(wire::Hello{}));  // a second HELLO
  EXPECT_EQ(error_of(receive()).code(), ErrorCode::kInvalidArgument);
  send(0x92, 11, {});  // a reply type sent as a request
  EXPECT_EQ(error_of(receive()).code(), ErrorCode::kInvalidArgument);
  send(0x10, 12, {});  // still serving
  EXPECT_EQ(receive().header.type, wire::reply_type(MessageType::kListImages));
  ::shutdown(client_fd_, SHUT_WR);
  const ConnectionStats s = serving_.get();
  EXPECT_FALSE(s.protocol_violation);
  EXPECT_EQ(s.errors, 5u);
  ::close(client_fd_);
}

TEST_F(ServerTest, OversizedOrGarbageFramesCloseTheConnection) {
  hello();
  send_raw([] {
    auto h = wire::encode_header({0x12, 0, 0xFFFFFFF0u, 5});  // 4 GiB: never allocated
    return std::vector<std::uint8_t>(h.begin(), h.end());
  }());
  const wire::Frame f = receive();
  EXPECT_EQ(f.header.id, 0u);
  EXPECT_NE(std::string{error_of(f).what()}.find("frame length"), std::string::npos);
  EXPECT_FALSE(wire::read_frame(client_fd_).has_value());  // closed
  EXPECT_TRUE(serving_.get().protocol_violation);
  ::close(client_fd_);
}

TEST_F(ServerTest, RequestsBeforeHelloOrWithAnUnknownVersionAreRefused) {
  send(0x10, 3, {});
  EXPECT_EQ(error_of(receive()).code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(wire::read_frame(client_fd_).has_value());
  ::close(client_fd_);
}

TEST_F(ServerTest, GarbageInsteadOfHelloIsRefused) {
  send_raw(random_data(100, 3));
  const auto f = wire::read_frame(client_fd_);
  if (f) {
    EXPECT_EQ(error_of(*f).code(), ErrorCode::kInvalidArgument);
  }
  ::close(client_fd_);
  EXPECT_TRUE(serving_.get().protocol_violation);
}

TEST_F(ServerTest, VersionMismatchIsRefused) {
  send(0x01, 1, wire::encode(wire::Hello{7, 9, "future"}));
  const Error e = error_of(receive());
  EXPECT_NE(std::string{e.what()}.find("protocol version"), std::string::npos);
  ::close(client_fd_);
}

}  // namespace
}  // namespace vigo::imageserver
