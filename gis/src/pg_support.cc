// SPDX-License-Identifier: Apache-2.0
#include "vigo/gis/pg_support.h"

#include <pqxx/array>
#include <pqxx/except>

#include <regex>

namespace vigo::gis {
namespace {

std::string field_of(const std::string& message) {
  static const std::regex kField{R"(^invalid ([A-Za-z0-9_.\[\]]+):)"};
  std::smatch m;
  if (std::regex_search(message, m, kField)) return m[1].str();
  return {};
}

ErrorCode code_for_sqlstate(const std::string& state) {
  if (state == "VG404") return ErrorCode::kNotFound;
  if (state == "VG001") return ErrorCode::kResourceExhausted;
  if (state == "VG002") return ErrorCode::kConflict;
  if (state == "23505") return ErrorCode::kAlreadyExists;
  if (state == "42501") return ErrorCode::kPermissionDenied;
  if (state == "40001" || state == "40P01" || state == "57014" || state == "55P03") {
    return ErrorCode::kUnavailable;
  }
  if (state.starts_with("22")) return ErrorCode::kInvalidArgument;
  if (state.starts_with("23")) return ErrorCode::kConflict;
  if (state.starts_with("08") || state.starts_with("53") || state.starts_with("57")) {
    return ErrorCode::kUnavailable;
  }
  return ErrorCode::kInternal;
}

}  // namespace

std::string primary_message(std::string_view what) {
  std::string_view s = what;
  for (std::string_view prefix : {"ERROR:  ", "FATAL:  "}) {
    if (s.starts_with(prefix)) s.remove_prefix(prefix.size());
  }
  if (auto nl = s.find('\n'); nl != std::string_view::npos) s = s.substr(0, nl);
  return std::string{s};
}

Error translate_database_error(const std::exception& e, std::string_view context) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    std::string message = primary_message(sql->what());
    ErrorCode code = code_for_sqlstate(sql->sqlstate());
    std::string field = field_of(message);
    if (code == ErrorCode::kInternal) message = std::string{context} + ": " + message;
    return Error{code, std::move(message), std::move(field)};
  }
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return Error{ErrorCode::kUnavailable,
                 std::string{context} + ": the database connection broke during commit; "
                                        "the outcome is unknown (check before retrying)"};
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return Error{ErrorCode::kUnavailable,
                 std::string{context} + ": database unreachable: " + primary_message(e.what())};
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
    return Error{ErrorCode::kUnavailable,
                 std::string{context} + ": transaction rolled back: " + primary_message(e.what())};
  }
  return Error{ErrorCode::kInternal, std::string{context} + ": " + primary_message(e.what())};
}

void rethrow_as_vigo_error(std::string_view context) {
  try {
    throw;
  } catch (const Error&) {
    throw;
  } catch (const pqxx::failure& e) {
    throw translate_database_error(e, context);
  } catch (const pqxx::usage_error& e) {
    throw translate_database_error(e, context);
  } catch (const pqxx::conversion_error& e) {
    throw translate_database_error(e, context);
  }
}

std::string pg_array(std::span<const std::int64_t> values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

std::string pg_array(std::span<const std::string> values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

namespace {
template <typename T, typename Convert>
std::vector<T> parse_array(const pqxx::field& field, Convert convert) {
  std::vector<T> out;
  if (field.is_null()) return out;
  pqxx::array_parser parser = field.as_array();
  for (auto [juncture, value] = parser.get_next(); juncture != pqxx::array_parser::done;
       std::tie(juncture, value) = parser.get_next()) {
    if (juncture == pqxx::array_parser::string_value) out.push_back(convert(value));
  }
  return out;
}
}  // namespace

std::vector<std::int64_t> parse_int_array(const pqxx::field& field) {
  return parse_array<std::int64_t>(field, [](const std::string& s) { return std::stoll(s); });
}

std::vector<std::string> parse_text_array(const pqxx::field& field) {
  return parse_array<std::string>(field, [](const std::string& s) { return s; });
}

}  // namespace vigo::gis
