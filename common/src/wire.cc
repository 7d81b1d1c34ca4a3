// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/wire.h"

#include "vigo/common/file_util.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vigo::wire {
namespace {

template <typename T>
void put_le(std::uint8_t* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

template <typename T>
T get_le(const std::uint8_t* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>(v | (static_cast<T>(p[i]) << (8 * i)));
  return v;
}

constexpr std::uint32_t kMaxErrorMessage = 4096;
constexpr std::uint32_t kMaxFieldName = 256;
constexpr std::uint32_t kMaxPeerName = 256;


void write_full(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      if (e == EPIPE || e == ECONNRESET) throw Error{ErrorCode::kUnavailable, "wire: peer closed the stream"};
      throw_errno("wire: write", e);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

bool is_request_type(std::uint8_t type) {
  switch (static_cast<MessageType>(type)) {
    case MessageType::kHello:
    case MessageType::kListImages:
    case MessageType::kGetManifest:
    case MessageType::kGetChunk:
    case MessageType::kPutProfile:
    case MessageType::kGetProfile:
    case MessageType::kDataStat:
    case MessageType::kDataReadDir:
    case MessageType::kDataRead:
    case MessageType::kDataWrite:
    case MessageType::kDataCreate:
    case MessageType::kDataMkdir:
    case MessageType::kDataUnlink:
    case MessageType::kDataRmdir:
    case MessageType::kDataRename:
    case MessageType::kDataTruncate:
    case MessageType::kDataFsync:
    case MessageType::kDataSetAttr:
      return true;
    case MessageType::kError:
      return false;
  }
  return false;
}

std::string_view type_name(std::uint8_t type) {
  static constexpr std::string_view kReplies[] = {
      "reply HELLO",         "reply LIST_IMAGES", "reply GET_MANIFEST", "reply GET_CHUNK",  "reply PUT_PROFILE",
      "reply GET_PROFILE",   "reply DATA_STAT",   "reply DATA_READDIR", "reply DATA_READ",  "reply DATA_WRITE",
      "reply DATA_CREATE",   "reply DATA_MKDIR",  "reply DATA_UNLINK",  "reply DATA_RMDIR", "reply DATA_RENAME",
      "reply DATA_TRUNCATE", "reply DATA_FSYNC",  "reply DATA_SETATTR"};
  static constexpr std::uint8_t kTypes[] = {0x01, 0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x21, 0x22,
                                            0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B};
  if (type == static_cast<std::uint8_t>(MessageType::kError)) return "ERROR";
  const bool reply = (type & kReplyBit) != 0;
  for (std::size_t i = 0; i < std::size(kTypes); ++i) {
    if (kTypes[i] == (type & ~kReplyBit)) return reply ? kReplies[i] : kReplies[i].substr(6);
  }
  return "unknown";
}

std::array<std::uint8_t, kHeaderSize> encode_header(const FrameHeader& h) {
  std::array<std::uint8_t, kHeaderSize> out{};
  out[0] = kFrameMagic;
  out[1] = h.type;
  put_le<std::uint16_t>(&out[2], h.flags);
  put_le<std::uint32_t>(&out[4], h.length);
  put_le<std::uint64_t>(&out[8], h.id);
  return out;
}

FrameHeader decode_header(std::span<const std::uint8_t, kHeaderSize> b, std::uint32_t max_payload) {
  if (b[0] != kFrameMagic) {
    throw invalid_argument("frame header", "bad magic byte " + std::to_string(b[0]) + " (not a vigo wire stream)");
  }
  FrameHeader h;
  h.type = b[1];
  h.flags = get_le<std::uint16_t>(&b[2]);
  h.length = get_le<std::uint32_t>(&b[4]);
  h.id = get_le<std::uint64_t>(&b[8]);
  if (h.length > max_payload) {
    throw invalid_argument("frame length",
                           std::to_string(h.length) + " bytes exceeds the limit of " + std::to_string(max_payload));
  }
  return h;
}

void FieldWriter::append(const void* p, std::size_t n) {
  if (n > limit_ || out_.size() > limit_ - n) {
    throw invalid_argument("payload", "would exceed " + std::to_string(limit_) + " bytes");
  }
  const auto* b = static_cast<const std::uint8_t*>(p);
  out_.insert(out_.end(), b, b + n);
}

FieldWriter& FieldWriter::u8(std::uint8_t v) {
  append(&v, 1);
  return *this;
}
FieldWriter& FieldWriter::u16(std::uint16_t v) {
  std::uint8_t b[2];
  put_le(b, v);
  append(b, sizeof b);
  return *this;
}
FieldWriter& FieldWriter::u32(std::uint32_t v) {
  std::uint8_t b[4];
  put_le(b, v);
  append(b, sizeof b);
  return *this;
}
FieldWriter& FieldWriter::u64(std::uint64_t v) {
  std::uint8_t b[8];
  put_le(b, v);
  append(b, sizeof b);
  return *this;
}
FieldWriter& FieldWriter::bytes(std::span<const std::uint8_t> v) {
  if (v.size() > UINT32_MAX) throw invalid_argument("payload", "field longer than 4 GiB");
  u32(static_cast<std::uint32_t>(v.size()));
  append(v.data(), v.size());
  return *this;
}
FieldWriter& FieldWriter::str(std::string_view v) {
  return bytes({reinterpret_cast<const std::uint8_t*>(v.data()), v.size()});
}
FieldWriter& FieldWriter::fixed(std::span<const std::uint8_t> v) {
  append(v.data(), v.size());
  return *this;
}

std::span<const std::uint8_t> FieldReader::take(std::string_view field, std::size_t n) {
  if (n > remaining()) {
    throw invalid_argument(std::string{field}, "truncated: needs " + std::to_string(n) + " bytes, " +
                                                   std::to_string(remaining()) + " left");
  }
  auto s = in_.subspan(pos_, n);
  pos_ += n;
  return s;
}

std::uint8_t FieldReader::u8(std::string_view f) { return take(f, 1)[0]; }
std::uint16_t FieldReader::u16(std::string_view f) { return get_le<std::uint16_t>(take(f, 2).data()); }
std::uint32_t FieldReader::u32(std::string_view f) { return get_le<std::uint32_t>(take(f, 4).data()); }
std::uint64_t FieldReader::u64(std::string_view f) { return get_le<std::uint64_t>(take(f, 8).data()); }

std::span<const std::uint8_t> FieldReader::bytes(std::string_view f, std::uint32_t max_length) {
  const std::uint32_t n = u32(f);
  if (n > max_length) {
    throw invalid_argument(std::string{f},
                           "length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_length));
  }
  return take(f, n);
}

std::string FieldReader::str(std::string_view f, std::uint32_t max_length) {
  auto b = bytes(f, max_length);
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::span<const std::uint8_t> FieldReader::fixed(std::string_view f, std::size_t length) { return take(f, length); }

void FieldReader::expect_end(std::string_view what) const {
  if (remaining() != 0) {
    throw invalid_argument(std::string{what}, std::to_string(remaining()) + " unexpected trailing bytes");
  }
}

std::vector<std::uint8_t> encode(const Hello& m) {
  return FieldWriter{}.u32(m.min_version).u32(m.max_version).str(m.peer.substr(0, kMaxPeerName)).take();
}

std::vector<std::uint8_t> encode(const HelloReply& m) {
  return FieldWriter{}.u32(m.version).u32(m.max_payload).str(m.peer.substr(0, kMaxPeerName)).take();
}

Hello decode_hello(std::span<const std::uint8_t> payload) {
  FieldReader r{payload};
  Hello m;
  m.min_version = r.u32("hello min_version");
  m.max_version = r.u32("hello max_version");
  m.peer = r.str("hello peer", kMaxPeerName);
  r.expect_end("hello");
  if (m.min_version > m.max_version) throw invalid_argument("hello", "min_version > max_version");
  return m;
}

HelloReply decode_hello_reply(std::span<const std::uint8_t> payload) {
  FieldReader r{payload};
  HelloReply m;
  m.version = r.u32("hello reply version");
  m.max_payload = r.u32("hello reply max_payload");
  m.peer = r.str("hello reply peer", kMaxPeerName);
  r.expect_end("hello reply");
  return m;
}

std::uint32_t negotiate(const Hello& hello, std::uint32_t our_min, std::uint32_t our_max) {
  const std::uint32_t lo = std::max(hello.min_version, our_min);
  const std::uint32_t hi = std::min(hello.max_version, our_max);
  if (lo > hi) {
    throw invalid_argument("protocol version", "peer speaks " + std::to_string(hello.min_version) + ".." +
                                                   std::to_string(hello.max_version) + ", this side " +
                                                   std::to_string(our_min) + ".." + std::to_string(our_max));
  }
  return hi;
}

std::uint16_t error_code_to_wire(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 1;
    case ErrorCode::kNotFound:
      return 2;
    case ErrorCode::kAlreadyExists:
      return 3;
    case ErrorCode::kConflict:
      return 4;
    case ErrorCode::kResourceExhausted:
      return 5;
    case ErrorCode::kPermissionDenied:
      return 6;
    case ErrorCode::kUnavailable:
      return 7;
    case ErrorCode::kTimeout:
      return 8;
    case ErrorCode::kInternal:
      return 9;
  }
  return 9;
}

ErrorCode error_code_from_wire(std::uint16_t code) {
  static constexpr ErrorCode kCodes[] = {
      ErrorCode::kInvalidArgument, ErrorCode::kNotFound,          ErrorCode::kAlreadyExists,
      ErrorCode::kConflict,        ErrorCode::kResourceExhausted, ErrorCode::kPermissionDenied,
      ErrorCode::kUnavailable,     ErrorCode::kTimeout,           ErrorCode::kInternal};
  return code >= 1 && code <= std::size(kCodes) ? kCodes[code - 1] : ErrorCode::kInternal;
}

std::vector<std::uint8_t> encode_error(const Error& error, std::int32_t sys_errno) {
  const std::string_view message{error.what()};
  return FieldWriter{}
      .u16(error_code_to_wire(error.code()))
      .str(message.substr(0, kMaxErrorMessage))
      .str(std::string_view{error.field()}.substr(0, kMaxFieldName))
      .u32(static_cast<std::uint32_t>(sys_errno))
      .take();
}

ErrorReply decode_error_reply(std::span<const std::uint8_t> payload) {
  FieldReader r{payload};
  const ErrorCode code = error_code_from_wire(r.u16("error code"));
  std::string message = r.str("error message", kMaxErrorMessage);
  std::string field = r.str("error field", kMaxFieldName);
  const auto sys_errno = static_cast<std::int32_t>(r.u32("error errno"));
  r.expect_end("error reply");
  if (sys_errno < 0 || sys_errno > 4095) throw invalid_argument("error errno", "out of range");
  return ErrorReply{Error{code, std::move(message), std::move(field)}, sys_errno};
}

Error decode_error(std::span<const std::uint8_t> payload) { return decode_error_reply(payload).error; }

std::optional<Frame> read_frame(int fd, std::uint32_t max_payload) {
  std::array<std::uint8_t, kHeaderSize> raw{};
  const std::size_t got = read_full(fd, raw.data(), raw.size(), "wire");
  if (got == 0) return std::nullopt;
  if (got < raw.size()) throw Error{ErrorCode::kUnavailable, "wire: stream ended inside a frame header"};
  Frame frame;
  frame.header = decode_header(raw, max_payload);
  frame.payload.resize(frame.header.length);
  if (read_full(fd, frame.payload.data(), frame.payload.size(), "wire") < frame.payload.size()) {
    throw Error{ErrorCode::kUnavailable, "wire: stream ended inside a frame payload"};
  }
  return frame;
}

void write_frame(int fd, const FrameHeader& header, std::span<const std::uint8_t> payload) {
  if (header.length != payload.size()) throw Error{ErrorCode::kInternal, "wire: header length != payload size"};
  const auto head = encode_header(header);
  // One buffer for small frames keeps a reply in one write (and one packet).
  if (payload.size() <= 64 * 1024) {
    std::vector<std::uint8_t> buf(head.begin(), head.end());
    buf.insert(buf.end(), payload.begin(), payload.end());
    write_full(fd, buf.data(), buf.size());
    return;
  }
  write_full(fd, head.data(), head.size());
  write_full(fd, payload.data(), payload.size());
}

void write_frame(int fd, std::uint8_t type, std::uint64_t id, std::span<const std::uint8_t> payload) {
  if (payload.size() > kMaxPayload) throw invalid_argument("payload", "larger than the frame limit");
  write_frame(fd, FrameHeader{type, 0, static_cast<std::uint32_t>(payload.size()), id}, payload);
}

}  // namespace vigo::wire
