// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/server.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "vigo/common/log.h"
#include "vigo/common/wire.h"
#include "vigo/imageserver/session.h"

namespace vigo::imageserver {
namespace {

using wire::MessageType;

constexpr std::string_view kPeerName = "vigo-imaged/0.1";

struct Job {
  std::uint64_t id = 0;
  std::uint8_t type = 0;
  std::vector<std::uint8_t> payload;
};

struct Outgoing {
  std::uint64_t id = 0;
  Reply reply;  // each one frees the in-flight slot its request took
};

// The state shared by the reader, the workers and the writer of one connection.
class Connection {
 public:
  Connection(int out_fd, std::size_t max_in_flight) : out_fd_(out_fd), max_in_flight_(max_in_flight) {}

  // Reader: waits for a free slot; false once the writer has failed.
  bool acquire_slot() {
    std::unique_lock lock{mu_};
    slot_cv_.wait(lock, [&] { return in_flight_ < max_in_flight_ || broken_; });
    if (broken_) return false;
    ++in_flight_;
    return true;
  }
  void release_slot() {
    std::lock_guard lock{mu_};
    --in_flight_;
    slot_cv_.notify_all();
  }

  void push_job(Job job) {
    std::lock_guard lock{mu_};
    jobs_.push_back(std::move(job));
    job_cv_.notify_one();
  }
  std::optional<Job> pop_job() {
    std::unique_lock lock{mu_};
    job_cv_.wait(lock, [&] { return !jobs_.empty() || no_more_jobs_; });
    if (jobs_.empty()) return std::nullopt;
    Job j = std::move(jobs_.front());
    jobs_.pop_front();
    return j;
  }
  void close_jobs() {
    std::lock_guard lock{mu_};
    no_more_jobs_ = true;
    job_cv_.notify_all();
  }

  // Queues a reply for the writer thread; with nothing queued and nobody
  // writing, writes it at once on the calling thread instead (a small
  // reply then costs no hand-over to the writer and back).
  void send(Outgoing o) {
    {
      std::lock_guard lock{mu_};
      if (writing_ || !outgoing_.empty()) {
        outgoing_.push_back(std::move(o));
        out_cv_.notify_one();
        return;
      }
      writing_ = true;
    }
    write_one(o);
  }
  void close_output() {
    std::lock_guard lock{mu_};
    no_more_output_ = true;
    out_cv_.notify_all();
  }

  // Writer thread body: writes what send() queued, one frame at a time
  // (never while send() writes one itself).
  void write_loop() {
    while (true) {
      Outgoing o;
      {
        std::unique_lock lock{mu_};
        out_cv_.wait(lock, [&] { return (!outgoing_.empty() && !writing_) || (outgoing_.empty() && no_more_output_); });
        if (outgoing_.empty()) return;
        o = std::move(outgoing_.front());
        outgoing_.pop_front();
        writing_ = true;
      }
      write_one(o);
    }
  }

  // Replies that were errors (read after the writer has finished).
  [[nodiscard]] std::uint64_t errors() {
    std::lock_guard lock{mu_};
    return errors_;
  }

  bool broken() {
    std::lock_guard lock{mu_};
    return broken_;
  }

 private:
  // Writes one reply and frees its slot; the caller set writing_.
  void write_one(const Outgoing& o) {
    if (!broken()) {
      try {
        wire::write_frame(out_fd_, o.reply.type, o.id, o.reply.payload);
      } catch (const Error& e) {
        log::debug("imaged: cannot write a reply", {{"error", e.what()}});
        std::lock_guard lock{mu_};
        broken_ = true;
        slot_cv_.notify_all();
      }
    }
    {
      std::lock_guard lock{mu_};
      if (o.reply.type == static_cast<std::uint8_t>(MessageType::kError)) ++errors_;
      writing_ = false;
      if (!outgoing_.empty() || no_more_output_) out_cv_.notify_one();
    }
    release_slot();
  }

  int out_fd_;
  std::size_t max_in_flight_;
  std::mutex mu_;
  std::condition_variable slot_cv_, job_cv_, out_cv_;
  std::size_t in_flight_ = 0;      // GUARDED_BY(mu_)
  bool broken_ = false;            // GUARDED_BY(mu_)
  std::deque<Job> jobs_;           // GUARDED_BY(mu_)
  bool no_more_jobs_ = false;      // GUARDED_BY(mu_)
  std::deque<Outgoing> outgoing_;  // GUARDED_BY(mu_)
  bool writing_ = false;           // GUARDED_BY(mu_): a frame is being written (by send() or the writer)
  std::uint64_t errors_ = 0;       // GUARDED_BY(mu_)
  bool no_more_output_ = false;    // GUARDED_BY(mu_)
};

// Reads exactly n bytes; the count that arrived before end of stream.
std::size_t read_full(int fd, std::uint8_t* p, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::read(fd, p + done, n - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;  // a broken stream ends the connection like end of stream
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return done;
}

void write_error_now(int fd, std::uint64_t id, const Error& e) {
  try {
    const Reply r = error_reply(e);
    wire::write_frame(fd, r.type, id, r.payload);
  } catch (const Error&) {
    // The peer is gone; nothing more to tell it.
  }
}

// Reads and answers HELLO; false if the connection must end.
bool handshake(int in_fd, int out_fd) {
  std::optional<wire::Frame> f;
  try {
    f = wire::read_frame(in_fd, 4096);
  } catch (const Error& e) {
    write_error_now(out_fd, 0, e);
    return false;
  }
  if (!f) return false;
  if (f->header.type != static_cast<std::uint8_t>(MessageType::kHello)) {
    write_error_now(out_fd, f->header.id, invalid_argument("first message", "must be HELLO"));
    return false;
  }
  try {
    const wire::Hello hello = wire::decode_hello(f->payload);
    const wire::HelloReply reply{wire::negotiate(hello), wire::kMaxPayload, std::string{kPeerName}};
    wire::write_frame(out_fd, wire::reply_type(MessageType::kHello), f->header.id, wire::encode(reply));
    return true;
  } catch (const Error& e) {
    write_error_now(out_fd, f->header.id, e);
    return false;
  }
}

}  // namespace

Server::Server(ImageCatalog& catalog, ServerOptions options) : catalog_(catalog), options_(std::move(options)) {
  if (options_.workers == 0) options_.workers = 1;
  if (options_.max_in_flight == 0) options_.max_in_flight = 1;
}

ConnectionStats Server::serve(int in_fd, int out_fd, const std::optional<std::string>& user) {
  ConnectionStats stats;
  std::unique_ptr<UserData> data;
  if (user) data = std::make_unique<UserData>(options_.data_root, *user);
  if (!handshake(in_fd, out_fd)) {
    stats.protocol_violation = true;
    return stats;
  }
  Session session{catalog_, std::move(data)};
  Connection conn{out_fd, options_.max_in_flight};
  std::thread writer{[&] { conn.write_loop(); }};
  std::vector<std::thread> workers;
  for (std::size_t i = 0; i < options_.workers; ++i) {
    workers.emplace_back([&] {
      while (auto job = conn.pop_job()) {
        conn.send({job->id, session.handle(job->type, job->payload)});
      }
    });
  }

  while (conn.acquire_slot()) {
    std::array<std::uint8_t, wire::kHeaderSize> raw{};
    const std::size_t got = read_full(in_fd, raw.data(), raw.size());
    if (got == 0) {
      conn.release_slot();
      break;
    }
    wire::FrameHeader h;
    try {
      if (got < raw.size()) throw Error{ErrorCode::kInvalidArgument, "stream ended inside a frame header"};
      h = wire::decode_header(raw);
    } catch (const Error& e) {
      stats.protocol_violation = true;
      conn.send({0, error_reply(e)});
      break;
    }
    Job job{h.id, h.type, std::vector<std::uint8_t>(h.length)};
    if (read_full(in_fd, job.payload.data(), job.payload.size()) < job.payload.size()) {
      stats.protocol_violation = true;
      conn.send({0, error_reply(Error{ErrorCode::kInvalidArgument, "stream ended inside a frame payload"})});
      break;
    }
    ++stats.requests;
    if (h.flags != 0) {
      conn.send({h.id, error_reply(invalid_argument("frame flags", "must be 0 in protocol version 1"))});
    } else if (!wire::is_request_type(h.type) || h.type == static_cast<std::uint8_t>(MessageType::kHello)) {
      conn.send({h.id, error_reply(invalid_argument("message type", std::string{"not a request here: "} +
                                                                        std::string{wire::type_name(h.type)}))});
    } else {
      conn.push_job(std::move(job));
    }
  }
  conn.close_jobs();
  for (auto& w : workers) w.join();
  conn.close_output();
  writer.join();
  stats.errors += conn.errors();
  return stats;
}

}  // namespace vigo::imageserver
