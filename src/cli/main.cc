// xnai: one binary, many subcommands. Exit codes: 0 ok, 1 runtime error,
// 2 usage error.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/common.h"

int main(int argc, char** argv) {
  using namespace xnai::cli;
  CLI::App app{"xnai: a sovereign, zero-telemetry AI stack in one program", "xnai"};
  app.require_subcommand(1);
  app.fallthrough();
  GlobalOptions global;
  AddGlobalOptions(app, global);
  int exit_code = kExitOk;
  AddServeCommand(app, global, exit_code);
  AddIngestCommand(app, global, exit_code);
  AddSearchCommand(app, global, exit_code);
  AddReindexCommand(app, global, exit_code);
  AddConfigCommand(app, global, exit_code);
  AddModelCommand(app, exit_code);
  AddTokenizeCommands(app, exit_code);
  AddGenerateCommands(app, exit_code);
  AddEmbedCommand(app, exit_code);
  AddBenchCommand(app, exit_code);
  AddVersionCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "xnai: %s\nRun 'xnai --help' for usage.\n", e.what());
    return kExitUsageError;
  }
  return exit_code;
}
