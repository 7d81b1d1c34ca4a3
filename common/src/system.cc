// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/system.h"

#include <malloc.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "vigo/common/error.h"

namespace vigo {

sockaddr_in loopback_address(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

UniqueFd connect_loopback(std::uint16_t port) {
  UniqueFd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (fd.get() < 0) throw_errno("socket");
  const sockaddr_in a = loopback_address(port);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    throw_errno("connect to 127.0.0.1:" + std::to_string(port));
  }
  return fd;
}

std::uint16_t free_tcp_port(const char* address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
    ::close(fd);
    throw invalid_argument("address", std::string{"'"} + address + "' is not an IPv4 address");
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd);
    throw_errno("bind", e);
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

namespace {
UserIds from_passwd(const passwd& pw) { return {pw.pw_uid, pw.pw_gid, pw.pw_name}; }
}  // namespace

UserIds lookup_user(const std::string& name) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0) throw_errno("getpwnam " + name, rc);
  if (found == nullptr) throw Error{ErrorCode::kNotFound, "no such user: " + name, "user"};
  return from_passwd(pw);
}

UserIds current_user() {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  const int rc = ::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr) return {::geteuid(), ::getegid(), std::to_string(::geteuid())};
  return from_passwd(pw);
}

void keep_heap_memory() {
  ::mallopt(M_ARENA_MAX, 2);                // few heaps, so what each keeps stays bounded
  ::mallopt(M_MMAP_THRESHOLD, 16 << 20);    // chunk-sized buffers (<= 8 MiB) from the heaps
  ::mallopt(M_TRIM_THRESHOLD, 8 << 20);     // keep up to 8 MiB free at the top of each
}

}  // namespace vigo
