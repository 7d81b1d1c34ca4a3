// SPDX-License-Identifier: Apache-2.0
#include "app.h"

#include <iostream>

#include "commands.h"
#include "context.h"

namespace vigo::cli {

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 2;
    case ErrorCode::kNotFound: return 3;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict:
    case ErrorCode::kResourceExhausted: return 4;
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout: return 5;
    case ErrorCode::kPermissionDenied: return 6;
    case ErrorCode::kInternal: return 1;
  }
  return 1;
}

int run(int argc, char** argv) {
  Context ctx;
  CLI::App app{"vigo: grid virtual workspaces (command line for users and administrators)", "vigo"};
  app.require_subcommand(1);
  app.add_option("--config", ctx.options.config_file, "Configuration file (TOML; default $VIGO_CONFIG or the local stack's)");
  app.add_option("--db", ctx.options.db_url, "PostgreSQL URL or libpq connection string (database.url)");
  app.add_option("--log-level", ctx.options.log_level, "debug, info, warn or error");
  app.add_option("--api", ctx.options.api_url, "vigod's URL, https://HOST:PORT (api.url)");
  app.add_option("--token", ctx.options.token, "API bearer token (api.token; or VIGO_TOKEN)");
  app.add_flag("--json", ctx.options.json, "Print results as JSON");
  add_db_commands(app, ctx);
  add_gis_commands(app, ctx);
  add_up_command(app, ctx);
  add_workspace_commands(app, ctx);
  add_image_commands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const Error& e) {
    std::cerr << "vigo: error: " << e.what() << '\n';
    return exit_code_for(e.code());
  } catch (const std::exception& e) {
    std::cerr << "vigo: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace vigo::cli
