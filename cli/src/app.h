// SPDX-License-Identifier: Apache-2.0
// The vigo command line: `vigo [global options] <command> ...`.
// run() parses, runs one command and returns the process exit code; every
// failure is printed as one "vigo: error: ..." line on stderr.
//
// Exit codes: 0 ok, 1 internal error, 2 bad usage or invalid argument,
// 3 not found, 4 conflict / no capacity / already exists, 5 unavailable
// (database unreachable, timeout), 6 permission denied.
#pragma once

#include <iosfwd>

#include "vigo/common/error.h"

namespace vigo::cli {

int run(int argc, char** argv);

[[nodiscard]] int exit_code_for(ErrorCode code);

}  // namespace vigo::cli
