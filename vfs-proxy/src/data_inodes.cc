// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/data_inodes.h"

#include <vector>

namespace vigo::vfs {
namespace {

// Is `path` equal to `dir` or below it?
bool within(const std::string& path, const std::string& dir) {
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

}  // namespace

std::string join_data_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "/" + name;
}

std::uint64_t DataInodes::remember(const std::string& path, std::uint64_t lookups) {
  if (path.empty()) return kDataRootIno;
  std::lock_guard lock{mu_};
  auto [it, fresh] = by_path_.try_emplace(path, 0);
  if (fresh) {
    it->second = next_ino_++;
    entries_[it->second].path = path;
  }
  entries_[it->second].lookups += lookups;
  return it->second;
}

std::optional<std::uint64_t> DataInodes::find(const std::string& path) const {
  if (path.empty()) return kDataRootIno;
  std::lock_guard lock{mu_};
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> DataInodes::path(std::uint64_t ino) const {
  if (ino == kDataRootIno) return std::string{};
  std::lock_guard lock{mu_};
  auto it = entries_.find(ino);
  if (it == entries_.end()) return std::nullopt;
  return it->second.path;
}

void DataInodes::forget(std::uint64_t ino, std::uint64_t lookups) {
  if (ino == kDataRootIno) return;
  std::lock_guard lock{mu_};
  auto it = entries_.find(ino);
  if (it == entries_.end()) return;
  it->second.lookups = lookups >= it->second.lookups ? 0 : it->second.lookups - lookups;
  if (it->second.lookups != 0) return;
  if (it->second.path) by_path_.erase(*it->second.path);
  entries_.erase(it);
}

void DataInodes::detach_locked(const std::string& path) {
  for (auto it = by_path_.lower_bound(path); it != by_path_.end() && within(it->first, path);) {
    entries_[it->second].path.reset();
    it = by_path_.erase(it);
  }
}

void DataInodes::renamed(const std::string& from, const std::string& to) {
  if (from == to) return;
  std::lock_guard lock{mu_};
  detach_locked(to);
  std::vector<std::pair<std::string, std::uint64_t>> moved;
  for (auto it = by_path_.lower_bound(from); it != by_path_.end() && within(it->first, from);) {
    moved.emplace_back(to + it->first.substr(from.size()), it->second);
    it = by_path_.erase(it);
  }
  for (auto& [path, ino] : moved) {
    entries_[ino].path = path;
    by_path_[path] = ino;
  }
}

void DataInodes::removed(const std::string& path) {
  std::lock_guard lock{mu_};
  detach_locked(path);
}

std::size_t DataInodes::size() const {
  std::lock_guard lock{mu_};
  return entries_.size();
}

}  // namespace vigo::vfs
