// SPDX-License-Identifier: Apache-2.0
#include "measure.h"

#include <thread>

#include "vigo/common/error.h"

namespace vigo::bench {
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {
std::string path_of(std::int64_t id) { return "/v1/workspaces/" + std::to_string(id); }
}  // namespace

Outcome instantiate(web::ApiClient& api, const nlohmann::json& body, std::chrono::seconds timeout) {
  const auto started = Clock::now();
  const nlohmann::json created = api.post("/v1/workspaces", body);
  Outcome out;
  out.workspace = created.at("id").get<std::int64_t>();
  const auto deadline = started + timeout;
  for (;;) {
    const nlohmann::json w = api.get(path_of(out.workspace));
    out.state = w.value("state", "");
    if (out.state == "running" || out.state == "failed" || out.state == "deleted" || Clock::now() > deadline) {
      out.seconds = std::chrono::duration<double>(Clock::now() - started).count();
      out.error = w.value("error", "");
      const auto vms = w.value("vms", nlohmann::json::array());
      if (!vms.empty()) {
        out.host = vms[0].value("host", "");
        if (out.error.empty()) out.error = vms[0].value("error", "");
      }
      return out;
    }
    std::this_thread::sleep_for(20ms);
  }
}

std::string wait_console_line(web::ApiClient& api, std::int64_t workspace, const std::string& prefix,
                              std::chrono::seconds timeout, std::chrono::milliseconds poll) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const nlohmann::json c = api.get(path_of(workspace) + "/console?bytes=65536");
    const auto vms = c.value("vms", nlohmann::json::array());
    const std::string text = vms.empty() ? std::string{} : vms[0].value("console", "");
    for (std::size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
      if (at != 0 && text[at - 1] != '\n') continue;
      const auto end = text.find_first_of("\r\n", at);
      if (end != std::string::npos) return text.substr(at, end - at);
    }
    std::this_thread::sleep_for(poll);
  }
  throw Error{ErrorCode::kTimeout, "no console line '" + prefix + "...' from workspace " + std::to_string(workspace) +
                                       " within " + std::to_string(timeout.count()) + " s"};
}

void remove_workspace(web::ApiClient& api, std::int64_t workspace, std::chrono::seconds timeout) {
  (void)api.del(path_of(workspace));
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    try {
      if (api.get(path_of(workspace)).value("state", "") == "deleted") return;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) return;
      throw;
    }
    std::this_thread::sleep_for(100ms);
  }
  throw Error{ErrorCode::kTimeout, "workspace " + std::to_string(workspace) + " not deleted within " +
                                       std::to_string(timeout.count()) + " s"};
}

}  // namespace vigo::bench
