// SPDX-License-Identifier: Apache-2.0
// The GIS boundary's two small helpers: turning libpqxx failures into
// vigo::Error (the only place that does), and PostgreSQL array literals for
// batch parameters (values always travel as parameters, never as SQL text).
//
// Error mapping (see sql/003_inventory.sql for the SQLSTATEs the functions raise):
//   22023 / 22xxx data errors -> kInvalidArgument, field taken from "invalid <field>: ..."
//   VG404 -> kNotFound, VG001 -> kResourceExhausted, VG002 -> kConflict,
//   23505 -> kAlreadyExists, other 23xxx -> kConflict, 42501 -> kPermissionDenied,
//   40001/40P01 -> kUnavailable (retryable), broken connection -> kUnavailable.
#pragma once

#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/pqxx>

#include "vigo/common/error.h"

namespace vigo::gis {

// Translates the exception in flight (call only inside a catch block) into
// vigo::Error and throws it. Non-database exceptions are rethrown unchanged.
[[noreturn]] void rethrow_as_vigo_error(std::string_view context);

// Translates one exception object; exposed for tests.
[[nodiscard]] Error translate_database_error(const std::exception& e, std::string_view context);

// The first line of a server error without the "ERROR:  " prefix.
[[nodiscard]] std::string primary_message(std::string_view what);

// Array literals ('{1,2,3}', '{"a","b"}') for $n::bigint[] / $n::text[] parameters.
[[nodiscard]] std::string pg_array(std::span<const std::int64_t> values);
[[nodiscard]] std::string pg_array(std::span<const std::string> values);

// Parses a bigint[] / text[] result field (NULL or '{}' gives an empty vector).
[[nodiscard]] std::vector<std::int64_t> parse_int_array(const pqxx::field& field);
[[nodiscard]] std::vector<std::string> parse_text_array(const pqxx::field& field);

}  // namespace vigo::gis
