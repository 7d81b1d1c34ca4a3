// SPDX-License-Identifier: Apache-2.0
// HostFiles: the file work a VM needs on the host that runs it, apart from
// libvirt (which reaches any host through its URI): the VM's directory, its
// disk overlay on an image of the host's vigo-fs mount, the readiness line
// on its serial console file, the clone save stream a resume restores from,
// the disk copies a checkpoint publishes, and fetching a file of the host
// for the image publisher. Every path is a path on that host.
//
// LocalHostFiles does the work on this machine (the functions of overlay.h,
// disk_chain.h, save_file.h, clone_save_stream.h and console_watch.h).
// RemoteHostFiles (remote_host_files.h) does the same work on another
// machine through `ssh HOST vigo-host ...`, whose vigo-host runs a
// LocalHostFiles there. So one WorkspaceManager drives local hosts and
// remote ones the same way.
//
// Errors are vigo::Error with the codes of the functions named above
// (kNotFound, kAlreadyExists, kInvalidArgument, kInternal); a remote host
// that cannot be reached is kUnavailable, one that does not answer in time
// kTimeout. Implementations are thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "vigo/scheduler/save_file.h"
#include "vigo/scheduler/vm_spec.h"

namespace vigo::scheduler {

// A clone's save file handed to a restore through a FIFO at path() while it
// is written (clone_save_stream.h). Destroying it stops the writer and
// removes the FIFO.
class ResumeStream {
 public:
  virtual ~ResumeStream() = default;
  [[nodiscard]] virtual const std::filesystem::path& path() const = 0;
  // Stops the writer and waits for it; what it failed with ("" when it wrote
  // everything, or was stopped before a reader came).
  virtual std::string stop() = 0;
  // The writer is done: it wrote everything, failed, or was stopped.
  [[nodiscard]] virtual bool finished() const = 0;
};

class HostFiles {
 public:
  virtual ~HostFiles() = default;

  // mkdir -p.
  virtual void make_dir(const std::filesystem::path& dir) = 0;
  // rm -r; nothing there is fine; kInternal when something stays.
  virtual void remove_all(const std::filesystem::path& path) = 0;
  // The names in a directory (none when it does not exist).
  [[nodiscard]] virtual std::vector<std::string> list_dir(const std::filesystem::path& dir) = 0;

  virtual void create_overlay(const std::filesystem::path& backing, DiskFormat backing_format,
                              const std::filesystem::path& overlay) = 0;
  virtual void portable_checkpoint_disk(const std::filesystem::path& overlay, const std::filesystem::path& out) = 0;
  virtual void full_disk_copy(const std::filesystem::path& overlay, const std::filesystem::path& out) = 0;

  [[nodiscard]] virtual SaveFileHeader read_save_file_header(const std::filesystem::path& file) = 0;
  // Starts writing the clone of `parent` (its header already read) into a
  // new FIFO at `fifo`; returns once the FIFO exists.
  [[nodiscard]] virtual std::unique_ptr<ResumeStream> stream_clone(const std::filesystem::path& parent,
                                                                   const SaveFileHeader& header,
                                                                   const CloneIdentity& identity,
                                                                   const std::filesystem::path& fifo) = 0;

  // The first whole line of `file` containing `needle` (the file may not
  // exist yet and grows while QEMU writes it); nullopt at the deadline or
  // when stop is requested.
  [[nodiscard]] virtual std::optional<std::string> wait_for_line(const std::filesystem::path& file,
                                                                 const std::string& needle,
                                                                 std::chrono::steady_clock::time_point deadline,
                                                                 std::stop_token stop) = 0;
  // The last `bytes` of the file; "" when it does not exist.
  [[nodiscard]] virtual std::string tail(const std::filesystem::path& file, std::size_t bytes) = 0;

  // A local path with the file's bytes, for the image publisher (the file
  // itself on this machine; a fetched copy, removed by release(), otherwise).
  [[nodiscard]] virtual std::filesystem::path fetch(const std::filesystem::path& file) = 0;
  virtual void release(const std::filesystem::path& fetched) = 0;
};

class LocalHostFiles : public HostFiles {
 public:
  void make_dir(const std::filesystem::path& dir) override;
  void remove_all(const std::filesystem::path& path) override;
  std::vector<std::string> list_dir(const std::filesystem::path& dir) override;
  void create_overlay(const std::filesystem::path& backing, DiskFormat backing_format,
                      const std::filesystem::path& overlay) override;
  void portable_checkpoint_disk(const std::filesystem::path& overlay, const std::filesystem::path& out) override;
  void full_disk_copy(const std::filesystem::path& overlay, const std::filesystem::path& out) override;
  SaveFileHeader read_save_file_header(const std::filesystem::path& file) override;
  std::unique_ptr<ResumeStream> stream_clone(const std::filesystem::path& parent, const SaveFileHeader& header,
                                             const CloneIdentity& identity, const std::filesystem::path& fifo) override;
  std::optional<std::string> wait_for_line(const std::filesystem::path& file, const std::string& needle,
                                           std::chrono::steady_clock::time_point deadline,
                                           std::stop_token stop) override;
  std::string tail(const std::filesystem::path& file, std::size_t bytes) override;
  std::filesystem::path fetch(const std::filesystem::path& file) override { return file; }
  void release(const std::filesystem::path&) override {}
};

}  // namespace vigo::scheduler
