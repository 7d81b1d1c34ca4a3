// SPDX-License-Identifier: Apache-2.0
// ImageCatalog: published images and checkpoints in a store directory:
//   <root>/chunks/           the ChunkStore shared by every image
//   <root>/images/<name>/<v> the immutable manifest of version v (manifest.h)
//   <root>/images/<name>/<v>.deleted  a deleted version (kept while a reader
//                            has it open, then truncated to an empty
//                            tombstone so v is never reused)
//   <root>/profiles/<name>/<v>  the prefetch profile of version v (opaque)
//   <root>/gc.lock           publishers hold it shared, the collector exclusive
//
// Liveness works across processes (every `vigo-imaged --stdio` is its own
// process): an ImageReader holds a shared flock on its manifest file; delete
// renames the manifest to <v>.deleted and the collector keeps the chunks of
// every deleted manifest that somebody still holds locked. A chunk is removed
// only when no manifest, live or still-open, references it, and no publish is
// in progress (gc.lock). Thread-safe and multi-process safe; all state is on
// disk except the chunk cache.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vigo/common/manifest.h"
#include "vigo/common/wire_messages.h"
#include "vigo/imageserver/chunk_store.h"
#include "vigo/common/unique_fd.h"

namespace vigo::imageserver {

// 1 MiB; docs/vfs-proxy.md has the measurements behind it.
inline constexpr std::uint32_t kDefaultChunkSize = 1u << 20;

struct CatalogOptions {
  std::uint32_t chunk_size = kDefaultChunkSize;
  ChunkStoreOptions chunks;
};

struct PublishStats {
  std::size_t chunks_written = 0;  // new chunk files
  std::size_t chunks_reused = 0;   // already stored (dedup)
  std::uint64_t bytes_stored = 0;  // stored bytes of the new chunk files
};

struct GcStats {
  std::size_t chunks_removed = 0;
  std::uint64_t bytes_freed = 0;
  std::size_t temp_files_removed = 0;
  std::size_t deleted_versions_still_open = 0;
};

// An open image version. While it lives, its chunks survive a delete of the
// version. Movable; one owner.
class ImageReader {
 public:
  [[nodiscard]] const Manifest& manifest() const { return manifest_; }

 private:
  friend class ImageCatalog;
  ImageReader(UniqueFd fd, Manifest m) : fd_(std::move(fd)), manifest_(std::move(m)) {}
  UniqueFd fd_;
  Manifest manifest_;
};

class ImageCatalog {
 public:
  explicit ImageCatalog(std::filesystem::path root, CatalogOptions options = {});
  ImageCatalog(const ImageCatalog&) = delete;
  ImageCatalog& operator=(const ImageCatalog&) = delete;

  // Splits the regular file into chunks, stores them, and writes the next
  // version's manifest (the first version is 1).
  Manifest publish(const std::filesystem::path& file, const std::string& name, PublishStats* stats = nullptr);
  [[nodiscard]] std::vector<wire::ImageEntry> list() const;
  // version 0: the latest. kNotFound if absent.
  [[nodiscard]] Manifest stat(const std::string& name, std::uint64_t version = 0) const;
  [[nodiscard]] ImageReader open(const std::string& name, std::uint64_t version = 0) const;
  // Deletes the version and collects garbage.
  GcStats remove(const std::string& name, std::uint64_t version);
  GcStats collect_garbage();

  // Prefetch profiles: opaque, at most wire::kMaxProfile bytes, for an
  // existing version.
  void put_profile(const std::string& name, std::uint64_t version, std::span<const std::uint8_t> blob);
  [[nodiscard]] std::vector<std::uint8_t> get_profile(const std::string& name, std::uint64_t version) const;

  [[nodiscard]] ChunkStore& chunks() { return chunks_; }
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

 private:
  [[nodiscard]] std::uint64_t latest_version(const std::string& name, bool include_deleted) const;
  [[nodiscard]] std::filesystem::path manifest_path(const std::string& name, std::uint64_t version) const;
  UniqueFd lock_gc(bool exclusive) const;

  std::filesystem::path root_;
  CatalogOptions options_;
  ChunkStore chunks_;
};

// Parses "NAME" or "NAME@VERSION" (version >= 1); kInvalidArgument otherwise.
struct ImageSpec {
  std::string name;
  std::uint64_t version = 0;  // 0: latest
};
[[nodiscard]] ImageSpec parse_image_spec(std::string_view text);

}  // namespace vigo::imageserver
