// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/database.h"

namespace vigo::gis {

Database::Database(DatabaseOptions options) : options_(std::move(options)) {
  if (options_.conninfo.empty()) {
    throw Error{ErrorCode::kInvalidArgument, "invalid database.url: must not be empty", "database.url"};
  }
  if (options_.pool_size == 0 || options_.pool_size > 256) {
    throw Error{ErrorCode::kInvalidArgument, "invalid database.pool_size: must be between 1 and 256",
                "database.pool_size"};
  }
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

Database::Lease::~Lease() {
  if (owner_ != nullptr) owner_->release(std::move(connection_));
}

Database::Lease Database::acquire() {
  std::unique_lock lock{mu_};
  if (!idle_cv_.wait_for(lock, options_.acquire_timeout,
                         [&] { return !idle_.empty() || open_ < options_.pool_size; })) {
    throw Error{ErrorCode::kUnavailable, "database: no free connection within the acquire timeout"};
  }
  if (!idle_.empty()) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    return Lease{this, std::move(connection)};
  }
  ++open_;
  lock.unlock();
  try {
    return Lease{this, std::make_unique<pqxx::connection>(options_.conninfo)};
  } catch (...) {
    std::lock_guard relock{mu_};
    --open_;
    idle_cv_.notify_one();
    throw;
  }
}

void Database::release(std::unique_ptr<pqxx::connection> connection) {
  std::lock_guard lock{mu_};
  if (connection && connection->is_open()) {
    idle_.push_back(std::move(connection));
  } else {
    --open_;
  }
  idle_cv_.notify_one();
}

void Database::enter_user_scope(pqxx::transaction_base& txn, std::int64_t user_id) {
  txn.exec0("SET LOCAL ROLE vigo_user");
  txn.exec_params1("SELECT set_config('vigo.user_id', $1, true)", std::to_string(user_id));
}

}  // namespace vigo::gis
