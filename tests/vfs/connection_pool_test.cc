// SPDX-License-Identifier: Apache-2.0
// ConnectionPool against a server command that misbehaves on purpose: a
// shell that answers HELLO, then sends part of a reply and stalls, ignoring
// SIGTERM (as a stopped ssh would). The pool's reader thread is then blocked
// inside a frame; the request must still time out, the connection must be
// taken apart (the command killed before its client is destroyed) and
// restarted, and the pool must still stop.
#include "vigo/vfs/connection_pool.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <memory>

#include "support/temp_dir.h"
#include "vigo/common/wire.h"

namespace vigo::vfs {
namespace {

using namespace std::chrono_literals;

// Writes a reply frame for `request` whose header claims claimed_length
// bytes of payload, and then the bytes of payload (as many as there are).
void write_frame_to(std::ofstream& f, wire::MessageType request, std::uint64_t id,
                    const std::vector<std::uint8_t>& payload, std::uint32_t claimed_length) {
  const auto head = wire::encode_header(
      wire::FrameHeader{static_cast<std::uint8_t>(wire::reply_type(request)), 0, claimed_length, id});
  f.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size()));
  f.write(reinterpret_cast<const char*>(payload.data()), static_cast<std::streamsize>(payload.size()));
}

// Submits one request and waits up to `limit` for its outcome.
std::optional<Outcome> ask(ConnectionPool& pool, std::chrono::seconds limit) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto got = promise->get_future();
  pool.submit(wire::MessageType::kListImages, {}, [promise](Outcome o) { promise->set_value(std::move(o)); });
  if (got.wait_for(limit) != std::future_status::ready) return std::nullopt;
  return got.get();
}

TEST(ConnectionPoolTest, AReplyCutOffMidFrameByAStalledCommandTimesOutAndTheConnectionIsRestarted) {
  testing::TempDir dir{"vigo-pool-test"};
  // What the command sends: the HELLO reply (id 1), then a reply (id 2)
  // whose header promises 1,000 bytes of which 10 ever come.
  wire::Hello hello;
  hello.peer = "vigo-fs";  // as the pool says it
  const std::size_t hello_bytes = wire::kHeaderSize + wire::encode(hello).size();
  const auto hello_reply = wire::encode(wire::HelloReply{wire::negotiate(hello), wire::kMaxPayload, "stalling"});
  const auto replies = dir.path() / "replies";
  {
    std::ofstream f{replies, std::ios::binary};
    write_frame_to(f, wire::MessageType::kHello, 1, hello_reply, static_cast<std::uint32_t>(hello_reply.size()));
    write_frame_to(f, wire::MessageType::kListImages, 2, std::vector<std::uint8_t>(10, 0x55), 1000);
    ASSERT_TRUE(f.flush()) << replies;
  }
  PoolOptions o;
  o.server_argv = {"/bin/sh", "-c",
                   "trap '' TERM; head -c " + std::to_string(hello_bytes) + " >/dev/null; cat '" + replies.string() +
                       "'; exec sleep 600"};
  o.connections = 1;
  o.request_timeout = 300ms;
  o.connect_timeout = 5s;
  o.backoff_initial = 10ms;
  auto pool = std::make_unique<ConnectionPool>(o);

  const auto first = ask(*pool, 10s);
  ASSERT_TRUE(first.has_value()) << "no outcome for a request whose reply stalled mid-frame";
  ASSERT_FALSE(first->ok());
  EXPECT_EQ(first->error->code(), ErrorCode::kTimeout) << first->error->what();

  // Once the stalled command is killed (SIGTERM is ignored: SIGKILL a second
  // later) and its client destroyed, the pool is still keeping deadlines:
  // the same thing on the restarted connection times out too.
  const auto second = ask(*pool, 10s);
  if (!second) {
    ADD_FAILURE() << "the second request never ended: the pool stopped keeping deadlines";
    (void)pool.release();  // its destructor would hang as well
    return;
  }
  EXPECT_FALSE(second->ok());
  const PoolStats s = pool->stats();
  EXPECT_GE(s.timeouts, 2u);
  EXPECT_GE(s.reconnects, 1u);

  auto stopped = std::async(std::launch::async, [&pool] { pool.reset(); });
  if (stopped.wait_for(15s) != std::future_status::ready) {
    ADD_FAILURE() << "the pool did not stop";
    std::quick_exit(1);  // its destructor is stuck; nothing else to wait for
  }
}

}  // namespace
}  // namespace vigo::vfs
