// SPDX-License-Identifier: Apache-2.0
// Testbed: what bench/instantiation measures through, all real and on this
// machine: the local stack of `vigo up` (cli/local_stack.h: PostgreSQL with
// the GIS, a loopback sshd in front of the vigo-imaged store, vigod with
// its TLS API) and five further GIS hosts of this machine that vigod drives
// through the same libvirt, one per way a host can reach the images, each a
// [hosts.NAME] whose images directory is:
//   local      plain files on the local disk (work/files/images)
//   vfs-lan    a vigo-fs mount, ssh to sshd on loopback
//   vfs-wan    a vigo-fs mount, ssh through a vigo-wan-relay (RTT, rate)
//   sshfs-lan  an sshfs mount of work/files, the same sshd, key and cipher
//   sshfs-wan  the same through a relay of its own
// A workspace lands on one by the placement label cell=<source name>.
// mount() makes a source's mount afresh (a new process, an empty page
// cache, for vigo-fs an empty chunk cache unless told to keep it);
// everything is unmounted and stopped by the destructor, also after a
// failure. Not thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <string>

#include "local_stack.h"
#include "vigo/common/subprocess.h"
#include "vigo/web/api_client.h"

namespace vigo::bench {

enum class Source { kLocal, kVfsLan, kVfsWan, kSshfsLan, kSshfsWan };
inline constexpr std::array kSources{Source::kLocal, Source::kVfsLan, Source::kVfsWan, Source::kSshfsLan,
                                     Source::kSshfsWan};
[[nodiscard]] const char* source_name(Source s);  // "local", "vfs-lan", ...
[[nodiscard]] bool is_wan(Source s);
[[nodiscard]] bool is_vigo_fs(Source s);

struct TestbedOptions {
  std::filesystem::path work;          // an empty directory of the caller's
  std::filesystem::path profiles_dir;  // vigod's VM profiles
  std::filesystem::path relay;         // the vigo-wan-relay binary
  int delay_ms = 20;                   // each way
  int rate_mbit = 100;                 // each way
  int connections = 4;                 // vigo-fs --connections, sshfs max_conns
};

struct MountOptions {
  bool keep_cache = false;    // vigo-fs: mount on the chunk cache the last mount left
  bool working_sets = true;   // vigo-fs: record and replay working-set profiles
};

class Testbed {
 public:
  Testbed(TestbedOptions options, std::ostream& log);
  ~Testbed();
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  // Starts the stack and the relays (throws naming what failed).
  void start();
  // Unmounts what is mounted for `s` and mounts it again; for local, nothing.
  void mount(Source s, const MountOptions& options = {});
  void unmount(Source s);
  // Bytes that came from the image server through the current mount so far:
  // vigo-fs's bytes_fetched (chunk bytes as sent, compressed where stored
  // so); sshfs's bytes read from its ssh (SFTP replies); local: 0.
  [[nodiscard]] std::uint64_t bytes_fetched(Source s) const;
  // vigo-fs: waits until nothing is queued or in flight (background fills,
  // prefetch) and no working-set profile is being stored.
  void wait_idle(Source s, std::chrono::seconds timeout) const;
  // The vigo-fs status file's JSON (empty object for others).
  [[nodiscard]] std::string status_json(Source s) const;
  // Drops the page cache of the store's files and the plain files, so that
  // a cold read comes from disk on the server side too.
  void evict_server_files() const;

  [[nodiscard]] std::unique_ptr<web::ApiClient> client() const;  // the demo user's
  [[nodiscard]] const LocalSshd& sshd() const;
  [[nodiscard]] const cli::LocalStackInfo& info() const;
  [[nodiscard]] std::filesystem::path files_images() const { return o_.work / "files" / "images"; }
  [[nodiscard]] std::filesystem::path store() const;
  [[nodiscard]] std::filesystem::path images_dir(Source s) const;

 private:
  struct Mount {
    std::unique_ptr<Subprocess> process;
    std::filesystem::path dir;
  };
  [[nodiscard]] std::filesystem::path mount_dir(Source s) const;
  [[nodiscard]] std::uint16_t port_for(Source s) const;
  void start_relay(Source s);

  TestbedOptions o_;
  std::ostream& log_;
  std::unique_ptr<cli::LocalStack> stack_;
  std::map<Source, std::unique_ptr<Subprocess>> relays_;
  std::map<Source, std::uint16_t> relay_ports_;
  std::map<Source, Mount> mounts_;
};

}  // namespace vigo::bench
