// SPDX-License-Identifier: Apache-2.0
#include "table.h"

#include <algorithm>

namespace vigo::cli {
namespace {

std::string text_of(const Table::Cell& cell) {
  struct Visitor {
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(bool b) const { return b ? "yes" : "no"; }
    std::string operator()(const nlohmann::json& j) const {
      if (j.is_array()) {
        std::string out;
        for (const auto& e : j) {
          if (!out.empty()) out += ",";
          out += e.is_string() ? e.get<std::string>() : e.dump();
        }
        return out;
      }
      return j.is_string() ? j.get<std::string>() : j.dump();
    }
  };
  return std::visit(Visitor{}, cell);
}

bool numeric(const Table::Cell& cell) { return std::holds_alternative<std::int64_t>(cell); }

}  // namespace

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> width(headers_.size());
  for (std::size_t c = 0; c < headers_.size(); ++c) width[c] = headers_[c].size();
  std::vector<std::vector<std::string>> text;
  for (const auto& row : rows_) {
    auto& line = text.emplace_back();
    for (std::size_t c = 0; c < headers_.size(); ++c) {
      line.push_back(c < row.size() ? text_of(row[c]) : "");
      width[c] = std::max(width[c], line.back().size());
    }
  }
  auto pad = [&](const std::string& s, std::size_t w, bool right) {
    std::string fill(w - s.size(), ' ');
    return right ? fill + s : s + fill;
  };
  for (std::size_t c = 0; c < headers_.size(); ++c) {
    out << (c ? "  " : "") << pad(headers_[c], width[c], false);
  }
  out << '\n';
  for (std::size_t r = 0; r < text.size(); ++r) {
    for (std::size_t c = 0; c < headers_.size(); ++c) {
      const bool right = c < rows_[r].size() && numeric(rows_[r][c]);
      std::string cell = pad(text[r][c], width[c], right);
      if (c + 1 == headers_.size() && !right) cell = text[r][c];
      out << (c ? "  " : "") << cell;
    }
    out << '\n';
  }
  if (rows_.empty()) out << "(none)\n";
}

nlohmann::json Table::to_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : rows_) {
    nlohmann::json obj = nlohmann::json::object();
    for (std::size_t c = 0; c < headers_.size() && c < row.size(); ++c) {
      std::visit([&](const auto& v) { obj[headers_[c]] = v; }, row[c]);
    }
    out.push_back(std::move(obj));
  }
  return out;
}

void Table::emit(std::ostream& out, bool json) const {
  if (json) {
    out << to_json().dump(2) << '\n';
  } else {
    print(out);
  }
}

}  // namespace vigo::cli
