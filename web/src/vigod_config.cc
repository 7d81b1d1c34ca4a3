// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/vigod_config.h"

#include <unistd.h>

#include <algorithm>

#include "vigo/common/error.h"
#include "vigo/common/names.h"

namespace vigo::web {
namespace {

std::string required(const Config& c, std::string_view key) {
  auto v = c.get_string(key);
  if (!v || v->empty()) throw invalid_argument(std::string{key}, "is required");
  return *v;
}

std::filesystem::path absolute_path(const Config& c, std::string_view key) {
  std::filesystem::path p = required(c, key);
  if (!p.is_absolute()) throw invalid_argument(std::string{key}, "'" + p.string() + "' must be an absolute path");
  return p;
}

// A host's keys under `table` ("host" or "hosts.NAME").
VigodHost read_host(const Config& c, const std::string& table, const std::string& name) {
  VigodHost h;
  h.name = name;
  h.uri = c.get_string(table + ".uri", "qemu:///system");
  h.images_dir = absolute_path(c, table + ".images_dir");
  h.state_dir = absolute_path(c, table + ".state_dir");
  h.ssh = c.get_string(table + ".ssh", "");
  // The destination is one ssh word: never an option, never split.
  if (!h.ssh.empty() && (h.ssh.front() == '-' || h.ssh.size() > 255 ||
                         h.ssh.find_first_of(" \t\n\r'\"\\;|&$`<>()") != std::string::npos)) {
    throw invalid_argument(table + ".ssh", "'" + h.ssh + "' is not an ssh destination ([user@]host)");
  }
  if (c.get_string(table + ".ssh_config")) {
    if (h.ssh.empty()) throw invalid_argument(table + ".ssh_config", "is for a host with ssh");
    h.ssh_config = absolute_path(c, table + ".ssh_config");
    if (access(h.ssh_config.c_str(), R_OK) != 0) {
      throw invalid_argument(table + ".ssh_config", "'" + h.ssh_config.string() + "' cannot be read");
    }
  }
  // libvirt and the files must be on the same machine: a URI naming a
  // machine (qemu+ssh://node-2/system) goes with ssh, and ssh with one.
  const bool remote_uri = [&] {
    const auto scheme_end = h.uri.find("://");
    return scheme_end != std::string::npos && h.uri.size() > scheme_end + 3 && h.uri[scheme_end + 3] != '/';
  }();
  if (!h.ssh.empty() && !remote_uri) {
    throw invalid_argument(table + ".uri", "'" + h.uri + "' is this machine's libvirt, but the host has ssh: give "
                                          "its own (qemu+ssh://...)");
  }
  if (h.ssh.empty() && remote_uri) {
    throw invalid_argument(table + ".ssh", "is required for '" + h.uri + "': the VMs' files are on that machine");
  }
  h.agent = c.get_string(table + ".agent", "vigo-host");
  if (h.agent.empty() || h.agent.find('\0') != std::string::npos) {
    throw invalid_argument(table + ".agent", "must name the host agent's command");
  }
  return h;
}

// The directory of the running executable (for the default vigo-imaged).
std::filesystem::path self_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path{} : exe.parent_path();
}

}  // namespace

VigodConfig read_vigod_config(const Config& c) {
  VigodConfig v;
  v.database_url = required(c, "database.url");
  v.database_pool = static_cast<std::size_t>(c.get_int("database.pool", 8, 1, 256));

  const std::string listen = c.get_string("api.listen", "127.0.0.1:8443");
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw invalid_argument("api.listen", "'" + listen + "' is not address:port");
  }
  v.server.address = listen.substr(0, colon);
  if (v.server.address.size() > 2 && v.server.address.front() == '[' && v.server.address.back() == ']') {
    v.server.address = v.server.address.substr(1, v.server.address.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    throw invalid_argument("api.listen", "'" + listen + "' has a bad port");
  }
  v.server.port = static_cast<std::uint16_t>(std::stoi(port));
  v.server.cert_file = absolute_path(c, "api.cert");
  v.server.key_file = absolute_path(c, "api.key");
  v.server.io_threads = static_cast<int>(c.get_int("api.io_threads", 2, 1, 64));
  v.server.handler_threads = static_cast<int>(c.get_int("api.handler_threads", 8, 1, 256));
  v.server.body_limit = static_cast<std::size_t>(c.get_int("api.body_limit_kib", 1024, 1, 64 * 1024)) * 1024;
  v.api.rate_per_token = static_cast<double>(c.get_int("api.rate_per_token", 200, 1, 1'000'000));
  v.api.burst_per_token = static_cast<double>(c.get_int("api.burst_per_token", 400, 1, 1'000'000));

  v.log_level = c.get_string("log.level", "info");

  if (c.get_string("host.name")) {
    const std::string name = required(c, "host.name");
    validate_name("host.name", name);
    v.hosts.push_back(read_host(c, "host", name));
  }
  for (const std::string& name : c.tables_under("hosts")) {
    const std::string key = "hosts." + name;
    validate_name(key, name);
    VigodHost h = read_host(c, key, name);
    for (const VigodHost& other : v.hosts) {
      if (other.name == h.name) throw invalid_argument(key, "host " + name + " is given twice");
      if (other.ssh == h.ssh && other.state_dir.lexically_normal() == h.state_dir.lexically_normal()) {
        throw invalid_argument(key + ".state_dir", "is host " + other.name + "'s state directory too");
      }
    }
    v.hosts.push_back(std::move(h));
  }
  if (!v.hosts.empty()) {
    v.profiles_dir = absolute_path(c, "scheduler.profiles_dir");
    if (std::any_of(v.hosts.begin(), v.hosts.end(), [](const VigodHost& h) { return !h.ssh.empty(); })) {
      v.staging_dir = absolute_path(c, "scheduler.staging_dir");
    }
    v.image_server = required(c, "imageserver.name");
    v.store = absolute_path(c, "imageserver.store");
    v.imaged = c.get_string("imageserver.imaged", (self_dir() / ".." / "imageserver" / "vigo-imaged").string());
    if (access(v.imaged.c_str(), X_OK) != 0) {
      throw invalid_argument("imageserver.imaged", "'" + v.imaged.string() + "' is not an executable");
    }
    // Image uploads go next to the host's VM files unless said otherwise.
    v.api.upload_dir = c.get_string("api.upload_dir") ? absolute_path(c, "api.upload_dir")
                                                    : v.hosts.front().state_dir / "uploads";
    v.api.max_upload_bytes = static_cast<std::uint64_t>(c.get_int("api.max_upload_gib", 64, 1, 1 << 20)) << 30;
    v.api.max_uploads_per_user = static_cast<int>(c.get_int("api.max_uploads_per_user", 4, 1, 1000));
  }
  v.domain_prefix = c.get_string("scheduler.domain_prefix", "vigo-");
  if (v.domain_prefix.empty() || v.domain_prefix.size() > 32 ||
      v.domain_prefix.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") != std::string::npos) {
    throw invalid_argument("scheduler.domain_prefix", "must be 1-32 characters of a-z, 0-9, '-', '_'");
  }
  v.readiness_timeout = std::chrono::seconds{c.get_int("scheduler.readiness_timeout_s", 180, 5, 3600)};
  v.reconcile_interval = std::chrono::seconds{c.get_int("scheduler.reconcile_interval_s", 60, 0, 86400)};
  v.checkpoint_tick = std::chrono::seconds{c.get_int("scheduler.checkpoint_tick_s", 5, 0, 3600)};
  v.accelerator = c.get_string("scheduler.accelerator", "tcg");
  if (v.accelerator != "tcg" && v.accelerator != "kvm" && v.accelerator != "auto") {
    throw invalid_argument("scheduler.accelerator", "must be \"tcg\", \"kvm\" or \"auto\"");
  }
  v.host_silence = std::chrono::seconds{c.get_int("scheduler.host_silence_s", 60, 0, 86400)};
  v.heartbeat_interval = std::chrono::seconds{c.get_int("scheduler.heartbeat_interval_s", 10, 1, 3600)};
  if (v.host_silence.count() > 0 && v.host_silence < 2 * v.heartbeat_interval) {
    throw invalid_argument("scheduler.host_silence_s",
                           "must be 0 (off) or at least twice scheduler.heartbeat_interval_s");
  }
  return v;
}

}  // namespace vigo::web
