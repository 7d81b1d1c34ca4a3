// SPDX-License-Identifier: Apache-2.0
// vigo-bench-chunks: the measurements behind the image server's hash and
// chunk-size choices (docs/vfs-proxy.md). Single-threaded, in memory:
//  1. hash throughput through OpenSSL's EVP API: SHA-256, BLAKE2b-512,
//     BLAKE2s-256;
//  2. for each chunk size, over a sample file (a disk image): chunk count,
//     distinct chunks, zstd stored/raw ratio (only chunks saving >= 10% are
//     stored compressed, as ChunkStore does), compression and decompression
//     speed, and the manifest's size.
// Prints Markdown tables.
#include <openssl/evp.h>
#include <zstd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double hash_mb_per_s(const EVP_MD* md, const std::vector<unsigned char>& data, int rounds) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const std::size_t block = 1 << 20;
  const auto t0 = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t off = 0; off + block <= data.size(); off += block) {
      EVP_Digest(data.data() + off, block, out, &len, md, nullptr);
    }
  }
  return static_cast<double>(rounds) * static_cast<double>(data.size() / block * block) / 1e6 / seconds_since(t0);
}

struct ChunkRow {
  std::size_t chunk = 0, count = 0, distinct = 0, compressed = 0;
  double stored_ratio = 0, comp_mb_s = 0, decomp_mb_s = 0, decomp_ms = 0;
};

ChunkRow measure(const std::vector<unsigned char>& data, std::size_t chunk, int level) {
  ChunkRow row;
  row.chunk = chunk;
  std::set<std::string> seen;
  std::vector<unsigned char> out(ZSTD_compressBound(chunk)), back(chunk);
  double comp_s = 0, decomp_s = 0;
  std::size_t stored = 0, comp_in = 0, decomp_out = 0;
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  for (std::size_t off = 0; off < data.size(); off += chunk) {
    const std::size_t n = std::min(chunk, data.size() - off);
    ++row.count;
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data.data() + off, n, md, &len, EVP_sha256(), nullptr);
    if (!seen.insert(std::string(reinterpret_cast<char*>(md), 32)).second) continue;
    auto t0 = Clock::now();
    const std::size_t c = ZSTD_compressCCtx(cctx, out.data(), out.size(), data.data() + off, n, level);
    comp_s += seconds_since(t0);
    comp_in += n;
    if (c * 10 <= n * 9) {
      ++row.compressed;
      stored += c;
      t0 = Clock::now();
      ZSTD_decompressDCtx(dctx, back.data(), back.size(), out.data(), c);
      decomp_s += seconds_since(t0);
      decomp_out += n;
    } else {
      stored += n;
    }
  }
  ZSTD_freeCCtx(cctx);
  ZSTD_freeDCtx(dctx);
  row.distinct = seen.size();
  row.stored_ratio = static_cast<double>(stored) / static_cast<double>(data.size());
  row.comp_mb_s = static_cast<double>(comp_in) / 1e6 / comp_s;
  row.decomp_mb_s = decomp_s > 0 ? static_cast<double>(decomp_out) / 1e6 / decomp_s : 0;
  row.decomp_ms = decomp_s > 0 ? 1e3 * decomp_s / static_cast<double>(row.compressed) : 0;
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  std::string file;
  std::vector<std::size_t> sizes_kib{256, 512, 1024, 2048, 4096};
  int level = 3;
  CLI::App app{"vigo-bench-chunks: hash throughput and chunk-size trade-offs", "vigo-bench-chunks"};
  app.add_option("--file", file, "Sample file (a disk image or checkpoint)")->required();
  app.add_option("--sizes-kib", sizes_kib, "Chunk sizes to compare, in KiB");
  app.add_option("--zstd-level", level, "zstd level");
  CLI11_PARSE(app, argc, argv);

  std::ifstream in{file, std::ios::binary};
  std::vector<unsigned char> data{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  if (data.size() < (4u << 20)) {
    std::cerr << "sample must be at least 4 MiB\n";
    return 2;
  }
  std::vector<unsigned char> sample(data.begin(), data.begin() + std::min<std::size_t>(data.size(), 256u << 20));
  std::printf("| hash (OpenSSL EVP, 1 MiB blocks, 1 core) | MB/s |\n|---|---|\n");
  std::printf("| SHA-256 | %.0f |\n", hash_mb_per_s(EVP_sha256(), sample, 2));
  std::printf("| BLAKE2b-512 | %.0f |\n", hash_mb_per_s(EVP_blake2b512(), sample, 2));
  std::printf("| BLAKE2s-256 | %.0f |\n\n", hash_mb_per_s(EVP_blake2s256(), sample, 2));

  std::printf("sample: %s, %zu bytes, zstd level %d\n\n", file.c_str(), data.size(), level);
  std::printf(
      "| chunk | chunks | distinct | stored compressed | stored/raw after dedup | zstd MB/s | unzstd MB/s "
      "| unzstd ms per chunk | manifest KiB |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (std::size_t kib : sizes_kib) {
    const ChunkRow r = measure(data, kib << 10, level);
    std::printf("| %zu KiB | %zu | %zu | %.0f%% | %.3f | %.0f | %.0f | %.2f | %.1f |\n", kib, r.count, r.distinct,
                100.0 * static_cast<double>(r.compressed) / static_cast<double>(r.distinct), r.stored_ratio,
                r.comp_mb_s, r.decomp_mb_s, r.decomp_ms, static_cast<double>(r.count) * 40 / 1024);
  }
  return 0;
}
