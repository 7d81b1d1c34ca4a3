// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/vm_profile.h"

#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "vigo/common/error.h"
#include "vigo/common/names.h"

namespace vigo::scheduler {
namespace {

namespace fs = std::filesystem;

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    throw invalid_argument("profile." + key, why + " (in " + source_ + ")");
  }

  void only(const toml::table& t, const std::string& where, std::set<std::string> allowed) const {
    for (const auto& [k, v] : t) {
      if (!allowed.contains(std::string{k.str()})) {
        fail(where + std::string{k.str()}, "is not a known key");
      }
    }
  }

  std::string str(const toml::table& t, const std::string& where, const char* key, bool required) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) {
      if (required) fail(where + key, "is required");
      return {};
    }
    if (!n->is_string()) fail(where + key, "must be a string");
    return n->as_string()->get();
  }

  std::int64_t integer(const toml::table& t, const std::string& where, const char* key, std::int64_t def,
                       std::int64_t lo, std::int64_t hi) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return def;
    if (!n->is_integer()) fail(where + key, "must be an integer");
    const std::int64_t v = n->as_integer()->get();
    if (v < lo || v > hi) fail(where + key, "must be " + std::to_string(lo) + ".." + std::to_string(hi));
    return v;
  }

  bool boolean(const toml::table& t, const std::string& where, const char* key, bool def) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return def;
    if (!n->is_boolean()) fail(where + key, "must be true or false");
    return n->as_boolean()->get();
  }

  fs::path path(const toml::table& t, const std::string& where, const char* key, const fs::path& base,
                bool required) const {
    const std::string s = str(t, where, key, required);
    if (s.empty()) {
      if (required) fail(where + key, "must not be empty");
      return {};
    }
    if (s.find('\0') != std::string::npos) fail(where + key, "contains a NUL byte");
    const fs::path p{s};
    return (p.is_absolute() ? p : base / p).lexically_normal();
  }

 private:
  std::string source_;
};

}  // namespace

VmProfile parse_vm_profile(const std::string& text, const fs::path& base_dir, const std::string& source_name) {
  Reader r{source_name};
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    throw invalid_argument("profile", std::string{e.description()} + " at " + where.str() + " (in " + source_name + ")");
  }
  r.only(root, "", {"name", "vcpus", "memory_mib", "boot", "disks", "nics"});
  VmProfile p;
  p.name = r.str(root, "", "name", true);
  if (!is_valid_name(p.name)) r.fail("name", "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$");
  p.vcpus = static_cast<std::uint32_t>(r.integer(root, "", "vcpus", 1, 1, 64));
  p.memory_mib = static_cast<std::uint64_t>(r.integer(root, "", "memory_mib", 256, 32, 1 << 20));

  std::set<std::string> roles;
  if (const toml::node* disks = root.get("disks")) {
    if (!disks->is_array_of_tables()) r.fail("disks", "must be an array of tables ([[disks]])");
    std::size_t i = 0;
    for (const toml::node& n : *disks->as_array()) {
      const std::string where = "disks[" + std::to_string(i++) + "].";
      const toml::table& t = *n.as_table();
      r.only(t, where, {"path", "role", "format", "readonly"});
      ProfileDisk d;
      d.path = r.path(t, where, "path", base_dir, true);
      d.role = r.str(t, where, "role", true);
      if (!is_valid_name(d.role)) r.fail(where + "role", "must follow the name rule");
      if (!roles.insert(d.role).second) r.fail(where + "role", "'" + d.role + "' is used twice");
      const std::string format = r.str(t, where, "format", false);
      if (format.empty() || format == "raw") {
        d.format = DiskFormat::kRaw;
      } else if (format == "qcow2") {
        d.format = DiskFormat::kQcow2;
      } else {
        r.fail(where + "format", "must be raw or qcow2");
      }
      d.readonly = r.boolean(t, where, "readonly", false);
      p.disks.push_back(std::move(d));
    }
    if (p.disks.size() > 16) r.fail("disks", "at most 16");
  }
  if (const toml::node* nics = root.get("nics")) {
    if (!nics->is_array_of_tables()) r.fail("nics", "must be an array of tables ([[nics]])");
    std::size_t i = 0;
    for (const toml::node& n : *nics->as_array()) {
      const std::string where = "nics[" + std::to_string(i++) + "].";
      const toml::table& t = *n.as_table();
      r.only(t, where, {"network", "mac"});
      NicSpec nic{r.str(t, where, "network", true), r.str(t, where, "mac", false)};
      if (nic.network != "user" && !is_valid_name(nic.network)) r.fail(where + "network", "must follow the name rule");
      if (!nic.mac.empty() && !is_mac(nic.mac)) r.fail(where + "mac", "must be a unicast lowercase MAC");
      p.nics.push_back(std::move(nic));
    }
    if (p.nics.size() > 8) r.fail("nics", "at most 8");
  }

  const toml::node* boot_node = root.get("boot");
  if (boot_node == nullptr || !boot_node->is_table()) r.fail("boot", "a [boot] table is required");
  const toml::table& boot = *boot_node->as_table();
  r.only(boot, "boot.", {"kernel", "initrd", "cmdline", "disk"});
  const bool has_kernel = boot.get("kernel") != nullptr;
  const bool has_disk = boot.get("disk") != nullptr;
  if (has_kernel == has_disk) r.fail("boot", "give either kernel (with initrd, cmdline) or disk");
  if (has_kernel) {
    DirectBoot b;
    b.kernel = r.path(boot, "boot.", "kernel", base_dir, true);
    b.initrd = r.path(boot, "boot.", "initrd", base_dir, false);
    b.cmdline = r.str(boot, "boot.", "cmdline", false);
    if (b.cmdline.size() > 2048) r.fail("boot.cmdline", "at most 2048 bytes");
    p.direct_boot = std::move(b);
  } else {
    p.boot_disk_role = r.str(boot, "boot.", "disk", true);
    if (!roles.contains(p.boot_disk_role)) r.fail("boot.disk", "no disk has role '" + p.boot_disk_role + "'");
  }
  return p;
}

VmProfile load_vm_profile(const fs::path& file) {
  std::ifstream in{file, std::ios::binary};
  if (!in) throw Error{ErrorCode::kNotFound, "cannot read profile " + file.string(), "profile"};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_vm_profile(text.str(), fs::absolute(file).parent_path(), file.string());
}

VmSpec to_spec(const VmProfile& profile, const std::string& vm_name, const std::string& uuid,
               const fs::path& console_log, const std::map<std::string, DiskSpec>& disk_paths) {
  VmSpec s;
  s.name = vm_name;
  s.uuid = uuid;
  s.vcpus = profile.vcpus;
  s.memory_mib = profile.memory_mib;
  s.direct_boot = profile.direct_boot;
  s.console_log = console_log;
  s.nics = profile.nics;
  auto disk_of = [&](const ProfileDisk& d) {
    auto it = disk_paths.find(d.role);
    return it != disk_paths.end() ? it->second : DiskSpec{d.path, d.format, d.readonly};
  };
  for (const auto& d : profile.disks) {
    if (d.role == profile.boot_disk_role) s.disks.push_back(disk_of(d));
  }
  for (const auto& d : profile.disks) {
    if (d.role != profile.boot_disk_role) s.disks.push_back(disk_of(d));
  }
  s.validate();
  return s;
}

}  // namespace vigo::scheduler
