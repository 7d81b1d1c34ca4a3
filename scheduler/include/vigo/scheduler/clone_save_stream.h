// SPDX-License-Identifier: Apache-2.0
// CloneSaveStream: a clone's save file (save_file.h) handed to a restore
// through a FIFO instead of written out first. A restore from a checkpoint
// on vigo-fs used to copy the whole memory state into a local file (and
// fsync it) before libvirt could start reading it: fetch, write, then
// restore, one after the other. libvirt 9.0 reads a save file front to back
// (the header and XML, then QEMU takes the migration stream from the same
// descriptor; checked here with `virsh restore` of a FIFO), so a FIFO in
// the file's place lets QEMU load the state while the rest of it is still
// being fetched, and nothing is written to the local disk.
//
// The constructor reads and checks the parent's header (the same checks
// and errors as write_clone_save_file), makes the FIFO (mode 0600;
// kAlreadyExists when the name is taken) and starts a writer thread: it
// waits for the reader to open the FIFO, then writes the clone's header and
// the parent's stream as fast as the reader takes them. The destructor
// stops the writer (a reader that never came, went away, or stopped
// reading) and removes the FIFO. Not copyable; one restore per stream.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "vigo/scheduler/save_file.h"

namespace vigo::scheduler {

class CloneSaveStream {
 public:
  CloneSaveStream(const std::filesystem::path& parent, const CloneIdentity& identity,
                  const std::filesystem::path& fifo);
  // With the parent's header already read (the caller needed it too).
  CloneSaveStream(const std::filesystem::path& parent, const SaveFileHeader& header, const CloneIdentity& identity,
                  const std::filesystem::path& fifo);
  ~CloneSaveStream();
  CloneSaveStream(const CloneSaveStream&) = delete;
  CloneSaveStream& operator=(const CloneSaveStream&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return fifo_; }
  // Stops the writer and waits for it; what it failed with ("" when it
  // wrote everything, or was stopped while waiting for a reader): a
  // restore that failed may have failed because of it (the parent could
  // not be read).
  std::string stop();
  // Bytes written into the FIFO so far.
  [[nodiscard]] std::uint64_t written() const { return written_.load(); }
  // The writer is done: it wrote everything, failed, or was stopped.
  [[nodiscard]] bool finished() const { return finished_.load(); }

 private:
  void write_all(std::stop_token stop);

  std::filesystem::path parent_, fifo_;
  std::string prefix_;
  std::uint64_t stream_offset_ = 0, stream_bytes_ = 0;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<bool> finished_{false};
  std::mutex mu_;
  std::string error_;  // GUARDED_BY(mu_)
  std::jthread writer_;
};

}  // namespace vigo::scheduler
