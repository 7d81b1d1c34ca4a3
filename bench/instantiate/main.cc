// SPDX-License-Identifier: Apache-2.0
// vigo-bench-instantiate: what making a VM's disk costs, linked clone versus
// full copy, for images of several sizes (issue 4: 1 GiB and 8 GiB), through
// the product's own code: create_overlay() (a qcow2 overlay backed by the
// image, what a workspace boots from) and full_disk_copy() (the raw copy of
// the disk a chain presents, written to a temp file, fsynced and renamed:
// what a persistent workspace keeps). Both in the same run, round after
// round, so the ratio holds on a noisy machine.
//
// The images are raw files of incompressible, never-zero data (no hole,
// no zero block for qemu-img to skip), written once per run in --dir (on
// the local disk: /var/tmp by default, not a tmpfs). Prints a Markdown
// table: per size, median and range of each, their ratio, the copy's rate.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "vigo/common/error.h"
#include "vigo/scheduler/disk_chain.h"
#include "vigo/scheduler/overlay.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace vigo;

// An image of `gib` GiB: every MiB different and none of it zero.
void write_image(const fs::path& path, int gib) {
  std::mt19937_64 rng{42};
  std::vector<std::uint64_t> block((1 << 20) / sizeof(std::uint64_t));
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  for (std::int64_t mib = 0; mib < static_cast<std::int64_t>(gib) * 1024; ++mib) {
    for (auto& w : block) w = rng() | 1;
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 8));
  }
  out.flush();
  if (!out) throw Error{ErrorCode::kInternal, "cannot write " + path.string()};
}

double seconds_of(const std::function<void()>& work) {
  const auto t0 = Clock::now();
  work();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Spread {
  double median, min, max;
};
Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(digits);
  o << v;
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Linked clone versus full copy of a VM's disk, through vigo's own code"};
  std::vector<int> sizes{1, 8};
  int rounds = 3;
  fs::path dir = "/var/tmp";
  bool keep = false;
  app.add_option("--sizes", sizes, "Image sizes in GiB (comma-separated)")->delimiter(',')->check(CLI::Range(1, 64));
  app.add_option("--rounds", rounds, "Rounds (each makes one clone and one copy per size)")->check(CLI::Range(1, 20));
  app.add_option("--dir", dir, "Where the images and copies go (a local disk)");
  app.add_flag("--keep", keep, "Keep the images for a later run");
  CLI11_PARSE(app, argc, argv);

  const fs::path work = dir / "vigo-bench-instantiate";
  try {
    fs::create_directories(work);
    std::cout << "| image | linked clone (qcow2 overlay) | full copy (raw, fsynced) | copy / clone | copy rate |\n"
              << "|---|---|---|---|---|\n";
    for (const int gib : sizes) {
      const fs::path image = work / ("image-" + std::to_string(gib) + "g.raw");
      if (!fs::exists(image) || fs::file_size(image) != static_cast<std::uintmax_t>(gib) << 30) {
        std::cerr << "writing a " << gib << " GiB image ...\n";
        write_image(image, gib);
      }
      std::vector<double> clone, copy;
      for (int r = 0; r < rounds; ++r) {
        const fs::path overlay = work / "clone.qcow2";
        const fs::path full = work / "copy.raw";
        fs::remove(overlay);
        fs::remove(full);
        clone.push_back(seconds_of([&] { scheduler::create_overlay(image, scheduler::DiskFormat::kRaw, overlay); }));
        // The copy is of what the clone presents: the same chain a persistent
        // workspace's stop copies.
        copy.push_back(seconds_of([&] { scheduler::full_disk_copy(overlay, full); }));
        fs::remove(overlay);
        fs::remove(full);
        std::cerr << gib << " GiB round " << r + 1 << ": clone " << fixed(clone.back() * 1000, 1) << " ms, copy "
                  << fixed(copy.back(), 2) << " s\n";
      }
      const Spread c = spread(clone), f = spread(copy);
      std::cout << "| " << gib << " GiB | " << fixed(c.median * 1000, 1) << " ms (" << fixed(c.min * 1000, 1) << "-"
                << fixed(c.max * 1000, 1) << ") | " << fixed(f.median, 2) << " s (" << fixed(f.min, 2) << "-"
                << fixed(f.max, 2) << ") | " << fixed(f.median / c.median, 0) << "x | "
                << fixed(static_cast<double>(gib) * 1024 / f.median, 0) << " MiB/s |\n"
                << std::flush;
    }
    if (!keep) fs::remove_all(work);
  } catch (const std::exception& e) {
    std::cerr << "vigo-bench-instantiate: " << e.what() << "\n";
    if (!keep) fs::remove_all(work);
    return 1;
  }
  return 0;
}
