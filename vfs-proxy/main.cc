// SPDX-License-Identifier: Apache-2.0
// vigo-fs: mounts a vigo image server through FUSE: its images, read-only
// and cached, and the connection user's data tree, read-write.
// Parses the command line, validates it, and wires the chunk cache, the
// connection pool, the fetcher and the filesystem together
// (docs/vfs-proxy.md, "The proxy").
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/common/system.h"
#include "vigo/vfs/command_line.h"
#include "vigo/vfs/connection_pool.h"
#include "vigo/vfs/fetcher.h"
#include "vigo/vfs/proxy_fs.h"

namespace {

namespace fs = std::filesystem;
using namespace vigo;

struct Options {
  std::string server;
  std::string cache;
  std::uint64_t cache_quota_mb = 8192;
  std::string mount;
  int connections = 4;
  int lanes = 4;
  std::int64_t read_timeout_ms = 30000;
  std::uint32_t readahead_chunks = 4;
  std::uint32_t kernel_readahead_kb = 4096;
  bool no_working_sets = false;
  bool no_neighbor_prefetch = false;
  std::int64_t profile_idle_ms = 30000;  // a TCG guest boots its kernel for seconds between the overlay's first read and its own
  std::int64_t profile_window_ms = 120000;
  std::uint32_t prefetch_depth = 8;
  std::int64_t fill_quiet_ms = 100;
  std::int64_t fill_queue = 4096;
  bool foreground = false;
  bool allow_other = false;
  std::string server_stderr;
  std::string log_level = "info";
};

// Where the server command's stderr goes: ours, unless that is a socket
// (which /proc/self/fd/2 cannot reopen), then nowhere.
fs::path default_server_stderr() {
  struct stat st;
  if (::fstat(2, &st) != 0 || S_ISSOCK(st.st_mode)) return {};
  return "/proc/self/fd/2";
}

int run(const Options& o) {
  log::configure(log::parse_level(o.log_level), log::Format::kText);
  const auto argv = vfs::split_command(o.server);
  std::error_code ec;
  if (!fs::is_directory(o.mount, ec)) throw invalid_argument("mount", o.mount + " is not a directory");
  if (o.cache.empty()) throw invalid_argument("cache", "must not be empty");
  fs::create_directories(o.cache, ec);
  if (ec) throw invalid_argument("cache", "cannot create " + o.cache + ": " + ec.message());
  if (o.cache_quota_mb < 64) throw invalid_argument("cache-quota-mb", "must be at least 64");

  vfs::ChunkCache cache{vfs::ChunkCacheOptions{fs::absolute(o.cache), o.cache_quota_mb << 20}};
  vfs::FsOptions fo;
  fo.mountpoint = fs::absolute(o.mount);
  fo.allow_other = o.allow_other;
  fo.readahead_chunks = o.readahead_chunks;
  fo.neighbor_prefetch = !o.no_neighbor_prefetch;
  fo.kernel_readahead_kb = o.kernel_readahead_kb;
  vfs::ProxyFs proxy{fo, cache};
  proxy.mount();
  // Before any thread starts: fuse_daemonize forks.
  if (fuse_daemonize(o.foreground ? 1 : 0) != 0) throw Error{ErrorCode::kInternal, "cannot daemonize"};

  vfs::PoolOptions po;
  po.server_argv = argv;
  po.connections = o.connections;
  po.lanes = o.lanes;
  po.request_timeout = std::chrono::milliseconds{o.read_timeout_ms};
  po.idle_quiet = std::chrono::milliseconds{o.fill_quiet_ms};
  po.idle_queue = static_cast<std::size_t>(o.fill_queue);
  po.command_stderr = o.server_stderr.empty() ? default_server_stderr() : fs::path{o.server_stderr};
  auto pool = std::make_unique<vfs::ConnectionPool>(po);
  auto fetcher = std::make_unique<vfs::Fetcher>(cache, *pool);
  vfs::WorkingSetOptions wo;
  wo.enabled = !o.no_working_sets;
  wo.idle = std::chrono::milliseconds{o.profile_idle_ms};
  wo.window = std::chrono::milliseconds{o.profile_window_ms};
  wo.depth = o.prefetch_depth;
  auto working_sets = std::make_unique<vfs::WorkingSets>(*pool, *fetcher, wo);
  log::info("mounted", {{"mount", fo.mountpoint.string()}, {"connections", o.connections}});
  const int rc = proxy.serve(*pool, *fetcher, *working_sets);
  working_sets.reset();  // stores recordings still open, through the pool
  pool.reset();  // completes every outstanding callback while the fetcher still exists
  fetcher.reset();
  log::info("unmounting", {{"mount", fo.mountpoint.string()}});
  // libfuse reports the signal that stopped the loop as its result.
  return rc == 0 || rc == SIGINT || rc == SIGTERM || rc == SIGHUP ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  vigo::keep_heap_memory();    // chunk buffers are reused, not faulted in afresh
  ::signal(SIGPIPE, SIG_IGN);  // a dead server command is an error, not a signal
  Options o;
  CLI::App app{"vigo-fs: FUSE mount of a vigo image server: images (read-only, cached) and the user's data"};
  app.add_option("--server", o.server, "Command that speaks the protocol on stdin/stdout (ssh ... vigo-imaged --stdio ...)")
      ->required();
  app.add_option("--cache", o.cache, "Local chunk cache directory")->required();
  app.add_option("--cache-quota-mb", o.cache_quota_mb, "Cache size limit in MiB");
  app.add_option("--mount", o.mount, "Mount point (an existing directory)")->required();
  app.add_option("--connections", o.connections, "Parallel connections to the server")->check(CLI::Range(1, 64));
  app.add_option("--lanes", o.lanes, "Requests in flight per connection")->check(CLI::Range(1, 32));
  app.add_option("--read-timeout-ms", o.read_timeout_ms, "Longest wait for the server before a read fails with EIO")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{3600000}));
  app.add_option("--readahead-chunks", o.readahead_chunks, "Chunks fetched ahead of sequential reads")
      ->check(CLI::Range(0, 64));
  app.add_option("--kernel-readahead-kb", o.kernel_readahead_kb,
                 "The kernel's read-ahead on the mount, which caps its read size (root only; 0: leave 128)")
      ->check(CLI::Range(0, 65536));
  app.add_flag("--no-working-sets", o.no_working_sets,
               "Neither record nor replay working-set profiles (prefetch of what a cold start reads)");
  app.add_flag("--no-neighbor-prefetch", o.no_neighbor_prefetch,
               "Do not judge whether random reads cluster: no chunks next to them fetched ahead, every "
               "range-first miss filled lazily (a boot's reads jump around inside a region)");
  app.add_option("--profile-idle-ms", o.profile_idle_ms, "A recording ends after this long without a new chunk")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{3600000}));
  app.add_option("--profile-window-ms", o.profile_window_ms, "A recording ends this long after the first read")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{3600000}));
  app.add_option("--prefetch-depth", o.prefetch_depth, "Working-set chunks in flight per image")
      ->check(CLI::Range(1, 64));
  app.add_option("--fill-quiet-ms", o.fill_quiet_ms,
                 "Chunks that random reads took only a range of are filled once no read has waited this long")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{3600000}));
  app.add_option("--fill-queue", o.fill_queue,
                 "Lazy fills queued at most; the oldest is dropped beyond (its chunk is fetched when read)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1000000}));
  app.add_flag("--foreground,-f", o.foreground, "Stay in the foreground");
  app.add_flag("--allow-other", o.allow_other, "Let other users (e.g. qemu) read the mount");
  app.add_option("--server-stderr", o.server_stderr, "File for the server command's stderr (default: ours)");
  app.add_option("--log-level", o.log_level, "debug, info, warn or error");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const Error& e) {
    std::cerr << "vigo-fs: " << e.what() << "\n";
    return e.code() == ErrorCode::kInvalidArgument ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "vigo-fs: " << e.what() << "\n";
    return 1;
  }
}
