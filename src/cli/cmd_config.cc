// xnai config show; xnai version.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "server/app.h"

namespace xnai::cli {

void AddConfigCommand(CLI::App& app, GlobalOptions& global, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("config", "Inspect the configuration");
  cmd->require_subcommand(1);
  CLI::App* show = cmd->add_subcommand(
      "show", "Print the effective configuration (file, env, flags merged; secrets masked)");
  show->callback([&global, &exit_code] {
    auto config = LoadConfig(global);
    if (!config) {
      exit_code = Fail(config.error());
      return;
    }
    std::fputs(config->Show().c_str(), stdout);
    exit_code = kExitOk;
  });
}

void AddVersionCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("version", "Print the version");
  cmd->callback([&exit_code] {
    std::printf("xnai %s\n", server::Version());
    exit_code = kExitOk;
  });
}

}  // namespace xnai::cli
