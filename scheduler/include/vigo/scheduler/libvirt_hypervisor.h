// SPDX-License-Identifier: Apache-2.0
// LibvirtHypervisor: Hypervisor over one libvirt connection (any URI:
// qemu:///system here, qemu+ssh://host/system for a remote host,
// test:///default for scale tests).
//
// libvirt's events need its event loop: LibvirtEventLoop registers libvirt's
// default implementation (once per process: libvirt keeps it globally) and
// runs it on its own thread until destroyed; create one before any
// connection and keep it alive longer than every LibvirtHypervisor.
// Lifecycle events arrive through virConnectDomainEventRegisterAny and go to
// the handler given to on_event(). Domains are created with
// VIR_DOMAIN_START_VALIDATE, so libvirt checks the XML against its schema
// too. libvirt errors become vigo::Error (hypervisor.h) carrying libvirt's
// message; libvirt's default printing to stderr is switched off. A broken
// connection is reopened on the next call. Thread-safe (libvirt connections
// are; our state is under one mutex).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "vigo/scheduler/hypervisor.h"

namespace vigo::scheduler {

class LibvirtEventLoop {
 public:
  LibvirtEventLoop();
  ~LibvirtEventLoop();
  LibvirtEventLoop(const LibvirtEventLoop&) = delete;
  LibvirtEventLoop& operator=(const LibvirtEventLoop&) = delete;

 private:
  std::atomic<bool> stop_{false};
  int tick_ = -1;  // a periodic timeout that lets the loop see stop_
  std::thread thread_;
};

class LibvirtHypervisor : public Hypervisor {
 public:
  // Connects (throws kUnavailable naming the URI); `events` must outlive this.
  LibvirtHypervisor(LibvirtEventLoop& events, std::string uri);
  ~LibvirtHypervisor() override;

  void start(const VmSpec& spec) override;
  void destroy(const std::string& name) override;
  void pause(const std::string& name) override;
  void unpause(const std::string& name) override;
  void save(const std::string& name, const std::filesystem::path& file) override;
  void restore(const std::filesystem::path& file, const VmSpec& spec, bool paused = false) override;
  void restore_as_saved(const std::filesystem::path& file, bool paused = false) override;
  [[nodiscard]] std::optional<DomainInfo> find(const std::string& name) override;
  [[nodiscard]] std::vector<DomainInfo> list() override;
  void on_event(EventHandler handler) override;
  [[nodiscard]] std::string uri() const override { return uri_; }

  struct Events;  // the handler, shared with libvirt's callback (which may outlive us)

 private:
  void* connection();  // virConnectPtr, reopened if it broke
  void connect_locked();
  void disconnect_locked();

  std::string uri_;
  std::shared_ptr<Events> events_;
  std::mutex mu_;
  void* conn_ = nullptr;  // GUARDED_BY(mu_) virConnectPtr
  int callback_id_ = -1;  // GUARDED_BY(mu_)
};

}  // namespace vigo::scheduler
