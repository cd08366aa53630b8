#include "cli/common.h"

#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "base/log.h"

namespace xnai::cli {

void AddGlobalOptions(CLI::App& app, GlobalOptions& options) {
  app.add_option("--data", options.data_dir, "Data directory (default ./data)");
  app.add_option("--config", options.config_file, "Configuration file (TOML)");
  app.add_option("--set", options.overrides, "Override a setting: section.key=value")
      ->allow_extra_args(false);
  app.add_option("--log-level", options.log_level, "debug, info, warn or error");
}

Result<Config> LoadConfig(const GlobalOptions& options,
                          const std::vector<std::pair<std::string, std::string>>& extra) {
  Config config;
  if (!options.config_file.empty()) {
    XNAI_RETURN_IF_ERROR(config.MergeTomlFile(options.config_file));
  } else if (std::filesystem::exists("xnai.toml")) {
    XNAI_RETURN_IF_ERROR(config.MergeTomlFile("xnai.toml"));
  }
  XNAI_RETURN_IF_ERROR(config.MergeEnv(ProcessEnvironment()));
  for (const auto& assignment : options.overrides) {
    auto eq = assignment.find('=');
    if (eq == std::string::npos) {
      return Err(Status::InvalidArgument("--set expects section.key=value, got '" + assignment +
                                         "'"));
    }
    XNAI_RETURN_IF_ERROR(config.Set(assignment.substr(0, eq), assignment.substr(eq + 1)));
  }
  if (!options.data_dir.empty()) config.data.dir = options.data_dir;
  if (!options.log_level.empty()) config.log.level = options.log_level;
  for (const auto& [key, value] : extra) XNAI_RETURN_IF_ERROR(config.Set(key, value));
  XNAI_RETURN_IF_ERROR(config.Validate());
  log::Configure(log::ParseLevel(config.log.level), log::ParseFormat(config.log.format));
  return config;
}

int Fail(const Status& status) {
  std::fprintf(stderr, "xnai: %s\n", status.message().c_str());
  return status.code() == Status::Code::kInvalidArgument ? kExitUsageError : kExitRuntimeError;
}

Result<OpenedStore> OpenDataDir(const Config& config) {
  std::filesystem::path dir = config.data.dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Err(Status::IOError("cannot create data directory '" + dir.string() +
                               "': " + ec.message()));
  }
  OpenedStore opened;
  opened.created = !std::filesystem::exists(dir / "xnai.db");
  auto store = store::OpenSqliteStore(dir / "xnai.db");
  if (!store) return Err(store.error());
  auto blobs = store::BlobStore::Open(dir / "blobs");
  if (!blobs) return Err(blobs.error());
  opened.store = std::move(*store);
  opened.blobs = std::make_unique<store::BlobStore>(std::move(*blobs));
  return opened;
}

}  // namespace xnai::cli
