// SPDX-License-Identifier: Apache-2.0
// WorkspaceManager, the states kept on the image server: checkpoints (and
// the periodic ones), and the stop and start of persistent workspaces.

#include "vigo/common/error.h"
#include "vigo/common/names.h"
#include "vigo/scheduler/disk_chain.h"
#include "workspace_manager_internal.h"

namespace vigo::scheduler {
namespace fs = std::filesystem;

std::string own_checkpoint_name(std::int64_t workspace, const char* kind, int taken) {
  return "ws" + std::to_string(workspace) + "-" + kind + std::to_string(taken + 1);
}

int checkpoints_taken(pqxx::transaction_base& txn, std::int64_t workspace) {
  return txn
      .exec_params1("SELECT count(*) FROM gis.checkpoints c JOIN gis.vms v ON v.id = c.vm_id WHERE v.workspace_id = $1",
                    workspace)[0]
      .as<int>();
}

LiveVm single_live_vm(gis::Database& db, std::int64_t workspace, const std::string& action) {
  const auto vms = live_vms(db, workspace);
  if (vms.size() != 1) {
    throw Error{ErrorCode::kConflict,
                action + " is of a workspace with one VM; this one has " + std::to_string(vms.size())};
  }
  const LiveVm& v = vms.front();
  if (v.state != "running" && v.state != "paused") {
    throw Error{ErrorCode::kConflict, "VM " + std::to_string(v.id) + " is " + v.state + ", not running or paused"};
  }
  return v;
}

CheckpointInfo WorkspaceManager::checkpoint(std::int64_t workspace, const std::string& name) {
  if (publisher_ == nullptr) throw Error{ErrorCode::kUnavailable, "no image server to publish checkpoints to"};
  const LiveVm v = single_live_vm(db_, workspace, "a checkpoint");
  // The checkpoint's images are <name>-memory and <name>-disk: the name leaves room for the suffix.
  if (!is_valid_name(name + "-memory")) throw invalid_argument("name", "'" + name + "' is not a valid checkpoint name");
  db_.read([&](pqxx::transaction_base& txn) {
    if (!txn.exec_params("SELECT 1 FROM gis.checkpoints c JOIN gis.users u ON u.id = c.owner_id "
                         "WHERE u.name = $1 AND c.name = $2",
                         v.owner, name)
             .empty()) {
      throw Error{ErrorCode::kAlreadyExists, "checkpoint " + name + " exists", "name"};
    }
  });
  Host& h = host(v.host);
  return h.call([&] { return publish_state(h, v.id, v.owner, v.state == "paused", name, false, true); });
}

PublishedImage WorkspaceManager::publish_file(HostFiles& files, const fs::path& file, const std::string& name) {
  const fs::path here = files.fetch(file);  // the file itself when the host is this machine
  try {
    PublishedImage image = publisher_->publish(here, name);
    files.release(here);
    return image;
  } catch (...) {
    files.release(here);
    throw;
  }
}

CheckpointInfo WorkspaceManager::publish_state(Host& h, std::int64_t vm, const std::string& owner, bool paused,
                                               const std::string& name, bool full_disk, bool run_on) {
  const std::string domain = domain_name(vm);
  const fs::path dir = h.vm_dir(vm);
  const fs::path save = dir / "checkpoint.save";
  const fs::path disk = dir / (full_disk ? "checkpoint-disk.raw" : "checkpoint-disk.qcow2");
  HostFiles& files = h.files();
  auto clean = [&] {
    try {
      files.remove_all(save);
      files.remove_all(disk);
    } catch (const std::exception& e) {
      log::warn("checkpoint files not removed", {{"vm", std::to_string(vm)}, {"error", e.what()}});
    }
  };
  clean();
  h.hv().save(domain, save);
  // The VM is down from here. The disk copy first (the overlay is as the
  // saved state needs it); a checkpoint's VM then runs on at once.
  bool restored = false;
  auto restore = [&] {
    if (!restored) h.hv().restore_as_saved(save, paused);
    restored = true;
  };
  try {
    if (full_disk) {
      files.full_disk_copy(dir / "disk.qcow2", disk);
    } else {
      files.portable_checkpoint_disk(dir / "disk.qcow2", disk);
    }
    if (run_on) restore();
    CheckpointInfo info;
    info.name = name;
    info.memory = publish_file(files, save, name + "-memory");
    info.disk = publish_file(files, disk, name + "-disk");
    info.id = db_.write([&](pqxx::transaction_base& txn) {
      auto add_image = [&](const PublishedImage& image, const char* kind) {
        return txn
            .exec_params1("SELECT gis.add_image($1, $2, $3::gis.image_kind, $4, $5, $6)", image.name,
                          static_cast<int>(image.version), kind, owner, publisher_->server_name(),
                          static_cast<std::int64_t>(image.size))[0]
            .as<std::int64_t>();
      };
      const auto mem = add_image(info.memory, "memory");
      const auto dsk = add_image(info.disk, "disk");
      return txn.exec_params1("SELECT gis.add_checkpoint($1, $2, $3, $4, $5)", vm, name, mem, dsk,
                              full_disk ? "raw" : "qcow2")[0]
          .as<std::int64_t>();
    });
    clean();
    log::info("state published", {{"vm", std::to_string(vm)}, {"name", name},
                                   {"memory", info.memory.file_name()}, {"disk", info.disk.file_name()}});
    return info;
  } catch (...) {
    // Nothing is lost: the VM runs again as it was (a stop that failed
    // leaves the workspace running).
    try {
      restore();
    } catch (const std::exception& e) {
      log::error("could not restore the VM after a failed save", {{"vm", std::to_string(vm)}, {"error", e.what()}});
    }
    clean();
    throw;
  }
}


void WorkspaceManager::stop(std::int64_t workspace) {
  if (publisher_ == nullptr) throw Error{ErrorCode::kUnavailable, "no image server to keep the workspace on"};
  int taken = 0;
  const auto w = db_.read([&](pqxx::transaction_base& txn) {
    taken = checkpoints_taken(txn, workspace);
    return txn.exec_params("SELECT persistent FROM gis.workspaces WHERE id = $1", workspace);
  });
  if (w.empty()) throw Error{ErrorCode::kNotFound, "no workspace with id " + std::to_string(workspace), "workspace"};
  if (!w[0][0].as<bool>()) {
    throw Error{ErrorCode::kConflict, "workspace " + std::to_string(workspace) +
                                          " is not persistent: delete it, or checkpoint it"};
  }
  const auto vms = live_vms(db_, workspace);
  if (vms.size() != 1 || (vms[0].state != "running" && vms[0].state != "paused")) {
    throw Error{ErrorCode::kConflict, "workspace " + std::to_string(workspace) + " has no running VM to stop"};
  }
  const LiveVm v = vms.front();
  const std::string name = own_checkpoint_name(workspace, "stop", taken);
  Host& h = host(v.host);
  h.call([&] {
    set_state(v.id, "stopping");
    CheckpointInfo info;
    try {
      info = publish_state(h, v.id, v.owner, v.state == "paused", name, true, false);
    } catch (...) {
      set_state(v.id, v.state);
      throw;
    }
    teardown(h, v.id);
    db_.write([&](pqxx::transaction_base& txn) {
      txn.exec_params("SELECT gis.set_vm_outcome($1, 'deleted')", v.id);
      txn.exec_params("UPDATE gis.workspaces SET state = 'stopped', checkpoint_id = $2, updated_at = now() "
                      "WHERE id = $1",
                      workspace, info.id);
    });
    notify();
  });
}

void WorkspaceManager::start(std::int64_t workspace, const PlacementRequest& placement) {
  std::vector<Placed> placed;
  std::string profile_name, memory_file, disk_file, disk_format;
  std::shared_lock launching{launching_};
  db_.write([&](pqxx::transaction_base& txn) {
    placed.clear();
    const auto w = txn.exec_params(
        "SELECT w.name, w.state::text, w.persistent, w.profile, m.name || '@' || m.version, "
        "       d.name || '@' || d.version, c.disk_format, c.id "
        "  FROM gis.workspaces w LEFT JOIN gis.checkpoints c ON c.id = w.checkpoint_id "
        "  LEFT JOIN gis.images m ON m.id = c.memory_image_id LEFT JOIN gis.images d ON d.id = c.disk_image_id "
        " WHERE w.id = $1 FOR UPDATE OF w",
        workspace);
    if (w.empty() || w[0][1].as<std::string>() == "deleted") {
      throw Error{ErrorCode::kNotFound, "no workspace with id " + std::to_string(workspace), "workspace"};
    }
    if (!w[0][2].as<bool>() || w[0][1].as<std::string>() != "stopped" || w[0][4].is_null()) {
      throw Error{ErrorCode::kConflict, "workspace " + std::to_string(workspace) + " is " +
                                            w[0][1].as<std::string>() + ", not a stopped persistent workspace"};
    }
    profile_name = w[0][3].as<std::string>();
    memory_file = w[0][4].as<std::string>();
    disk_file = w[0][5].as<std::string>();
    disk_format = w[0][6].as<std::string>();
    placed.push_back(place(txn, workspace, w[0][0].as<std::string>(), profile_name, placement, std::nullopt,
                           w[0][7].as<std::int64_t>()));
  });
  launch(workspace, placed, resume_plan(profile_name, memory_file, disk_file, disk_format));
}

int WorkspaceManager::take_due_checkpoints() {
  int taken = 0;
  try {
    const auto due = db_.read([](pqxx::transaction_base& txn) {
      std::vector<std::pair<std::int64_t, int>> out;
      for (const auto& r : txn.exec("SELECT workspace_id, taken FROM gis.checkpoints_due()")) {
        out.emplace_back(r[0].as<std::int64_t>(), r[1].as<int>());
      }
      return out;
    });
    for (const auto& [ws, n] : due) {
      try {
        checkpoint(ws, own_checkpoint_name(ws, "auto", n));
        ++taken;
      } catch (const std::exception& e) {
        log::warn("periodic checkpoint failed", {{"workspace", std::to_string(ws)}, {"error", e.what()}});
      }
    }
  } catch (const std::exception& e) {
    log::warn("looking for due checkpoints failed", {{"error", e.what()}});
  }
  return taken;
}
}  // namespace vigo::scheduler
