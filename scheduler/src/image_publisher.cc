// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/image_publisher.h"

#include <nlohmann/json.hpp>

#include "vigo/common/error.h"
#include "vigo/common/subprocess.h"

namespace vigo::scheduler {

PublishedImage StorePublisher::publish(const std::filesystem::path& file, const std::string& name) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw Error{ErrorCode::kNotFound, "cannot publish " + file.string() + ": no such file", "file"};
  }
  const RunResult r = run_command({imaged_.string(), "publish", "--root", store_.string(), "--json", "--name", name,
                                   file.string()},
                                  timeout_);
  if (r.exit_code != 0) {
    throw Error{ErrorCode::kInternal, "publishing " + file.string() + " as " + name + " failed: " + r.output};
  }
  // The JSON record is the last line (logs may come before it).
  std::string last = r.output;
  while (!last.empty() && last.back() == '\n') last.pop_back();
  if (const auto nl = last.rfind('\n'); nl != std::string::npos) last.erase(0, nl + 1);
  try {
    const auto j = nlohmann::json::parse(last);
    PublishedImage p;
    p.name = j.at("name").get<std::string>();
    p.version = j.at("version").get<std::uint32_t>();
    p.size = j.at("size").get<std::uint64_t>();
    p.chunks_written = j.value("chunks_written", std::uint64_t{0});
    return p;
  } catch (const nlohmann::json::exception& e) {
    throw Error{ErrorCode::kInternal, "vigo-imaged publish printed no manifest (" + std::string{e.what()} +
                                          "): " + r.output};
  }
}

void StorePublisher::remove(const std::string& name, std::uint32_t version) {
  const std::string spec = name + "@" + std::to_string(version);
  const RunResult r = run_command({imaged_.string(), "delete", "--root", store_.string(), "--json", spec}, timeout_);
  if (r.exit_code == 3) throw Error{ErrorCode::kNotFound, "the image server has no " + spec, "image"};
  if (r.exit_code != 0) throw Error{ErrorCode::kInternal, "deleting " + spec + " failed: " + r.output};
}

}  // namespace vigo::scheduler
