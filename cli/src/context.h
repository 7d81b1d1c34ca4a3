// SPDX-License-Identifier: Apache-2.0
// Context: what every command shares: global options, the configuration
// (file, VIGO_* environment, flags) and a database opened on first use.
// Configuration keys: database.url, database.pool_size, log.level, log.format,
// api.url, api.ca (PEM file of the CA that signed vigod's certificate),
// api.token or api.token_file (the bearer token; VIGO_TOKEN also works).
// The default configuration file is $VIGO_CONFIG, else <state dir>/vigo.toml
// when it exists (written by `vigo up`), so commands find the local stack.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "vigo/common/config.h"
#include "vigo/gis/database.h"
#include "vigo/web/api_client.h"

namespace vigo::cli {

// Where `vigo up` keeps its state: /var/lib/vigo for root, else
// $XDG_STATE_HOME/vigo or ~/.local/state/vigo.
[[nodiscard]] std::filesystem::path default_state_dir();

struct GlobalOptions {
  std::string config_file;
  std::string db_url;
  std::string log_level;
  std::string api_url;
  std::string token;
  bool json = false;
};

class Context {
 public:
  GlobalOptions options;

  // The configuration with the flags applied, loaded on first use (after parsing).
  const Config& config();
  // The database URL from flag, environment or file; Error naming database.url if none.
  [[nodiscard]] std::string database_url();
  gis::Database& database();
  // A client of vigod's API from --api/--token, the environment or the
  // config file; kInvalidArgument naming the missing key.
  web::ApiClient& api();

 private:
  void load_config();
  std::optional<Config> config_;
  std::unique_ptr<gis::Database> db_;
  std::unique_ptr<web::ApiClient> api_;
};

}  // namespace vigo::cli
