// SPDX-License-Identifier: Apache-2.0
// What the WorkspaceManager's source files share (workspace_manager.cc: the
// lifecycle; workspace_status.cc: status, list, wait; workspace_events.cc:
// libvirt's events; workspace_state.cc:
// checkpoints, stop and start; workspace_moves.cc: migration and failover;
// workspace_reconcile.cc: reconciliation): a host's work queue, the record of
// a VM being instantiated, and small helpers. Internal to scheduler/src.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <optional>
#include <string>

#include "vigo/common/log.h"
#include "vigo/scheduler/workspace_manager.h"

namespace vigo::scheduler {

inline constexpr const char* kBootReady = "VIGO-READY";
inline constexpr const char* kResumeReady = "VIGO-ALIVE";

// The VM id in "<prefix><id>", if that is what `name` is.
std::optional<std::int64_t> id_after(const std::string& prefix, const std::string& name);

// The names of the checkpoints the manager takes by itself: ws<id>-<kind><n>,
// n counting the workspace's checkpoints (so a name is never taken twice).
std::string own_checkpoint_name(std::int64_t workspace, const char* kind, int taken);
// How many checkpoints have been taken of the workspace's VMs (the n above).
int checkpoints_taken(pqxx::transaction_base& txn, std::int64_t workspace);

struct LiveVm {
  std::int64_t id;
  std::string host, state, owner;
};
// The workspace's VMs that are not deleted; kNotFound for no (or a deleted) workspace.
std::vector<LiveVm> live_vms(gis::Database& db, std::int64_t workspace);
// The one VM of a workspace, running or paused; kConflict otherwise
// ("<action> is of a workspace with one VM; ...", or the VM's state).
LiveVm single_live_vm(gis::Database& db, std::int64_t workspace, const std::string& action);

struct WorkspaceManager::Host {
  HostContext ctx;
  LocalHostFiles local_files;  // files() when the context names none
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs;  // GUARDED_BY(mu)
  std::jthread worker;

  explicit Host(HostContext c) : ctx(std::move(c)) {
    worker = std::jthread{[this](std::stop_token stop) { run(stop); }};
  }
  ~Host() { stop(); }
  // Ends the worker after the job it is running (queued jobs never run).
  void stop() {
    worker.request_stop();
    cv.notify_all();
    if (worker.joinable()) worker.join();
  }
  Hypervisor& hv() { return *ctx.hypervisor; }
  HostFiles& files() { return ctx.files != nullptr ? *ctx.files : local_files; }
  std::filesystem::path vm_dir(std::int64_t vm) const { return ctx.state_dir / ("vm-" + std::to_string(vm)); }

  void post(std::function<void()> job) {
    {
      std::lock_guard lock{mu};
      jobs.push_back(std::move(job));
    }
    cv.notify_one();
  }
  // Runs `job` on this host's queue and waits for it; its exception comes back here.
  template <typename F>
  auto call(F&& job) {
    using R = std::invoke_result_t<F&>;
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(job));
    auto result = task->get_future();
    post([task] { (*task)(); });
    return result.get();
  }

 private:
  void run(std::stop_token stop) {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock{mu};
        cv.wait(lock, [&] { return stop.stop_requested() || !jobs.empty(); });
        if (stop.stop_requested()) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      try {
        job();
      } catch (const std::exception& e) {
        log::error("host job failed", {{"host", ctx.name}, {"error", e.what()}});
      }
    }
  }
};

// A VM this manager is instantiating or watching (until it is running or gone).
struct WorkspaceManager::Vm {
  std::int64_t id = 0;
  std::int64_t workspace = 0;
  std::string host;
  std::string uuid;
  LaunchPlan plan;
  std::atomic<bool> cancelled{false};
  std::jthread waiter;

  // The last reference may be the waiter's own (it ends by forgetting the
  // VM): a thread cannot join itself, and it is ending anyway.
  ~Vm() {
    if (waiter.joinable() && waiter.get_id() == std::this_thread::get_id()) waiter.detach();
  }
};

}  // namespace vigo::scheduler
