// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/overlay.h"

#include <chrono>
#include <system_error>

#include "vigo/common/error.h"
#include "vigo/common/subprocess.h"

namespace vigo::scheduler {

void create_overlay(const std::filesystem::path& backing, DiskFormat backing_format,
                    const std::filesystem::path& overlay) {
  std::error_code ec;
  if (!std::filesystem::exists(backing, ec)) {
    throw Error{ErrorCode::kNotFound, "backing image " + backing.string() + " does not exist", "image"};
  }
  if (std::filesystem::exists(overlay, ec)) {
    throw Error{ErrorCode::kAlreadyExists, "overlay " + overlay.string() + " already exists", "overlay"};
  }
  const RunResult r = run_command({"qemu-img", "create", "-q", "-f", "qcow2", "-b", backing.string(), "-F",
                                   disk_format_name(backing_format), overlay.string()},
                                  std::chrono::seconds{60});
  if (r.exit_code != 0) {
    std::filesystem::remove(overlay, ec);
    throw Error{ErrorCode::kInternal, "qemu-img could not create " + overlay.string() + ": " + r.output};
  }
}

}  // namespace vigo::scheduler
