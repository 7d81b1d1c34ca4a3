// SPDX-License-Identifier: Apache-2.0
#include "vigo/web/vigod_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/temp_dir.h"
#include "vigo/common/config.h"
#include "vigo/common/error.h"

namespace vigo::web {
namespace {

namespace fs = std::filesystem;

// "section.key" -> the value as TOML text ("\"text\"", "8").
using Keys = std::map<std::string, std::string>;

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

Config::EnvLookup no_env() {
  return [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
}

std::string toml_of(const Keys& keys) {
  std::map<std::string, std::vector<std::string>> sections;
  for (const auto& [key, value] : keys) {
    const auto dot = key.find('.');
    sections[key.substr(0, dot)].push_back(key.substr(dot + 1) + " = " + value);
  }
  std::string out;
  for (const auto& [name, lines] : sections) {
    out += "[" + name + "]\n";
    for (const auto& line : lines) out += line + "\n";
  }
  return out;
}

Config config_of(const Keys& keys) { return Config::from_string(toml_of(keys), "vigod.toml", no_env()); }

VigodConfig vigod_config_of(const Keys& keys) { return read_vigod_config(config_of(keys)); }

// The error read_vigod_config throws; a test failure when none.
Error error_of(const Config& config) {
  try {
    (void)read_vigod_config(config);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "the configuration was accepted";
  return Error{ErrorCode::kInternal, "no error"};
}

void expect_refused(const Keys& keys, const std::string& key, const std::string& says = {}) {
  SCOPED_TRACE(toml_of(keys));
  const Error e = error_of(config_of(keys));
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.field(), key) << e.what();
  EXPECT_NE(std::string{e.what()}.find(key), std::string::npos) << e.what();
  if (!says.empty()) {
    EXPECT_NE(std::string{e.what()}.find(says), std::string::npos) << e.what();
  }
}

Keys minimal() {
  return {{"database.url", quoted("host=/var/lib/vigo/pg/sockets dbname=vigo")},
          {"api.cert", quoted("/etc/vigo/tls/cert.pem")},
          {"api.key", quoted("/etc/vigo/tls/key.pem")}};
}

Keys with(Keys keys, const std::string& key, const std::string& value) {
  keys[key] = value;
  return keys;
}

Keys without(Keys keys, const std::string& key) {
  keys.erase(key);
  return keys;
}

TEST(VigodConfig, AMinimalConfigGetsTheDefaults) {
  const VigodConfig v = vigod_config_of(minimal());
  EXPECT_EQ(v.database_url, "host=/var/lib/vigo/pg/sockets dbname=vigo");
  EXPECT_EQ(v.database_pool, 8u);
  EXPECT_EQ(v.server.address, "127.0.0.1");
  EXPECT_EQ(v.server.port, 8443);
  EXPECT_EQ(v.server.cert_file.string(), "/etc/vigo/tls/cert.pem");
  EXPECT_EQ(v.server.key_file.string(), "/etc/vigo/tls/key.pem");
  EXPECT_EQ(v.server.io_threads, 2);
  EXPECT_EQ(v.server.handler_threads, 8);
  EXPECT_EQ(v.server.body_limit, 1024u * 1024u);
  EXPECT_EQ(v.server.header_limit, 16u * 1024u);
  EXPECT_DOUBLE_EQ(v.api.rate_per_token, 200);
  EXPECT_DOUBLE_EQ(v.api.burst_per_token, 400);
  EXPECT_TRUE(v.hosts.empty());  // a GIS-only vigod
  EXPECT_EQ(v.domain_prefix, "vigo-");
  EXPECT_EQ(v.readiness_timeout, std::chrono::seconds{180});
  EXPECT_EQ(v.reconcile_interval, std::chrono::seconds{60});
  EXPECT_EQ(v.checkpoint_tick, std::chrono::seconds{5});
  EXPECT_EQ(v.accelerator, "tcg");
  EXPECT_EQ(v.log_level, "info");
}

TEST(VigodConfig, SetValuesAreRead) {
  Keys k = minimal();
  k["database.pool"] = "16";
  k["api.listen"] = quoted("0.0.0.0:9443");
  k["api.io_threads"] = "4";
  k["api.handler_threads"] = "32";
  k["api.body_limit_kib"] = "2048";
  k["api.rate_per_token"] = "50";
  k["api.burst_per_token"] = "75";
  k["scheduler.domain_prefix"] = quoted("ws_");
  k["scheduler.readiness_timeout_s"] = "600";
  k["scheduler.reconcile_interval_s"] = "0";
  k["scheduler.checkpoint_tick_s"] = "0";
  k["scheduler.accelerator"] = quoted("kvm");
  k["log.level"] = quoted("debug");
  const VigodConfig v = vigod_config_of(k);
  EXPECT_EQ(v.database_pool, 16u);
  EXPECT_EQ(v.server.address, "0.0.0.0");
  EXPECT_EQ(v.server.port, 9443);
  EXPECT_EQ(v.server.io_threads, 4);
  EXPECT_EQ(v.server.handler_threads, 32);
  EXPECT_EQ(v.server.body_limit, 2048u * 1024u);
  EXPECT_DOUBLE_EQ(v.api.rate_per_token, 50);
  EXPECT_DOUBLE_EQ(v.api.burst_per_token, 75);
  EXPECT_EQ(v.domain_prefix, "ws_");
  EXPECT_EQ(v.readiness_timeout, std::chrono::seconds{600});
  EXPECT_EQ(v.reconcile_interval, std::chrono::seconds{0});
  EXPECT_EQ(v.checkpoint_tick, std::chrono::seconds{0});
  EXPECT_EQ(v.accelerator, "kvm");
  EXPECT_EQ(v.log_level, "debug");
}

TEST(VigodConfig, ListenAddresses) {
  const VigodConfig v6 = vigod_config_of(with(minimal(), "api.listen", quoted("[::1]:8443")));
  EXPECT_EQ(v6.server.address, "::1");
  EXPECT_EQ(v6.server.port, 8443);
  const VigodConfig any_port = vigod_config_of(with(minimal(), "api.listen", quoted("127.0.0.1:0")));
  EXPECT_EQ(any_port.server.port, 0);
  EXPECT_EQ(vigod_config_of(with(minimal(), "api.listen", quoted("127.0.0.1:65535"))).server.port, 65535);
  EXPECT_EQ(vigod_config_of(with(minimal(), "api.listen", quoted("10.0.0.1:1"))).server.port, 1);
}

TEST(VigodConfig, EachRequiredKeyMissingIsNamed) {
  for (const char* key : {"database.url", "api.cert", "api.key"}) {
    expect_refused(without(minimal(), key), key, "is required");
    expect_refused(with(minimal(), key, quoted("")), key, "is required");
  }
}

TEST(VigodConfig, RelativeCertificatePathsAreRefused) {
  expect_refused(with(minimal(), "api.cert", quoted("tls/cert.pem")), "api.cert", "absolute path");
  expect_refused(with(minimal(), "api.key", quoted("key.pem")), "api.key", "absolute path");
}

TEST(VigodConfig, BadListenAddressesAreRefused) {
  for (const char* listen : {"127.0.0.1:65536", "127.0.0.1:70000", "127.0.0.1:123456", "127.0.0.1:-1", "127.0.0.1:",
                             "127.0.0.1", ":8443", "127.0.0.1:84x3", "127.0.0.1:+80", "127.0.0.1: 80", ""}) {
    expect_refused(with(minimal(), "api.listen", quoted(listen)), "api.listen");
  }
}

TEST(VigodConfig, NumbersOutOfRangeNameTheirKey) {
  const std::vector<std::pair<std::string, std::string>> bad{
      {"database.pool", "-1"},
      {"database.pool", "0"},
      {"database.pool", "257"},
      {"api.io_threads", "0"},
      {"api.io_threads", "65"},
      {"api.handler_threads", "-4"},
      {"api.body_limit_kib", "-1"},
      {"api.body_limit_kib", "0"},
      {"api.body_limit_kib", "65537"},
      {"api.rate_per_token", "-5"},
      {"api.rate_per_token", "0"},
      {"api.burst_per_token", "0"},
      {"api.burst_per_token", "-400"},
      {"scheduler.readiness_timeout_s", "-1"},
      {"scheduler.readiness_timeout_s", "4"},
      {"scheduler.readiness_timeout_s", "3601"},
      {"scheduler.reconcile_interval_s", "-1"},
      {"scheduler.reconcile_interval_s", "86401"},
      {"scheduler.checkpoint_tick_s", "-1"},
      {"scheduler.checkpoint_tick_s", "3601"},
  };
  for (const auto& [key, value] : bad) expect_refused(with(minimal(), key, value), key, "outside");
}

TEST(VigodConfig, NumbersOfTheWrongTypeNameTheirKey) {
  expect_refused(with(minimal(), "database.pool", quoted("many")), "database.pool", "not an integer");
  expect_refused(with(minimal(), "api.rate_per_token", "2.5"), "api.rate_per_token", "not an integer");
  expect_refused(with(minimal(), "api.io_threads", "true"), "api.io_threads", "not an integer");
}

TEST(VigodConfig, AnUnknownAcceleratorIsRefused) {
  for (const char* accel : {"xen", "KVM", "", "hvf"}) {
    expect_refused(with(minimal(), "scheduler.accelerator", quoted(accel)), "scheduler.accelerator");
  }
}

TEST(VigodConfig, AutoAcceleratorAndTheHostWatch) {
  const VigodConfig v = vigod_config_of(with(minimal(), "scheduler.accelerator", quoted("auto")));
  EXPECT_EQ(v.accelerator, "auto");
  EXPECT_EQ(v.host_silence, std::chrono::seconds{60});  // on by default
  EXPECT_EQ(v.heartbeat_interval, std::chrono::seconds{10});
  EXPECT_EQ(vigod_config_of(with(minimal(), "scheduler.host_silence_s", "0")).host_silence.count(), 0);
  // A silence shorter than two heartbeats would mark live hosts down.
  expect_refused(with(minimal(), "scheduler.host_silence_s", "15"), "scheduler.host_silence_s", "twice");
  expect_refused(with(minimal(), "scheduler.host_silence_s", "-1"), "scheduler.host_silence_s");
  expect_refused(with(minimal(), "scheduler.heartbeat_interval_s", "0"), "scheduler.heartbeat_interval_s");
}

TEST(VigodConfig, BadDomainPrefixesAreRefused) {
  for (const std::string& prefix :
       {std::string{""}, std::string{"Vigo-"}, std::string{"vigo."}, std::string{"a b"}, std::string(33, 'v')}) {
    expect_refused(with(minimal(), "scheduler.domain_prefix", quoted(prefix)), "scheduler.domain_prefix");
  }
  EXPECT_EQ(vigod_config_of(with(minimal(), "scheduler.domain_prefix", quoted(std::string(32, 'v')))).domain_prefix,
            std::string(32, 'v'));
}

TEST(VigodConfig, TheEnvironmentOverridesTheFileAndErrorsStillNameTheKey) {
  auto env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "VIGO_API_LISTEN") return std::string{"127.0.0.1:9000"};
    if (name == "VIGO_DATABASE_POOL") return std::string{"0"};
    return std::nullopt;
  };
  Config c = Config::from_string(toml_of(minimal()), "vigod.toml", env);
  const Error e = error_of(c);
  EXPECT_EQ(e.field(), "database.pool");
  EXPECT_NE(std::string{e.what()}.find("VIGO_DATABASE_POOL"), std::string::npos) << e.what();
  c.set_override("database.pool", "3");
  const VigodConfig v = read_vigod_config(c);
  EXPECT_EQ(v.server.port, 9000);
  EXPECT_EQ(v.database_pool, 3u);
}

// A vigod that drives a host: every [host], [scheduler] and [imageserver]
// path it needs, with a real executable standing in for vigo-imaged.
class VigodHostConfigTest : public ::testing::Test {
 protected:
  VigodHostConfigTest() {
    imaged = dir.path() / "vigo-imaged";
    std::ofstream{imaged} << "#!/bin/sh\n";
    fs::permissions(imaged, fs::perms::owner_all);
    keys = minimal();
    keys["host.name"] = quoted("node-1");
    keys["host.images_dir"] = quoted((dir.path() / "mnt" / "images").string());
    keys["host.state_dir"] = quoted((dir.path() / "vms").string());
    keys["scheduler.profiles_dir"] = quoted((dir.path() / "profiles").string());
    keys["imageserver.name"] = quoted("store-1");
    keys["imageserver.store"] = quoted((dir.path() / "store").string());
    keys["imageserver.imaged"] = quoted(imaged.string());
  }
  vigo::testing::TempDir dir{"vigo-vigod-config"};
  fs::path imaged;
  Keys keys;
};

TEST_F(VigodHostConfigTest, AllHostKeysAreRead) {
  const VigodConfig v = vigod_config_of(keys);
  ASSERT_EQ(v.hosts.size(), 1U);
  EXPECT_EQ(v.hosts[0].name, "node-1");
  EXPECT_EQ(v.hosts[0].uri, "qemu:///system");
  EXPECT_EQ(v.hosts[0].images_dir.string(), (dir.path() / "mnt" / "images").string());
  EXPECT_EQ(v.hosts[0].state_dir.string(), (dir.path() / "vms").string());
  EXPECT_EQ(v.profiles_dir.string(), (dir.path() / "profiles").string());
  EXPECT_EQ(v.image_server, "store-1");
  EXPECT_EQ(v.store.string(), (dir.path() / "store").string());
  EXPECT_EQ(v.imaged.string(), imaged.string());
  Keys remote_keys = with(keys, "host.uri", quoted("qemu+ssh://node-1/system"));
  remote_keys["host.ssh"] = quoted("root@node-1");
  remote_keys["scheduler.staging_dir"] = quoted((dir.path() / "staging").string());
  const VigodConfig remote = vigod_config_of(remote_keys);
  ASSERT_EQ(remote.hosts.size(), 1U);
  EXPECT_EQ(remote.hosts[0].uri, "qemu+ssh://node-1/system");
}

TEST_F(VigodHostConfigTest, MoreHostsComeFromHostsTables) {
  Keys k = keys;
  k["hosts.node-3.uri"] = quoted("qemu+ssh://node-3/system");
  k["hosts.node-3.ssh"] = quoted("node-3");
  k["hosts.node-3.images_dir"] = quoted((dir.path() / "mnt3" / "images").string());
  k["hosts.node-3.state_dir"] = quoted((dir.path() / "vms3").string());
  k["scheduler.staging_dir"] = quoted((dir.path() / "staging").string());
  k["hosts.node-2.images_dir"] = quoted((dir.path() / "mnt2" / "images").string());
  k["hosts.node-2.state_dir"] = quoted((dir.path() / "vms2").string());
  const VigodConfig v = vigod_config_of(k);
  ASSERT_EQ(v.hosts.size(), 3U);
  EXPECT_EQ(v.hosts[0].name, "node-1");
  EXPECT_EQ(v.hosts[1].name, "node-2");
  EXPECT_EQ(v.hosts[1].uri, "qemu:///system");
  EXPECT_EQ(v.hosts[1].state_dir.string(), (dir.path() / "vms2").string());
  EXPECT_EQ(v.hosts[2].name, "node-3");
  EXPECT_EQ(v.hosts[2].uri, "qemu+ssh://node-3/system");
  EXPECT_EQ(v.hosts[2].images_dir.string(), (dir.path() / "mnt3" / "images").string());

  // Without [host], the tables alone make a scheduling vigod; the shared
  // keys are required then too.
  Keys only = without(k, "host.name");
  EXPECT_EQ(vigod_config_of(only).hosts.size(), 2U);
  expect_refused(without(only, "imageserver.store"), "imageserver.store", "is required");

  expect_refused(without(k, "hosts.node-2.state_dir"), "hosts.node-2.state_dir", "is required");
  expect_refused(with(k, "hosts.node-2.images_dir", quoted("mnt2")), "hosts.node-2.images_dir", "absolute path");
  expect_refused(with(k, "hosts.node-2.state_dir", quoted((dir.path() / "vms").string())), "hosts.node-2.state_dir",
                 "node-1");
  Keys bad_name = k;
  bad_name["hosts.-x.images_dir"] = quoted("/x/images");
  bad_name["hosts.-x.state_dir"] = quoted("/x/vms");
  expect_refused(bad_name, "hosts.-x");
  Keys twice = k;
  twice["hosts.node-1.images_dir"] = quoted("/x/images");
  twice["hosts.node-1.state_dir"] = quoted("/x/vms");
  expect_refused(twice, "hosts.node-1", "twice");
}

TEST_F(VigodHostConfigTest, AHostOnAnotherMachineIsReachedOverSsh) {
  Keys k = keys;
  const fs::path ssh_config = dir.path() / "ssh_config";
  std::ofstream{ssh_config} << "Host node-2\n  BatchMode yes\n";
  k["hosts.node-2.uri"] = quoted("qemu+ssh://root@node-2/system");
  k["hosts.node-2.images_dir"] = quoted("/var/lib/vigo/mnt/images");
  k["hosts.node-2.state_dir"] = quoted((dir.path() / "vms").string());  // node-1's path, on another machine
  k["hosts.node-2.ssh"] = quoted("root@node-2");
  k["hosts.node-2.ssh_config"] = quoted(ssh_config.string());
  k["hosts.node-2.agent"] = quoted("/usr/local/bin/vigo-host");
  k["scheduler.staging_dir"] = quoted((dir.path() / "staging").string());
  const VigodConfig v = vigod_config_of(k);
  ASSERT_EQ(v.hosts.size(), 2U);
  EXPECT_EQ(v.hosts[0].ssh, "");  // [host] is this machine
  EXPECT_EQ(v.hosts[1].ssh, "root@node-2");
  EXPECT_EQ(v.hosts[1].ssh_config, ssh_config);
  EXPECT_EQ(v.hosts[1].agent, "/usr/local/bin/vigo-host");
  EXPECT_EQ(v.staging_dir, dir.path() / "staging");
  EXPECT_EQ(vigod_config_of(without(k, "hosts.node-2.agent")).hosts[1].agent, "vigo-host");

  expect_refused(without(k, "scheduler.staging_dir"), "scheduler.staging_dir", "is required");
  for (const char* bad : {"-oProxyCommand=sh", "root@node-2 rm", "node;2", "$(id)@x"}) {
    expect_refused(with(k, "hosts.node-2.ssh", quoted(bad)), "hosts.node-2.ssh", "not an ssh destination");
  }
  expect_refused(with(k, "hosts.node-2.ssh_config", quoted((dir.path() / "absent").string())),
                 "hosts.node-2.ssh_config", "cannot be read");
  expect_refused(without(k, "hosts.node-2.ssh"), "hosts.node-2.ssh_config", "is for a host with ssh");
  // libvirt and the files on one machine: a remote URI needs ssh, ssh a remote URI.
  expect_refused(without(without(k, "hosts.node-2.ssh"), "hosts.node-2.ssh_config"), "hosts.node-2.ssh",
                 "is required");
  expect_refused(with(k, "hosts.node-2.uri", quoted("qemu:///system")), "hosts.node-2.uri", "this machine's");
  expect_refused(without(k, "hosts.node-2.uri"), "hosts.node-2.uri", "this machine's");
  // Two hosts of one machine never share a state directory.
  Keys twin = k;
  twin["hosts.node-4.uri"] = quoted("qemu+ssh://root@node-2/system");
  twin["hosts.node-4.ssh"] = quoted("root@node-2");
  twin["hosts.node-4.images_dir"] = quoted("/var/lib/vigo/mnt/images");
  twin["hosts.node-4.state_dir"] = quoted((dir.path() / "vms").string());
  expect_refused(twin, "hosts.node-4.state_dir", "node-2");
}

TEST_F(VigodHostConfigTest, EachKeyAHostNeedsIsNamedWhenMissing) {
  for (const char* key :
       {"host.images_dir", "host.state_dir", "scheduler.profiles_dir", "imageserver.name", "imageserver.store"}) {
    expect_refused(without(keys, key), key, "is required");
  }
  expect_refused(with(keys, "host.name", quoted("")), "host.name", "is required");
}

TEST_F(VigodHostConfigTest, WithoutAHostNameNoHostKeyIsNeeded) {
  Keys gis_only = minimal();
  gis_only["scheduler.accelerator"] = quoted("kvm");
  const VigodConfig v = vigod_config_of(gis_only);
  EXPECT_TRUE(v.hosts.empty());
  EXPECT_TRUE(vigod_config_of(without(keys, "host.name")).hosts.empty());
}

TEST_F(VigodHostConfigTest, BadHostValuesAreNamed) {
  expect_refused(with(keys, "host.name", quoted("node 1")), "host.name");
  expect_refused(with(keys, "host.name", quoted("-node")), "host.name");
  expect_refused(with(keys, "host.images_dir", quoted("mnt/images")), "host.images_dir", "absolute path");
  expect_refused(with(keys, "host.state_dir", quoted("vms")), "host.state_dir", "absolute path");
  expect_refused(with(keys, "scheduler.profiles_dir", quoted("profiles")), "scheduler.profiles_dir", "absolute path");
  expect_refused(with(keys, "imageserver.store", quoted("./store")), "imageserver.store", "absolute path");
}

TEST_F(VigodHostConfigTest, VigoImagedMustBeAnExecutable) {
  expect_refused(with(keys, "imageserver.imaged", quoted((dir.path() / "missing").string())), "imageserver.imaged",
                 "not an executable");
  const fs::path plain = dir.path() / "plain";
  std::ofstream{plain} << "not a program\n";
  fs::permissions(plain,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  expect_refused(with(keys, "imageserver.imaged", quoted(plain.string())), "imageserver.imaged", "not an executable");
}

TEST_F(VigodHostConfigTest, AConfigurationFileIsReadAsAWhole) {
  const fs::path file = dir.path() / "vigod.toml";
  std::ofstream{file} << "# vigod of one host\n" << toml_of(with(keys, "api.listen", quoted("127.0.0.1:7443")));
  const VigodConfig v = read_vigod_config(Config::load(file, no_env()));
  EXPECT_EQ(v.server.port, 7443);
  ASSERT_EQ(v.hosts.size(), 1U);
  EXPECT_EQ(v.hosts[0].name, "node-1");
  EXPECT_EQ(v.imaged.string(), imaged.string());
}

}  // namespace
}  // namespace vigo::web
