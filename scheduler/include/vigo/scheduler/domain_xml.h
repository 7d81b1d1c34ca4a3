// SPDX-License-Identifier: Apache-2.0
// Domain XML for libvirt, generated from a VmSpec with libxml2 (every value
// goes through the library's escaping; nothing is pasted into text), and
// checked against libvirt's own RELAX NG schema.
//
//   - domain_xml(): validates the spec (VmSpec::validate) and returns the
//     <domain> document: type qemu (TCG) or kvm, direct kernel boot or boot
//     from the first disk, virtio disks vda.. with the default cache mode
//     (a FUSE-backed file may refuse O_DIRECT), NICs (user-mode or a libvirt
//     network, virtio), the serial console appended to a file, no balloon.
//   - DomainSchema: libvirt's domain.rng, loaded once (tens of ms);
//     validate() throws invalid_argument("domain xml", <libxml2's reasons>).
//     The daemon also asks libvirt to validate (VIR_DOMAIN_START_VALIDATE).
// domain_xml() is stateless and thread-safe; a DomainSchema is thread-safe
// for validate() (each call makes its own validation context).
#pragma once

#include <filesystem>
#include <string>

#include "vigo/scheduler/vm_spec.h"

namespace vigo::scheduler {

[[nodiscard]] std::string domain_xml(const VmSpec& spec);

inline constexpr const char* kLibvirtDomainSchema = "/usr/share/libvirt/schemas/domain.rng";

class DomainSchema {
 public:
  explicit DomainSchema(const std::filesystem::path& rng = kLibvirtDomainSchema);
  ~DomainSchema();
  DomainSchema(const DomainSchema&) = delete;
  DomainSchema& operator=(const DomainSchema&) = delete;

  void validate(const std::string& xml) const;

 private:
  void* schema_;  // xmlRelaxNGPtr (libxml2 stays out of this header)
};

}  // namespace vigo::scheduler
