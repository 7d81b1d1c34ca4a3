// SPDX-License-Identifier: Apache-2.0
// Test support for vigo-fs: a hermetic image store (images published with
// the real `vigo-imaged publish`), a real sshd (SshdFixture), and the real
// vigo-fs binary mounting the store through `ssh ... vigo-imaged --stdio`
// on a temporary mount point (or through another server command), with its
// cache in the same temporary directory. The destructor always unmounts (SIGTERM, then SIGKILL and
// `fusermount3 -u -z`), also when the test failed. Not thread-safe (the
// test's main thread drives it; reading the mount from threads is fine).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/pg_fixture.h"
#include "support/sshd_fixture.h"
#include "vigo/common/subprocess.h"

namespace vigo::testing {

struct FsStartOptions {
  int connections = 4;
  int read_timeout_ms = 30000;
  int readahead_chunks = 4;
  int cache_quota_mb = 8192;
  bool working_sets = true;    // record and replay working-set profiles
  bool neighbor_prefetch = true;  // fetch the chunks next to random reads ahead
  int profile_idle_ms = 5000;  // a recording ends after this long without a new chunk
  int fill_quiet_ms = 100;     // lazy fills wait this long after the last urgent request
  int fill_queue = 4096;       // lazy fills queued at most (the oldest is dropped)
  // The --server command, word by word; empty: ssh to the fixture's sshd
  // running `vigo-imaged --stdio --root <store()> --user alice`.
  std::vector<std::string> server_argv{};
};

class VfsFixture {
 public:
  VfsFixture();
  ~VfsFixture();
  VfsFixture(const VfsFixture&) = delete;
  VfsFixture& operator=(const VfsFixture&) = delete;

  // Writes bytes to a file and publishes it as the next version of `name`.
  void publish(const std::string& name, const std::vector<std::uint8_t>& bytes, std::uint32_t chunk_kib = 1024);
  void publish_file(const std::string& name, const std::filesystem::path& file, std::uint32_t chunk_kib = 1024);

  // Starts vigo-fs in the foreground and waits until the mount answers.
  void start_fs(const FsStartOptions& o = {});
  // SIGTERM and wait for a clean exit (its status), unmounting if it did not.
  int stop_fs();
  // SIGKILL, then fusermount3 -u (falling back to -u -z).
  void kill_fs();
  [[nodiscard]] pid_t fs_pid() const;
  // The ssh client processes vigo-fs started (its children).
  [[nodiscard]] std::vector<pid_t> fs_children() const;

  [[nodiscard]] std::filesystem::path mount() const { return dir_.path() / "mnt"; }
  [[nodiscard]] std::filesystem::path cache() const { return dir_.path() / "cache"; }
  // The image server's store, and alice's data tree in it (the mount's user).
  [[nodiscard]] std::filesystem::path store() const { return dir_.path() / "store"; }
  [[nodiscard]] std::filesystem::path server_data() const { return store() / "data" / "alice"; }
  [[nodiscard]] std::filesystem::path image(const std::string& file) const { return mount() / "images" / file; }
  [[nodiscard]] nlohmann::json status() const;
  [[nodiscard]] std::string fs_log() const;
  [[nodiscard]] SshdFixture& sshd() { return sshd_; }

 private:
  void unmount();
  void reap_servers();

  TempDir dir_{"vigo-vfs-itest"};
  SshdFixture sshd_;
  std::unique_ptr<Subprocess> fs_;
  int published_ = 0;
};

[[nodiscard]] std::string vigo_fs_path();
// Every byte of [offset, offset + length) of a file through pread (short at
// the end); throws std::system_error with the errno on a failed read.
[[nodiscard]] std::vector<std::uint8_t> read_range(const std::filesystem::path& file, std::uint64_t offset,
                                                   std::size_t length);

}  // namespace vigo::testing
