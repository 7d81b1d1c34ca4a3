// SPDX-License-Identifier: Apache-2.0
// Database: a small pool of libpqxx connections and the one way the GIS runs
// a transaction. Thread-safe (the pool is internally synchronized); each
// transaction holds one connection for its duration.
//
// write()/read() run `body(pqxx::transaction_base&)` in a transaction and
// commit it. A body that throws rolls back. Serialization failures,
// deadlocks and connections that broke before commit are retried (the body
// must therefore be safe to run again); a commit whose outcome is in doubt
// is never retried. Every libpqxx failure leaves as vigo::Error.
//
// read_as_user() runs the body as role vigo_user with vigo.user_id set, so
// row-level security shows only that user's workspaces, VMs and checkpoints.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/transaction>
#include <pqxx/transaction_base>

#include "vigo/gis/pg_support.h"

namespace vigo::gis {

struct DatabaseOptions {
  std::string conninfo;  // libpq connection string or URL
  std::size_t pool_size = 4;
  int max_attempts = 3;
  std::chrono::milliseconds acquire_timeout{10'000};
};

class Database {
 public:
  explicit Database(DatabaseOptions options);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  template <typename Body>
  auto write(Body&& body) {
    return run(Mode::kWrite, std::nullopt, std::forward<Body>(body));
  }
  template <typename Body>
  auto read(Body&& body) {
    return run(Mode::kRead, std::nullopt, std::forward<Body>(body));
  }
  template <typename Body>
  auto read_as_user(std::int64_t user_id, Body&& body) {
    return run(Mode::kRead, user_id, std::forward<Body>(body));
  }

  [[nodiscard]] const std::string& conninfo() const noexcept { return options_.conninfo; }

 private:
  enum class Mode { kRead, kWrite };

  // A borrowed connection; returns to the pool unless discarded.
  class Lease {
   public:
    Lease(Database* owner, std::unique_ptr<pqxx::connection> connection)
        : owner_(owner), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)), connection_(std::move(other.connection_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();  // returns the connection, or frees its slot if it was discarded
    pqxx::connection& connection() { return *connection_; }
    void discard() { connection_.reset(); }

   private:
    Database* owner_;
    std::unique_ptr<pqxx::connection> connection_;
  };

  Lease acquire();
  void release(std::unique_ptr<pqxx::connection> connection);
  static void enter_user_scope(pqxx::transaction_base& txn, std::int64_t user_id);

  template <typename Body>
  auto run(Mode mode, std::optional<std::int64_t> user_id, Body&& body)
      -> std::invoke_result_t<Body&, pqxx::transaction_base&> {
    using Result = std::invoke_result_t<Body&, pqxx::transaction_base&>;
    for (int attempt = 1;; ++attempt) {
      bool retry = false;
      try {
        Lease lease = acquire();
        try {
          std::unique_ptr<pqxx::transaction_base> txn;
          if (mode == Mode::kRead) {
            txn = std::make_unique<pqxx::read_transaction>(lease.connection());
          } else {
            txn = std::make_unique<pqxx::work>(lease.connection());
          }
          if (user_id) enter_user_scope(*txn, *user_id);
          if constexpr (std::is_void_v<Result>) {
            body(*txn);
            txn->commit();
            return;
          } else {
            Result result = body(*txn);
            txn->commit();
            return result;
          }
        } catch (const pqxx::in_doubt_error&) {
          lease.discard();
          throw;
        } catch (const pqxx::broken_connection&) {
          lease.discard();
          if (attempt >= options_.max_attempts) throw;
          retry = true;
        } catch (const pqxx::transaction_rollback&) {
          if (attempt >= options_.max_attempts) throw;
          retry = true;
        }
      } catch (...) {
        rethrow_as_vigo_error("database");
      }
      if (!retry) break;
    }
    throw Error{ErrorCode::kInternal, "database: retry loop ended without a result"};
  }

  DatabaseOptions options_;
  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;  // GUARDED_BY(mu_)
  std::size_t open_ = 0;                                 // GUARDED_BY(mu_)
};

}  // namespace vigo::gis
