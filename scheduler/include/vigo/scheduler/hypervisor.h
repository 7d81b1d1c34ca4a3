// SPDX-License-Identifier: Apache-2.0
// Hypervisor: the narrow boundary between the scheduler and one host's
// virtualization (OSCAR-V's one abstraction over several hypervisors). The
// real implementation is LibvirtHypervisor (any libvirt URI); a fake for
// unit tests of the code around it lives in tests/.
//
// Domains are transient: start() creates and runs one from a VmSpec, and a
// destroyed domain is gone from the hypervisor (what persists is the
// workspace's disk and checkpoints, kept by the scheduler). Names are the
// key. Errors are vigo::Error: kNotFound (no such domain), kAlreadyExists
// (name or UUID taken), kConflict (wrong state for the operation),
// kUnavailable (the hypervisor cannot be reached), kInvalidArgument (a spec
// the hypervisor refuses, naming what). Implementations are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vigo/scheduler/vm_spec.h"

namespace vigo::scheduler {

enum class DomainState { kRunning, kPaused, kShutoff, kCrashed, kOther };
[[nodiscard]] const char* domain_state_name(DomainState s);

struct DomainInfo {
  std::string name;
  std::string uuid;
  DomainState state = DomainState::kOther;
};

// A lifecycle change reported by the hypervisor (never polled for).
struct DomainEvent {
  enum class Kind { kStarted, kStopped, kCrashed, kPaused, kResumed, kSaved, kRestored, kOther };
  std::string name;
  std::string uuid;
  Kind kind = Kind::kOther;
  std::string detail;  // the hypervisor's reason, for logs
};
[[nodiscard]] const char* domain_event_name(DomainEvent::Kind k);

class Hypervisor {
 public:
  using EventHandler = std::function<void(const DomainEvent&)>;
  virtual ~Hypervisor() = default;

  virtual void start(const VmSpec& spec) = 0;
  // Hard stop; the domain is gone afterwards. kNotFound if there is none.
  virtual void destroy(const std::string& name) = 0;
  virtual void pause(const std::string& name) = 0;
  virtual void unpause(const std::string& name) = 0;
  // Saves the running or paused domain's memory state to `file` (the
  // domain stops and is gone); the file names the domain's XML inside.
  virtual void save(const std::string& name, const std::filesystem::path& file) = 0;
  // Restores a saved state with the given spec's XML (same name, UUID and
  // MACs as saved, possibly other disk and console paths), running unless
  // `paused`. The hypervisor checks that the spec matches the saved devices.
  virtual void restore(const std::filesystem::path& file, const VmSpec& spec, bool paused = false) = 0;
  // Restores a saved state as the domain described inside the file, running
  // unless `paused`: a clone save file (save_file.h) carries the clone's
  // name, UUID, MACs, disks and console, and the exact machine the state
  // needs (machine type, CPU model, device addresses), which a spec does not
  // pin.
  virtual void restore_as_saved(const std::filesystem::path& file, bool paused = false) = 0;
  [[nodiscard]] virtual std::optional<DomainInfo> find(const std::string& name) = 0;
  [[nodiscard]] virtual std::vector<DomainInfo> list() = 0;
  // Called for every lifecycle event from now on, on the event thread;
  // must be quick. One handler; a later call replaces it.
  virtual void on_event(EventHandler handler) = 0;
  [[nodiscard]] virtual std::string uri() const = 0;
};

}  // namespace vigo::scheduler
