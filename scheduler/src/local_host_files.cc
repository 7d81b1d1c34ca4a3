// SPDX-License-Identifier: Apache-2.0
#include <system_error>

#include "vigo/common/error.h"
#include "vigo/scheduler/clone_save_stream.h"
#include "vigo/scheduler/console_watch.h"
#include "vigo/scheduler/disk_chain.h"
#include "vigo/scheduler/host_files.h"
#include "vigo/scheduler/overlay.h"

namespace vigo::scheduler {

namespace fs = std::filesystem;

namespace {

class LocalResumeStream : public ResumeStream {
 public:
  LocalResumeStream(const fs::path& parent, const SaveFileHeader& header, const CloneIdentity& identity,
                    const fs::path& fifo)
      : stream_(parent, header, identity, fifo) {}
  [[nodiscard]] const fs::path& path() const override { return stream_.path(); }
  std::string stop() override { return stream_.stop(); }
  [[nodiscard]] bool finished() const override { return stream_.finished(); }

 private:
  CloneSaveStream stream_;
};

}  // namespace

void LocalHostFiles::make_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error{ErrorCode::kInternal, "cannot create " + dir.string() + ": " + ec.message()};
}

void LocalHostFiles::remove_all(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) throw Error{ErrorCode::kInternal, "cannot remove " + path.string() + ": " + ec.message()};
}

std::vector<std::string> LocalHostFiles::list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) names.push_back(entry.path().filename().string());
  return names;
}

void LocalHostFiles::create_overlay(const fs::path& backing, DiskFormat backing_format, const fs::path& overlay) {
  scheduler::create_overlay(backing, backing_format, overlay);
}

void LocalHostFiles::portable_checkpoint_disk(const fs::path& overlay, const fs::path& out) {
  scheduler::portable_checkpoint_disk(overlay, out);
}

void LocalHostFiles::full_disk_copy(const fs::path& overlay, const fs::path& out) {
  scheduler::full_disk_copy(overlay, out);
}

SaveFileHeader LocalHostFiles::read_save_file_header(const fs::path& file) {
  return scheduler::read_save_file_header(file);
}

std::unique_ptr<ResumeStream> LocalHostFiles::stream_clone(const fs::path& parent, const SaveFileHeader& header,
                                                           const CloneIdentity& identity, const fs::path& fifo) {
  return std::make_unique<LocalResumeStream>(parent, header, identity, fifo);
}

std::optional<std::string> LocalHostFiles::wait_for_line(const fs::path& file, const std::string& needle,
                                                         std::chrono::steady_clock::time_point deadline,
                                                         std::stop_token stop) {
  ConsoleWatch console{file};
  return console.wait_for(needle, deadline, std::move(stop));
}

std::string LocalHostFiles::tail(const fs::path& file, std::size_t bytes) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return {};
  return ConsoleWatch{file}.tail(bytes);
}

}  // namespace vigo::scheduler
