// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/domain_xml.h"

#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>

#include <memory>

#include "vigo/common/error.h"

namespace vigo::scheduler {
namespace {

const xmlChar* x(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;

// A child element, with text content if given (escaped by libxml2).
xmlNode* child(xmlNode* parent, const char* name, const std::string* text = nullptr) {
  xmlNode* n = xmlNewChild(parent, nullptr, x(name), nullptr);
  if (text != nullptr) xmlNodeAddContent(n, x(text->c_str()));
  return n;
}
xmlNode* child(xmlNode* parent, const char* name, const std::string& text) { return child(parent, name, &text); }

void attr(xmlNode* n, const char* name, const std::string& value) { xmlNewProp(n, x(name), x(value.c_str())); }

std::string target_dev(std::size_t i) { return std::string{"vd"} + static_cast<char>('a' + i); }

// libxml2's validation messages, collected.
void collect(void* ctx, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  auto* out = static_cast<std::string*>(ctx);
  if (out->size() < 4096) *out += buf;
}

}  // namespace

std::string domain_xml(const VmSpec& spec) {
  spec.validate();
  Doc doc{xmlNewDoc(x("1.0"))};
  xmlNode* domain = xmlNewNode(nullptr, x("domain"));
  xmlDocSetRootElement(doc.get(), domain);
  attr(domain, "type", spec.accelerator == Accelerator::kKvm ? "kvm" : "qemu");
  child(domain, "name", spec.name);
  child(domain, "uuid", spec.uuid);
  attr(child(domain, "memory", std::to_string(spec.memory_mib)), "unit", "MiB");
  child(domain, "vcpu", std::to_string(spec.vcpus));

  xmlNode* os = child(domain, "os");
  attr(child(os, "type", std::string{"hvm"}), "arch", "x86_64");
  if (spec.direct_boot) {
    child(os, "kernel", spec.direct_boot->kernel.string());
    if (!spec.direct_boot->initrd.empty()) child(os, "initrd", spec.direct_boot->initrd.string());
    if (!spec.direct_boot->cmdline.empty()) child(os, "cmdline", spec.direct_boot->cmdline);
  } else {
    attr(child(os, "boot"), "dev", "hd");
  }
  child(child(domain, "features"), "acpi");
  attr(child(domain, "clock"), "offset", "utc");
  child(domain, "on_poweroff", std::string{"destroy"});
  child(domain, "on_reboot", std::string{"restart"});
  child(domain, "on_crash", std::string{"destroy"});

  xmlNode* devices = child(domain, "devices");
  for (std::size_t i = 0; i < spec.disks.size(); ++i) {
    const DiskSpec& d = spec.disks[i];
    xmlNode* disk = child(devices, "disk");
    attr(disk, "type", "file");
    attr(disk, "device", "disk");
    xmlNode* driver = child(disk, "driver");
    attr(driver, "name", "qemu");
    attr(driver, "type", disk_format_name(d.format));
    attr(child(disk, "source"), "file", d.path.string());
    xmlNode* target = child(disk, "target");
    attr(target, "dev", target_dev(i));
    attr(target, "bus", "virtio");
    if (d.readonly) child(disk, "readonly");
  }
  for (const NicSpec& nic : spec.nics) {
    xmlNode* iface = child(devices, "interface");
    if (nic.network == "user") {
      attr(iface, "type", "user");
    } else {
      attr(iface, "type", "network");
      attr(child(iface, "source"), "network", nic.network);
    }
    if (!nic.mac.empty()) attr(child(iface, "mac"), "address", nic.mac);
    attr(child(iface, "model"), "type", "virtio");
  }
  xmlNode* serial = child(devices, "serial");
  attr(serial, "type", "file");
  xmlNode* source = child(serial, "source");
  attr(source, "path", spec.console_log.string());
  attr(source, "append", "on");
  attr(child(serial, "target"), "port", "0");
  attr(child(devices, "memballoon"), "model", "none");

  xmlChar* text = nullptr;
  int size = 0;
  xmlDocDumpFormatMemoryEnc(doc.get(), &text, &size, "UTF-8", 1);
  if (text == nullptr) throw Error{ErrorCode::kInternal, "libxml2 could not write the domain XML"};
  std::string out{reinterpret_cast<const char*>(text), static_cast<std::size_t>(size)};
  xmlFree(text);
  return out;
}

DomainSchema::DomainSchema(const std::filesystem::path& rng) {
  xmlRelaxNGParserCtxtPtr parser = xmlRelaxNGNewParserCtxt(rng.c_str());
  if (parser == nullptr) throw Error{ErrorCode::kInternal, "cannot read the schema " + rng.string()};
  std::string errors;
  xmlRelaxNGSetParserErrors(parser, collect, collect, &errors);
  schema_ = xmlRelaxNGParse(parser);
  xmlRelaxNGFreeParserCtxt(parser);
  if (schema_ == nullptr) throw Error{ErrorCode::kInternal, "cannot parse the schema " + rng.string() + ": " + errors};
}

DomainSchema::~DomainSchema() { xmlRelaxNGFree(static_cast<xmlRelaxNGPtr>(schema_)); }

void DomainSchema::validate(const std::string& xml) const {
  std::string errors;
  Doc doc{xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)};
  if (!doc) throw invalid_argument("domain xml", "not well-formed XML");
  xmlRelaxNGValidCtxtPtr ctx = xmlRelaxNGNewValidCtxt(static_cast<xmlRelaxNGPtr>(schema_));
  xmlRelaxNGSetValidErrors(ctx, collect, collect, &errors);
  const int rc = xmlRelaxNGValidateDoc(ctx, doc.get());
  xmlRelaxNGFreeValidCtxt(ctx);
  if (rc != 0) throw invalid_argument("domain xml", "does not match libvirt's schema: " + errors);
}

}  // namespace vigo::scheduler
