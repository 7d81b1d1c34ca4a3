// SPDX-License-Identifier: Apache-2.0
// vigo-bench-range-reads: what a cold range read of a chunk costs the image
// server, with ChunkStore's overlapped read (the range asked of the disk
// while the header is read) against the header and the range read one
// after the other. This is the read behind every random read a proxy sends
// before it has the chunk.
//
// Makes a store of --chunks incompressible 1 MiB chunks in a temporary
// directory under --dir (on the disk under test: not a tmpfs), reads each
// once so that it is verified (later reads trust it, as in service), then
// runs --rounds rounds of two passes, one per mode, in alternating order.
// Before a pass every chunk file is dropped from the page cache
// (POSIX_FADV_DONTNEED); the pass then reads one 4 KiB range at a random
// offset of each chunk through ChunkStore::read_range, in a shuffled order,
// the same offsets for both modes. Prints a Markdown table (milliseconds per
// read) and the ratio of the means. The directory is removed at the end.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "vigo/imageserver/chunk_store.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using vigo::imageserver::ChunkStore;
using vigo::imageserver::ChunkStoreOptions;

struct Read {
  vigo::ChunkHash hash;
  std::uint64_t offset;
};

void evict(const ChunkStore& store, const std::vector<Read>& reads) {
  for (const auto& r : reads) {
    const int fd = ::open(store.path_of(r.hash).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// Milliseconds per read, in the order read.
std::vector<double> pass(ChunkStore& store, const std::vector<Read>& reads, std::uint32_t length) {
  evict(store, reads);
  std::vector<double> ms;
  ms.reserve(reads.size());
  std::uint32_t raw_length = 0;
  for (const auto& r : reads) {
    const auto t0 = Clock::now();
    const auto bytes = store.read_range(r.hash, r.offset, length, &raw_length);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (bytes.size() != length) throw std::runtime_error("short range read");
  }
  return ms;
}

struct Summary {
  double mean = 0, p50 = 0, p99 = 0;
};

Summary summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  Summary s;
  s.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  s.p50 = ms[ms.size() / 2];
  s.p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/var/tmp";
  int chunks = 512;
  int rounds = 3;
  std::uint32_t length = 4096;
  CLI::App app{"vigo-bench-range-reads: cold range reads of chunks, overlapped against one after the other",
               "vigo-bench-range-reads"};
  app.add_option("--dir", dir, "Where the temporary store goes (a directory on the disk to measure)");
  app.add_option("--chunks", chunks, "Chunks in the store, 1 MiB each")->check(CLI::Range(16, 8192));
  app.add_option("--rounds", rounds, "Rounds of one pass per mode")->check(CLI::Range(1, 100));
  app.add_option("--length", length, "Bytes per range read")->check(CLI::Range(1u, 1u << 20));
  CLI11_PARSE(app, argc, argv);

  std::string templ = (fs::path{dir} / "vigo-bench-range-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    std::perror(("vigo-bench-range-reads: cannot make a directory under " + dir).c_str());
    return 2;
  }
  const fs::path root{templ};
  int status = 0;
  try {
    ChunkStoreOptions overlapped;
    ChunkStoreOptions serial;
    serial.overlap_range_reads = false;
    // The in-memory chunk cache would answer repeated reads: off in both.
    overlapped.cache_bytes = serial.cache_bytes = 0;
    ChunkStore store_overlapped{root, overlapped};
    ChunkStore store_serial{root, serial};

    std::mt19937_64 rng{1};
    std::vector<Read> reads;
    std::vector<std::uint8_t> raw(1u << 20);
    const std::uint64_t span = raw.size() - length + 1;
    for (int i = 0; i < chunks; ++i) {
      std::generate(raw.begin(), raw.end(), [&] { return static_cast<std::uint8_t>(rng()); });
      const auto put = store_overlapped.put(raw);
      reads.push_back({put.ref.hash, rng() % span / 4096 * 4096});
    }
    std::uint32_t raw_length = 0;
    for (const auto& r : reads) (void)store_overlapped.read_range(r.hash, 0, 1, &raw_length);  // verified once
    ::sync();
    std::shuffle(reads.begin(), reads.end(), rng);

    std::vector<double> all_overlapped;
    std::vector<double> all_serial;
    for (int round = 0; round < rounds; ++round) {
      const bool overlapped_first = round % 2 == 0;
      for (int k = 0; k < 2; ++k) {
        const bool use_overlapped = (k == 0) == overlapped_first;
        auto ms = pass(use_overlapped ? store_overlapped : store_serial, reads, length);
        auto& into = use_overlapped ? all_overlapped : all_serial;
        into.insert(into.end(), ms.begin(), ms.end());
      }
    }
    const Summary o = summarize(all_overlapped);
    const Summary s = summarize(all_serial);
    std::printf("cold range reads of %u bytes, %d chunks x %d rounds per mode, store under %s\n\n", length, chunks,
                rounds, dir.c_str());
    std::printf("| read_range | mean ms | p50 ms | p99 ms |\n|---|---|---|---|\n");
    std::printf("| header, then range (serial) | %.3f | %.3f | %.3f |\n", s.mean, s.p50, s.p99);
    std::printf("| range asked with the header (overlapped) | %.3f | %.3f | %.3f |\n", o.mean, o.p50, o.p99);
    std::printf("\noverlapped / serial, mean: %.2fx\n", o.mean / s.mean);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vigo-bench-range-reads: %s\n", e.what());
    status = 1;
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return status;
}
