// SPDX-License-Identifier: Apache-2.0
// Table: rows of text printed with aligned columns for people, or as a JSON
// array of objects (numbers stay numbers) for scripts (--json).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace vigo::cli {

class Table {
 public:
  using Cell = std::variant<std::string, std::int64_t, bool, nlohmann::json>;

  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add(std::vector<Cell> row) { rows_.push_back(std::move(row)); }
  [[nodiscard]] bool empty() const { return rows_.empty(); }
  [[nodiscard]] std::size_t size() const { return rows_.size(); }

  void print(std::ostream& out) const;
  [[nodiscard]] nlohmann::json to_json() const;
  // JSON or aligned text, as asked.
  void emit(std::ostream& out, bool json) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

}  // namespace vigo::cli
