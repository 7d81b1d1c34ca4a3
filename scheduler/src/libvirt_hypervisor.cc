// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/libvirt_hypervisor.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>
#include <mutex>

#include "vigo/common/error.h"
#include "vigo/common/log.h"
#include "vigo/scheduler/domain_xml.h"

namespace vigo::scheduler {

struct LibvirtHypervisor::Events {
  std::mutex mu;
  EventHandler handler;  // GUARDED_BY(mu)
};

namespace {

virConnectPtr as_conn(void* p) { return static_cast<virConnectPtr>(p); }

struct DomainFree {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using Domain = std::unique_ptr<virDomain, DomainFree>;

// The last libvirt error on this thread as a vigo::Error.
Error libvirt_error(const std::string& what) {
  const virError* e = virGetLastError();
  const std::string message = e != nullptr && e->message != nullptr ? e->message : "unknown libvirt error";
  ErrorCode code = ErrorCode::kInternal;
  if (e != nullptr) {
    switch (e->code) {
      case VIR_ERR_NO_DOMAIN: code = ErrorCode::kNotFound; break;
      case VIR_ERR_OPERATION_INVALID: code = ErrorCode::kConflict; break;
      case VIR_ERR_DOM_EXIST: code = ErrorCode::kAlreadyExists; break;
      case VIR_ERR_XML_ERROR:
      case VIR_ERR_XML_DETAIL:
      case VIR_ERR_INVALID_ARG:
      case VIR_ERR_CONFIG_UNSUPPORTED: code = ErrorCode::kInvalidArgument; break;
      case VIR_ERR_NO_CONNECT:
      case VIR_ERR_RPC:
      case VIR_ERR_SYSTEM_ERROR:
      case VIR_ERR_AUTH_FAILED: code = ErrorCode::kUnavailable; break;
      default:
        if (message.find("already exists") != std::string::npos) code = ErrorCode::kAlreadyExists;
        break;
    }
  }
  virResetLastError();
  return Error{code, what + ": " + message};
}

void silence(void*, virErrorPtr) {}  // errors are reported by the caller, not printed by libvirt

DomainState state_of(int s) {
  switch (s) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED: return DomainState::kRunning;
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED: return DomainState::kPaused;
    case VIR_DOMAIN_SHUTDOWN:
    case VIR_DOMAIN_SHUTOFF: return DomainState::kShutoff;
    case VIR_DOMAIN_CRASHED: return DomainState::kCrashed;
    default: return DomainState::kOther;
  }
}

DomainInfo info_of(virDomainPtr d) {
  DomainInfo i;
  if (const char* n = virDomainGetName(d)) i.name = n;
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  if (virDomainGetUUIDString(d, uuid) == 0) i.uuid = uuid;
  int state = 0, reason = 0;
  if (virDomainGetState(d, &state, &reason, 0) == 0) i.state = state_of(state);
  return i;
}

DomainEvent::Kind kind_of(int event, int detail) {
  switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
      return detail == VIR_DOMAIN_EVENT_STARTED_RESTORED ? DomainEvent::Kind::kRestored : DomainEvent::Kind::kStarted;
    case VIR_DOMAIN_EVENT_SUSPENDED: return DomainEvent::Kind::kPaused;
    case VIR_DOMAIN_EVENT_RESUMED: return DomainEvent::Kind::kResumed;
    case VIR_DOMAIN_EVENT_STOPPED:
      if (detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED || detail == VIR_DOMAIN_EVENT_STOPPED_FAILED) {
        return DomainEvent::Kind::kCrashed;
      }
      return detail == VIR_DOMAIN_EVENT_STOPPED_SAVED ? DomainEvent::Kind::kSaved : DomainEvent::Kind::kStopped;
    case VIR_DOMAIN_EVENT_CRASHED: return DomainEvent::Kind::kCrashed;
    default: return DomainEvent::Kind::kOther;
  }
}

int on_lifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  auto& events = **static_cast<std::shared_ptr<LibvirtHypervisor::Events>*>(opaque);
  DomainEvent e;
  if (const char* n = virDomainGetName(dom)) e.name = n;
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  if (virDomainGetUUIDString(dom, uuid) == 0) e.uuid = uuid;
  e.kind = kind_of(event, detail);
  e.detail = "event " + std::to_string(event) + " detail " + std::to_string(detail);
  std::lock_guard lock{events.mu};
  if (events.handler) events.handler(e);
  return 0;
}

void free_opaque(void* opaque) { delete static_cast<std::shared_ptr<LibvirtHypervisor::Events>*>(opaque); }

std::once_flag g_register_once;  // libvirt's event implementation is process-wide

}  // namespace

const char* domain_state_name(DomainState s) {
  switch (s) {
    case DomainState::kRunning: return "running";
    case DomainState::kPaused: return "paused";
    case DomainState::kShutoff: return "shutoff";
    case DomainState::kCrashed: return "crashed";
    case DomainState::kOther: return "other";
  }
  return "other";
}

const char* domain_event_name(DomainEvent::Kind k) {
  switch (k) {
    case DomainEvent::Kind::kStarted: return "started";
    case DomainEvent::Kind::kStopped: return "stopped";
    case DomainEvent::Kind::kCrashed: return "crashed";
    case DomainEvent::Kind::kPaused: return "paused";
    case DomainEvent::Kind::kResumed: return "resumed";
    case DomainEvent::Kind::kSaved: return "saved";
    case DomainEvent::Kind::kRestored: return "restored";
    case DomainEvent::Kind::kOther: return "other";
  }
  return "other";
}

LibvirtEventLoop::LibvirtEventLoop() {
  std::call_once(g_register_once, [] {
    virSetErrorFunc(nullptr, silence);
    if (virEventRegisterDefaultImpl() != 0) throw libvirt_error("cannot register libvirt's event loop");
  });
  tick_ = virEventAddTimeout(200, [](int, void*) {}, nullptr, nullptr);
  thread_ = std::thread{[this] {
    while (!stop_) {
      if (virEventRunDefaultImpl() != 0) {
        log::warn("libvirt event loop iteration failed", {});
      }
    }
  }};
}

LibvirtEventLoop::~LibvirtEventLoop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();  // the tick ends the current iteration within 200 ms
  if (tick_ >= 0) virEventRemoveTimeout(tick_);
}

LibvirtHypervisor::LibvirtHypervisor(LibvirtEventLoop&, std::string uri)
    : uri_(std::move(uri)), events_(std::make_shared<Events>()) {
  std::lock_guard lock{mu_};
  connect_locked();
}

LibvirtHypervisor::~LibvirtHypervisor() {
  std::lock_guard lock{mu_};
  disconnect_locked();
}

void LibvirtHypervisor::connect_locked() {
  virConnectPtr c = virConnectOpenAuth(uri_.c_str(), virConnectAuthPtrDefault, 0);
  if (c == nullptr) {
    Error e = libvirt_error("cannot connect to " + uri_);
    throw Error{ErrorCode::kUnavailable, e.what()};
  }
  auto* opaque = new std::shared_ptr<Events>(events_);
  callback_id_ = virConnectDomainEventRegisterAny(c, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                  VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), opaque, free_opaque);
  if (callback_id_ < 0) {
    delete opaque;
    Error e = libvirt_error("cannot subscribe to domain events of " + uri_);
    virConnectClose(c);
    throw e;
  }
  conn_ = c;
}

void LibvirtHypervisor::disconnect_locked() {
  if (conn_ == nullptr) return;
  if (callback_id_ >= 0) virConnectDomainEventDeregisterAny(as_conn(conn_), callback_id_);
  callback_id_ = -1;
  virConnectClose(as_conn(conn_));
  conn_ = nullptr;
}

void* LibvirtHypervisor::connection() {
  std::lock_guard lock{mu_};
  if (conn_ != nullptr && virConnectIsAlive(as_conn(conn_)) == 1) return conn_;
  if (conn_ != nullptr) log::warn("libvirt connection lost, reconnecting", {{"uri", uri_}});
  disconnect_locked();
  connect_locked();
  return conn_;
}

void LibvirtHypervisor::start(const VmSpec& spec) {
  const std::string xml = domain_xml(spec);
  Domain d{virDomainCreateXML(as_conn(connection()), xml.c_str(), VIR_DOMAIN_START_VALIDATE)};
  if (!d) throw libvirt_error("cannot start " + spec.name);
}

namespace {

Domain lookup(virConnectPtr c, const std::string& name) {
  Domain d{virDomainLookupByName(c, name.c_str())};
  if (!d) throw libvirt_error("domain " + name);
  return d;
}

}  // namespace

void LibvirtHypervisor::destroy(const std::string& name) {
  Domain d = lookup(as_conn(connection()), name);
  if (virDomainDestroy(d.get()) != 0) throw libvirt_error("cannot destroy " + name);
}

void LibvirtHypervisor::pause(const std::string& name) {
  Domain d = lookup(as_conn(connection()), name);
  if (virDomainSuspend(d.get()) != 0) throw libvirt_error("cannot pause " + name);
}

void LibvirtHypervisor::unpause(const std::string& name) {
  Domain d = lookup(as_conn(connection()), name);
  if (virDomainResume(d.get()) != 0) throw libvirt_error("cannot unpause " + name);
}

void LibvirtHypervisor::save(const std::string& name, const std::filesystem::path& file) {
  Domain d = lookup(as_conn(connection()), name);
  if (virDomainSaveFlags(d.get(), file.c_str(), nullptr, 0) != 0) throw libvirt_error("cannot save " + name);
}

void LibvirtHypervisor::restore(const std::filesystem::path& file, const VmSpec& spec, bool paused) {
  const std::string xml = domain_xml(spec);
  const unsigned flags = paused ? VIR_DOMAIN_SAVE_PAUSED : VIR_DOMAIN_SAVE_RUNNING;
  if (virDomainRestoreFlags(as_conn(connection()), file.c_str(), xml.c_str(), flags) != 0) {
    throw libvirt_error("cannot restore " + spec.name + " from " + file.string());
  }
}

void LibvirtHypervisor::restore_as_saved(const std::filesystem::path& file, bool paused) {
  const unsigned flags = paused ? VIR_DOMAIN_SAVE_PAUSED : VIR_DOMAIN_SAVE_RUNNING;
  if (virDomainRestoreFlags(as_conn(connection()), file.c_str(), nullptr, flags) != 0) {
    throw libvirt_error("cannot restore " + file.string());
  }
}

std::optional<DomainInfo> LibvirtHypervisor::find(const std::string& name) {
  Domain d{virDomainLookupByName(as_conn(connection()), name.c_str())};
  if (!d) {
    Error e = libvirt_error("domain " + name);
    if (e.code() == ErrorCode::kNotFound) return std::nullopt;
    throw e;
  }
  return info_of(d.get());
}

std::vector<DomainInfo> LibvirtHypervisor::list() {
  virDomainPtr* domains = nullptr;
  const int n = virConnectListAllDomains(as_conn(connection()), &domains, 0);
  if (n < 0) throw libvirt_error("cannot list the domains of " + uri_);
  std::vector<DomainInfo> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    out.push_back(info_of(domains[i]));
    virDomainFree(domains[i]);
  }
  free(domains);  // NOLINT: libvirt allocates the array with malloc
  return out;
}

void LibvirtHypervisor::on_event(EventHandler handler) {
  std::lock_guard lock{events_->mu};
  events_->handler = std::move(handler);
}

}  // namespace vigo::scheduler
