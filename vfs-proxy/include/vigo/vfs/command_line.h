// SPDX-License-Identifier: Apache-2.0
// split_command: turns the --server command of vigo-fs (e.g. `ssh -p 2222
// -i key user@host /opt/vigo-imaged --stdio --root /srv --user alice`) into
// an argv, the way a POSIX shell splits words, without running a shell:
// blanks separate words; 'single quotes' keep everything literally;
// "double quotes" keep everything but \" \\ \$ \` which lose the backslash;
// outside quotes a backslash keeps the next character. Nothing is expanded
// (no $VAR, globs, ~, pipes, redirections): those characters are literal.
// Throws vigo::Error(kInvalidArgument, field "server") for an unterminated
// quote, a trailing backslash, or a command with no words. Stateless.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vigo::vfs {

[[nodiscard]] std::vector<std::string> split_command(std::string_view command);

}  // namespace vigo::vfs
