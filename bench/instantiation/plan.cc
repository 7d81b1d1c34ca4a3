// SPDX-License-Identifier: Apache-2.0
#include "plan.h"

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "local_stack_setup.h"
#include "measure.h"
#include "testbed.h"
#include "vigo/common/error.h"
#include "vigo/common/local_sshd.h"
#include "vigo/common/subprocess.h"

namespace vigo::bench {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kReadyTimeout = 600s;

// A VM profile of the guest (guest/profiles/tiny.toml's keys), absolute
// paths, with words for the guest's init on the kernel command line.
void write_profile(const fs::path& dir, const std::string& name, const fs::path& guest, const std::string& words) {
  std::ofstream out{dir / (name + ".toml")};
  out << "# bench/instantiation: the test guest, " << (words.empty() ? "as built" : words) << "\n"
      << "name = \"" << name << "\"\nvcpus = 1\nmemory_mib = 512\n\n"
      << "[boot]\nkernel = \"" << (guest / "vmlinuz").string() << "\"\ninitrd = \"" << (guest / "initrd.img").string()
      << "\"\ncmdline = \"console=ttyS0 root=/dev/vda rw quiet panic=-1" << (words.empty() ? "" : " " + words)
      << "\"\n\n[[disks]]\npath = \"" << (guest / "root.ext4").string()
      << "\"\nrole = \"root\"\nformat = \"raw\"\nreadonly = false\n\n[[nics]]\nnetwork = \"default\"\n";
  if (!out.flush()) throw Error{ErrorCode::kInternal, "cannot write profile " + name};
}

void copy_sparse(const fs::path& from, const fs::path& to) {
  const RunResult r = run_command({"cp", "--sparse=always", from.string(), to.string()}, 1800s);
  if (r.exit_code != 0) throw Error{ErrorCode::kInternal, "cp " + from.string() + ": " + r.output};
}

class Plan {
 public:
  Plan(const PlanOptions& o, std::ostream& log) : o_(o), log_(log), out_(o.results, std::ios::app) {
    if (!out_) throw Error{ErrorCode::kInvalidArgument, "cannot write " + o.results.string(), "out"};
  }

  void run() {
    const fs::path profiles = o_.work / "profiles";
    fs::create_directories(profiles);
    write_profile(profiles, "bench", o_.guest_dir, "vigo.boot_read_mib=" + std::to_string(o_.boot_read_mib));
    write_profile(profiles, "bench-cpu", o_.guest_dir, "vigo.workload=bench-cpu");
    write_profile(profiles, "bench-io", o_.guest_dir, "vigo.workload=bench-io");

    TestbedOptions to;
    to.work = o_.work;
    to.profiles_dir = profiles;
    to.relay = o_.relay;
    to.delay_ms = o_.delay_ms;
    to.rate_mbit = o_.rate_mbit;
    to.connections = o_.connections;
    tb_ = std::make_unique<Testbed>(to, log_);
    tb_->start();
    api_ = tb_->client();

    prepare_images();
    for (const char* op : {"boot", "resume"}) {
      if (o_.ops.empty() || o_.ops.contains(op)) measure_starts(op);
    }
    if (o_.workloads) {
      for (const char* w : {"bench-cpu", "bench-io"}) measure_workload(w);
    }
    api_.reset();
    tb_.reset();
  }

 private:
  void say(const std::string& what) {
    if (o_.stop.stop_requested()) throw Error{ErrorCode::kInternal, "interrupted"};
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - t0_).count();
    log_ << "[" << s / 60 << ":" << (s % 60 < 10 ? "0" : "") << s % 60 << "] " << what << std::endl;
  }

  void record(json j) { out_ << j.dump() << std::endl; }

  // The base image (the guest's root disk as the stack published it), the
  // post-boot checkpoint, and both as plain files for local and sshfs.
  void prepare_images() {
    const json images = api_->get("/v1/images").at("images");  // a copy: the loop must not range over a temporary's part
    for (const auto& i : images) {
      if (i.value("name", "") == "tiny-root") image_ = "tiny-root@" + std::to_string(i.at("version").get<int>());
    }
    if (image_.empty()) throw Error{ErrorCode::kNotFound, "the stack published no image tiny-root"};
    copy_sparse(o_.guest_dir / "root.ext4", tb_->files_images() / image_);

    say("booting the guest once (vigo-fs, LAN) for its post-boot checkpoint");
    tb_->mount(Source::kVfsLan, MountOptions{.keep_cache = false, .working_sets = false});
    const Outcome w = instantiate(*api_, body("boot", Source::kVfsLan, "checkpoint-source"), kReadyTimeout);
    if (w.state != "running") throw Error{ErrorCode::kInternal, "the checkpoint's guest " + w.state + ": " + w.error};
    guest_read_ = guest_read_bytes(w.workspace);
    std::this_thread::sleep_for(2s);  // a guest that has settled after its boot
    const json c = api_->post("/v1/workspaces/" + std::to_string(w.workspace) + "/checkpoint", {{"name", "post-boot"}});
    remove_workspace(*api_, w.workspace, 120s);
    json setup{{"kind", "setup"},
               {"image", image_},
               {"image_bytes", fs::file_size(o_.guest_dir / "root.ext4")},
               {"memory_mib", 512},
               {"boot_read_mib", o_.boot_read_mib},
               {"guest_boot_read_bytes", guest_read_},
               {"checkpoint", c},
               {"reps", o_.reps},
               {"delay_ms", o_.delay_ms},
               {"rate_mbit", o_.rate_mbit},
               {"connections", o_.connections}};
    for (const char* part : {"memory", "disk"}) {
      const std::string file = c.at(part).at("name").get<std::string>() + "@" +
                               std::to_string(c.at(part).at("version").get<int>());
      copy_sparse(tb_->images_dir(Source::kVfsLan) / file, tb_->files_images() / file);
    }
    tb_->unmount(Source::kVfsLan);
    setup["lan_link_mb_per_s"] = lan_link_rate();
    record(setup);
    say("checkpoint post-boot: memory " + std::to_string(c["memory"].value("size_bytes", 0) >> 20) + " MiB, disk " +
        std::to_string(c["disk"].value("size_bytes", 0) >> 20) + " MiB; the guest read " +
        std::to_string(guest_read_ >> 20) + " MiB while booting");
  }

  // One ssh channel's rate on the LAN (loopback through sshd): the LAN's
  // "link rate" in the prefetch target.
  double lan_link_rate() {
    constexpr std::uint64_t bytes = 512ULL << 20;
    std::string ssh;
    for (const auto& a : tb_->sshd().ssh_argv("head -c " + std::to_string(bytes) + " /dev/zero")) ssh += "'" + a + "' ";
    const auto started = Clock::now();
    const RunResult r = run_command({"sh", "-c", ssh + "| wc -c"}, 300s);
    const double s = std::chrono::duration<double>(Clock::now() - started).count();
    if (r.exit_code != 0 || std::stoull(r.output) != bytes) {
      throw Error{ErrorCode::kInternal, "ssh throughput probe failed: " + r.output};
    }
    return static_cast<double>(bytes) / 1e6 / s;
  }

  json body(const std::string& op, Source s, const std::string& name, const std::string& profile = "bench") const {
    json b{{"name", name},
           {"profile", profile},
           {"readiness_timeout_s", 600},
           {"placement", {{"labels", {{"cell", source_name(s)}}}}}};
    if (op == "boot") {
      b["image"] = image_;
    } else {
      b["checkpoint"] = "post-boot";
    }
    return b;
  }

  std::uint64_t guest_read_bytes(std::int64_t workspace) {
    static const std::regex re{R"(vigo: read (\d+) bytes)"};
    std::smatch m;
    const std::string line = wait_console_line(*api_, workspace, "vigo: read ", 30s);
    return std::regex_search(line, m, re) ? std::stoull(m[1]) : 0;
  }

  // One start: the time to running, the bytes that came over the mount by
  // then and once it was idle again, and (boot) what the guest read.
  void start_once(const std::string& op, Source s, const std::string& mode, int rep) {
    if (o_.stop.stop_requested()) throw Error{ErrorCode::kInternal, "interrupted"};
    const std::uint64_t before = tb_->bytes_fetched(s);
    const Outcome w = instantiate(*api_, body(op, s, "ws" + std::to_string(++serial_)), kReadyTimeout);
    const std::uint64_t at_ready = tb_->bytes_fetched(s) - before;
    if (w.state != "running") {
      throw Error{ErrorCode::kInternal, op + " from " + source_name(s) + " " + mode + ": " + w.state + ": " + w.error};
    }
    const std::uint64_t read = op == "boot" ? guest_read_bytes(w.workspace) : 0;
    remove_workspace(*api_, w.workspace, 120s);
    tb_->wait_idle(s, 600s);
    const std::uint64_t total = tb_->bytes_fetched(s) - before;
    record({{"kind", "start"},
            {"op", op},
            {"source", source_name(s)},
            {"mode", mode},
            {"rep", rep},
            {"seconds", w.seconds},
            {"bytes_at_ready", at_ready},
            {"bytes_total", total},
            {"guest_read_bytes", read},
            {"status", json::parse(tb_->status_json(s), nullptr, false)}});
    char line[160];
    std::snprintf(line, sizeof line, "%-6s %-9s %-8s #%d %7.2f s  %7.1f MB by ready, %7.1f MB in all", op.c_str(),
                  source_name(s), mode.c_str(), rep, w.seconds, static_cast<double>(at_ready) / 1e6,
                  static_cast<double>(total) / 1e6);
    say(line);
  }

  bool chosen(Source s) const { return o_.sources.empty() || o_.sources.contains(source_name(s)); }

  // Every cell once per round, rounds one after the other: slow phases of
  // a noisy machine fall on every cell alike, not on the ones measured then.
  void measure_starts(const std::string& op) {
    say(op + ": local file (one unmeasured start first)");
    start_once(op, Source::kLocal, "warmup", 0);
    if (!chosen(Source::kVfsLan) && !chosen(Source::kVfsWan)) return measure_rounds(op);

    // The working-set profiles of this start: recorded anew by one cold
    // start with recording on (a profile is kept per image version, so the
    // boot's would otherwise be replayed for the resume's base image).
    say(op + ": recording the working-set profile (one unmeasured cold start)");
    fs::remove_all(tb_->store() / "profiles");
    tb_->evict_server_files();
    tb_->mount(Source::kVfsLan, MountOptions{.keep_cache = false, .working_sets = true});
    start_once(op, Source::kVfsLan, "record", 0);
    tb_->unmount(Source::kVfsLan);
    measure_rounds(op);
  }

  void measure_rounds(const std::string& op) {
    for (int r = 1; r <= o_.reps; ++r) {
      // The local file from the disk (page cache dropped, as the server's
      // files are for every cold cell), then from the page cache.
      tb_->evict_server_files();
      start_once(op, Source::kLocal, "cold", r);
      start_once(op, Source::kLocal, "warm", r);
      for (Source s : {Source::kVfsLan, Source::kVfsWan}) {
        if (!chosen(s)) continue;
        tb_->evict_server_files();
        tb_->mount(s, MountOptions{.keep_cache = false, .working_sets = false});
        start_once(op, s, "cold", r);
        tb_->evict_server_files();
        tb_->mount(s, MountOptions{.keep_cache = false, .working_sets = true});
        start_once(op, s, "prefetch", r);
        start_once(op, s, "warm", r);  // the same mount, idle again: page cache and chunk cache warm
        tb_->unmount(s);
      }
      for (Source s : {Source::kSshfsLan, Source::kSshfsWan}) {
        if (!chosen(s)) continue;
        tb_->evict_server_files();
        tb_->mount(s);
        start_once(op, s, "cold", r);
        tb_->unmount(s);
      }
    }
  }

  // The workload's time on the host's clock, from `running` to its result
  // line on the console (read every 50 ms; the guest's own clock drifts
  // under TCG on a busy host, so its figure is kept only for reference),
  // after one unmeasured run per source (vigo-fs: its cache warm, as a
  // long-running workspace's would be); the sources alternate, run after
  // run, so that a slow minute of the machine falls on both alike.
  void measure_workload(const std::string& workload) {
    static const std::regex re{R"(VIGO-WORKLOAD-TIME \S+ ([0-9.]+))"};
    tb_->mount(Source::kVfsLan, MountOptions{.keep_cache = true, .working_sets = false});
    for (int r = 0; r <= o_.reps; ++r) {
      for (Source s : {Source::kLocal, Source::kVfsLan}) {
        const Outcome w =
            instantiate(*api_, body("boot", s, "ws" + std::to_string(++serial_), workload), kReadyTimeout);
        if (w.state != "running") throw Error{ErrorCode::kInternal, workload + ": " + w.state + ": " + w.error};
        const auto ran = Clock::now();
        const std::string line = wait_console_line(*api_, w.workspace, "VIGO-WORKLOAD-TIME", 1200s, 50ms);
        const double seconds = std::chrono::duration<double>(Clock::now() - ran).count();
        remove_workspace(*api_, w.workspace, 120s);
        std::smatch m;
        if (!std::regex_search(line, m, re)) throw Error{ErrorCode::kInternal, "bad workload line: " + line};
        tb_->wait_idle(s, 600s);
        if (r == 0) continue;
        record({{"kind", "workload"}, {"workload", workload}, {"source", source_name(s)}, {"rep", r},
                {"seconds", seconds}, {"guest_seconds", std::stod(m[1])}});
        char text[120];
        std::snprintf(text, sizeof text, "%s on %s #%d: %.2f s (guest clock %s s)", workload.c_str(), source_name(s),
                      r, seconds, std::string{m[1]}.c_str());
        say(text);
      }
    }
    tb_->unmount(Source::kVfsLan);
  }

  const PlanOptions& o_;
  std::ostream& log_;
  std::ofstream out_;
  Clock::time_point t0_ = Clock::now();
  std::unique_ptr<Testbed> tb_;
  std::unique_ptr<web::ApiClient> api_;
  std::string image_;
  std::uint64_t guest_read_ = 0;
  int serial_ = 0;
};

}  // namespace

void run_plan(const PlanOptions& options, std::ostream& log) { Plan{options, log}.run(); }

}  // namespace vigo::bench
