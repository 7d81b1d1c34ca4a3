// SPDX-License-Identifier: Apache-2.0
// ProxyFs: open, read and read-ahead of images and of the status file.
#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "open_file.h"
#include "vigo/common/log.h"
#include "vigo/vfs/chunk_map.h"
#include "vigo/vfs/proxy_fs.h"
#include "vigo/vfs/status.h"

namespace vigo::vfs {
namespace {

// One FUSE read split into chunk pieces; the last piece to finish replies.
struct ReadOp {
  // The buffer is not zeroed: every byte of it is written by a piece.
  ReadOp(fuse_req_t r, std::size_t size, std::size_t pieces)
      : req(r), buf(new std::uint8_t[size]), size(size), remaining(pieces) {}
  void deliver(std::uint64_t at, const Outcome& o) {
    if (o.ok()) {
      std::memcpy(buf.get() + at, o.bytes.data(), o.bytes.size());
    } else if (!failed.exchange(true)) {
      log::warn("read failed", {{"error", o.error->what()}});
    }
    piece_done();
  }
  // A piece from a cached chunk, read straight into place.
  void deliver_from(std::uint64_t at, const ChunkCache::Handle& h, std::uint64_t offset, std::size_t length) {
    try {
      if (h.read(offset, std::span{buf.get() + at, length}) != length) {
        throw Error{ErrorCode::kInternal, "short read from the chunk cache"};
      }
    } catch (const Error& e) {
      if (!failed.exchange(true)) log::warn("read failed", {{"error", e.what()}});
    }
    piece_done();
  }
  void piece_done() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (failed) {
      fuse_reply_err(req, EIO);
    } else {
      fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get()), size);
    }
  }
  fuse_req_t req;
  std::unique_ptr<std::uint8_t[]> buf;
  std::size_t size;
  std::atomic<std::size_t> remaining;
  std::atomic<bool> failed{false};
};

}  // namespace

std::shared_ptr<const Manifest> ProxyFs::cached_manifest(const std::string& key) {
  std::lock_guard lock{manifests_mu_};
  auto it = manifests_.find(key);
  return it == manifests_.end() ? nullptr : it->second;
}

void ProxyFs::open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != kDataRootIno && is_data_ino(ino)) {
    data_open(req, ino, fi);
    return;
  }
  if ((fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EROFS);
    return;
  }
  const auto node = tree_.node(ino);
  if (!node) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (node->kind == Node::Kind::kImage) {
    open_image(req, *node, fi);
    return;
  }
  if (node->kind != Node::Kind::kStatus) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  auto f = std::make_unique<OpenFile>();
  f->kind = OpenFile::Kind::kStatus;
  f->text = status_json(fetcher_->stats(), pool_->stats(), cache_.stats(), working_sets_->status());
  fi->fh = reinterpret_cast<std::uint64_t>(f.release());
  fi->direct_io = 1;  // the size in getattr is 0; the text is what a read returns
  if (fuse_reply_open(req, fi) != 0) delete open_file(fi);
}

void ProxyFs::open_image(fuse_req_t req, const Node& node, fuse_file_info* fi) {
  std::uint64_t version = node.version;
  if (version == 0) {
    std::optional<wire::ImageEntry> e;
    try {
      e = tree_.entry(node, true);
    } catch (const Error& err) {
      fuse_reply_err(req, EIO);
      return;
    }
    if (!e) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    version = e->version;
  }
  const std::string key = node.name + "@" + std::to_string(version);
  const bool immutable = node.version != 0;
  if (auto m = cached_manifest(key)) {
    reply_open(req, fi, std::move(m), immutable);
    return;
  }
  // The manifest comes from the network: reply when it arrives. fi is only
  // valid during this call, so the callback gets a copy.
  pool_->submit(wire::MessageType::kGetManifest, wire::encode(wire::ImageRef{node.name, version}),
                [this, req, fi_copy = *fi, key, name = node.name, version, immutable](Outcome o) mutable {
                  if (!o.ok()) {
                    log::warn("manifest fetch failed", {{"image", key}, {"error", o.error->what()}});
                    fuse_reply_err(req, errno_of(*o.error));
                    return;
                  }
                  std::shared_ptr<const Manifest> m;
                  try {
                    auto decoded = std::make_shared<Manifest>(decode_manifest(o.bytes));
                    if (decoded->name != name || decoded->version != version ||
                        decoded->hash_algorithm != kHashSha256) {
                      throw Error{ErrorCode::kInternal, "the server sent the manifest of another image"};
                    }
                    m = std::move(decoded);
                  } catch (const Error& e) {
                    log::warn("bad manifest", {{"image", key}, {"error", e.what()}});
                    fuse_reply_err(req, EIO);
                    return;
                  }
                  {
                    std::lock_guard lock{manifests_mu_};
                    m = manifests_.try_emplace(key, m).first->second;
                  }
                  reply_open(req, &fi_copy, std::move(m), immutable);
                });
}

void ProxyFs::reply_open(fuse_req_t req, fuse_file_info* fi, std::shared_ptr<const Manifest> m, bool immutable) {
  auto f = std::make_unique<OpenFile>();
  f->kind = OpenFile::Kind::kImage;
  f->working_set = working_sets_->opened(m);
  {
    std::lock_guard lock{neighbors_mu_};
    auto& n = neighbors_[m->name + "@" + std::to_string(m->version)];
    if (!n) n = std::make_shared<SharedNeighborPrefetch>();
    f->neighbors = n;
  }
  f->manifest = std::move(m);
  fi->fh = reinterpret_cast<std::uint64_t>(f.release());
  // A version never changes: keep the kernel's page cache across opens. The
  // latest alias may now be another version: start afresh.
  fi->keep_cache = immutable ? 1 : 0;
  if (fuse_reply_open(req, fi) != 0) delete open_file(fi);
}

void ProxyFs::read(fuse_req_t req, std::size_t size, off_t off, fuse_file_info* fi) {
  OpenFile& f = *open_file(fi);
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (f.kind == OpenFile::Kind::kData) {
    data_read(req, size, off, fi);
    return;
  }
  if (f.kind == OpenFile::Kind::kStatus) {
    const auto start = std::min(static_cast<std::size_t>(off), f.text.size());
    fuse_reply_buf(req, f.text.data() + start, std::min(size, f.text.size() - start));
    return;
  }
  const Manifest& m = *f.manifest;
  const auto slices = map_read(m, static_cast<std::uint64_t>(off), size);
  if (slices.empty()) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  working_sets_->touched(*f.working_set, slices.front().index, slices.back().index);
  const bool sequential = read_ahead(f, static_cast<std::uint64_t>(off), size);
  std::vector<std::optional<ChunkCache::Handle>> cached;
  cached.reserve(slices.size());
  bool all_cached = true;
  for (const auto& s : slices) {
    cached.push_back(fetcher_->cached(m.chunks[s.index]));
    all_cached = all_cached && cached.back().has_value();
  }
  // Neighbours to fetch ahead, chosen now (f may be released once the
  // read is answered) and asked for after the read's own requests, which
  // go first on the connections.
  std::vector<std::uint32_t> neighbors;
  bool clustered = false;
  if (!sequential && options_.neighbor_prefetch) {
    std::vector<bool> missed;
    missed.reserve(cached.size());
    for (const auto& c : cached) missed.push_back(!c.has_value());
    neighbors = choose_neighbors(f, slices.front().index, missed, &clustered);
  }
  const std::shared_ptr<const Manifest> manifest = neighbors.empty() ? nullptr : f.manifest;
  const auto fetch_neighbors = [&] {
    for (const std::uint32_t j : neighbors) fetcher_->prefetch_neighbor(manifest->chunks[j]);
  };
  const std::uint64_t total = slices.back().buffer_offset + slices.back().length;
  if (all_cached) {
    // Straight from the chunk files into one buffer, then one reply (not
    // zeroed: every byte is read into it; main() keeps freed heap memory
    // mapped, so this costs no page faults). fuse_reply_data with the
    // files' descriptors was slower: splice needs a pipe larger than a
    // 1 MiB reply can get by default, and libfuse's fallback maps a fresh
    // buffer per reply.
    std::unique_ptr<std::uint8_t[]> reply{new std::uint8_t[total]};
    for (std::size_t i = 0; i < slices.size(); ++i) {
      const auto& s = slices[i];
      try {
        if (cached[i]->read(s.chunk_offset, std::span{reply.get() + s.buffer_offset, s.length}) != s.length) {
          throw Error{ErrorCode::kInternal, "short read from the chunk cache"};
        }
      } catch (const Error& e) {
        log::warn("read failed", {{"error", e.what()}});
        fuse_reply_err(req, EIO);
        return;
      }
    }
    fuse_reply_buf(req, reinterpret_cast<const char*>(reply.get()), total);
    fetch_neighbors();
    return;
  }
  const auto pattern = sequential  ? Fetcher::ReadPattern::kSequential
                       : clustered ? Fetcher::ReadPattern::kClustered
                                   : Fetcher::ReadPattern::kSpread;
  auto op = std::make_shared<ReadOp>(req, total, slices.size());
  for (std::size_t i = 0; i < slices.size(); ++i) {
    const auto& s = slices[i];
    if (cached[i]) {
      op->deliver_from(s.buffer_offset, *cached[i], s.chunk_offset, s.length);
    } else {
      fetcher_->read_miss(m.chunks[s.index], s.chunk_offset, s.length, pattern,
                          [op, at = s.buffer_offset](Outcome o) { op->deliver(at, o); });
    }
  }
  fetch_neighbors();
}

std::vector<std::uint32_t> ProxyFs::choose_neighbors(OpenFile& f, std::size_t first, const std::vector<bool>& missed,
                                                      bool* clustered) {
  const Manifest& m = *f.manifest;
  const auto count = static_cast<std::uint32_t>(m.chunks.size());
  const auto cached = [&](std::uint32_t j) { return cache_.contains(m.chunks[j].hash); };
  NeighborPrefetch::Decision d;
  {
    std::lock_guard lock{f.neighbors->mu};
    d = f.neighbors->state.on_read(static_cast<std::uint32_t>(first), missed, count, cached);
    *clustered = f.neighbors->state.clustered();
  }
  if (d.used > 0) fetcher_->neighbor_used(d.used);
  return std::move(d.fetch);
}

bool ProxyFs::read_ahead(OpenFile& f, std::uint64_t off, std::size_t size) {
  const Manifest& m = *f.manifest;
  if (m.chunks.empty()) return false;
  std::int64_t from = 0, to = -1;
  bool sequential = false;
  {
    std::lock_guard lock{f.mu};
    // A read that starts exactly where the last one ended (or at 0, the
    // first read of a file read from its start) is sequential. The kernel
    // sends read-ahead requests in parallel, slightly out of order, so a
    // read merely near that point counts once the one before it was near
    // too. One near read alone does not: a random reader lands within the
    // window now and then (0.4% of reads in a 1 GiB image), and each such
    // read used to fetch its whole chunk and read four more ahead, which
    // the random reads behind it waited for on the same connection.
    const std::uint64_t window = 2ull * options_.max_read;
    const bool near = off + window >= f.next_offset && off <= f.next_offset + window;
    f.near_reads = near ? std::min(f.near_reads + 1, 2) : 0;
    sequential = off == f.next_offset || (near && f.near_reads >= 2);
    f.next_offset = std::max(f.next_offset, off + size);
    if (!sequential) {
      // A jump ends the run: the next run's read-ahead starts from its own
      // chunk. (Kept across jumps, a boot that read on at chunk 370 got no
      // read-ahead for a later run at chunk 285; asking again for chunks
      // cached or under way costs a lookup each.)
      f.next_offset = off + size;
      f.prefetched_through = -1;
      return false;
    }
    if (options_.readahead_chunks == 0) return true;
    const std::uint64_t last = std::min<std::uint64_t>(off + size, m.size) - 1;
    const std::int64_t last_chunk = static_cast<std::int64_t>(chunk_index(m, last));
    from = std::max(last_chunk + 1, f.prefetched_through + 1);
    to = std::min<std::int64_t>(last_chunk + options_.readahead_chunks, static_cast<std::int64_t>(m.chunks.size()) - 1);
    if (to >= from) f.prefetched_through = to;
  }
  for (std::int64_t i = from; i <= to; ++i) fetcher_->prefetch(m.chunks[static_cast<std::size_t>(i)]);
  return true;
}

}  // namespace vigo::vfs
