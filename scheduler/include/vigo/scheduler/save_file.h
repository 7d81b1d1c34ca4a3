// SPDX-License-Identifier: Apache-2.0
// Save files: libvirt's QEMU save image (what Hypervisor::save writes), read
// and re-identified so that one saved state restores as N separate VMs
// (clone-N from a checkpoint). libvirt 9.0 refuses to restore a state under
// another name or UUID, so each clone gets its own save file whose XML says
// who it is, in front of the parent's unchanged QEMU migration stream.
//
// The layout (libvirt's src/qemu/qemu_saveimage.[ch], checked against files
// saved on these machines; integers little-endian):
//
//   0   16 bytes  magic "LibvirtQemudSave" ("LibvirtQemudPart" while libvirt
//                 is still writing it)
//   16  u32       version (2)
//   20  u32       data_len: length of the XML area
//   24  u32       was_running (restore resumes the CPUs when 1)
//   28  u32       compressed: 0 raw; 1.. gzip, bzip2, xz, lzop (refused here)
//   32  u32       cookieOffset: where the migration cookie starts inside the
//                 XML area; 0 when there is none
//   36  14 x u32  unused (zero; copied as they are into clones)
//   92  data_len  the domain XML, NUL; the cookie, NUL; zero padding (libvirt
//                 leaves 64 KiB of room so that the XML can be edited)
//   92 + data_len  QEMU's migration stream, to the end of the file
//
// read_save_file_header() reads and checks the first two parts and throws
// kInvalidArgument naming the file and what is wrong ("save file F: bad
// magic"); a missing file is the errno's Error (kNotFound).
//
// rewrite_domain_xml() gives the saved domain XML a clone's identity with
// libxml2 (never by pasting text): <name>, <uuid>, each <interface>'s <mac>
// in document order, the <source file> of the disks named by target dev
// (dropping a recorded <backingStore>, which describes the old file's
// chain), and the file of the serial console (<serial>/<console> of type
// file). Everything else is left as it was, whitespace included. It refuses
// (invalid_argument, field "clone.*"; "domain xml" for XML it cannot read)
// an identity that does not fit the XML or would leave clones sharing
// something: a MAC count that is not the interface count, a disk named that
// is missing, a writable disk not given a new file, a file console with no
// new path.
//
// write_clone_save_file() writes a clone: the parent's header with the
// rewritten XML area, then the parent's migration stream, byte for byte
// (copy_file_range). When the new XML and cookie fit in the parent's
// data_len (the usual case: libvirt's 64 KiB of room), data_len is kept, so
// the clone differs from the parent only in its first stream_offset bytes and
// the image store (fixed 1 MiB chunks, dedup by hash) stores a published
// clone for the price of one chunk. Otherwise data_len grows by whole
// kCloneGrowthStep units (libvirt reads any data_len), which keeps the stream
// aligned to the store's chunks as it was in the parent: dedup then costs a
// few chunks more. The file appears complete or not at all (temp file in the
// same directory, fsync, rename without replacing, fsync of the directory);
// an existing `out` is kAlreadyExists.
//
// clone_save_prefix() is the same clone as bytes to put in front of the
// parent's stream: clone = prefix + parent[parent_stream_offset..]; with the
// offset kept, prefix.size() == parent_stream_offset (a publisher can send
// the prefix and reuse every other chunk of the parent).
//
// Stateless and thread-safe. A saved state restores correctly only on disks
// as they were when it was saved: the parent's disk must not be written
// after the save; clones get qcow2 overlays backed by it (docs/scheduler.md).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vigo::scheduler {

inline constexpr std::size_t kSaveHeaderSize = 92;
inline constexpr std::uint32_t kSaveVersion = 2;
inline constexpr std::uint32_t kMaxSaveDataLen = 16u << 20;  // libvirt's is ~64 KiB + XML
// A grown XML area grows by whole units of this (the image store's chunk size).
inline constexpr std::uint32_t kCloneGrowthStep = 1u << 20;

struct SaveFileHeader {
  std::uint32_t version = 0;
  std::uint32_t data_len = 0;
  std::uint32_t was_running = 0;
  std::uint32_t compressed = 0;
  std::uint32_t cookie_offset = 0;
  std::array<std::uint32_t, 14> unused{};
  std::string xml;                  // the domain XML, without its NUL
  std::string cookie;               // the migration cookie, without its NUL; empty when none
  std::uint64_t stream_offset = 0;  // kSaveHeaderSize + data_len
};

[[nodiscard]] SaveFileHeader read_save_file_header(const std::filesystem::path& file);
// The same checks on bytes in memory: at least the header and the XML area
// (a whole save file's start, or a clone prefix); `source` names them in errors.
[[nodiscard]] SaveFileHeader parse_save_file_header(std::string_view bytes, const std::string& source);

// Who a clone is. Paths absolute.
struct CloneIdentity {
  std::string name;                                    // names.h rule
  std::string uuid;                                    // canonical, lowercase
  std::vector<std::string> macs;                       // one per <interface>, in order
  std::map<std::string, std::filesystem::path> disks;  // target dev ("vda") -> the clone's file
  std::filesystem::path console_log;                   // the serial console file; empty only when there is none

  void validate() const;  // invalid_argument naming "clone.name", "clone.macs[1]", ...
};

[[nodiscard]] std::string rewrite_domain_xml(const std::string& xml, const CloneIdentity& identity);
// How many <interface> elements the saved domain XML has: a clone needs one
// MAC for each (CloneIdentity::macs). invalid_argument for unreadable XML.
[[nodiscard]] std::size_t saved_interface_count(const std::string& xml);

struct ClonePrefix {
  std::string bytes;                       // header + XML area of the clone
  std::uint64_t parent_stream_offset = 0;  // the parent's stream starts here
  bool offset_kept = false;                // bytes.size() == parent_stream_offset
};
[[nodiscard]] ClonePrefix clone_save_prefix(const std::filesystem::path& parent, const CloneIdentity& identity);
// The same from a header already read (read_save_file_header).
[[nodiscard]] ClonePrefix clone_save_prefix(const SaveFileHeader& parent, const CloneIdentity& identity);

struct CloneSaveResult {
  std::uint32_t data_len = 0;
  std::uint64_t stream_offset = 0;         // in the clone
  std::uint64_t parent_stream_offset = 0;  // in the parent
  bool offset_kept = false;                // equal offsets: only the first stream_offset bytes differ
  std::uint64_t stream_bytes = 0;          // copied from the parent
  std::uint64_t file_bytes = 0;            // the clone's size
};
CloneSaveResult write_clone_save_file(const std::filesystem::path& parent, const CloneIdentity& identity,
                                      const std::filesystem::path& out);

}  // namespace vigo::scheduler
