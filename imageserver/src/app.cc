// SPDX-License-Identifier: Apache-2.0
#include "vigo/imageserver/app.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "vigo/common/file_util.h"
#include "vigo/common/log.h"
#include "vigo/common/shutdown.h"
#include "vigo/imageserver/chunk_store.h"
#include "vigo/imageserver/image_catalog.h"
#include "vigo/imageserver/server.h"
#include "vigo/imageserver/tcp_listener.h"
#include "vigo/imageserver/tls_connect.h"

namespace vigo::imageserver {
namespace {

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 2;
    case ErrorCode::kNotFound:
      return 3;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict:
    case ErrorCode::kResourceExhausted:
      return 4;
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout:
      return 5;
    case ErrorCode::kPermissionDenied:
      return 6;
    case ErrorCode::kInternal:
      return 1;
  }
  return 1;
}

struct Options {
  std::string root;
  bool stdio = false;
  std::string listen;
  std::string listen_tls;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  int tls_timeout_ms = static_cast<int>(tls::kDefaultHandshakeTimeout.count());
  std::string user;
  std::string log_level = "warn";
  bool json = false;
  std::size_t workers = 4;
  std::uint32_t chunk_kib = kDefaultChunkSize >> 10;
  int zstd_level = 3;
  std::string name;
  std::string file;
  std::string spec;
  ConnectOptions connect;
};

nlohmann::json manifest_json(const Manifest& m, bool with_chunks) {
  std::uint64_t stored = 0;
  nlohmann::json chunks = nlohmann::json::array();
  for (const auto& c : m.chunks) {
    stored += c.stored_length;
    if (with_chunks) chunks.push_back({{"hash", hash_hex(c.hash)}, {"raw", c.raw_length}, {"stored", c.stored_length}});
  }
  nlohmann::json j{{"name", m.name},
                   {"version", m.version},
                   {"size", m.size},
                   {"chunk_size", m.chunk_size},
                   {"chunks", m.chunks.size()},
                   {"stored_bytes", stored}};
  if (with_chunks) j["chunk_list"] = chunks;
  return j;
}

void print_manifest(const Manifest& m, bool json) {
  if (json) {
    std::cout << manifest_json(m, true).dump(2) << '\n';
    return;
  }
  const auto j = manifest_json(m, false);
  std::cout << m.name << '@' << m.version << " size=" << m.size << " chunk_size=" << m.chunk_size
            << " chunks=" << m.chunks.size() << " stored_bytes=" << j["stored_bytes"].get<std::uint64_t>() << '\n';
}

void print_gc(const GcStats& s, bool json) {
  if (json) {
    std::cout << nlohmann::json{{"chunks_removed", s.chunks_removed},
                                {"bytes_freed", s.bytes_freed},
                                {"temp_files_removed", s.temp_files_removed},
                                {"deleted_versions_still_open", s.deleted_versions_still_open}}
                     .dump()
              << '\n';
    return;
  }
  std::cout << "chunks_removed=" << s.chunks_removed << " bytes_freed=" << s.bytes_freed
            << " temp_files_removed=" << s.temp_files_removed
            << " deleted_versions_still_open=" << s.deleted_versions_still_open << '\n';
}

CatalogOptions catalog_options(const Options& o) {
  CatalogOptions c;
  c.chunk_size = o.chunk_kib << 10;
  c.chunks.zstd_level = o.zstd_level;
  return c;
}

// The server context of --listen-tls, every file checked now.
std::shared_ptr<const tls::Context> server_tls(const Options& o) {
  if (!o.user.empty()) {
    throw invalid_argument("--user", "not allowed with --listen-tls: the client certificate's CN is the user");
  }
  tls::ContextOptions c;
  c.role = tls::Role::kServer;
  c.cert_file = o.tls_cert;
  c.key_file = o.tls_key;
  c.ca_file = o.tls_client_ca;
  c.ca_field = "--tls-client-ca";
  return std::make_shared<const tls::Context>(c);
}

int serve(const Options& o) {
  if (o.stdio + !o.listen.empty() + !o.listen_tls.empty() != 1) {
    throw invalid_argument("mode", "give exactly one of --stdio, --listen or --listen-tls, or a command");
  }
  if (o.root.empty()) throw invalid_argument("root", "--root is required");
  if (o.listen_tls.empty() && (!o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_client_ca.empty())) {
    throw invalid_argument("--tls-cert", "--tls-cert, --tls-key and --tls-client-ca go with --listen-tls");
  }
  std::shared_ptr<const tls::Context> tls_context;
  if (!o.listen_tls.empty()) tls_context = server_tls(o);
  std::optional<std::string> user;
  if (!o.user.empty()) user = o.user;
  ::signal(SIGPIPE, SIG_IGN);  // a vanished peer is an error return, not a signal
  ImageCatalog catalog{o.root, catalog_options(o)};
  Server server{catalog, ServerOptions{o.workers, 32, std::filesystem::path{o.root} / "data"}};
  if (o.stdio) {
    // sshd's pipes to this command: wide ones let sshd take a reply in fewer
    // pieces (a smaller gain than on vigo-fs's side; docs/benchmarks.md).
    (void)widen_pipe(STDIN_FILENO);
    (void)widen_pipe(STDOUT_FILENO);
    const ConnectionStats stats = server.serve(STDIN_FILENO, STDOUT_FILENO, user);
    log::info("imaged: connection closed", {{"requests", stats.requests}, {"errors", stats.errors}});
    return stats.protocol_violation ? 2 : 0;
  }
  ShutdownSignal shutdown;
  TcpListener listener =
      tls_context ? TcpListener::bind_tls(o.listen_tls, {tls_context, std::chrono::milliseconds{o.tls_timeout_ms}})
                  : TcpListener::bind(o.listen);
  std::cout << "listening on port " << listener.port() << std::endl;
  listener.run(server, user, shutdown.token());
  return 0;
}

// `connect`: stdin/stdout to a --listen-tls server.
int connect(Options& o) {
  ::signal(SIGPIPE, SIG_IGN);
  o.connect.cert_file = o.tls_cert;
  o.connect.key_file = o.tls_key;
  o.connect.timeout = std::chrono::milliseconds{o.tls_timeout_ms};
  connect_and_bridge(o.connect, STDIN_FILENO, STDOUT_FILENO);
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  Options o;
  CLI::App app{"vigo-imaged: the vigo image server (images, checkpoints and user data, served by content hash)",
               "vigo-imaged"};
  app.fallthrough();
  app.add_option("--root", o.root, "Store directory (chunks/, images/, profiles/, data/)");
  app.add_flag("--stdio", o.stdio, "Serve one connection on stdin/stdout (run by sshd as the ssh command)");
  app.add_option("--listen", o.listen, "Serve plain TCP on a loopback HOST:PORT (tests)");
  app.add_option("--listen-tls", o.listen_tls,
                 "Serve TLS on ADDRESS:PORT (any address); clients need a certificate, its CN is the user");
  app.add_option("--tls-cert", o.tls_cert, "PEM certificate chain (server: --listen-tls; client: connect)");
  app.add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert (not encrypted)");
  app.add_option("--tls-client-ca", o.tls_client_ca, "PEM CA certificates that clients' certificates must chain to");
  app.add_option("--tls-timeout-ms", o.tls_timeout_ms, "TLS handshake timeout (connect: TCP connect too)")
      ->check(CLI::Range(100, 600000));
  app.add_option("--user", o.user, "The connection's user (whose data tree it reaches)");
  app.add_option("--workers", o.workers, "Worker threads per connection")->check(CLI::Range(1, 64));
  app.add_option("--log-level", o.log_level, "debug, info, warn or error");
  app.add_option("--chunk-kib", o.chunk_kib, "Chunk size for publish, in KiB")->check(CLI::Range(64, 8192));
  app.add_option("--zstd-level", o.zstd_level, "zstd level for publish")->check(CLI::Range(1, 19));
  app.add_flag("--json", o.json, "Print results as JSON");

  auto* publish = app.add_subcommand("publish", "Publish a file as the next version of an image");
  publish->add_option("--name", o.name, "Image name")->required();
  publish->add_option("file", o.file, "The file (disk image or memory checkpoint)")->required();
  app.add_subcommand("list", "List image versions");
  auto* stat = app.add_subcommand("stat", "Show one image version (NAME or NAME@VERSION)");
  stat->add_option("image", o.spec, "NAME[@VERSION]")->required();
  auto* del = app.add_subcommand("delete", "Delete an image version and collect unused chunks");
  del->add_option("image", o.spec, "NAME@VERSION")->required();
  app.add_subcommand("gc", "Collect chunks no image references any more");
  auto* connect_cmd = app.add_subcommand(
      "connect", "Bridge stdin/stdout to a --listen-tls server (for vigo-fs --server), until the server closes");
  connect_cmd->add_option("--tls", o.connect.address, "The server's HOST:PORT")->required();
  connect_cmd->add_option("--tls-ca", o.connect.ca_file, "PEM CA certificates the server's certificate must chain to")
      ->required();
  connect_cmd->add_option("--server-name", o.connect.server_name,
                          "The name (DNS or IP) the server's certificate must carry (default: HOST of --tls)");
  try {
    app.parse(argc, argv);
    log::configure(log::parse_level(o.log_level), log::Format::kText);
    if (app.get_subcommands().empty()) return serve(o);
    const std::string cmd = app.get_subcommands().front()->get_name();
    if (cmd == "connect") return connect(o);
    if (o.root.empty()) throw invalid_argument("root", "--root is required");
    ImageCatalog catalog{o.root, catalog_options(o)};
    if (cmd == "publish") {
      PublishStats stats;
      const Manifest m = catalog.publish(o.file, o.name, &stats);
      if (o.json) {
        auto j = manifest_json(m, false);
        j["chunks_written"] = stats.chunks_written;
        j["chunks_reused"] = stats.chunks_reused;
        std::cout << j.dump() << '\n';
      } else {
        print_manifest(m, false);
      }
    } else if (cmd == "list") {
      nlohmann::json all = nlohmann::json::array();
      for (const auto& e : catalog.list()) {
        if (o.json) {
          all.push_back({{"name", e.name}, {"version", e.version}, {"size", e.size}, {"chunks", e.chunk_count}});
        } else {
          std::cout << e.name << '@' << e.version << " size=" << e.size << " chunks=" << e.chunk_count << '\n';
        }
      }
      if (o.json) std::cout << all.dump() << '\n';
    } else if (cmd == "stat") {
      const ImageSpec spec = parse_image_spec(o.spec);
      print_manifest(catalog.stat(spec.name, spec.version), o.json);
    } else if (cmd == "delete") {
      const ImageSpec spec = parse_image_spec(o.spec);
      if (spec.version == 0) throw invalid_argument("image", "delete needs NAME@VERSION");
      print_gc(catalog.remove(spec.name, spec.version), o.json);
    } else if (cmd == "gc") {
      print_gc(catalog.collect_garbage(), o.json);
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const Error& e) {
    std::cerr << "vigo-imaged: error: " << e.what() << '\n';
    return exit_code_for(e.code());
  } catch (const std::exception& e) {
    std::cerr << "vigo-imaged: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace vigo::imageserver
