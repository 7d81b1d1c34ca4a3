// SPDX-License-Identifier: Apache-2.0
// Small facts about the machine: loopback addresses, a free TCP port on an
// address, and users.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "vigo/common/unique_fd.h"

namespace vigo {

// 127.0.0.1:port.
[[nodiscard]] sockaddr_in loopback_address(std::uint16_t port);
// A blocking TCP connection to 127.0.0.1:port (close-on-exec); throws the
// errno as a vigo::Error ("connect to 127.0.0.1:PORT: ...").
[[nodiscard]] UniqueFd connect_loopback(std::uint16_t port);

// Makes glibc's malloc serve buffers up to 16 MiB from its heaps (not a
// fresh mmap each), use at most 2 heaps, and keep up to 8 MiB of freed
// memory at the top of each mapped instead of returning it at once.
// Chunk-sized buffers are then reused without page faults, which cost
// about 10 us each on virtual machines like the benchmark's (a fresh 1 MiB
// buffer: 256 of them), while what the heaps keep stays bounded (16 MiB).
// For vigo-imaged and vigo-fs; call it first thing in main().
void keep_heap_memory();

// A port that was free a moment ago (bind port 0, read it, close). A server
// started on it may still lose a race; callers retry on "address in use".
[[nodiscard]] std::uint16_t free_tcp_port(const char* address = "127.0.0.1");

struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

// getpwnam_r; kNotFound naming the user.
[[nodiscard]] UserIds lookup_user(const std::string& name);
[[nodiscard]] UserIds current_user();

}  // namespace vigo
