// SPDX-License-Identifier: Apache-2.0
// File helpers shared by the image server and the proxy: whole-file reads with
// a size limit, complete writes, and the atomic-replace sequence (temp file in
// the same directory, write, fsync, rename, fsync the directory). errno
// becomes vigo::Error through throw_errno, naming the file. Stateless.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "vigo/common/unique_fd.h"

namespace vigo {

// open(2) with O_CLOEXEC, throwing on failure ("open <what>").
UniqueFd open_or_throw(const std::filesystem::path& path, int flags, std::string_view what, mode_t mode = 0);
UniqueFd open_at_or_throw(int dirfd, const std::string& name, int flags, std::string_view what, mode_t mode = 0);

// Reads the whole file from offset 0; kInvalidArgument if it holds more than
// max_bytes (checked with fstat before allocating).
std::vector<std::uint8_t> read_all(int fd, std::size_t max_bytes, std::string_view what);
void write_all(int fd, std::span<const std::uint8_t> data, std::string_view what);
// Reads exactly n bytes from a stream (pipe, socket, file); returns how many
// arrived before end of stream. Errors throw ("read <what>").
std::size_t read_full(int fd, std::uint8_t* out, std::size_t n, std::string_view what);
void pread_exact(int fd, std::uint8_t* out, std::size_t n, std::uint64_t offset, std::string_view what);
// Asks for a pipe buffer of kWidePipeBytes on fd when fd is a pipe; returns
// whether it has that much now. Best effort: another descriptor, a
// pipe-max-size below it, or a user past pipe-user-pages-soft leaves the
// pipe as it was. For the pipes between a vigo process and its ssh: with
// the default 64 KiB, ssh moves a chunk in many small writes and spends
// about twice the CPU per byte (docs/benchmarks.md, "wide pipes").
inline constexpr int kWidePipeBytes = 1 << 20;
bool widen_pipe(int fd);
void fsync_or_throw(int fd, std::string_view what);
void fsync_dir(const std::filesystem::path& dir);
// mkdir -p, then fsync each parent whose entry was created.
void make_dirs(const std::filesystem::path& dir, mode_t mode = 0755);

// A random name for a temporary file: ".tmp-<16 hex>".
[[nodiscard]] std::string temp_name();
[[nodiscard]] bool is_temp_name(std::string_view name);

// The whole of a small text file (a log, a key); "" when it cannot be read.
[[nodiscard]] std::string read_text_file(const std::filesystem::path& path);

enum class Replace { kAllow, kNever };
// Writes data to dir/name atomically and durably. With Replace::kNever an
// existing dir/name is left alone and kAlreadyExists is thrown.
void write_file_atomic(const std::filesystem::path& dir, const std::string& name, std::span<const std::uint8_t> data,
                       Replace replace = Replace::kAllow);

}  // namespace vigo
