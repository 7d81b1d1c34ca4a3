// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/save_file.h"

#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>

#include "vigo/common/error.h"
#include "vigo/common/file_util.h"
#include "vigo/common/names.h"
#include "vigo/common/unique_fd.h"
#include "vigo/scheduler/vm_spec.h"

namespace vigo::scheduler {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "LibvirtQemudSave";
constexpr std::string_view kPartialMagic = "LibvirtQemudPart";  // libvirt writes the real magic last
constexpr std::size_t kMagicSize = 16;
static_assert(kMagic.size() == kMagicSize && kPartialMagic.size() == kMagicSize);
static_assert(kMagicSize + 5 * sizeof(std::uint32_t) + 14 * sizeof(std::uint32_t) == kSaveHeaderSize);

// libvirt's virQEMUSaveFormat, by number.
const char* format_name(std::uint32_t f) {
  static constexpr const char* kNames[] = {"raw", "gzip", "bzip2", "xz", "lzop", "zstd"};
  return f < std::size(kNames) ? kNames[f] : "unknown";
}

std::uint32_t get_u32(std::string_view b, std::size_t off) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(b[off])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[off + 1])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[off + 2])) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[off + 3])) << 24;
}

void put_u32(std::string& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

Error bad(const std::string& source, const std::string& what) {
  return Error{ErrorCode::kInvalidArgument, "save file " + source + ": " + what, "save file"};
}

// The fixed 92 bytes: everything but the XML area.
SaveFileHeader parse_fixed(std::string_view b, const std::string& source) {
  if (b.size() < kSaveHeaderSize) {
    throw bad(source, "truncated: " + std::to_string(b.size()) + " bytes, shorter than the " +
                          std::to_string(kSaveHeaderSize) + "-byte header");
  }
  const std::string_view magic = b.substr(0, kMagicSize);
  if (magic == kPartialMagic) throw bad(source, "incomplete (libvirt had not finished writing it)");
  if (magic != kMagic) throw bad(source, "bad magic (not a libvirt QEMU save file)");
  SaveFileHeader h;
  h.version = get_u32(b, 16);
  h.data_len = get_u32(b, 20);
  h.was_running = get_u32(b, 24);
  h.compressed = get_u32(b, 28);
  h.cookie_offset = get_u32(b, 32);
  for (std::size_t i = 0; i < h.unused.size(); ++i) h.unused[i] = get_u32(b, 36 + 4 * i);
  if (h.version != kSaveVersion) {
    throw bad(source,
              "unsupported version " + std::to_string(h.version) + " (expected " + std::to_string(kSaveVersion) + ")");
  }
  if (h.data_len == 0 || h.data_len > kMaxSaveDataLen) {
    throw bad(source, "bad data_len " + std::to_string(h.data_len) + " (XML area must be 1.." +
                          std::to_string(kMaxSaveDataLen) + " bytes)");
  }
  if (h.compressed != 0) {
    throw bad(source, std::string{"compressed ("} + format_name(h.compressed) + ", format " +
                          std::to_string(h.compressed) + "); only raw save files are supported");
  }
  if (h.cookie_offset >= h.data_len) {
    throw bad(source, "cookie offset " + std::to_string(h.cookie_offset) + " is outside the " +
                          std::to_string(h.data_len) + "-byte XML area");
  }
  h.stream_offset = kSaveHeaderSize + h.data_len;
  return h;
}

// The XML area (data_len bytes) into h.xml and h.cookie.
void parse_area(SaveFileHeader& h, std::string_view area, const std::string& source) {
  const std::size_t xml_end = h.cookie_offset != 0 ? h.cookie_offset : h.data_len;
  const std::size_t nul = area.substr(0, xml_end).find('\0');
  if (nul == std::string_view::npos) throw bad(source, "domain XML is not NUL-terminated");
  if (nul == 0) throw bad(source, "empty domain XML");
  h.xml.assign(area.substr(0, nul));
  if (h.cookie_offset != 0) {
    const std::string_view rest = area.substr(h.cookie_offset);
    const std::size_t cnul = rest.find('\0');
    if (cnul == std::string_view::npos) throw bad(source, "migration cookie is not NUL-terminated");
    h.cookie.assign(rest.substr(0, cnul));
  }
}

// Reads and checks the header and XML area through an open file of `size`
// bytes; the stream must not be empty.
SaveFileHeader read_header(int fd, std::uint64_t size, const std::string& source) {
  std::string fixed(static_cast<std::size_t>(std::min<std::uint64_t>(size, kSaveHeaderSize)), '\0');
  pread_exact(fd, reinterpret_cast<std::uint8_t*>(fixed.data()), fixed.size(), 0, "save file " + source);
  SaveFileHeader h = parse_fixed(fixed, source);
  if (size < h.stream_offset) {
    throw bad(source, "truncated: the header announces a " + std::to_string(h.data_len) +
                          "-byte XML area, the file has " + std::to_string(size) + " bytes in all");
  }
  if (size == h.stream_offset) throw bad(source, "no migration stream after the XML area");
  std::string area(h.data_len, '\0');
  pread_exact(fd, reinterpret_cast<std::uint8_t*>(area.data()), area.size(), kSaveHeaderSize, "save file " + source);
  parse_area(h, area, source);
  return h;
}

std::uint64_t file_size(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat " + what);
  if (!S_ISREG(st.st_mode)) throw Error{ErrorCode::kInvalidArgument, what + " is not a regular file", "save file"};
  return static_cast<std::uint64_t>(st.st_size);
}

// --- The XML rewrite (libxml2).

const xmlChar* x(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;

bool is(const xmlNode* n, const char* name) { return n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, x(name)) == 0; }

std::vector<xmlNode*> children(xmlNode* parent, const char* name) {
  std::vector<xmlNode*> out;
  if (parent == nullptr) return out;
  for (xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (is(c, name)) out.push_back(c);
  }
  return out;
}

xmlNode* first_child(xmlNode* parent, const char* name) {
  auto all = children(parent, name);
  return all.empty() ? nullptr : all.front();
}

std::string prop(xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, x(name));
  if (v == nullptr) return {};
  std::string out{reinterpret_cast<const char*>(v)};
  xmlFree(v);
  return out;
}

// Text content replaced; libxml2 escapes it on output.
void set_text(xmlNode* n, const std::string& text) {
  xmlNodeSetContent(n, nullptr);
  xmlNodeAddContent(n, x(text.c_str()));
}

void set_prop(xmlNode* n, const char* name, const std::string& value) { xmlSetProp(n, x(name), x(value.c_str())); }

Error bad_xml(const std::string& field, const std::string& what) { return invalid_argument(field, what); }

void rewrite_disks(xmlNode* devices, const CloneIdentity& id) {
  std::set<std::string> found;
  for (xmlNode* disk : children(devices, "disk")) {
    xmlNode* target = first_child(disk, "target");
    const std::string dev = target != nullptr ? prop(target, "dev") : std::string{};
    const auto it = id.disks.find(dev);
    if (it == id.disks.end()) {
      const std::string device = prop(disk, "device");
      const bool writable = first_child(disk, "readonly") == nullptr && first_child(disk, "shareable") == nullptr &&
                            device != "cdrom" && first_child(disk, "source") != nullptr;
      if (writable) {
        throw bad_xml("clone.disks", "the saved domain's writable disk " + (dev.empty() ? "(no target)" : dev) +
                                         " would be shared by every clone: give it the clone's own file");
      }
      continue;
    }
    if (!found.insert(dev).second) throw bad_xml("clone.disks", "the saved domain has two disks " + dev);
    const std::string type = prop(disk, "type");
    if (type != "file") {
      throw bad_xml("clone.disks[" + dev + "]",
                    "disk " + dev + " is of type '" + type + "'; only file disks can be given a new file");
    }
    xmlNode* source = first_child(disk, "source");
    if (source == nullptr) throw bad_xml("clone.disks[" + dev + "]", "disk " + dev + " has no <source>");
    set_prop(source, "file", it->second.string());
    // What libvirt recorded of the old file's backing chain; it probes the
    // new file's chain itself when the element is absent.
    for (xmlNode* b : children(disk, "backingStore")) {
      xmlUnlinkNode(b);
      xmlFreeNode(b);
    }
  }
  for (const auto& [dev, path] : id.disks) {
    if (found.count(dev) == 0) throw bad_xml("clone.disks[" + dev + "]", "the saved domain has no disk " + dev);
  }
}

void rewrite_interfaces(xmlNode* devices, const CloneIdentity& id) {
  const std::vector<xmlNode*> ifaces = children(devices, "interface");
  if (ifaces.size() != id.macs.size()) {
    throw bad_xml("clone.macs", std::to_string(id.macs.size()) + " MAC(s) for the saved domain's " +
                                    std::to_string(ifaces.size()) + " interface(s)");
  }
  for (std::size_t i = 0; i < ifaces.size(); ++i) {
    xmlNode* mac = first_child(ifaces[i], "mac");
    if (mac == nullptr) mac = xmlNewChild(ifaces[i], nullptr, x("mac"), nullptr);
    set_prop(mac, "address", id.macs[i]);
  }
}

// <serial> and <console> of type file (libvirt mirrors the first serial as a
// console): one file, which becomes the clone's.
void rewrite_console(xmlNode* devices, const CloneIdentity& id) {
  std::vector<xmlNode*> sources;
  std::set<std::string> paths;
  for (const char* kind : {"serial", "console"}) {
    for (xmlNode* dev : children(devices, kind)) {
      if (prop(dev, "type") != "file") continue;
      xmlNode* source = first_child(dev, "source");
      if (source == nullptr) continue;
      sources.push_back(source);
      paths.insert(prop(source, "path"));
    }
  }
  if (paths.size() > 1) {
    throw bad_xml("clone.console_log",
                  "the saved domain writes " + std::to_string(paths.size()) + " console files; a clone has one");
  }
  if (id.console_log.empty()) {
    if (!paths.empty()) {
      throw bad_xml("clone.console_log",
                    "the saved domain writes its console to " + *paths.begin() + ": give the clone its own file");
    }
    return;
  }
  if (paths.empty()) throw bad_xml("clone.console_log", "the saved domain has no console file");
  for (xmlNode* s : sources) set_prop(s, "path", id.console_log.string());
}

// The clone's header + XML area for a parent with header `h`.
ClonePrefix plan_clone(const SaveFileHeader& h, const CloneIdentity& id) {
  std::string area = rewrite_domain_xml(h.xml, id);
  area.push_back('\0');
  std::uint32_t cookie_offset = 0;
  if (h.cookie_offset != 0) {
    cookie_offset = static_cast<std::uint32_t>(area.size());
    area += h.cookie;
    area.push_back('\0');
  }
  ClonePrefix p;
  p.parent_stream_offset = h.stream_offset;
  std::uint64_t data_len = h.data_len;
  if (area.size() > h.data_len) {
    const std::uint64_t more = area.size() - h.data_len;
    data_len += (more + kCloneGrowthStep - 1) / kCloneGrowthStep * kCloneGrowthStep;
    if (data_len > kMaxSaveDataLen) {
      throw invalid_argument("clone", "the rewritten XML (" + std::to_string(area.size()) +
                                          " bytes) makes the XML area larger than " + std::to_string(kMaxSaveDataLen) +
                                          " bytes");
    }
  }
  area.resize(static_cast<std::size_t>(data_len), '\0');
  p.bytes.reserve(kSaveHeaderSize + area.size());
  p.bytes.append(kMagic);
  put_u32(p.bytes, h.version);
  put_u32(p.bytes, static_cast<std::uint32_t>(data_len));
  put_u32(p.bytes, h.was_running);
  put_u32(p.bytes, h.compressed);
  put_u32(p.bytes, cookie_offset);
  for (std::uint32_t u : h.unused) put_u32(p.bytes, u);
  p.bytes += area;
  p.offset_kept = p.bytes.size() == h.stream_offset;
  return p;
}

// Copies n bytes from `in` at in_off to `out` at out_off: copy_file_range
// (the kernel copies, or shares extents where the file system can), or
// read/write where it cannot (across file systems, FUSE).
void copy_range(int in, std::uint64_t in_off, int out, std::uint64_t out_off, std::uint64_t n,
                const std::string& what) {
  auto ioff = static_cast<loff_t>(in_off);
  auto ooff = static_cast<loff_t>(out_off);
  bool fallback = false;
  while (n > 0 && !fallback) {
    const ssize_t r =
        ::copy_file_range(in, &ioff, out, &ooff, static_cast<std::size_t>(std::min<std::uint64_t>(n, 1u << 30)), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL) {
        fallback = true;
        break;
      }
      throw_errno("copy the migration stream of " + what);
    }
    if (r == 0) throw Error{ErrorCode::kConflict, what + " shrank while its migration stream was copied"};
    n -= static_cast<std::uint64_t>(r);
  }
  std::vector<std::uint8_t> buf(1u << 20);
  while (n > 0) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n, buf.size()));
    pread_exact(in, buf.data(), k, static_cast<std::uint64_t>(ioff), what);
    std::size_t done = 0;
    while (done < k) {
      const ssize_t w = ::pwrite(out, buf.data() + done, k - done, static_cast<off_t>(ooff) + static_cast<off_t>(done));
      if (w < 0) {
        if (errno == EINTR) continue;
        throw_errno("write the clone's migration stream");
      }
      done += static_cast<std::size_t>(w);
    }
    ioff += static_cast<loff_t>(k);
    ooff += static_cast<loff_t>(k);
    n -= k;
  }
}

}  // namespace

SaveFileHeader parse_save_file_header(std::string_view bytes, const std::string& source) {
  SaveFileHeader h = parse_fixed(bytes, source);
  if (bytes.size() < h.stream_offset) {
    throw bad(source, "truncated: the header announces a " + std::to_string(h.data_len) + "-byte XML area, there are " +
                          std::to_string(bytes.size() - kSaveHeaderSize) + " bytes after the header");
  }
  parse_area(h, bytes.substr(kSaveHeaderSize, h.data_len), source);
  return h;
}

SaveFileHeader read_save_file_header(const fs::path& file) {
  UniqueFd fd = open_or_throw(file, O_RDONLY, "save file");
  return read_header(fd.get(), file_size(fd.get(), "save file " + file.string()), file.string());
}

void CloneIdentity::validate() const {
  validate_name("clone.name", name);
  if (!is_uuid(uuid)) throw invalid_argument("clone.uuid", "must be a lowercase 8-4-4-4-12 UUID, got '" + uuid + "'");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < macs.size(); ++i) {
    const std::string f = "clone.macs[" + std::to_string(i) + "]";
    if (!is_mac(macs[i])) throw invalid_argument(f, "must be a unicast lowercase MAC like 52:54:00:12:34:56");
    if (!seen.insert(macs[i]).second) throw invalid_argument(f, macs[i] + " is given twice");
  }
  for (const auto& [dev, path] : disks) {
    if (dev.empty() || dev.size() > 16 || !is_valid_name(dev)) {
      throw invalid_argument("clone.disks", "bad target dev '" + dev.substr(0, 32) + "'");
    }
    check_path("clone.disks[" + dev + "]", path);
  }
  if (!console_log.empty()) check_path("clone.console_log", console_log);
}

namespace {
Doc parse_domain(const std::string& xml) {
  Doc doc{xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "saved-domain.xml", nullptr,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)};
  if (!doc) throw invalid_argument("domain xml", "the saved domain XML is not well-formed");
  xmlNode* domain = xmlDocGetRootElement(doc.get());
  if (domain == nullptr || !is(domain, "domain"))
    throw invalid_argument("domain xml", "the root element is not <domain>");
  return doc;
}
}  // namespace

std::size_t saved_interface_count(const std::string& xml) {
  Doc doc = parse_domain(xml);
  xmlNode* devices = first_child(xmlDocGetRootElement(doc.get()), "devices");
  return devices == nullptr ? 0 : children(devices, "interface").size();
}

std::string rewrite_domain_xml(const std::string& xml, const CloneIdentity& id) {
  id.validate();
  Doc doc = parse_domain(xml);
  xmlNode* domain = xmlDocGetRootElement(doc.get());
  xmlNode* name = first_child(domain, "name");
  xmlNode* uuid = first_child(domain, "uuid");
  if (name == nullptr) throw invalid_argument("domain xml", "the saved domain has no <name>");
  if (uuid == nullptr) throw invalid_argument("domain xml", "the saved domain has no <uuid>");
  set_text(name, id.name);
  set_text(uuid, id.uuid);
  xmlNode* devices = first_child(domain, "devices");
  rewrite_disks(devices, id);
  rewrite_interfaces(devices, id);
  rewrite_console(devices, id);

  // The root element only (no XML declaration, as libvirt writes it), its
  // whitespace as it was.
  xmlBuffer* buf = xmlBufferCreate();
  if (buf == nullptr) throw Error{ErrorCode::kResourceExhausted, "libxml2 could not allocate a buffer"};
  const int n = xmlNodeDump(buf, doc.get(), domain, 0, 0);
  std::string out;
  if (n >= 0)
    out.assign(reinterpret_cast<const char*>(xmlBufferContent(buf)), static_cast<std::size_t>(xmlBufferLength(buf)));
  xmlBufferFree(buf);
  if (n < 0) throw Error{ErrorCode::kInternal, "libxml2 could not write the domain XML"};
  if (!xml.empty() && xml.back() == '\n') out.push_back('\n');
  return out;
}

ClonePrefix clone_save_prefix(const fs::path& parent, const CloneIdentity& identity) {
  return plan_clone(read_save_file_header(parent), identity);
}

ClonePrefix clone_save_prefix(const SaveFileHeader& parent, const CloneIdentity& identity) {
  return plan_clone(parent, identity);
}

CloneSaveResult write_clone_save_file(const fs::path& parent, const CloneIdentity& identity, const fs::path& out) {
  const std::string source = parent.string();
  UniqueFd in = open_or_throw(parent, O_RDONLY, "save file");
  const std::uint64_t parent_size = file_size(in.get(), "save file " + source);
  const SaveFileHeader h = read_header(in.get(), parent_size, source);
  const ClonePrefix prefix = plan_clone(h, identity);

  const fs::path dir = out.parent_path().empty() ? fs::path{"."} : out.parent_path();
  const std::string name = out.filename().string();
  if (name.empty()) throw invalid_argument("clone save file", "'" + out.string() + "' names no file");
  std::error_code ec;
  if (fs::exists(out, ec))
    throw Error{ErrorCode::kAlreadyExists, "clone save file " + out.string() + " already exists"};

  UniqueFd dfd = open_or_throw(dir, O_RDONLY | O_DIRECTORY, "directory");
  const std::string tmp = temp_name();
  // 0600: a save file holds the guest's memory.
  UniqueFd fd = open_at_or_throw(dfd.get(), tmp, O_WRONLY | O_CREAT | O_EXCL, "temporary file", 0600);
  CloneSaveResult r;
  try {
    const std::string what = (dir / tmp).string();
    write_all(fd.get(), {reinterpret_cast<const std::uint8_t*>(prefix.bytes.data()), prefix.bytes.size()}, what);
    r.stream_bytes = parent_size - h.stream_offset;
    copy_range(in.get(), h.stream_offset, fd.get(), prefix.bytes.size(), r.stream_bytes, "save file " + source);
    fsync_or_throw(fd.get(), what);
    fd.reset();
    if (::renameat2(dfd.get(), tmp.c_str(), dfd.get(), name.c_str(), RENAME_NOREPLACE) != 0) {
      throw_errno("rename into " + out.string());
    }
  } catch (...) {
    ::unlinkat(dfd.get(), tmp.c_str(), 0);
    throw;
  }
  fsync_or_throw(dfd.get(), dir.string());
  r.data_len = static_cast<std::uint32_t>(prefix.bytes.size() - kSaveHeaderSize);
  r.stream_offset = prefix.bytes.size();
  r.parent_stream_offset = h.stream_offset;
  r.offset_kept = prefix.offset_kept;
  r.file_bytes = r.stream_offset + r.stream_bytes;
  return r;
}

}  // namespace vigo::scheduler
