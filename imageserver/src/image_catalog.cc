// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/image_catalog.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <unordered_set>

#include "vigo/common/file_util.h"
#include "vigo/common/error.h"
#include "vigo/common/names.h"

namespace vigo::imageserver {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kDeletedSuffix = ".deleted";

// "12" -> 12; anything but a canonical positive decimal -> nullopt.
std::optional<std::uint64_t> parse_version(std::string_view s) {
  if (s.empty() || s.size() > 19 || s[0] == '0') return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

Manifest read_manifest_fd(int fd, const std::string& what) {
  return decode_manifest(read_all(fd, kMaxManifestBytes, what));
}

struct ChunkHashOf {
  std::size_t operator()(const ChunkHash& h) const noexcept {
    std::size_t v;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
  }
};

}  // namespace

ImageSpec parse_image_spec(std::string_view text) {
  ImageSpec spec;
  const auto at = text.find('@');
  spec.name = std::string{text.substr(0, at)};
  validate_name("image name", spec.name);
  if (at != std::string_view::npos) {
    auto v = parse_version(text.substr(at + 1));
    if (!v) throw invalid_argument("image version", "'" + std::string{text.substr(at + 1)} + "' is not a version >= 1");
    spec.version = *v;
  }
  return spec;
}

ImageCatalog::ImageCatalog(fs::path root, CatalogOptions options)
    : root_(std::move(root)), options_(options), chunks_(root_ / "chunks", options.chunks) {
  if (options_.chunk_size < kMinChunkSize || options_.chunk_size > kMaxChunkSize) {
    throw invalid_argument("chunk size", std::to_string(options_.chunk_size) + " is outside [64 KiB, 8 MiB]");
  }
  make_dirs(root_ / "images");
  make_dirs(root_ / "profiles");
}

fs::path ImageCatalog::manifest_path(const std::string& name, std::uint64_t version) const {
  return root_ / "images" / name / std::to_string(version);
}

UniqueFd ImageCatalog::lock_gc(bool exclusive) const {
  UniqueFd fd = open_or_throw(root_ / "gc.lock", O_RDWR | O_CREAT, "lock file", 0644);
  while (::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) throw_errno("flock " + (root_ / "gc.lock").string());
  }
  return fd;
}

std::uint64_t ImageCatalog::latest_version(const std::string& name, bool include_deleted) const {
  std::uint64_t latest = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ / "images" / name, ec)) {
    std::string file = e.path().filename().string();
    if (file.ends_with(kDeletedSuffix)) {
      if (!include_deleted) continue;
      file.resize(file.size() - kDeletedSuffix.size());
    }
    if (auto v = parse_version(file)) latest = std::max(latest, *v);
  }
  return latest;
}

Manifest ImageCatalog::publish(const fs::path& file, const std::string& name, PublishStats* stats) {
  validate_name("image name", name);
  UniqueFd in = open_or_throw(file, O_RDONLY, "image file");
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) throw_errno("stat " + file.string());
  if (!S_ISREG(st.st_mode)) throw invalid_argument("image file", file.string() + " is not a regular file");

  const UniqueFd gc_lock = lock_gc(false);  // no chunk we reuse can vanish until the manifest exists
  Manifest m;
  m.name = name;
  m.size = static_cast<std::uint64_t>(st.st_size);
  m.chunk_size = options_.chunk_size;
  PublishStats local;
  std::vector<std::uint8_t> buf(m.chunk_size);
  for (std::uint64_t offset = 0; offset < m.size; offset += m.chunk_size) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(m.chunk_size, m.size - offset));
    pread_exact(in.get(), buf.data(), n, offset, file.string());
    PutResult put = chunks_.put({buf.data(), n});
    if (put.written) {
      ++local.chunks_written;
      local.bytes_stored += put.ref.stored_length;
    } else {
      ++local.chunks_reused;
    }
    m.chunks.push_back(put.ref);
  }
  struct stat after {};
  if (::fstat(in.get(), &after) != 0 || after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
      after.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
    throw Error{ErrorCode::kConflict, file.string() + " changed while it was being published"};
  }

  const fs::path dir = root_ / "images" / name;
  make_dirs(dir);
  for (int attempt = 0;; ++attempt) {
    m.version = latest_version(name, true) + 1;
    try {
      write_file_atomic(dir, std::to_string(m.version), encode_manifest(m), Replace::kNever);
      break;
    } catch (const Error& e) {
      // Another publisher took this version first: take the next one.
      if (e.code() != ErrorCode::kAlreadyExists || attempt >= 100) throw;
    }
  }
  if (stats != nullptr) *stats = local;
  return m;
}

std::vector<wire::ImageEntry> ImageCatalog::list() const {
  std::vector<wire::ImageEntry> out;
  for (const auto& dir : fs::directory_iterator(root_ / "images")) {
    const std::string name = dir.path().filename().string();
    if (!dir.is_directory() || !is_valid_name(name)) continue;
    for (const auto& f : fs::directory_iterator(dir.path())) {
      if (!parse_version(f.path().filename().string())) continue;
      try {
        const Manifest m = stat(name, *parse_version(f.path().filename().string()));
        out.push_back({m.name, m.version, m.size, m.chunk_size, static_cast<std::uint32_t>(m.chunks.size())});
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kNotFound) throw;  // deleted meanwhile
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.name != b.name ? a.name < b.name : a.version < b.version; });
  return out;
}

Manifest ImageCatalog::stat(const std::string& name, std::uint64_t version) const {
  return open(name, version).manifest();
}

ImageReader ImageCatalog::open(const std::string& name, std::uint64_t version) const {
  validate_name("image name", name);
  if (version == 0) version = latest_version(name, false);
  const std::string what = name + "@" + std::to_string(version);
  const int raw = version == 0 ? -1 : ::open(manifest_path(name, version).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (raw < 0) {
    if (version == 0 || errno == ENOENT) throw Error{ErrorCode::kNotFound, "no such image: " + what, "image"};
    throw_errno("open manifest " + what);
  }
  UniqueFd fd{raw};
  // Lock before reading: the collector truncates a deleted manifest only
  // under an exclusive lock, so what we read now stays valid while we hold it.
  while (::flock(fd.get(), LOCK_SH) != 0) {
    if (errno != EINTR) throw_errno("flock manifest " + what);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat manifest " + what);
  if (st.st_size == 0) throw Error{ErrorCode::kNotFound, "no such image: " + what + " (deleted)", "image"};
  Manifest m = read_manifest_fd(fd.get(), "manifest " + what);
  if (m.name != name || m.version != version) {
    throw Error{ErrorCode::kInternal, "manifest " + what + " names " + m.name + "@" + std::to_string(m.version)};
  }
  return ImageReader{std::move(fd), std::move(m)};
}

GcStats ImageCatalog::remove(const std::string& name, std::uint64_t version) {
  validate_name("image name", name);
  if (version == 0) throw invalid_argument("image version", "delete needs an explicit version (NAME@VERSION)");
  const fs::path from = manifest_path(name, version);
  const fs::path to = from.string() + std::string{kDeletedSuffix};
  // Shared: a collector (exclusive) never sees the directory mid-rename.
  UniqueFd gc_lock = lock_gc(false);
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == ENOENT) {
      throw Error{ErrorCode::kNotFound, "no such image: " + name + "@" + std::to_string(version), "image"};
    }
    throw_errno("delete " + from.string());
  }
  fsync_dir(from.parent_path());
  std::error_code ec;
  fs::remove(root_ / "profiles" / name / std::to_string(version), ec);
  gc_lock.reset();
  return collect_garbage();
}

GcStats ImageCatalog::collect_garbage() {
  const UniqueFd gc_lock = lock_gc(true);
  GcStats stats;
  std::unordered_set<ChunkHash, ChunkHashOf> live;
  auto keep = [&](const Manifest& m) {
    for (const auto& c : m.chunks) live.insert(c.hash);
  };
  for (const auto& dir : fs::directory_iterator(root_ / "images")) {
    if (!dir.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(dir.path())) {
      const std::string file = f.path().filename().string();
      if (parse_version(file)) {
        UniqueFd fd = open_or_throw(f.path(), O_RDONLY, "manifest");
        keep(read_manifest_fd(fd.get(), f.path().string()));
      } else if (file.ends_with(kDeletedSuffix) && f.is_regular_file() && f.file_size() > 0) {
        UniqueFd fd = open_or_throw(f.path(), O_RDWR, "deleted manifest");
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
          if (errno != EWOULDBLOCK) throw_errno("flock " + f.path().string());
          ++stats.deleted_versions_still_open;  // a reader still has it: its chunks stay
          keep(read_manifest_fd(fd.get(), f.path().string()));
          continue;
        }
        if (::ftruncate(fd.get(), 0) != 0) throw_errno("truncate " + f.path().string());
        fsync_or_throw(fd.get(), f.path().string());
      } else if (is_temp_name(file)) {
        std::error_code ec;
        if (fs::remove(f.path(), ec)) ++stats.temp_files_removed;
      }
    }
  }
  for (const ChunkHash& h : chunks_.list()) {
    if (live.contains(h)) continue;
    stats.bytes_freed += chunks_.remove(h);
    ++stats.chunks_removed;
  }
  stats.temp_files_removed += chunks_.remove_temp_files();
  return stats;
}

void ImageCatalog::put_profile(const std::string& name, std::uint64_t version, std::span<const std::uint8_t> blob) {
  if (blob.size() > wire::kMaxProfile) {
    throw invalid_argument(
        "profile", std::to_string(blob.size()) + " bytes exceeds the limit of " + std::to_string(wire::kMaxProfile));
  }
  const Manifest m = stat(name, version);  // the version must exist
  const fs::path dir = root_ / "profiles" / name;
  make_dirs(dir);
  write_file_atomic(dir, std::to_string(m.version), blob);
}

std::vector<std::uint8_t> ImageCatalog::get_profile(const std::string& name, std::uint64_t version) const {
  validate_name("image name", name);
  if (version == 0) version = latest_version(name, false);
  const fs::path path = root_ / "profiles" / name / std::to_string(version);
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (raw < 0) {
    if (errno == ENOENT) {
      throw Error{ErrorCode::kNotFound, "no profile for " + name + "@" + std::to_string(version), "profile"};
    }
    throw_errno("open profile " + path.string());
  }
  UniqueFd fd{raw};
  return read_all(fd.get(), wire::kMaxProfile, "profile " + path.string());
}

}  // namespace vigo::imageserver
