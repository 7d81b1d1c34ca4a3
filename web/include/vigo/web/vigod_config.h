// SPDX-License-Identifier: Apache-2.0
// VigodConfig: vigod's settings from its TOML file (with VIGO_* environment
// and flag overrides, common/config.h), checked as a whole before anything
// starts. Keys (docs/operations.md has the full table):
//   [database] url (required), pool
//   [api] listen ("127.0.0.1:8443"), cert, key (required), io_threads,
//         handler_threads, rate_per_token, burst_per_token, body_limit_kib
//   [scheduler] profiles_dir, domain_prefix, readiness_timeout_s,
//         reconcile_interval_s, checkpoint_tick_s, accelerator (tcg|kvm|auto),
//         host_silence_s, heartbeat_interval_s
//   [imageserver] name, store, imaged
//   [host] name, uri, images_dir, state_dir   (this machine), and/or
//   [hosts.NAME] uri, images_dir, state_dir   (more hosts, e.g. remote ones
//         over qemu+ssh://, or parts of this machine with their own
//         images_dir); no host at all: a GIS-only vigod
//         + ssh, ssh_config, agent: a host that is another machine, whose
//         VM files the host agent does there (host_files.h); its
//         images_dir and state_dir are paths on that machine; a uri that
//         names a machine needs ssh, and ssh such a uri
//   [scheduler] staging_dir: where remote hosts' checkpoint files are
//         fetched to before they are published (required with any ssh host)
//   [log] level
// Errors are kInvalidArgument naming the key. Plain value.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vigo/common/config.h"
#include "vigo/web/api.h"
#include "vigo/web/https_server.h"

namespace vigo::web {

struct VigodHost {
  std::string name, uri;
  std::filesystem::path images_dir, state_dir;
  std::string ssh;                  // ssh destination ([user@]host); empty: this machine
  std::filesystem::path ssh_config;  // ssh -F file; empty: the user's own configuration
  std::string agent = "vigo-host";  // the host agent's command there
};

struct VigodConfig {
  std::string database_url;
  std::size_t database_pool = 8;
  ServerOptions server;
  ApiOptions api;
  std::vector<VigodHost> hosts;  // [host] first, then [hosts.NAME] by name; empty: GIS-only
  std::filesystem::path profiles_dir;
  std::filesystem::path staging_dir;  // set when a host has ssh
  std::string domain_prefix = "vigo-";
  std::chrono::seconds readiness_timeout{180};
  std::chrono::seconds reconcile_interval{60};
  std::chrono::seconds checkpoint_tick{5};
  std::string accelerator = "tcg";   // "auto": probed per hypervisor at start
  std::chrono::seconds host_silence{60};       // 0: no heartbeats, no failover
  std::chrono::seconds heartbeat_interval{10};
  std::string image_server;            // GIS name
  std::filesystem::path store;         // vigo-imaged's --root, for publishing checkpoints
  std::filesystem::path imaged;        // the vigo-imaged binary
  std::string log_level = "info";
};

[[nodiscard]] VigodConfig read_vigod_config(const Config& config);

}  // namespace vigo::web
