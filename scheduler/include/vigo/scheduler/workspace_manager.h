// SPDX-License-Identifier: Apache-2.0
// WorkspaceManager: the workspace lifecycle over the GIS and the hosts'
// hypervisors (what vigod runs). A workspace is one or more VMs of one
// profile that boot from a disk image (a linked clone: a qcow2 overlay on
// the image as seen through the host's vigo-fs mount) or resume from a
// checkpoint (clone-N: each VM gets its own save file, overlay, name, UUID
// and MAC; save_file.h).
//
// States live in the GIS (gis.workspaces, gis.vms; sql/006): a VM goes
//   pending (claimed) -> preparing (overlay, save file) -> starting (domain
//   started or restored) -> running (the readiness line on its console:
//   "VIGO-READY" after a boot, "VIGO-ALIVE" after a resume) <-> paused;
//   stopping -> deleted; any step that fails -> failed, with its files and
//   domain removed and the reason in gis.vms.error.
// The workspace's state follows its VMs (gis.sync_workspace_state).
//
// Placement is gis.place_vm: the compositional query and the atomic claim
// in one transaction (policy pack or spread, labels, network, same network,
// distinct hosts, or a given future); no overcommit under any concurrency.
// It claims only hosts this manager drives (other vigods may share the GIS
// with hosts of their own); a future on another's host is kUnavailable.
// create() validates, records and places synchronously (a bad request leaves
// no row, claim, file or domain and throws naming what is wrong) and hands
// each VM to its host's queue: one worker thread per host does that host's
// hypervisor work in order, so a slow host never delays another. Readiness
// is awaited on a thread of its own per VM (inotify on the console file).
//
// Domains are named <domain_prefix><vm id> ("vigo-42"); a VM's files are in
// <host state_dir>/vm-<id>/ (disk.qcow2, console.log; resume.save, the FIFO a
// resume streams its saved state through, while it restores).
//
// reconcile() (run by the constructor, then every reconcile_interval)
// compares the GIS with each host's hypervisor and resolves by these rules:
//   - a <prefix><n> domain with no live VM row on that host (or on another
//     host driven through the same hypervisor): destroyed;
//   - a VM row caught on its way (pending, preparing, starting) that this
//     manager is not handling (vigod died mid-instantiation): domain
//     destroyed, files removed, row failed (its claim released);
//   - a row stopping: finished (domain destroyed, files removed, deleted);
//   - a row running or paused whose domain is gone: failed;
//     one whose domain runs or is paused: the row follows libvirt;
//   - a vm-<n> directory with no live row: removed.
// Periodic checkpoints (WorkspaceRequest::checkpoint_interval) are taken by
// a timer thread through checkpoint(); a failed one is logged and retried at
// the next tick.
// Moving (workspace_moves.cc): migrate() is an offline migration (the VM's
// memory and disk saved to the image server on its host, resumed on
// another). With host_silence set, a watcher records a heartbeat for every
// host whose hypervisor answers, marks hosts silent for longer down (in the
// GIS: their futures are withdrawn), and fails over the running or paused
// VMs of down hosts: resumed on another host from their workspace's latest
// checkpoint, or failed when it has none.
// Lifecycle events from libvirt (a guest that stops or crashes on its own)
// mark the VM failed at once, on the queue of the host its row names.
//
// Thread-safe. The destructor stops the queues and readiness waits; running
// VMs keep running (the next manager adopts them through reconcile()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "vigo/gis/database.h"
#include "vigo/gis/types.h"
#include "vigo/scheduler/host_files.h"
#include "vigo/scheduler/hypervisor.h"
#include "vigo/scheduler/image_publisher.h"
#include "vigo/scheduler/vm_profile.h"

namespace vigo::scheduler {

// One host as the manager drives it.
struct HostContext {
  std::string name;                    // its GIS name (registered before)
  // Not owned; outlives the manager. Several hosts may share one (hosts
  // that are parts of one machine, each with its own images_dir, as the
  // instantiation benchmark has); names and state_dirs must differ.
  Hypervisor* hypervisor = nullptr;
  std::filesystem::path images_dir;    // image files by name@version (the host's <vigo-fs mount>/images)
  std::filesystem::path state_dir;     // per-VM files; created if missing
  // This host's; none: WorkspaceManagerOptions::accelerator (`auto` is
  // resolved before, by probe_accelerator).
  std::optional<Accelerator> accelerator = std::nullopt;
  // Not owned; outlives the manager. Where the VMs' files are made and
  // read (host_files.h): none for this machine (LocalHostFiles); for
  // another machine a RemoteHostFiles, beside a hypervisor on its
  // qemu+ssh:// URI. images_dir and state_dir are paths on that host.
  HostFiles* files = nullptr;
};

struct WorkspaceManagerOptions {
  std::map<std::string, VmProfile> profiles;  // by name; also registered in gis.profiles
  std::chrono::seconds readiness_timeout{180};
  std::chrono::seconds reconcile_interval{60};  // 0: only at start and on request
  // How often due periodic checkpoints are looked for (0: never).
  std::chrono::seconds checkpoint_tick{5};
  Accelerator accelerator = Accelerator::kTcg;
  // Hosts whose heartbeats stop for this long are down and their VMs are
  // failed over (0: this manager neither records heartbeats nor fails over).
  std::chrono::seconds host_silence{0};
  std::chrono::seconds heartbeat_interval{10};
  // This manager's domains are <domain_prefix><vm id>; reconciliation
  // touches no other domain. One prefix per GIS (tests use their own).
  std::string domain_prefix = "vigo-";
};

struct PlacementRequest {
  gis::Policy policy = gis::Policy::kSpread;
  gis::Labels labels;
  std::optional<std::string> network;
  bool same_network = false;   // all VMs of the workspace on one network
  bool distinct_hosts = false;  // no two VMs of the workspace on one host
  std::optional<std::int64_t> future_id;
};

struct WorkspaceRequest {
  std::string owner;
  std::string name;
  std::string profile;     // a name in WorkspaceManagerOptions::profiles
  std::string image;       // boot from this image ("name" = latest, or "name@version"), or
  std::string checkpoint;  // resume from this checkpoint of the owner
  std::uint32_t count = 1;  // VMs (1..64)
  bool persistent = false;  // can be stopped (kept on the image server) and started again anywhere
  // Periodic checkpoints while running (>= 10 s; one-VM workspaces), named
  // ws<id>-auto<n>: what a failover resumes from.
  std::optional<std::chrono::seconds> checkpoint_interval;
  PlacementRequest placement;
  std::optional<std::chrono::seconds> readiness_timeout;
};

struct VmStatus {
  std::int64_t id = 0;
  std::string name, domain, host, state, error;
};

struct WorkspaceStatus {
  std::int64_t id = 0;
  std::string owner, name, state, error;
  std::vector<VmStatus> vms;
};

struct CheckpointInfo {
  std::int64_t id = 0;
  std::string name;
  PublishedImage memory, disk;
};

struct ReconcileReport {
  std::vector<std::string> destroyed_domains;  // orphans
  std::vector<std::int64_t> interrupted_vms;   // caught mid-instantiation: failed
  std::vector<std::int64_t> vanished_vms;      // running rows without a domain: failed
  std::vector<std::int64_t> finished_stops;    // stopping rows: deleted
  std::vector<std::filesystem::path> removed_dirs;
  // Hosts that could not be asked (libvirt or the host agent failed): left
  // as they were until the next reconciliation; the others were done.
  std::vector<std::string> unreconciled_hosts;
};

class WorkspaceManager {
 public:
  // Registers the profiles in the GIS, reconciles, starts the host queues.
  WorkspaceManager(gis::Database& db, ImagePublisher* publisher, std::vector<HostContext> hosts,
                   WorkspaceManagerOptions options);
  ~WorkspaceManager();
  WorkspaceManager(const WorkspaceManager&) = delete;
  WorkspaceManager& operator=(const WorkspaceManager&) = delete;

  // Returns the workspace id once its VMs are placed and queued.
  std::int64_t create(const WorkspaceRequest& request);
  [[nodiscard]] WorkspaceStatus status(std::int64_t workspace);
  // Every workspace (of `owner` when given) that is not deleted, by id; with
  // include_deleted, deleted ones too.
  [[nodiscard]] std::vector<WorkspaceStatus> list(const std::optional<std::string>& owner,
                                                  bool include_deleted = false);
  // The last max_bytes of a VM's serial console (what the guest printed);
  // empty when the VM has no console file on a host this manager drives.
  [[nodiscard]] std::string console_tail(std::int64_t vm, std::size_t max_bytes);
  // Waits until no VM of the workspace is on its way (pending, preparing,
  // starting, stopping) or the deadline; returns the status then.
  WorkspaceStatus wait(std::int64_t workspace, std::chrono::steady_clock::time_point deadline);
  void pause(std::int64_t workspace);
  void unpause(std::int64_t workspace);
  // Saves the (single) VM's memory and disk, publishes both, records the
  // checkpoint; the VM runs on afterwards. kConflict unless running or paused.
  CheckpointInfo checkpoint(std::int64_t workspace, const std::string& name);
  // A persistent workspace with one running or paused VM: saves its memory
  // state and a full copy of its disk (raw, so unchanged chunks are the base
  // image's and the store keeps them once) to the image server as a
  // checkpoint of the workspace, then removes the VM; the workspace is
  // `stopped` and holds no capacity. On failure the VM runs on as it was.
  void stop(std::int64_t workspace);
  // Resumes a stopped persistent workspace from what stop() kept, on any
  // host that placement chooses; as create(), returns once placed.
  void start(std::int64_t workspace, const PlacementRequest& placement = {});
  // Removes everything of the workspace: domains, files, claims; rows deleted.
  void remove(std::int64_t workspace);
  // Offline migration of a workspace with one running or paused VM: placed
  // on another host first (placement as given, never the host it is on),
  // then saved (memory and disk, as checkpoint ws<id>-move<n>) on its host
  // and resumed, running, on the new one; returns once the resume is
  // queued. A failure before the save is published leaves the VM as it was.
  void migrate(std::int64_t workspace, const PlacementRequest& placement = {});
  // Heartbeats, down hosts, failover (what the watcher does every
  // heartbeat_interval when host_silence is set); returns the VMs moved.
  int watch_hosts();
  // Fails over the running and paused VMs of hosts the GIS has down (by any
  // manager's watch); returns the VMs resumed elsewhere.
  int fail_over();
  ReconcileReport reconcile();
  // Takes the periodic checkpoints that are due (the checkpointer thread
  // calls it every checkpoint_tick); returns how many were taken.
  int take_due_checkpoints();

  struct Host;  // a host's context and queue (workspace_manager_internal.h)
  struct Vm;    // a VM this manager is handling

  // What a VM is made from.
  struct LaunchPlan {
    const VmProfile* profile = nullptr;
    std::string image_file;  // boot: the disk image (name@version) under images_dir
    DiskFormat image_format = DiskFormat::kRaw;
    std::string memory_file, disk_file;  // resume: the checkpoint's images
    DiskFormat disk_format = DiskFormat::kQcow2;
    std::chrono::seconds readiness_timeout{180};
  };

 private:
  struct Placed {
    std::int64_t vm = 0;
    std::string host, uuid;
  };
  Placed place(pqxx::transaction_base& txn, std::int64_t workspace, const std::string& vm_name,
               const std::string& profile_name, const PlacementRequest& placement,
               std::optional<std::int64_t> image_id, std::optional<std::int64_t> checkpoint_id);
  void set_paused(std::int64_t workspace, bool paused);
  // Moves one VM of a down host (true) or fails it (no checkpoint, no room).
  bool fail_over_vm(std::int64_t vm, const std::string& down_host);
  void launch(std::int64_t workspace, const std::vector<Placed>& placed, const LaunchPlan& plan);
  // launch() in two steps: handled (reconcile() leaves them be) ...
  std::vector<std::shared_ptr<Vm>> adopt(std::int64_t workspace, const std::vector<Placed>& placed,
                                         const LaunchPlan& plan);
  // ... and queued on their hosts.
  void instantiate_later(const std::vector<std::shared_ptr<Vm>>& vms);
  [[nodiscard]] LaunchPlan resume_plan(const std::string& profile, const std::string& memory_file,
                                       const std::string& disk_file, const std::string& disk_format) const;
  CheckpointInfo publish_state(Host& h, std::int64_t vm, const std::string& owner, bool paused,
                               const std::string& name, bool full_disk, bool run_on);
  // A file of a host published as the next version of image `name`.
  PublishedImage publish_file(HostFiles& files, const std::filesystem::path& file, const std::string& name);
  Host& host(const std::string& name);  // kUnavailable for a host this manager does not drive
  Host* find_host(const std::string& name);
  [[nodiscard]] std::string domain_name(std::int64_t vm) const;
  [[nodiscard]] std::optional<std::int64_t> vm_of_domain(const std::string& domain) const;
  void instantiate(Host& h, std::shared_ptr<Vm> vm);
  void await_ready(Host& h, std::shared_ptr<Vm> vm, std::stop_token stop);
  void fail(Host& h, std::int64_t vm, const std::string& why);
  void teardown(Host& h, std::int64_t vm_id);  // domain gone, files gone
  void set_state(std::int64_t vm_id, const std::string& state, const std::string& error = {});
  void on_event(Hypervisor& hv, const DomainEvent& e);
  void on_host_event(Host& h, std::int64_t vm, const DomainEvent& e);
  // Each hypervisor once, however many hosts are driven through it.
  [[nodiscard]] std::vector<Hypervisor*> hypervisors() const;
  void notify();
  std::vector<std::shared_ptr<Vm>> handled_vms(std::int64_t workspace);

  gis::Database& db_;
  ImagePublisher* publisher_;
  WorkspaceManagerOptions options_;
  std::vector<std::unique_ptr<Host>> hosts_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::int64_t, std::shared_ptr<Vm>> handling_;  // GUARDED_BY(mu_) by VM id
  // create() and start() hold it shared from placement until their VMs are
  // in handling_; reconcile() holds it while it reads rows and handling_, so
  // it never takes a just-placed VM for one a dead vigod left behind.
  std::shared_mutex launching_;
  std::uint64_t generation_ = 0;                           // GUARDED_BY(mu_)
  std::jthread reconciler_;
  std::jthread checkpointer_;
  std::jthread watcher_;
};

}  // namespace vigo::scheduler
