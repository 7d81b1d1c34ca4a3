// SPDX-License-Identifier: Apache-2.0
// Context: what every command shares: global options, the configuration
// (file, VIGO_* environment, flags) and a database opened on first use.
// Configuration keys: database.url, database.pool_size, log.level, log.format.
// The default configuration file is $VIGO_CONFIG, else <state dir>/vigo.toml
// when it exists (written by `vigo up`), so commands find the local stack.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "vigo/common/config.h"
#include "vigo/gis/database.h"

namespace vigo::cli {

// Where `vigo up` keeps its state: /var/lib/vigo for root, else
// $XDG_STATE_HOME/vigo or ~/.local/state/vigo.
[[nodiscard]] std::filesystem::path default_state_dir();

struct GlobalOptions {
  std::string config_file;
  std::string db_url;
  std::string log_level;
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

 private:
  void load_config();
  std::optional<Config> config_;
  std::unique_ptr<gis::Database> db_;
};

}  // namespace vigo::cli
