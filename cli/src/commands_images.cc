// SPDX-License-Identifier: Apache-2.0
// `vigo images ...` through vigod's API: list (the default), publish FILE
// --name NAME (uploaded in pieces with a progress bar, resumed after a
// dropped connection, then published by the image server), delete
// NAME@VERSION. Exit codes as every vigo command (app.cc).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "commands.h"
#include "table.h"
#include "vigo/common/error.h"

namespace vigo::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

void list_images(Context& ctx) {
  const std::vector<std::string> columns{"name", "version", "kind", "size_bytes", "owner", "image_server"};
  Table t{columns};
  const json images = ctx.api().get("/v1/images")["images"];  // a copy: the reply is a temporary
  for (const auto& r : images) {
    t.add({r.value("name", ""), r["version"].get<std::int64_t>(), r.value("kind", ""),
           r["size_bytes"].get<std::int64_t>(), r.value("owner", ""), r.value("image_server", "")});
  }
  t.emit(std::cout, ctx.options.json);
}

std::string mib(std::uint64_t bytes) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1 << 20) << " MiB";
  return o.str();
}

// One line, redrawn: "upload  42% [########            ] 430.0/1024.0 MiB 85.1 MiB/s".
void draw_progress(std::uint64_t done, std::uint64_t total, Clock::time_point started) {
  const double fraction = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
  const int filled = static_cast<int>(fraction * 30);
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::cerr << "\rupload " << std::setw(3) << static_cast<int>(fraction * 100) << "% [" << std::string(filled, '#')
            << std::string(30 - filled, ' ') << "] " << mib(done) << " of " << mib(total) << "  " << std::fixed
            << std::setprecision(1) << (seconds > 0 ? static_cast<double>(done) / (1 << 20) / seconds : 0.0)
            << " MiB/s   " << std::flush;
}

struct PublishArgs {
  std::string file, name, kind = "disk";
  bool is_public = false;
  int piece_kib = 1024;
};

void publish(Context& ctx, const PublishArgs& a) {
  const int fd = ::open(a.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("opening " + a.file);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const auto total = static_cast<std::uint64_t>(::lseek(fd, 0, SEEK_END));
  auto& api = ctx.api();
  const std::string id = api.post("/v1/uploads")["id"].get<std::string>();
  const std::string target = "/v1/uploads/" + id;
  const bool tty = ::isatty(STDERR_FILENO) != 0 && !ctx.options.json;
  const auto started = Clock::now();
  std::size_t piece = static_cast<std::size_t>(a.piece_kib) * 1024;
  std::string buffer;
  std::uint64_t offset = 0;
  int failures = 0;
  auto last_draw = Clock::now() - std::chrono::seconds{1};
  try {
    while (offset < total) {
      buffer.resize(static_cast<std::size_t>(std::min<std::uint64_t>(piece, total - offset)));
      const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
      if (n < 0) throw_errno("reading " + a.file);
      if (n == 0) throw Error{ErrorCode::kConflict, a.file + " became shorter while it was uploaded", "file"};
      buffer.resize(static_cast<std::size_t>(n));
      try {
        const auto reply = api.request("PUT", target + "?offset=" + std::to_string(offset), buffer,
                                       "application/octet-stream");
        if (reply.status == 413 && piece > 64 * 1024) {  // the server takes smaller bodies
          piece /= 2;
          continue;
        }
        // 409: the piece was not at the upload's end (it had arrived before
        // the connection dropped): go on from where the upload is.
        offset = reply.status == 409 ? api.get(target)["offset"].get<std::uint64_t>()
                                     : web::ApiClient::checked(reply)["offset"].get<std::uint64_t>();
        failures = 0;
      } catch (const Error& e) {
        // A dropped connection: ask where the upload is and go on from there.
        if ((e.code() != ErrorCode::kUnavailable && e.code() != ErrorCode::kTimeout) || ++failures > 5) throw;
        std::this_thread::sleep_for(std::chrono::seconds{failures});
        offset = api.get(target)["offset"].get<std::uint64_t>();
      }
      if (tty && Clock::now() - last_draw > std::chrono::milliseconds{100}) {
        draw_progress(offset, total, started);
        last_draw = Clock::now();
      }
    }
    if (tty) {
      draw_progress(offset, total, started);
      std::cerr << "\npublishing on the image server ...\n" << std::flush;
    }
    json body{{"name", a.name}, {"upload", id}, {"kind", a.kind}};
    if (a.is_public) body["public"] = true;
    api.set_timeout(std::chrono::seconds{1800});  // chunking, hashing and compressing take a while
    const json image = api.post("/v1/images", body);
    if (ctx.options.json) {
      std::cout << image.dump() << '\n';
    } else {
      std::cout << "published " << image.value("name", "") << "@" << image["version"] << " ("
                << mib(image["size_bytes"].get<std::uint64_t>()) << ", " << image["chunks_written"]
                << " new chunks) on " << image.value("image_server", "") << '\n';
    }
  } catch (...) {
    try {
      api.del(target);  // nothing left behind on the server
    } catch (const Error&) {
    }
    throw;
  }
}

}  // namespace

void add_image_commands(CLI::App& app, Context& ctx) {
  auto* images = app.add_subcommand("images", "Images you may boot; publish and delete your own (through vigod's API)");
  images->require_subcommand(0, 1);
  images->callback([&ctx, images] {
    if (images->get_subcommands().empty()) list_images(ctx);
  });
  images->add_subcommand("list", "List the images you may boot")->callback([&ctx] { list_images(ctx); });

  auto a = std::make_shared<PublishArgs>();
  auto* pub = images->add_subcommand("publish", "Upload a file and publish it as the next version of an image");
  pub->add_option("file", a->file, "The disk image (raw) or memory state")->required()->check(CLI::ExistingFile);
  pub->add_option("--name", a->name, "Image name")->required();
  pub->add_option("--kind", a->kind, "disk or memory")->check(CLI::IsMember({"disk", "memory"}));
  pub->add_flag("--public", a->is_public, "Everyone may boot it (administrators only)");
  pub->add_option("--piece-kib", a->piece_kib, "Upload piece size")->check(CLI::Range(64, 64 * 1024));
  pub->callback([&ctx, a] { publish(ctx, *a); });

  auto spec = std::make_shared<std::string>();
  auto* del = images->add_subcommand("delete", "Delete one version of your image");
  del->add_option("image", *spec, "NAME@VERSION")->required();
  del->callback([&ctx, spec] {
    const json r = ctx.api().del("/v1/images/" + *spec);
    if (ctx.options.json) std::cout << r.dump() << '\n';
    else std::cout << "deleted " << r.value("name", "") << "@" << r["version"] << '\n';
  });
}

}  // namespace vigo::cli
