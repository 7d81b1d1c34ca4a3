// SPDX-License-Identifier: Apache-2.0
// The one-time and idempotent steps of the local stack (local_stack.h) that
// make files and GIS rows, each safe to repeat on a second `vigo up`:
// finding the binaries, the self-signed certificate, the tokens, the GIS
// rows for this machine and the demo guest, and the two TOML files; and the
// small file and mount helpers the stack (and bench/instantiation) use.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <string>

#include "local_stack.h"
#include "vigo/common/local_sshd.h"
#include "vigo/common/subprocess.h"
#include "vigo/gis/database.h"

namespace vigo::cli {

// `explicit_path` if set, else $env_var if set, else <dir of this binary>/
// relative; kNotFound naming what is missing (and how to build it).
[[nodiscard]] std::filesystem::path locate(const std::filesystem::path& explicit_path, const char* env_var,
                                           const std::filesystem::path& relative, const std::string& what);

// tls/cert.pem and tls/key.pem (a self-signed P-256 certificate for
// 127.0.0.1 and localhost, made by the openssl command) unless both exist.
void ensure_certificate(const std::filesystem::path& dir);

// The token in `file` if it still verifies for `user`, else a new one
// issued and written there (its directory is made mode 0700).
[[nodiscard]] std::string ensure_token(gis::Database& db, const std::filesystem::path& file,
                                       const std::string& user);

// Site, network, image server, the demo and admin users, and this machine
// as host `local` (its CPUs, memory and the state directory's disk; label
// local=true). Rows that exist are kept; the host's figures are updated.
// The extra hosts (local_stack.h) are registered the same way, with their labels.
void register_local_grid(gis::Database& db, const std::string& libvirt_uri, const std::filesystem::path& state_dir,
                         std::uint16_t sshd_port, const std::vector<LocalStackHost>& extra_hosts = {});

// The demo guest's root disk as image tiny-root on the store and in the GIS,
// unless the GIS already has it. True when it was published now.
bool ensure_demo_image(gis::Database& db, const std::filesystem::path& imaged, const std::filesystem::path& store,
                       const std::filesystem::path& guest_dir);

// A TOML basic string (quoted, escaped).
[[nodiscard]] std::string toml_quote(const std::string& s);

// Writes text to dir/name atomically and durably (common/file_util.h).
void write_text_atomic(const std::filesystem::path& file, const std::string& text);

// A file's last max_bytes (for an error message quoting a log); its whole
// text is vigo::read_text_file (common/file_util.h).
[[nodiscard]] std::string tail_of(const std::filesystem::path& file, std::size_t max_bytes = 2000);

// Whether dir is a mount point (/proc/self/mounts); a lazy FUSE unmount of
// it if it is (a mount left by a killed process).
[[nodiscard]] bool is_mounted(const std::filesystem::path& dir);
void unmount_lazily(const std::filesystem::path& dir);

// vigo-fs's --server: `ssh ... <imaged> --stdio --root <store> --user demo`
// as one shell command, to the sshd's port or to `port` (a relay).
[[nodiscard]] std::string imaged_over_ssh(const LocalSshd& sshd, const std::filesystem::path& imaged,
                                          const std::filesystem::path& store, std::uint16_t port = 0);

// Waits until `dir` is a mount point and `ready` (if given) says so too.
// kUnavailable with the tail of `log` when `process` exits first, kTimeout
// after `timeout`; `what` names the filesystem in both.
void wait_for_mount(const std::filesystem::path& dir, Subprocess& process, const std::filesystem::path& log,
                    std::chrono::seconds timeout, const std::string& what,
                    const std::function<bool()>& ready = {});

// Waits until `out` (a process's stdout) holds a whole line with `marker`
// and returns the rest of that line. kUnavailable with the tail of `log`
// when `process` exits first, kTimeout after `timeout`.
[[nodiscard]] std::string wait_for_marker(const std::filesystem::path& out, const std::string& marker,
                                          Subprocess& process, const std::filesystem::path& log,
                                          std::chrono::seconds timeout, const std::string& what);

}  // namespace vigo::cli
