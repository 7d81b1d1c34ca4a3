// SPDX-License-Identifier: Apache-2.0
// TempDir: a fresh directory under the system's temp directory (mode 0755, so
// that servers started as another user, e.g. postgres, can reach it),
// removed with everything in it when the object goes, also when the test
// failed. Header-only, so unit and integration tests share it.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace vigo::testing {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "vigo-test") {
    namespace fs = std::filesystem;
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
      fs::path p = fs::temp_directory_path() /
                   (std::string{prefix} + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000));
      if (fs::create_directory(p)) {
        path_ = p;
        fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
        return;
      }
    }
    throw std::runtime_error("cannot create a temporary directory");
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace vigo::testing
