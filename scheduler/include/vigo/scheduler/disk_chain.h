// SPDX-License-Identifier: Apache-2.0
// Disk chains for checkpoints. A VM's disk is a qcow2 overlay whose backing
// file is an image on the vigo-fs mount (<mount>/images/<name>@<version>).
// A checkpoint publishes a copy of the overlay as an image of its own; the
// copy names its backing file by the bare file name ("tiny-root@1"), which
// qemu resolves relative to the copy's own directory: once published, the
// copy sits in the same images/ directory as its backing image, on any host
// and under any mount path. Only the overlay's clusters travel, never the
// base image.
//
// backing_of() reads an overlay's backing file and format (qemu-img info);
// portable_checkpoint_disk() and full_disk_copy() write their copies (temp file, fsync, rename; no
// file left on failure). Errors: vigo::Error (kNotFound, kInvalidArgument for
// a disk that is not a qcow2 overlay, kInternal with qemu-img's message).
// Stateless, thread-safe.
#pragma once

#include <filesystem>
#include <string>

#include "vigo/scheduler/vm_spec.h"

namespace vigo::scheduler {

struct BackingFile {
  std::filesystem::path path;  // as written in the overlay
  DiskFormat format = DiskFormat::kRaw;
};

[[nodiscard]] BackingFile backing_of(const std::filesystem::path& overlay);

void portable_checkpoint_disk(const std::filesystem::path& overlay, const std::filesystem::path& out);

// A full copy of the disk the overlay presents (backing chain included) as
// a raw file: what a stopped persistent workspace keeps on the image server.
// Unwritten blocks read from the base image, so the copy's chunks that did
// not change are the base image's chunks and the store keeps them once.
void full_disk_copy(const std::filesystem::path& overlay, const std::filesystem::path& out);

}  // namespace vigo::scheduler
