// SPDX-License-Identifier: Apache-2.0
// The second test host (tests/support/namespace_host.h, second_host.sh): its
// libvirt is reached over qemu+ssh:// with its host key checked, it and the
// host's libvirt (qemu:///system, scripts/libvirt-up.sh) do not see each
// other's domains, the tiny guest started through its URI runs in its
// network namespace, processes inside reach the test's servers on the host
// side of the link, and nothing of it is left once it is gone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/guest.h"
#include "support/namespace_host.h"
#include "support/temp_dir.h"
#include "support/text_file.h"
#include "vigo/common/local_sshd.h"
#include "vigo/common/subprocess.h"
#include "vigo/scheduler/console_watch.h"
#include "vigo/scheduler/libvirt_hypervisor.h"

namespace vigo::scheduler {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::NamespaceHost;

// Indexes of this file's hosts (one per test: ctest may run them at once).
constexpr int kSshIndex = 210;
constexpr int kReachIndex = 211;
constexpr int kGuestIndex = 212;
constexpr int kCleanupIndex = 213;

std::string test_name() { return "vigo-nshost-" + random_uuid().substr(0, 8); }

// The tiny guest on its own qcow2 overlay in `dir`.
VmSpec guest_spec(const fs::path& dir, const std::string& name) {
  const fs::path overlay = dir / (name + ".qcow2");
  const auto r = run_command({"qemu-img", "create", "-q", "-f", "qcow2", "-b",
                              (testing::guest_dir() / "root.ext4").string(), "-F", "raw", overlay.string()},
                             30s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  VmSpec s;
  s.name = name;
  s.uuid = random_uuid();
  s.memory_mib = 256;
  s.disks.push_back({overlay, DiskFormat::kQcow2, false});
  s.direct_boot = testing::guest_boot();
  s.console_log = dir / (name + ".console");
  return s;
}

std::string ns_of(pid_t pid, const char* kind) {
  std::error_code ec;
  return fs::read_symlink(fs::path{"/proc"} / std::to_string(pid) / "ns" / kind, ec).string();
}

// Pids of live processes in the network namespace `net` ("net:[inode]").
std::vector<pid_t> processes_in(const std::string& net) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator{"/proc"}) {
    const std::string n = e.path().filename().string();
    if (n.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(n);
    if (ns_of(pid, "net") == net) out.push_back(pid);
  }
  return out;
}

bool alive(pid_t pid) {
  const std::string stat = testing::read_text_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

pid_t qemu_pid(const NamespaceHost& h, const std::string& name) {
  const auto r = h.run_inside({"cat", "/run/libvirt/qemu/" + name + ".pid"}, 10s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.exit_code == 0 ? static_cast<pid_t>(std::stol(r.output)) : -1;
}

SpawnOptions command(std::vector<std::string> argv) {
  SpawnOptions o;
  o.argv = std::move(argv);
  return o;
}

std::vector<std::string> names(Hypervisor& hv) {
  std::vector<std::string> out;
  for (const auto& d : hv.list()) out.push_back(d.name);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(NamespaceHostTest, ItsLibvirtAnswersOverSshOnlyWithItsHostKey) {
  NamespaceHost h{kSshIndex};
  const auto listed = run_command({"virsh", "-q", "-c", h.libvirt_uri(), "list", "--all"}, 60s);
  EXPECT_EQ(listed.exit_code, 0) << listed.output << h.log();

  // A login lands in both namespaces.
  const auto ns = run_command(h.ssh_argv("readlink /proc/self/ns/net /proc/self/ns/mnt"), 30s);
  ASSERT_EQ(ns.exit_code, 0) << ns.output;
  EXPECT_EQ(ns.output, ns_of(h.holder_pid(), "net") + "\n" + ns_of(h.holder_pid(), "mnt") + "\n");
  EXPECT_NE(ns_of(h.holder_pid(), "net"), ns_of(::getpid(), "net"));

  // The same URI with another key in known_hosts is refused.
  testing::TempDir other{"vigo-nshost-other"};
  ASSERT_EQ(
      run_command({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (other.path() / "k").string()}, 30s)
          .exit_code,
      0);
  const std::string other_key = testing::read_text_file(other.path() / "k.pub");
  std::string config = testing::read_text_file(h.ssh_config());
  const std::string known = (h.dir() / "known_hosts").string();
  config.replace(config.find(known), known.size(), (other.path() / "known_hosts").string());
  {
    std::ofstream{other.path() / "known_hosts"} << h.address() << ' ' << other_key.substr(0, other_key.rfind(' '))
                                                << "\n";
    std::ofstream{other.path() / "ssh_config"} << config;
    std::ofstream{other.path() / "ssh"} << "#!/bin/sh\nexec /usr/bin/ssh -F " << (other.path() / "ssh_config").string()
                                        << " \"$@\"\n";
  }
  fs::permissions(other.path() / "ssh", fs::perms::owner_all);
  const auto refused =
      run_command({"virsh", "-q", "-c",
                   "qemu+ssh://root@" + h.address() + "/system?command=" + (other.path() / "ssh").string(), "list"},
                  60s);
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("Host key verification failed"), std::string::npos) << refused.output;
}

TEST(NamespaceHostTest, ProcessesInsideReachServersOnTheHostSideOnly) {
  NamespaceHost h{kReachIndex};
  testing::TempDir dir{"vigo-nshost-sshd"};
  LocalSshd sshd{dir.path() / "sshd", 0, {h.host_side_address()}};
  const auto ssh_to = [&](const std::string& address) {
    std::vector<std::string> argv{"/usr/bin/ssh", "-p", std::to_string(sshd.port()), "-o", "ConnectTimeout=5"};
    for (const auto& o : sshd.ssh_options()) {
      argv.push_back("-o");
      argv.push_back(o);
    }
    argv.push_back("root@" + address);
    argv.push_back("readlink /proc/self/ns/net");
    return h.run_inside(argv, 30s);
  };
  const auto reached = ssh_to(h.host_side_address());
  ASSERT_EQ(reached.exit_code, 0) << reached.output << sshd.log();
  EXPECT_EQ(reached.output, ns_of(::getpid(), "net") + "\n");  // the session runs on this side
  // 127.0.0.1 inside is the namespace's own loopback.
  EXPECT_NE(ssh_to("127.0.0.1").exit_code, 0);
  // Started inside: same namespaces as the holder.
  auto inside = h.spawn_inside(command({"/bin/sleep", "30"}));
  const auto deadline = Clock::now() + 5s;  // nsenter enters, then execs sleep
  while (Clock::now() < deadline && ns_of(inside.pid(), "net") != ns_of(h.holder_pid(), "net")) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(ns_of(inside.pid(), "net"), ns_of(h.holder_pid(), "net"));
  EXPECT_EQ(ns_of(inside.pid(), "mnt"), ns_of(h.holder_pid(), "mnt"));
}

TEST(NamespaceHostTest, AGuestStartedThroughItsUriRunsInItsNamespaceAndEachLibvirtSeesOnlyItsOwn) {
  NamespaceHost h{kGuestIndex};
  LibvirtEventLoop events;
  LibvirtHypervisor remote{events, h.libvirt_uri()};
  LibvirtHypervisor local{events, "qemu:///system"};
  const std::string there = test_name();
  const std::string here = test_name();

  const VmSpec s = guest_spec(h.dir(), there);
  ConsoleWatch console{s.console_log};
  remote.start(s);
  local.start(guest_spec(h.dir(), here));
  const auto remote_names = names(remote);
  const auto local_names = names(local);
  local.destroy(here);  // it only had to exist
  EXPECT_TRUE(contains(remote_names, there));
  EXPECT_FALSE(contains(remote_names, here));
  EXPECT_TRUE(contains(local_names, here));
  EXPECT_FALSE(contains(local_names, there));

  const auto ready = console.wait_for("VIGO-READY", Clock::now() + 180s);
  EXPECT_TRUE(ready.has_value()) << "no readiness line; console:\n" << console.tail(4000) << h.log();
  const pid_t qemu = qemu_pid(h, there);
  ASSERT_GT(qemu, 0);
  EXPECT_NE(testing::read_text_file("/proc/" + std::to_string(qemu) + "/cmdline").find(there), std::string::npos);
  EXPECT_EQ(ns_of(qemu, "net"), ns_of(h.holder_pid(), "net"));
  EXPECT_NE(ns_of(qemu, "net"), ns_of(::getpid(), "net"));
  remote.destroy(there);
  EXPECT_FALSE(remote.find(there).has_value());
}

TEST(NamespaceHostTest, LeavesNothingBehind) {
  auto h = std::make_unique<NamespaceHost>(kCleanupIndex);
  const std::string netns = h->netns();
  const std::string veth = h->host_veth();
  const std::string net = ns_of(h->holder_pid(), "net");
  ASSERT_FALSE(net.empty());
  std::vector<pid_t> pids{h->supervisor_pid(), h->holder_pid()};
  std::istringstream children{run_command({"pgrep", "-P", std::to_string(h->holder_pid())}, 10s).output};
  for (pid_t pid = 0; children >> pid;) pids.push_back(pid);  // virtlogd, libvirtd, sshd
  EXPECT_GE(pids.size(), 5u);

  // A running guest (left to the host to destroy), an ssh session and a
  // process the test started inside.
  const std::string name = test_name();
  {
    LibvirtEventLoop events;
    LibvirtHypervisor remote{events, h->libvirt_uri()};
    remote.start(guest_spec(h->dir(), name));
    ASSERT_TRUE(remote.find(name).has_value());
  }
  pids.push_back(qemu_pid(*h, name));
  auto session = Subprocess::spawn(command(h->ssh_argv("sleep 600")));
  auto inside = h->spawn_inside(command({"/bin/sleep", "600"}));
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline && processes_in(net).size() < 7) std::this_thread::sleep_for(50ms);

  h.reset();
  EXPECT_TRUE(inside.wait_for(5s).has_value());
  EXPECT_TRUE(session.wait_for(10s).has_value());
  EXPECT_TRUE(processes_in(net).empty());
  for (pid_t pid : pids) EXPECT_FALSE(alive(pid)) << "pid " << pid << " lives on";
  const auto netns_list = run_command({"ip", "netns", "list"}, 10s);
  EXPECT_EQ(netns_list.output.find(netns), std::string::npos) << netns_list.output;
  EXPECT_NE(run_command({"ip", "link", "show", veth}, 10s).exit_code, 0);
  LibvirtEventLoop events;
  LibvirtHypervisor local{events, "qemu:///system"};
  EXPECT_FALSE(local.find(name).has_value());
}

}  // namespace
}  // namespace vigo::scheduler
