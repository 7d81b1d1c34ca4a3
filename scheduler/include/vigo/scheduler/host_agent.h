// SPDX-License-Identifier: Apache-2.0
// The host agent, `vigo-host`: the far side of RemoteHostFiles. One
// operation per run, done with LocalHostFiles on the machine it runs on:
//
//   vigo-host mkdir DIR                     vigo-host rm PATH
//   vigo-host ls DIR                        (one name per line)
//   vigo-host overlay BACKING raw|qcow2 OVERLAY
//   vigo-host portable-disk OVERLAY OUT     vigo-host full-disk OVERLAY OUT
//   vigo-host save-header FILE              (the header and XML area, raw)
//   vigo-host clone-stream PARENT FIFO IDENTITY_JSON
//       prints "READY" once the FIFO exists; exits 0 when the reader took
//       the whole clone; end of stdin stops it (exit 3)
//   vigo-host wait-line FILE NEEDLE MILLISECONDS
//       prints the first line containing NEEDLE; exit 3 at the deadline or
//       at the end of stdin
//   vigo-host tail FILE BYTES               vigo-host cat FILE
//
// Every operation ends when its stdin ends (exit 3, "vigo-host: timeout:
// stopped ..."): vigod closes it to stop the agent, and so does an ssh
// session that died; run it by hand with stdin open (not </dev/null).
// Every path must be absolute without ".." (it refuses what vigod would
// never send). It is no security boundary: it runs with the rights of the
// ssh login, which has a shell anyway.
// Failure: exit status 1 and one stderr line "vigo-host: <code>: <message>"
// (<code> as vigo::to_string(ErrorCode)); a bad command line is
// invalid_argument the same way.
#pragma once

#include <string>
#include <vector>

#include "vigo/scheduler/save_file.h"

namespace vigo::scheduler {

inline constexpr int kAgentFailed = 1;
inline constexpr int kAgentStopped = 3;  // deadline, or stopped by the end of stdin

// Runs one agent command (args without the program name); the exit status.
int run_host_agent(const std::vector<std::string>& args);

// CloneIdentity as the JSON clone-stream takes; decode validates it
// (invalid_argument naming the field).
[[nodiscard]] std::string encode_clone_identity(const CloneIdentity& identity);
[[nodiscard]] CloneIdentity decode_clone_identity(const std::string& json);

}  // namespace vigo::scheduler
