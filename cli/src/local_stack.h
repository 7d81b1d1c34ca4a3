// SPDX-License-Identifier: Apache-2.0
// LocalStack: the whole of vigo on this machine, as `vigo up` runs it, every
// part real and kept in one state directory:
//   pg/        a private PostgreSQL cluster (unless a database URL is given):
//              database `vigo` (the real grid: this machine) and `vigo_demo`
//              (the demo grid of the GIS tour)
//   sshd/      a loopback sshd with generated keys (common/local_sshd.h)
//   store/     vigo-imaged's image store; the demo guest published there
//   cache/ mnt/ vigo-fs: its chunk cache and its mount, reaching the store
//              through `ssh ... vigo-imaged --stdio`
//   tls/       vigod's self-signed certificate (cert.pem is also the CA file)
//   tokens/    the demo user's and the admin's bearer tokens (mode 0600)
//   vms/       vigod's per-VM files (overlays, consoles)
//   logs/      every part's log
//   vigod.toml vigod's configuration; vigo.toml the CLI's (database, API)
// start() brings the parts up in that order, registers this machine as the
// GIS host `local` (label local=true), and (unless told not to) creates the
// demo user's workspace `demo` through the API and waits until it runs.
// stop() (also the destructor) deletes every workspace through the API so
// that no domain or claim is left, then stops vigod, unmounts vigo-fs and
// stops sshd and PostgreSQL; it never throws. Keys, tokens, certificate,
// store and cache are kept, so a second start is fast. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace vigo {
class LocalSshd;
}

namespace vigo::cli {

// A further GIS host of this machine that vigod drives through the same
// libvirt (bench/instantiation: one per way of reaching the images):
// registered like `local`, with these labels, and vigod's [hosts.NAME]
// with images_dir (kept by the caller) and state dir vms-NAME/.
struct LocalStackHost {
  std::string name;
  std::filesystem::path images_dir;
  std::map<std::string, std::string> labels;
};

struct LocalStackOptions {
  std::filesystem::path state_dir;
  std::string database_url;         // empty: the private cluster in state_dir/pg
  std::uint16_t api_port = 8443;    // 0: a free port
  std::string libvirt_uri = "qemu:///system";
  std::string accelerator = "tcg";  // or kvm
  std::string domain_prefix = "vigo-";  // libvirt domain names: <prefix><vm id>
  bool demo_workspace = true;
  // Only the database: the GIS schema and the demo grid, nothing else.
  bool gis_only = false;
  std::chrono::seconds ready_timeout{300};
  // Where the binaries and the demo guest are; empty: next to this vigo
  // binary in the build tree (../web/vigod, ../imageserver/vigo-imaged,
  // ../vfs-proxy/vigo-fs, ../guest), or $VIGO_VIGOD, $VIGO_IMAGED, $VIGO_FS,
  // $VIGO_GUEST_DIR.
  std::filesystem::path vigod, imaged, vigo_fs, guest_dir;
  // vigod's profiles (empty: the demo guest's directory, profile tiny).
  std::filesystem::path profiles_dir;
  std::vector<LocalStackHost> extra_hosts;
};

struct LocalStackInfo {
  std::string api_url;       // https://127.0.0.1:PORT
  std::string database_url;  // the real grid
  std::string demo_database_url;
  std::filesystem::path ca_file;
  std::string demo_token, admin_token;
  std::optional<std::int64_t> demo_workspace;
  std::filesystem::path store_dir, imaged, vigo_fs, guest_dir;
};

class LocalStack {
 public:
  LocalStack(LocalStackOptions options, std::ostream& progress);
  ~LocalStack();
  LocalStack(const LocalStack&) = delete;
  LocalStack& operator=(const LocalStack&) = delete;

  // Throws vigo::Error naming the part that failed (what started is stopped
  // again by stop()).
  void start();
  void stop() noexcept;
  [[nodiscard]] const LocalStackInfo& info() const;
  // The loopback sshd in front of the store (after start()).
  [[nodiscard]] const LocalSshd& sshd() const;
  // Kills vigod with SIGKILL, as a crash would (no shutdown, no cleanup),
  // and starts it again: it reconciles what the dead one left, then listens
  // (info().api_url may change with api_port 0). For the crash tests.
  void kill_and_restart_vigod();

  struct Parts;

 private:
  std::unique_ptr<Parts> parts_;
};

}  // namespace vigo::cli
