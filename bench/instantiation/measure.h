// SPDX-License-Identifier: Apache-2.0
// One instantiation through vigod's API, timed as a user sees it: from just
// before POST /v1/workspaces to the first GET that says `running` (vigod
// sets it when the guest's readiness line reaches the console: VIGO-READY
// after a boot, VIGO-ALIVE after a resume). The workspace is polled every
// 20 ms, so a figure is late by at most that plus one GET. Also: waiting for
// a console line (a workload's result) and deleting a workspace until gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "vigo/web/api_client.h"

namespace vigo::bench {

struct Outcome {
  std::int64_t workspace = 0;
  double seconds = 0;  // request to running (or to failed)
  std::string state, error, host;
};

// Throws what the API answered when the request is refused; a workspace
// that fails or does not run within `timeout` is an Outcome with that state.
[[nodiscard]] Outcome instantiate(web::ApiClient& api, const nlohmann::json& body, std::chrono::seconds timeout);

// The first line of the workspace's (first VM's) console that starts with
// `prefix`, without the line end; kTimeout if none within `timeout`.
// The console is read every `poll`.
[[nodiscard]] std::string wait_console_line(web::ApiClient& api, std::int64_t workspace, const std::string& prefix,
                                            std::chrono::seconds timeout,
                                            std::chrono::milliseconds poll = std::chrono::milliseconds{250});

// DELETE, then waits until the workspace is deleted (kTimeout otherwise).
void remove_workspace(web::ApiClient& api, std::int64_t workspace, std::chrono::seconds timeout);

}  // namespace vigo::bench
