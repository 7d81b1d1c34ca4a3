// SPDX-License-Identifier: Apache-2.0
#include "load.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

namespace vigo::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::runtime_error sys_error(const std::string& what) { return std::runtime_error(what + ": " + std::strerror(errno)); }

class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw sys_error("open " + path);
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

// Reads exactly out.size() bytes at offset unless the file ends first.
std::size_t pread_full(int fd, std::uint8_t* out, std::size_t n, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw sys_error("pread at " + std::to_string(offset + done));
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return done;
}

// A fast hash of one read (four independent lanes, so it costs about a
// memory pass), mixed with its offset; reads are combined by addition, so
// the total does not depend on the order in which readers finish.
std::uint64_t hash_read(const std::uint8_t* p, std::size_t n, std::uint64_t offset) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t lane[4] = {1, 2, 3, 4};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int l = 0; l < 4; ++l) {
      std::uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      lane[l] = (lane[l] ^ w) * kMul;
    }
  }
  std::uint64_t h = offset * kMul + n;
  for (; i < n; ++i) h = (h ^ p[i]) * kMul;
  for (std::uint64_t l : lane) h = (h ^ l ^ (l >> 29)) * kMul;
  return h ^ (h >> 32);
}

std::uint64_t file_size(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw sys_error("fstat " + path);
  return static_cast<std::uint64_t>(st.st_size);
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void sequential(const LoadSpec& spec, int fd, std::uint64_t end, LoadResult& r) {
  std::vector<std::uint8_t> buf(spec.block);
  const auto t0 = Clock::now();
  for (std::uint64_t off = 0; off < end;) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(spec.block, end - off));
    const auto s = Clock::now();
    const std::size_t got = pread_full(fd, buf.data(), want, off);
    r.latency_ms.push_back(ms(Clock::now() - s));
    if (got != want) throw std::runtime_error("short read at " + std::to_string(off) + " of " + spec.file);
    r.checksum += hash_read(buf.data(), got, off);
    r.bytes += got;
    ++r.ops;
    off += got;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

void random_reads(const LoadSpec& spec, std::uint64_t end, LoadResult& r) {
  if (end < spec.block) throw std::runtime_error("the file is smaller than one block: " + spec.file);
  const std::uint64_t blocks = end / spec.block;
  const int readers = spec.threads;
  struct Reader {
    Clock::time_point started, finished;
    std::vector<double> latency_ms;
    std::uint64_t checksum = 0, bytes = 0;
    std::string error;
  };
  std::vector<Reader> out(static_cast<std::size_t>(readers));
  std::barrier start{readers + 1};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < readers; ++t) {
    // Reader t does ops/readers reads (the first ops % readers one more).
    const std::uint64_t n = spec.ops / static_cast<std::uint64_t>(readers) +
                            (static_cast<std::uint64_t>(t) < spec.ops % static_cast<std::uint64_t>(readers) ? 1 : 0);
    threads.emplace_back([&, t, n] {
      Reader& me = out[static_cast<std::size_t>(t)];
      std::optional<Fd> fd;
      try {
        fd.emplace(spec.file);
      } catch (const std::exception& e) {
        me.error = e.what();
        failed = true;
      }
      start.arrive_and_wait();
      me.started = me.finished = Clock::now();
      if (!fd || failed) return;
      std::vector<std::uint8_t> buf(spec.block);
      try {
        std::mt19937_64 rng;
        for (std::uint64_t i = 0; i < n * static_cast<std::uint64_t>(spec.loops) && !failed; ++i) {
          if (i % n == 0) rng.seed(spec.seed + static_cast<std::uint64_t>(t) * 1'000'003ull);
          const std::uint64_t off = (rng() % blocks) * spec.block;
          const auto s = Clock::now();
          const std::size_t got = pread_full(fd->get(), buf.data(), spec.block, off);
          me.latency_ms.push_back(ms(Clock::now() - s));
          if (got != spec.block) throw std::runtime_error("short read at " + std::to_string(off));
          me.checksum += hash_read(buf.data(), got, off);
          me.bytes += got;
          if (spec.think_ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(spec.think_ms));
        }
      } catch (const std::exception& e) {
        me.error = e.what();
        failed = true;
      }
      me.finished = Clock::now();
    });
  }
  start.arrive_and_wait();
  for (auto& th : threads) th.join();
  // From the first reader's first read to the last reader's last reply.
  Clock::time_point first = out.front().started, last = out.front().finished;
  for (const Reader& me : out) {
    first = std::min(first, me.started);
    last = std::max(last, me.finished);
  }
  r.seconds = std::chrono::duration<double>(last - first).count();
  for (const Reader& me : out) {
    if (!me.error.empty()) throw std::runtime_error(me.error + " (" + spec.file + ")");
    r.latency_ms.insert(r.latency_ms.end(), me.latency_ms.begin(), me.latency_ms.end());
    r.checksum += me.checksum;
    r.bytes += me.bytes;
  }
  r.ops = r.latency_ms.size();
}

}  // namespace

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

LoadResult run_load(const LoadSpec& spec) {
  if (spec.block == 0) throw std::runtime_error("block size must be positive");
  if (spec.threads < 1) throw std::runtime_error("threads must be positive");
  if (spec.loops < 1) throw std::runtime_error("loops must be positive");
  LoadResult r;
  const auto t0 = Clock::now();
  Fd fd{spec.file};
  r.open_ms = ms(Clock::now() - t0);
  r.file_size = file_size(fd.get(), spec.file);
  const std::uint64_t end = spec.limit == 0 ? r.file_size : std::min(spec.limit, r.file_size);
  if (spec.pattern == Pattern::kSequential) {
    sequential(spec, fd.get(), end, r);
  } else {
    random_reads(spec, end, r);
  }
  std::sort(r.latency_ms.begin(), r.latency_ms.end());
  return r;
}

bool fetches_idle(const nlohmann::json& s) {
  return s.is_object() && s.value("chunks_in_flight", 1) == 0 && s.value("requests_queued", 1) == 0 &&
         s.value("requests_in_flight", 1) == 0 && s.value("cache_unsynced", 0) == 0;
}

std::uint64_t evict_page_cache(const std::string& path) {
  namespace fs = std::filesystem;
  std::uint64_t done = 0;
  auto one = [&](const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw sys_error("open " + p.string());
    const int rc = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    if (rc != 0) throw std::runtime_error("posix_fadvise " + p.string() + ": " + std::strerror(rc));
    ++done;
  };
  if (fs::is_directory(path)) {
    for (const auto& e : fs::recursive_directory_iterator(path)) {
      if (e.is_regular_file()) one(e.path());
    }
  } else {
    one(path);
  }
  return done;
}

}  // namespace vigo::bench
