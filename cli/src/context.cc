// SPDX-License-Identifier: Apache-2.0
#include "context.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "vigo/common/error.h"
#include "vigo/common/log.h"

namespace vigo::cli {

std::filesystem::path default_state_dir() {
  if (::geteuid() == 0) return "/var/lib/vigo";
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && *xdg == '/') {
    return std::filesystem::path{xdg} / "vigo";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path{home != nullptr ? home : "/tmp"} / ".local/state/vigo";
}

void Context::load_config() {
  std::filesystem::path file = options.config_file;
  if (file.empty()) {
    if (const char* env = std::getenv("VIGO_CONFIG"); env != nullptr && *env != '\0') {
      file = env;
    } else if (auto state = default_state_dir() / "vigo.toml"; std::filesystem::exists(state)) {
      file = state;
    }
  }
  config_ = Config::load(file);
  if (!options.db_url.empty()) config_->set_override("database.url", options.db_url);
  if (!options.log_level.empty()) config_->set_override("log.level", options.log_level);
  log::configure(log::parse_level(config_->get_string("log.level", "warn")),
                 config_->get_string("log.format", "text") == "json" ? log::Format::kJson
                                                                      : log::Format::kText);
}

const Config& Context::config() {
  if (!config_) load_config();
  return *config_;
}

std::string Context::database_url() {
  auto url = config().get_string("database.url");
  if (!url || url->empty()) {
    throw Error{ErrorCode::kInvalidArgument,
                "invalid database.url: not set (use --db URL, VIGO_DATABASE_URL, a config file, "
                "or start the local stack with `vigo up`)",
                "database.url"};
  }
  return *url;
}

gis::Database& Context::database() {
  if (!db_) {
    db_ = std::make_unique<gis::Database>(gis::DatabaseOptions{
        database_url(), static_cast<std::size_t>(config().get_int("database.pool_size", 2, 1, 64))});
  }
  return *db_;
}

web::ApiClient& Context::api() {
  if (api_) return *api_;
  web::ApiClientOptions o;
  o.url = !options.api_url.empty() ? options.api_url : config().get_string("api.url", "");
  if (o.url.empty()) {
    throw Error{ErrorCode::kInvalidArgument,
                "invalid api.url: not set (use --api URL, a config file, or start the local stack with `vigo up`)",
                "api.url"};
  }
  o.ca_file = config().get_string("api.ca", "");
  o.token = options.token;
  if (const char* env = std::getenv("VIGO_TOKEN"); o.token.empty() && env != nullptr) o.token = env;
  if (o.token.empty()) o.token = config().get_string("api.token", "");
  if (o.token.empty()) {
    if (const auto file = config().get_string("api.token_file"); file && !file->empty()) {
      std::ifstream in{*file};
      if (!in) throw Error{ErrorCode::kNotFound, "invalid api.token_file: cannot read " + *file, "api.token_file"};
      std::getline(in, o.token);
    }
  }
  if (o.token.empty()) {
    throw Error{ErrorCode::kInvalidArgument, "no API token (use --token, VIGO_TOKEN, api.token or api.token_file)",
                "api.token"};
  }
  api_ = std::make_unique<web::ApiClient>(std::move(o));
  return *api_;
}

}  // namespace vigo::cli
