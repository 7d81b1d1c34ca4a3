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

// Makes glibc's malloc serve buffers up to 32 MiB from its heaps (not a
// fresh mmap each) and keep up to 64 MiB of freed memory per heap mapped
// instead of returning it at once. Chunk-sized buffers are then reused
// without page faults, which cost about 10 us each on virtual machines
// like the benchmark's (a fresh 1 MiB buffer: 256 of them). For
// vigo-imaged and vigo-fs, whose buffers are a few MiB at a time; call it
// first thing in main().
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
