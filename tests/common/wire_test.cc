// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/wire.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "vigo/common/manifest.h"
#include "vigo/common/wire_messages.h"

namespace vigo::wire {
namespace {

std::vector<std::uint8_t> header_bytes(const FrameHeader& h) {
  auto a = encode_header(h);
  return {a.begin(), a.end()};
}

// A pipe with `bytes` written into it and the write end closed.
int pipe_with(const std::vector<std::uint8_t>& bytes) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  EXPECT_EQ(::write(fds[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fds[1]);
  return fds[0];
}

void expect_invalid(const std::function<void()>& f, std::string_view needle) {
  try {
    f();
    FAIL() << "expected an error mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_NE(std::string{e.what()}.find(needle), std::string::npos) << e.what();
  }
}

TEST(Wire, HeaderRoundTripIsLittleEndian) {
  const FrameHeader h{0x12, 0, 0x01020304, 0x1122334455667788ULL};
  const auto b = encode_header(h);
  EXPECT_EQ(b[0], kFrameMagic);
  EXPECT_EQ(b[4], 0x04);  // length, low byte first
  EXPECT_EQ(b[8], 0x88);  // id, low byte first
  const FrameHeader back = decode_header(b, UINT32_MAX);
  EXPECT_EQ(back.type, h.type);
  EXPECT_EQ(back.length, h.length);
  EXPECT_EQ(back.id, h.id);
}

TEST(Wire, HeaderRejectsBadMagicAndOversizedLength) {
  auto b = encode_header({1, 0, 10, 1});
  b[0] = 'G';
  expect_invalid([&] { (void)decode_header(b); }, "magic");
  expect_invalid([&] { (void)decode_header(encode_header({1, 0, kMaxPayload + 1, 1})); }, "frame length");
  EXPECT_NO_THROW((void)decode_header(encode_header({1, 0, kMaxPayload, 1})));
}

TEST(Wire, FieldsRoundTrip) {
  const std::vector<std::uint8_t> blob{1, 2, 3};
  FieldWriter w;
  w.u8(7).u16(0xBEEF).u32(0xDEADBEEF).u64(1ULL << 40).i64(-5).str("hello").bytes(blob);
  auto data = w.take();
  FieldReader r{data};
  EXPECT_EQ(r.u8("a"), 7);
  EXPECT_EQ(r.u16("b"), 0xBEEF);
  EXPECT_EQ(r.u32("c"), 0xDEADBEEFu);
  EXPECT_EQ(r.u64("d"), 1ULL << 40);
  EXPECT_EQ(r.i64("e"), -5);
  EXPECT_EQ(r.str("f", 10), "hello");
  auto b = r.bytes("g", 3);
  EXPECT_EQ(std::vector<std::uint8_t>(b.begin(), b.end()), blob);
  EXPECT_NO_THROW(r.expect_end("all"));
}

TEST(Wire, FieldReaderRefusesTruncatedOversizedAndTrailing) {
  const auto data = FieldWriter{}.str("hello").take();
  expect_invalid([&] { FieldReader{data}.str("name", 4); }, "invalid name: length 5 exceeds the limit of 4");
  const std::vector<std::uint8_t> cut(data.begin(), data.end() - 1);
  expect_invalid([&] { FieldReader{cut}.str("name", 10); }, "truncated");
  // A length prefix claiming 4 GiB must fail on the bounds check, not allocate.
  const auto huge = FieldWriter{}.u32(UINT32_MAX).take();
  expect_invalid([&] { FieldReader{huge}.bytes("blob", UINT32_MAX); }, "truncated");
  expect_invalid([&] { FieldReader{std::span<const std::uint8_t>{}}.u64("x"); }, "invalid x");
  expect_invalid([&] { FieldReader{data}.expect_end("request"); }, "trailing");
  FieldWriter small{4};
  expect_invalid([&] { small.u64(1); }, "payload");
}

TEST(Wire, HelloNegotiatesTheHighestCommonVersion) {
  EXPECT_EQ(negotiate(Hello{1, 5, "x"}, 1, 3), 3u);
  EXPECT_EQ(negotiate(Hello{2, 2, "x"}, 1, 3), 2u);
  expect_invalid([] { (void)negotiate(Hello{4, 9, "x"}, 1, 3); }, "protocol version");
  const Hello h{1, 1, "vigo-fs/0.1"};
  const Hello back = decode_hello(encode(h));
  EXPECT_EQ(back.peer, "vigo-fs/0.1");
  expect_invalid([] { (void)decode_hello(encode(Hello{3, 1, ""})); }, "min_version");
  const HelloReply r = decode_hello_reply(encode(HelloReply{1, kMaxPayload, "vigo-imaged"}));
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(r.max_payload, kMaxPayload);
}

TEST(Wire, ErrorRepliesKeepCodeMessageFieldAndErrno) {
  const ErrorReply back = decode_error_reply(encode_error(Error{ErrorCode::kNotFound, "no such image", "image"}, 2));
  EXPECT_EQ(back.error.code(), ErrorCode::kNotFound);
  EXPECT_STREQ(back.error.what(), "no such image");
  EXPECT_EQ(back.error.field(), "image");
  EXPECT_EQ(back.sys_errno, 2);
  EXPECT_EQ(error_code_from_wire(999), ErrorCode::kInternal);
  for (auto c : {ErrorCode::kInvalidArgument, ErrorCode::kConflict, ErrorCode::kInternal, ErrorCode::kTimeout}) {
    EXPECT_EQ(error_code_from_wire(error_code_to_wire(c)), c);
  }
  // A long message is cut, not refused.
  const Error big{ErrorCode::kInternal, std::string(10000, 'x')};
  EXPECT_EQ(std::string{decode_error(encode_error(big)).what()}.size(), 4096u);
}

TEST(Wire, TypeNamesAndRequestTypes) {
  EXPECT_EQ(type_name(0x12), "GET_CHUNK");
  EXPECT_EQ(type_name(0x92), "reply GET_CHUNK");
  EXPECT_EQ(type_name(0x3c), "unknown");
  EXPECT_TRUE(is_request_type(0x2B));
  EXPECT_FALSE(is_request_type(0x2C));
  EXPECT_FALSE(is_request_type(0xFF));
  EXPECT_FALSE(is_request_type(0x92));
}

TEST(Wire, ReadFrameFromAStream) {
  auto bytes = header_bytes({0x12, 0, 3, 42});
  bytes.insert(bytes.end(), {9, 8, 7});
  const int fd = pipe_with(bytes);
  auto f = read_frame(fd);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.id, 42u);
  EXPECT_EQ(f->payload, (std::vector<std::uint8_t>{9, 8, 7}));
  EXPECT_FALSE(read_frame(fd).has_value());  // clean end of stream
  ::close(fd);
}

TEST(Wire, ReadFrameRejectsHostileStreams) {
  // Truncated header, truncated payload: kUnavailable.
  for (const auto& bytes : {std::vector<std::uint8_t>{kFrameMagic, 1, 0}, [] {
                              auto b = header_bytes({1, 0, 100, 1});
                              b.resize(b.size() + 10);
                              return b;
                            }()}) {
    const int fd = pipe_with(bytes);
    try {
      (void)read_frame(fd);
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    }
    ::close(fd);
  }
  // A length of 4 GiB is refused before anything is allocated.
  int fd = pipe_with(header_bytes({1, 0, UINT32_MAX, 1}));
  expect_invalid([&] { (void)read_frame(fd); }, "frame length");
  ::close(fd);
  // Garbage.
  std::mt19937 gen{7};
  std::vector<std::uint8_t> junk(64);
  for (auto& b : junk) b = static_cast<std::uint8_t>(gen());
  junk[0] = 0x00;
  fd = pipe_with(junk);
  expect_invalid([&] { (void)read_frame(fd); }, "magic");
  ::close(fd);
}

TEST(Wire, EveryDecoderSurvivesRandomPayloads) {
  std::mt19937 gen{1234};
  std::size_t rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::uint8_t> p(gen() % 80);
    for (auto& b : p) b = static_cast<std::uint8_t>(gen() % 4 == 0 ? 0xff : gen());
    const std::function<void()> decoders[] = {[&] { (void)decode_hello(p); },        [&] { (void)decode_error(p); },
                                              [&] { (void)decode_image_list(p); },   [&] { (void)decode_image_ref(p); },
                                              [&] { (void)decode_put_profile(p); },  [&] { (void)decode_get_chunk(p); },
                                              [&] { (void)decode_chunk_data(p); },   [&] { (void)decode_attr(p); },
                                              [&] { (void)decode_path_request(p); }, [&] { (void)decode_read_dir(p); },
                                              [&] { (void)decode_dir_page(p); },     [&] { (void)decode_read(p); },
                                              [&] { (void)decode_write(p); },        [&] { (void)decode_create(p); },
                                              [&] { (void)decode_rename(p); },       [&] { (void)decode_truncate(p); },
                                              [&] { (void)decode_set_attr(p); },     [&] { (void)decode_manifest(p); }};
    for (const auto& d : decoders) {
      try {
        d();
      } catch (const Error& e) {
        ASSERT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 30000u);  // nearly all random payloads are refused, none crash
}

TEST(WireMessages, RoundTrips) {
  GetChunk g;
  g.hash[0] = 0xab;
  g.mode = ChunkMode::kRange;
  g.offset = 4096;
  g.length = 65536;
  const GetChunk g2 = decode_get_chunk(encode(g));
  EXPECT_EQ(g2.hash, g.hash);
  EXPECT_EQ(g2.offset, 4096u);
  EXPECT_EQ(g2.length, 65536u);
  auto too_long = encode(GetChunk{g.hash, ChunkMode::kRange, 0, kMaxData + 1});
  expect_invalid([&] { (void)decode_get_chunk(too_long); }, "chunk length");

  ChunkData c{ChunkEncoding::kZstd, 1000, 0, {1, 2, 3}};
  const ChunkData c2 = decode_chunk_data(encode(c));
  EXPECT_EQ(c2.encoding, ChunkEncoding::kZstd);
  EXPECT_EQ(c2.data, c.data);

  const std::vector<ImageEntry> list{{"debian", 3, 1 << 30, 1 << 20, 1024}, {"ckpt", 1, 5, 1 << 20, 1}};
  EXPECT_EQ(decode_image_list(encode(list)), list);
  const Attr a{FileKind::kDirectory, 0755, 4096, 123, 456, 2};
  EXPECT_EQ(decode_attr(encode(a)), a);
  DirPage page{{{"a", FileKind::kFile}, {"b", FileKind::kDirectory}}, true, 2};
  const DirPage page2 = decode_dir_page(encode(page));
  EXPECT_EQ(page2.entries, page.entries);
  EXPECT_TRUE(page2.more);
  EXPECT_EQ(decode_rename(encode(Rename{"a", "b/c", kRenameNoReplace})).to, "b/c");
  expect_invalid([] { (void)decode_create(encode(Create{"x", 0644, 0x80})); }, "create flags");
  expect_invalid([] { (void)decode_path_request(encode(PathRequest{std::string(5000, 'a')})); }, "path");
}

TEST(Manifest, RoundTripAndValidation) {
  Manifest m;
  m.name = "debian-12";
  m.version = 2;
  m.chunk_size = 1 << 20;
  m.size = (3u << 20) + 5;
  for (int i = 0; i < 4; ++i) {
    ChunkRef c;
    c.hash[0] = static_cast<std::uint8_t>(i);
    c.raw_length = i < 3 ? 1u << 20 : 5u;
    c.stored_length = 100;
    m.chunks.push_back(c);
  }
  auto bytes = encode_manifest(m);
  EXPECT_EQ(decode_manifest(bytes), m);
  bytes[bytes.size() / 2] ^= 1;
  expect_invalid([&] { (void)decode_manifest(bytes); }, "checksum");
  Manifest bad = m;
  bad.chunks.pop_back();
  expect_invalid([&] { (void)encode_manifest(bad); }, "chunks");
  bad = m;
  bad.chunks[1].raw_length = 10;
  expect_invalid([&] { (void)encode_manifest(bad); }, "raw length");
  bad = m;
  bad.name = "../etc";
  expect_invalid([&] { (void)encode_manifest(bad); }, "name");
  Manifest empty{"empty", 1, 0, 1 << 20, kHashSha256, {}};
  EXPECT_EQ(decode_manifest(encode_manifest(empty)), empty);
}

}  // namespace
}  // namespace vigo::wire
