// SPDX-License-Identifier: Apache-2.0
// The vigo wire protocol's framing and field codec, shared by the image
// server (vigo-imaged) and the filesystem proxy (vigo-fs). docs/vfs-proxy.md
// describes the protocol; this header is its contract in code.
//
// A frame is a 16-byte header, all integers little-endian:
//   u8 magic (kFrameMagic; names the framing itself, never changes within v1)
//   u8 type (MessageType), u16 flags (0 in protocol version 1),
//   u32 payload length (<= kMaxPayload), u64 request id
// followed by the payload. A reply carries its request's id and the type
// reply_type(request type), or MessageType::kError with an ErrorReply
// payload. Replies may come back in any order.
//
// Every decode function checks bounds before it reads or allocates and throws
// vigo::Error(kInvalidArgument) naming what was wrong; none of them has
// undefined behaviour on any input. Everything here is stateless or owned by
// one caller (FieldWriter/FieldReader): thread-compatible.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigo/common/error.h"

namespace vigo::wire {

inline constexpr std::uint8_t kFrameMagic = 0xD6;
inline constexpr std::size_t kHeaderSize = 16;
// Largest chunk or data read/write carried in one frame, and the hard limit
// on any payload (the largest data plus room for the fields around it).
inline constexpr std::uint32_t kMaxData = 8u << 20;
inline constexpr std::uint32_t kMaxPayload = kMaxData + (64u << 10);
// Protocol versions this build speaks (negotiated by HELLO).
inline constexpr std::uint32_t kMinProtocolVersion = 1;
inline constexpr std::uint32_t kMaxProtocolVersion = 1;

enum class MessageType : std::uint8_t {
  kHello = 0x01,
  // Images (read-only, by content hash).
  kListImages = 0x10,
  kGetManifest = 0x11,
  kGetChunk = 0x12,
  kPutProfile = 0x13,
  kGetProfile = 0x14,
  // The connection's user's data tree (read-write).
  kDataStat = 0x20,
  kDataReadDir = 0x21,
  kDataRead = 0x22,
  kDataWrite = 0x23,
  kDataCreate = 0x24,
  kDataMkdir = 0x25,
  kDataUnlink = 0x26,
  kDataRmdir = 0x27,
  kDataRename = 0x28,
  kDataTruncate = 0x29,
  kDataFsync = 0x2A,
  kDataSetAttr = 0x2B,
  kError = 0xFF,
};
inline constexpr std::uint8_t kReplyBit = 0x80;

// True for the request types above (not replies, not kError).
[[nodiscard]] bool is_request_type(std::uint8_t type);
[[nodiscard]] constexpr std::uint8_t reply_type(MessageType request) {
  return static_cast<std::uint8_t>(static_cast<std::uint8_t>(request) | kReplyBit);
}
[[nodiscard]] std::string_view type_name(std::uint8_t type);  // "GET_CHUNK", "reply GET_CHUNK", "unknown"

struct FrameHeader {
  std::uint8_t type = 0;
  std::uint16_t flags = 0;
  std::uint32_t length = 0;
  std::uint64_t id = 0;
};

[[nodiscard]] std::array<std::uint8_t, kHeaderSize> encode_header(const FrameHeader& header);
// Checks the magic byte and length <= max_payload (so the caller may then
// allocate `length` bytes); the type and flags are the caller's to judge.
[[nodiscard]] FrameHeader decode_header(std::span<const std::uint8_t, kHeaderSize> bytes,
                                        std::uint32_t max_payload = kMaxPayload);

struct Frame {
  FrameHeader header;
  std::vector<std::uint8_t> payload;
};

// Appends fields to a payload. Strings and byte fields are a u32 length then
// the bytes; the writer refuses (kInvalidArgument) to grow past its limit.
class FieldWriter {
 public:
  explicit FieldWriter(std::size_t limit = kMaxPayload) : limit_(limit) {}
  FieldWriter& u8(std::uint8_t v);
  FieldWriter& u16(std::uint16_t v);
  FieldWriter& u32(std::uint32_t v);
  FieldWriter& u64(std::uint64_t v);
  FieldWriter& i64(std::int64_t v) { return u64(static_cast<std::uint64_t>(v)); }
  FieldWriter& bytes(std::span<const std::uint8_t> v);
  FieldWriter& str(std::string_view v);
  FieldWriter& fixed(std::span<const std::uint8_t> v);  // no length prefix
  [[nodiscard]] const std::vector<std::uint8_t>& data() const& { return out_; }
  // Moves the payload out; the writer is empty afterwards.
  [[nodiscard]] std::vector<std::uint8_t> take() { return std::move(out_); }

 private:
  void append(const void* p, std::size_t n);
  std::size_t limit_;
  std::vector<std::uint8_t> out_;
};

// Reads fields from a payload it does not own. Every read names its field so
// that a truncated or oversized one is reported as "invalid <field>: ...".
class FieldReader {
 public:
  explicit FieldReader(std::span<const std::uint8_t> in) : in_(in) {}
  std::uint8_t u8(std::string_view field);
  std::uint16_t u16(std::string_view field);
  std::uint32_t u32(std::string_view field);
  std::uint64_t u64(std::string_view field);
  std::int64_t i64(std::string_view field) { return static_cast<std::int64_t>(u64(field)); }
  // A length-prefixed field of at most max_length bytes; the span points into
  // the payload.
  std::span<const std::uint8_t> bytes(std::string_view field, std::uint32_t max_length);
  std::string str(std::string_view field, std::uint32_t max_length);
  std::span<const std::uint8_t> fixed(std::string_view field, std::size_t length);
  [[nodiscard]] std::size_t remaining() const { return in_.size() - pos_; }
  // Throws unless every byte was consumed (trailing garbage is an error).
  void expect_end(std::string_view what) const;

 private:
  std::span<const std::uint8_t> take(std::string_view field, std::size_t n);
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

// HELLO: the first request on every connection. The server picks the highest
// version both sides speak; no overlap is an error reply and a closed
// connection.
struct Hello {
  std::uint32_t min_version = kMinProtocolVersion;
  std::uint32_t max_version = kMaxProtocolVersion;
  std::string peer;  // software name and version, for logs (<= 256 bytes)
};
struct HelloReply {
  std::uint32_t version = 0;
  std::uint32_t max_payload = kMaxPayload;
  std::string peer;
};
[[nodiscard]] std::vector<std::uint8_t> encode(const Hello& m);
[[nodiscard]] std::vector<std::uint8_t> encode(const HelloReply& m);
[[nodiscard]] Hello decode_hello(std::span<const std::uint8_t> payload);
[[nodiscard]] HelloReply decode_hello_reply(std::span<const std::uint8_t> payload);
// The version to speak, or kInvalidArgument naming both ranges.
[[nodiscard]] std::uint32_t negotiate(const Hello& hello, std::uint32_t our_min = kMinProtocolVersion,
                                      std::uint32_t our_max = kMaxProtocolVersion);

// kError payload: u16 code (stable numbers, see error_code_to_wire), message
// (<= 4096 bytes, longer ones are cut), field name (<= 256 bytes), u32 the
// Linux errno behind a filesystem failure (0: none), so that a FUSE client
// can return the same errno (ENOTEMPTY, EISDIR, ...) to its caller.
struct ErrorReply {
  Error error;
  std::int32_t sys_errno = 0;
};
// What a client throws for an error reply: the server's Error plus its errno.
class RemoteError : public Error {
 public:
  explicit RemoteError(ErrorReply reply) : Error(std::move(reply.error)), sys_errno_(reply.sys_errno) {}
  [[nodiscard]] std::int32_t sys_errno() const { return sys_errno_; }

 private:
  std::int32_t sys_errno_ = 0;
};
[[nodiscard]] std::vector<std::uint8_t> encode_error(const Error& error, std::int32_t sys_errno = 0);
[[nodiscard]] ErrorReply decode_error_reply(std::span<const std::uint8_t> payload);
[[nodiscard]] Error decode_error(std::span<const std::uint8_t> payload);
[[nodiscard]] std::uint16_t error_code_to_wire(ErrorCode code);
[[nodiscard]] ErrorCode error_code_from_wire(std::uint16_t code);  // unknown: kInternal

// Blocking frame I/O on a stream descriptor (pipe, socket), retrying EINTR
// and short transfers. read_frame returns nullopt on a clean end of stream
// before a header; a stream that ends inside a frame is kUnavailable, a bad
// header kInvalidArgument (nothing is allocated for a length over the limit).
[[nodiscard]] std::optional<Frame> read_frame(int fd, std::uint32_t max_payload = kMaxPayload);
void write_frame(int fd, const FrameHeader& header, std::span<const std::uint8_t> payload);
// Fills header.length from the payload.
void write_frame(int fd, std::uint8_t type, std::uint64_t id, std::span<const std::uint8_t> payload);

}  // namespace vigo::wire
