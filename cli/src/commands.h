// SPDX-License-Identifier: Apache-2.0
// Registration of the command groups on the CLI11 app. Each command's
// callback runs with the parsed options and the shared Context.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "context.h"
#include "vigo/gis/types.h"

namespace vigo::cli {

void add_db_commands(CLI::App& app, Context& ctx);
void add_gis_commands(CLI::App& app, Context& ctx);
void add_up_command(CLI::App& app, Context& ctx);
void add_workspace_commands(CLI::App& app, Context& ctx);
void add_image_commands(CLI::App& app, Context& ctx);

// --label KEY=VALUE options as labels; kInvalidArgument (field "label")
// naming an item that is not KEY=VALUE.
gis::Labels parse_labels(const std::vector<std::string>& items);

}  // namespace vigo::cli
