// SPDX-License-Identifier: Apache-2.0
// Synthetic libvirt save files for tests (the XML and cookie are those of a
// real save of the tiny guest, with other paths): a Synthetic's fields can
// be spoiled one at a time; clone identities; reading a FIFO as a restore
// would. Shared by save_file_test.cc and remote_host_files_itest.cc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>

#include "vigo/scheduler/save_file.h"

namespace vigo::scheduler::synthetic {

namespace fs = std::filesystem;

inline constexpr const char* kXml = R"(<domain type='qemu'>
  <name>parent</name>
  <uuid>11111111-2222-4333-8444-555555555555</uuid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>/srv/guest/vmlinuz</kernel>
    <cmdline>console=ttyS0 root=/dev/vda rw quiet panic=-1</cmdline>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/vigo/parent.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/mnt/vigo/images/data'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:aa:bb:01'/>
      <model type='virtio'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:aa:bb:02'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='/var/lib/vigo/parent.console' append='on'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
    </serial>
    <console type='file'>
      <source path='/var/lib/vigo/parent.console' append='on'/>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
</domain>
)";

inline constexpr const char* kCookie = R"(<cookie>
  <cpu mode='custom' match='exact' check='full'>
    <model fallback='forbid'>qemu64</model>
  </cpu>
</cookie>
)";

inline void put_u32(std::string& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A save file as libvirt writes one; fields can be spoiled one at a time.
struct Synthetic {
  std::string magic = "LibvirtQemudSave";
  std::uint32_t version = 2;
  std::optional<std::uint32_t> data_len;       // default: XML + cookie + 64 KiB, as libvirt does
  std::optional<std::uint32_t> announced_len;  // in the header only (default: data_len)
  std::uint32_t was_running = 1;
  std::uint32_t compressed = 0;
  std::optional<std::uint32_t> cookie_offset;  // default: right after the XML's NUL
  std::string xml = kXml;
  std::string cookie = kCookie;
  bool xml_nul = true;
  bool cookie_nul = true;
  std::string stream;

  [[nodiscard]] std::string area() const {
    std::string a = xml;
    if (xml_nul) a.push_back('\0');
    if (!cookie.empty()) {
      a += cookie;
      if (cookie_nul) a.push_back('\0');
    }
    return a;
  }
  [[nodiscard]] std::uint32_t len() const {
    return data_len.value_or(static_cast<std::uint32_t>(area().size() + 65536));
  }
  [[nodiscard]] std::string bytes() const {
    std::string b = magic;
    put_u32(b, version);
    put_u32(b, announced_len.value_or(len()));
    put_u32(b, was_running);
    put_u32(b, compressed);
    put_u32(b, cookie_offset.value_or(cookie.empty() ? 0 : static_cast<std::uint32_t>(xml.size() + 1)));
    b.append(14 * 4, '\0');
    std::string a = area();
    a.resize(std::max<std::size_t>(a.size(), len()), '\0');
    b += a.substr(0, std::min<std::size_t>(a.size(), len()));
    b += stream;
    return b;
  }
};

inline std::string random_stream(std::size_t n, unsigned seed = 7) {
  std::mt19937 rng{seed};
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

inline void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out{p, std::ios::binary | std::ios::trunc};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline CloneIdentity clone_identity(int i = 1) {
  CloneIdentity id;
  id.name = "clone-" + std::to_string(i);
  id.uuid = "99999999-2222-4333-8444-00000000000" + std::to_string(i);
  id.macs = {"52:54:00:cc:00:0" + std::to_string(i), "52:54:00:dd:00:0" + std::to_string(i)};
  id.disks = {{"vda", "/var/lib/vigo/clone-" + std::to_string(i) + ".qcow2"}};
  id.console_log = "/var/lib/vigo/clone-" + std::to_string(i) + ".console";
  return id;
}

// What a reader of a FIFO gets: all bytes until the writer closes it, or
// the first `limit` bytes (then it closes its end).
inline std::string read_fifo(const fs::path& fifo, std::size_t limit = std::string::npos) {
  std::ifstream in{fifo, std::ios::binary};
  std::string out;
  char buf[65536];
  while (out.size() < limit && in) {
    in.read(buf, static_cast<std::streamsize>(std::min(sizeof buf, limit - out.size())));
    out.append(buf, static_cast<std::size_t>(in.gcount()));
  }
  return out;
}

}  // namespace vigo::scheduler::synthetic
