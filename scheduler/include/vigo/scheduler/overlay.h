// SPDX-License-Identifier: Apache-2.0
// Disk overlays for VMs: a qcow2 file whose reads fall through to a backing
// image (a file on the vigo-fs mount, or local) and which receives every
// write, so many VMs share one image (a linked clone) and the image itself
// is never written. Creation reads only the backing file's size (its format
// is given, never probed), so it takes the same time for any image size.
// Made with qemu-img (qemu-utils). Throws vigo::Error: kNotFound for a
// missing backing file, kAlreadyExists if the overlay exists, kInternal with
// qemu-img's message otherwise; a failed creation leaves no file.
// Stateless, thread-safe.
#pragma once

#include <filesystem>

#include "vigo/scheduler/vm_spec.h"

namespace vigo::scheduler {

void create_overlay(const std::filesystem::path& backing, DiskFormat backing_format,
                    const std::filesystem::path& overlay);

}  // namespace vigo::scheduler
