// SPDX-License-Identifier: Apache-2.0
// `vigo db migrate` and `vigo db status`.
#include <iostream>

#include "commands.h"
#include "table.h"
#include "vigo/gis/migrator.h"

namespace vigo::cli {

void add_db_commands(CLI::App& app, Context& ctx) {
  auto* db = app.add_subcommand("db", "The GIS database schema");
  db->require_subcommand(1);

  auto* migrate = db->add_subcommand("migrate", "Apply pending schema migrations (idempotent)");
  migrate->callback([&ctx] {
    auto applied = gis::Migrator{ctx.database_url()}.migrate();
    if (ctx.options.json) {
      std::cout << nlohmann::json{{"applied", applied}}.dump() << '\n';
    } else if (applied.empty()) {
      std::cout << "schema is up to date\n";
    } else {
      for (int v : applied) std::cout << "applied migration " << v << '\n';
    }
  });

  auto* status = db->add_subcommand("status", "List migrations and whether each is applied");
  status->callback([&ctx] {
    Table t{{"version", "name", "applied", "applied_at"}};
    for (const auto& m : gis::Migrator{ctx.database_url()}.status()) {
      t.add({std::int64_t{m.version}, m.name, m.applied, m.applied_at});
    }
    t.emit(std::cout, ctx.options.json);
  });
}

}  // namespace vigo::cli
