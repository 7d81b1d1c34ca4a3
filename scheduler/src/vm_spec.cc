// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/vm_spec.h"

#include <cstdio>
#include <regex>

#include "vigo/common/digest.h"
#include "vigo/common/error.h"
#include "vigo/common/names.h"

namespace vigo::scheduler {
void check_path(const std::string& field, const std::filesystem::path& p) {
  if (p.empty() || !p.is_absolute()) throw invalid_argument(field, "must be an absolute path, got '" + p.string() + "'");
  const std::string s = p.string();
  if (s.find('\0') != std::string::npos || s.find('\n') != std::string::npos || s.size() > 4096) {
    throw invalid_argument(field, "contains a NUL or newline, or is longer than 4096 bytes");
  }
}

const char* accelerator_name(Accelerator a) { return a == Accelerator::kKvm ? "kvm" : "tcg"; }
const char* disk_format_name(DiskFormat f) { return f == DiskFormat::kRaw ? "raw" : "qcow2"; }

bool is_uuid(const std::string& s) {
  static const std::regex re{"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"};
  return std::regex_match(s, re);
}

bool is_mac(const std::string& s) {
  static const std::regex re{"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"};
  return std::regex_match(s, re) && (std::stoi(s.substr(0, 2), nullptr, 16) & 1) == 0;  // unicast
}

std::string random_uuid() {
  auto b = random_bytes(16);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  const std::string h = to_hex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::string random_mac() {
  const auto b = random_bytes(3);
  char buf[18];
  std::snprintf(buf, sizeof buf, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
  return buf;
}

void VmSpec::validate() const {
  validate_name("vm.name", name);
  if (!is_uuid(uuid)) throw invalid_argument("vm.uuid", "must be a lowercase 8-4-4-4-12 UUID, got '" + uuid + "'");
  if (vcpus < 1 || vcpus > 64) throw invalid_argument("vm.vcpus", "must be 1..64");
  if (memory_mib < 32 || memory_mib > (1u << 20)) throw invalid_argument("vm.memory_mib", "must be 32..1048576");
  if (disks.size() > 16) throw invalid_argument("vm.disks", "at most 16");
  for (std::size_t i = 0; i < disks.size(); ++i) {
    check_path("vm.disks[" + std::to_string(i) + "].path", disks[i].path);
  }
  if (nics.size() > 8) throw invalid_argument("vm.nics", "at most 8");
  for (std::size_t i = 0; i < nics.size(); ++i) {
    const std::string f = "vm.nics[" + std::to_string(i) + "]";
    if (nics[i].network != "user") validate_name(f + ".network", nics[i].network);
    if (!nics[i].mac.empty() && !is_mac(nics[i].mac)) {
      throw invalid_argument(f + ".mac", "must be a unicast lowercase MAC like 52:54:00:12:34:56");
    }
  }
  if (direct_boot) {
    check_path("vm.kernel", direct_boot->kernel);
    if (!direct_boot->initrd.empty()) check_path("vm.initrd", direct_boot->initrd);
    if (direct_boot->cmdline.size() > 2048 || direct_boot->cmdline.find('\0') != std::string::npos) {
      throw invalid_argument("vm.cmdline", "must be at most 2048 bytes without NUL");
    }
  } else if (disks.empty()) {
    throw invalid_argument("vm.disks", "a VM without a kernel boots from its first disk, and it has none");
  }
  check_path("vm.console_log", console_log);
}

}  // namespace vigo::scheduler
