// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/image_tree.h"

#include <charconv>

#include "vigo/common/log.h"
#include "vigo/common/names.h"

namespace vigo::vfs {

std::optional<Node> parse_image_file_name(const std::string& file_name) {
  const auto at = file_name.find('@');
  Node n;
  n.kind = Node::Kind::kImage;
  n.name = file_name.substr(0, at);
  if (!is_valid_name(n.name)) return std::nullopt;
  if (at == std::string::npos) return n;
  const char* first = file_name.data() + at + 1;
  const char* last = file_name.data() + file_name.size();
  if (first == last || *first == '0') return std::nullopt;  // one spelling per version
  auto [ptr, ec] = std::from_chars(first, last, n.version);
  if (ec != std::errc{} || ptr != last || n.version == 0) return std::nullopt;
  return n;
}

void ImageTree::refresh(bool force) { refresh_if_older(force ? std::chrono::milliseconds{0} : ttl_); }

void ImageTree::refresh_if_older(std::chrono::milliseconds max_age) {
  std::lock_guard one{refresh_mu_};
  {
    std::lock_guard lock{mu_};
    if (listed_at_ && std::chrono::steady_clock::now() - *listed_at_ < max_age) return;
  }
  try {
    auto images = lister_();
    std::lock_guard lock{mu_};
    images_ = std::move(images);
    listed_at_ = std::chrono::steady_clock::now();
  } catch (const Error& e) {
    std::lock_guard lock{mu_};
    if (!listed_at_) throw;
    log::warn("cannot refresh the image list; keeping the last one", {{"error", e.what()}});
  }
}

std::uint64_t ImageTree::ino_for(const std::string& file) {
  auto [it, added] = inos_.try_emplace(file, next_ino_);
  if (added) {
    nodes_[next_ino_] = *parse_image_file_name(file);
    ++next_ino_;
  }
  return it->second;
}

std::optional<wire::ImageEntry> ImageTree::find(const Node& n) const {
  std::optional<wire::ImageEntry> best;
  for (const auto& e : images_) {
    if (e.name != n.name) continue;
    if (n.version != 0 ? e.version == n.version : (!best || e.version > best->version)) best = e;
  }
  return best;
}

std::optional<std::uint64_t> ImageTree::lookup(std::uint64_t parent, const std::string& name) {
  if (parent == kRootIno) {
    if (name == kImagesName) return kImagesIno;
    if (name == kStatusName) return kStatusIno;
    return std::nullopt;
  }
  if (parent != kImagesIno) return std::nullopt;
  auto n = parse_image_file_name(name);
  if (!n) return std::nullopt;
  refresh(false);
  {
    std::lock_guard lock{mu_};
    if (find(*n)) return ino_for(name);
  }
  // A name the list does not have may have been published since it was
  // fetched (a checkpoint that a scheduler is about to resume): ask again,
  // unless the list is younger than kMissRefresh.
  refresh_if_older(kMissRefresh);
  std::lock_guard lock{mu_};
  if (!find(*n)) return std::nullopt;
  return ino_for(name);
}

std::optional<Node> ImageTree::node(std::uint64_t ino) const {
  if (ino == kRootIno) return Node{Node::Kind::kRoot, {}, 0};
  if (ino == kImagesIno) return Node{Node::Kind::kImages, {}, 0};
  if (ino == kStatusIno) return Node{Node::Kind::kStatus, {}, 0};
  std::lock_guard lock{mu_};
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

std::optional<wire::ImageEntry> ImageTree::entry(const Node& n, bool refresh_list) {
  if (refresh_list) refresh(false);
  std::lock_guard lock{mu_};
  return find(n);
}

std::vector<std::pair<std::string, std::uint64_t>> ImageTree::list_images() {
  refresh(false);
  std::lock_guard lock{mu_};
  std::map<std::string, std::uint64_t> files;
  for (const auto& e : images_) {
    files.emplace(e.name, 0);
    files.emplace(e.name + "@" + std::to_string(e.version), 0);
  }
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& [file, ignored] : files) {
    if (!parse_image_file_name(file)) continue;  // a server name we cannot spell
    out.emplace_back(file, ino_for(file));
  }
  return out;
}

}  // namespace vigo::vfs
