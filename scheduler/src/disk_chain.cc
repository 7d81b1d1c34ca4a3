// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/disk_chain.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "vigo/common/error.h"
#include "vigo/common/subprocess.h"

namespace vigo::scheduler {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

BackingFile backing_of(const fs::path& overlay) {
  std::error_code ec;
  if (!fs::exists(overlay, ec)) throw Error{ErrorCode::kNotFound, "disk " + overlay.string() + " does not exist"};
  const RunResult r = run_command({"qemu-img", "info", "-U", "--output=json", overlay.string()}, 60s);
  if (r.exit_code != 0) throw Error{ErrorCode::kInternal, "qemu-img info " + overlay.string() + ": " + r.output};
  try {
    const auto j = nlohmann::json::parse(r.output);
    if (j.value("format", "") != "qcow2" || !j.contains("backing-filename")) {
      throw invalid_argument("disk", overlay.string() + " is not a qcow2 overlay with a backing file");
    }
    BackingFile b;
    b.path = j.at("backing-filename").get<std::string>();
    const std::string format = j.value("backing-filename-format", "raw");
    if (format == "qcow2") {
      b.format = DiskFormat::kQcow2;
    } else if (format == "raw") {
      b.format = DiskFormat::kRaw;
    } else {
      throw invalid_argument("disk", overlay.string() + " has a backing file of format " + format);
    }
    return b;
  } catch (const nlohmann::json::exception& e) {
    throw Error{ErrorCode::kInternal, "qemu-img info " + overlay.string() + ": " + e.what()};
  }
}

namespace {

// Writes `out` through `make(tmp)`: fsync, rename; nothing left on failure.
template <typename Make>
void write_atomically(const fs::path& out, Make&& make) {
  std::error_code ec;
  if (fs::exists(out, ec)) throw Error{ErrorCode::kAlreadyExists, out.string() + " already exists"};
  const fs::path tmp = out.string() + ".tmp";
  fs::remove(tmp, ec);
  try {
    make(tmp);
    const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      if (fd >= 0) ::close(fd);
      throw_errno("fsync " + tmp.string());
    }
    ::close(fd);
    fs::rename(tmp, out);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

}  // namespace

void portable_checkpoint_disk(const fs::path& overlay, const fs::path& out) {
  const BackingFile backing = backing_of(overlay);
  write_atomically(out, [&](const fs::path& tmp) {
    fs::copy_file(overlay, tmp);
    const RunResult r = run_command({"qemu-img", "rebase", "-u", "-f", "qcow2", "-b",
                                     backing.path.filename().string(), "-F", disk_format_name(backing.format),
                                     tmp.string()},
                                    60s);
    if (r.exit_code != 0) throw Error{ErrorCode::kInternal, "qemu-img rebase " + tmp.string() + ": " + r.output};
  });
}

void full_disk_copy(const fs::path& overlay, const fs::path& out) {
  (void)backing_of(overlay);  // a qcow2 overlay, as the scheduler makes them
  write_atomically(out, [&](const fs::path& tmp) {
    const RunResult r =
        run_command({"qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", overlay.string(), tmp.string()}, 1800s);
    if (r.exit_code != 0) throw Error{ErrorCode::kInternal, "qemu-img convert " + overlay.string() + ": " + r.output};
  });
}

}  // namespace vigo::scheduler
