// SPDX-License-Identifier: Apache-2.0
// web/openapi.json against the routes the Api really serves: every route is
// documented with the same method, path and access (x-vigo-access), and
// nothing is documented that is not served. The Api is built over a database
// that is never reached (routes() needs no connection).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>

#include "vigo/gis/database.h"
#include "vigo/web/api.h"

namespace vigo::web {
namespace {

using Operation = std::tuple<std::string, std::string, std::string>;  // METHOD, path, access

std::string access_name(Access a) {
  switch (a) {
    case Access::kPublic: return "public";
    case Access::kUser: return "user";
    case Access::kAdmin: return "admin";
  }
  return "?";
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

nlohmann::json load_openapi() {
  std::ifstream in{std::filesystem::path{VIGO_SOURCE_DIR} / "web" / "openapi.json"};
  EXPECT_TRUE(in.good()) << "web/openapi.json is missing";
  return nlohmann::json::parse(in);
}

TEST(OpenApi, DocumentsExactlyTheRoutesTheApiServes) {
  gis::DatabaseOptions dbo;
  dbo.conninfo = "postgresql:///never-connected";
  gis::Database db{dbo};
  Api api{db, nullptr};
  std::set<Operation> served;
  for (const auto& r : api.routes()) served.emplace(r.method, r.pattern, access_name(r.access));
  ASSERT_FALSE(served.empty());

  const auto doc = load_openapi();
  std::set<Operation> documented;
  static const std::set<std::string> kMethods{"get", "post", "put", "delete", "patch", "head"};
  for (const auto& [path, item] : doc.at("paths").items()) {
    for (const auto& [method, op] : item.items()) {
      if (!kMethods.contains(method)) continue;
      ASSERT_TRUE(op.contains("x-vigo-access")) << method << " " << path << " has no x-vigo-access";
      documented.emplace(upper(method), path, op.at("x-vigo-access").get<std::string>());
    }
  }
  for (const auto& op : served) {
    EXPECT_TRUE(documented.contains(op))
        << "served but not documented (or documented with other access): " << std::get<0>(op) << " "
        << std::get<1>(op) << " (" << std::get<2>(op) << ")";
  }
  for (const auto& op : documented) {
    EXPECT_TRUE(served.contains(op)) << "documented but not served: " << std::get<0>(op) << " " << std::get<1>(op)
                                     << " (" << std::get<2>(op) << ")";
  }
}

TEST(OpenApi, EveryOperationHasAnIdASummaryAndResponses) {
  const auto doc = load_openapi();
  EXPECT_EQ(doc.at("openapi").get<std::string>().substr(0, 2), "3.");
  std::set<std::string> ids;
  for (const auto& [path, item] : doc.at("paths").items()) {
    for (const auto& [method, op] : item.items()) {
      if (!op.is_object() || !op.contains("x-vigo-access")) continue;
      const std::string where = method + " " + path;
      ASSERT_TRUE(op.contains("operationId")) << where;
      EXPECT_TRUE(ids.insert(op.at("operationId").get<std::string>()).second) << "duplicate operationId at " << where;
      EXPECT_TRUE(op.contains("summary")) << where;
      ASSERT_TRUE(op.contains("responses")) << where;
      EXPECT_FALSE(op.at("responses").empty()) << where;
      // A path parameter is declared for every {name} in the path.
      for (auto open = path.find('{'); open != std::string::npos; open = path.find('{', open + 1)) {
        const auto name = path.substr(open + 1, path.find('}', open) - open - 1);
        bool declared = false;
        for (const auto* params : {&op, &item}) {
          if (!params->contains("parameters")) continue;
          for (const auto& p : params->at("parameters")) {
            if (p.contains("$ref")) {
              declared = declared || p.at("$ref").get<std::string>().ends_with("/" + name);
            } else {
              declared = declared || (p.value("name", "") == name && p.value("in", "") == "path");
            }
          }
        }
        EXPECT_TRUE(declared) << where << " does not declare path parameter " << name;
      }
    }
  }
}

}  // namespace
}  // namespace vigo::web
