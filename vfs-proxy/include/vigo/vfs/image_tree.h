// SPDX-License-Identifier: Apache-2.0
// ImageTree: the inode table of vigo-fs's read-only tree
//   /                 (inode 1)
//   /.vigo-status     (inode 3)  counters as JSON
//   /images/          (inode 2)
//   /images/<name>            the latest version of an image
//   /images/<name>@<version>  every version
// built from LIST_IMAGES replies. The list is fetched through a Lister (a
// function that may block and throw) and refreshed when a lookup or a
// directory listing finds it older than `ttl` (a lookup of a name it lacks:
// older than kMissRefresh, so a just-published version is found at once); if a refresh fails, the last
// good list is kept (and the failure is an error only while there is none).
// Image inodes are assigned on first sight and never reused, so an inode
// always means the same name (and, for name@version, the same bytes).
// Thread-safe (one mutex; the Lister runs outside it).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "vigo/common/wire_messages.h"

namespace vigo::vfs {

inline constexpr std::uint64_t kRootIno = 1;
inline constexpr std::uint64_t kImagesIno = 2;
inline constexpr std::uint64_t kStatusIno = 3;
inline constexpr const char* kStatusName = ".vigo-status";
inline constexpr const char* kImagesName = "images";
// A lookup of a name the list lacks refreshes a list older than this.
inline constexpr std::chrono::milliseconds kMissRefresh{200};

struct Node {
  enum class Kind { kRoot, kImages, kStatus, kImage };
  Kind kind = Kind::kRoot;
  std::string name;           // image name (kImage)
  std::uint64_t version = 0;  // 0: the latest version
};

// "name" -> {name, 0}; "name@7" -> {name, 7}; nullopt for anything else.
[[nodiscard]] std::optional<Node> parse_image_file_name(const std::string& file_name);

class ImageTree {
 public:
  using Lister = std::function<std::vector<wire::ImageEntry>()>;
  ImageTree(Lister lister, std::chrono::milliseconds ttl) : lister_(std::move(lister)), ttl_(ttl) {}

  // The inode of a name in a directory (nullopt: no such entry).
  [[nodiscard]] std::optional<std::uint64_t> lookup(std::uint64_t parent, const std::string& name);
  [[nodiscard]] std::optional<Node> node(std::uint64_t ino) const;
  // The listed entry behind an image node (the latest one for version 0).
  [[nodiscard]] std::optional<wire::ImageEntry> entry(const Node& n, bool refresh);
  // Every file in /images, by name, with its inode.
  [[nodiscard]] std::vector<std::pair<std::string, std::uint64_t>> list_images();

 private:
  void refresh(bool force);                        // may throw while no list is known
  void refresh_if_older(std::chrono::milliseconds max_age);
  std::uint64_t ino_for(const std::string& file);  // REQUIRES(mu_)
  std::optional<wire::ImageEntry> find(const Node& n) const;  // REQUIRES(mu_)

  Lister lister_;
  std::chrono::milliseconds ttl_;
  std::mutex refresh_mu_;  // one refresh at a time
  mutable std::mutex mu_;
  std::vector<wire::ImageEntry> images_;                   // GUARDED_BY(mu_)
  std::optional<std::chrono::steady_clock::time_point> listed_at_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::uint64_t> inos_;    // GUARDED_BY(mu_), file name -> inode
  std::map<std::uint64_t, Node> nodes_;                    // GUARDED_BY(mu_)
  std::uint64_t next_ino_ = 16;                            // GUARDED_BY(mu_)
};

}  // namespace vigo::vfs
