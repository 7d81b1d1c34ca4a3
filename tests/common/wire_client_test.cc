// SPDX-License-Identifier: Apache-2.0
// WireClient::send and abort against a scripted peer on a socketpair: every
// handler runs exactly once, with the reply, the server's error (and errno),
// a wrong reply type as an error, or the abort; nothing is sent after abort.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <mutex>
#include <vector>

#include "vigo/common/wire.h"
#include "vigo/common/wire_client.h"

namespace vigo::wire {
namespace {

struct Peer {
  int client_fd = -1;
  int fd = -1;
  Peer() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_fd = fds[0];
    fd = fds[1];
  }
  ~Peer() { ::close(fd); }
  Frame next() {
    auto f = read_frame(fd);
    EXPECT_TRUE(f.has_value());
    return f ? *f : Frame{};
  }
};

// What each handler saw, and how often it ran.
struct Seen {
  std::mutex mu;
  std::vector<int> calls;
  std::vector<WireClient::Reply> replies;
  explicit Seen(int n) : calls(static_cast<std::size_t>(n), 0), replies(static_cast<std::size_t>(n)) {}
  WireClient::ReplyHandler handler(int i, std::promise<void>* done = nullptr) {
    return [this, i, done](WireClient::Reply r) {
      std::lock_guard lock{mu};
      ++calls[static_cast<std::size_t>(i)];
      replies[static_cast<std::size_t>(i)] = std::move(r);
      if (done != nullptr) done->set_value();
    };
  }
};

TEST(WireClient, SendRunsEachHandlerOnceWithItsReplyOrError) {
  Peer peer;
  WireClient client{peer.client_fd, peer.client_fd};
  Seen seen{3};
  std::promise<void> got[3];
  const std::vector<std::uint8_t> ask{1, 2, 3};
  for (int i = 0; i < 3; ++i) client.send(MessageType::kGetChunk, ask, seen.handler(i, &got[i]));
  Frame f[3] = {peer.next(), peer.next(), peer.next()};
  for (const Frame& x : f) EXPECT_EQ(x.payload, ask);
  // Answered out of order: the data, a wrong type, a filesystem error.
  write_frame(peer.fd, static_cast<std::uint8_t>(MessageType::kError), f[2].header.id,
              encode_error(Error{ErrorCode::kNotFound, "no such chunk"}, ENOENT));
  write_frame(peer.fd, reply_type(MessageType::kHello), f[1].header.id, std::vector<std::uint8_t>{});
  write_frame(peer.fd, static_cast<std::uint8_t>(reply_type(MessageType::kGetChunk)), f[0].header.id,
              std::vector<std::uint8_t>{9, 8});
  for (auto& g : got) g.get_future().wait();
  std::lock_guard lock{seen.mu};
  EXPECT_EQ(seen.calls, (std::vector<int>{1, 1, 1}));
  EXPECT_FALSE(seen.replies[0].error);
  EXPECT_EQ(seen.replies[0].payload, (std::vector<std::uint8_t>{9, 8}));
  ASSERT_TRUE(seen.replies[1].error);
  EXPECT_FALSE(seen.replies[1].remote);
  EXPECT_EQ(seen.replies[1].error->code(), ErrorCode::kInternal);
  ASSERT_TRUE(seen.replies[2].error);
  EXPECT_TRUE(seen.replies[2].remote);
  EXPECT_EQ(seen.replies[2].error->code(), ErrorCode::kNotFound);
  EXPECT_EQ(seen.replies[2].sys_errno, ENOENT);
}

TEST(WireClient, AbortFailsWhatIsInFlightOnceAndRefusesLaterRequests) {
  Peer peer;
  Seen seen{2};
  {
    WireClient client{peer.client_fd, peer.client_fd};
    client.send(MessageType::kGetChunk, std::vector<std::uint8_t>{1}, seen.handler(0));
    client.send(MessageType::kGetChunk, std::vector<std::uint8_t>{2}, seen.handler(1));
    const Frame first = peer.next();
    (void)peer.next();
    client.abort("the test gave up");
    {
      std::lock_guard lock{seen.mu};
      EXPECT_EQ(seen.calls, (std::vector<int>{1, 1}));  // on this thread, before abort() returned
      for (const auto& r : seen.replies) {
        ASSERT_TRUE(r.error);
        EXPECT_EQ(r.error->code(), ErrorCode::kUnavailable);
        EXPECT_NE(std::string{r.error->what()}.find("the test gave up"), std::string::npos) << r.error->what();
      }
    }
    // A reply that arrives afterwards is dropped, not delivered twice.
    write_frame(peer.fd, static_cast<std::uint8_t>(reply_type(MessageType::kGetChunk)), first.header.id,
                std::vector<std::uint8_t>{7});
    std::atomic<int> later{0};
    EXPECT_THROW(client.send(MessageType::kGetChunk, std::vector<std::uint8_t>{3},
                             [&](WireClient::Reply) { ++later; }),
                 Error);
    EXPECT_THROW((void)client.call(MessageType::kGetChunk, std::vector<std::uint8_t>{4}), Error);
    EXPECT_EQ(later, 0);
  }  // the destructor joins the reader after the late reply
  std::lock_guard lock{seen.mu};
  EXPECT_EQ(seen.calls, (std::vector<int>{1, 1}));
}

TEST(WireClient, AClosedStreamFailsEveryWaitingRequest) {
  Peer peer;
  WireClient client{peer.client_fd, peer.client_fd};
  Seen seen{1};
  std::promise<void> got;
  client.send(MessageType::kGetChunk, std::vector<std::uint8_t>{1}, seen.handler(0, &got));
  (void)peer.next();
  ::shutdown(peer.fd, SHUT_RDWR);
  got.get_future().wait();
  std::lock_guard lock{seen.mu};
  ASSERT_TRUE(seen.replies[0].error);
  EXPECT_EQ(seen.replies[0].error->code(), ErrorCode::kUnavailable);
  EXPECT_FALSE(seen.replies[0].remote);
}

}  // namespace
}  // namespace vigo::wire
