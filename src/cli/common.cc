#include "cli/common.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "base/log.h"
#include "engine/cpu.h"

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
      return Err(
          Status::InvalidArgument("--set expects section.key=value, got '" + assignment + "'"));
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
    return Err(
        Status::IOError("cannot create data directory '" + dir.string() + "': " + ec.message()));
  }
  OpenedStore opened;
  opened.created = !std::filesystem::exists(dir / "xnai.db");
  store::SqliteOptions options;
  options.busy_timeout_ms = config.data.busy_timeout_ms;
  auto store = store::OpenSqliteStore(dir / "xnai.db", options);
  if (!store) return Err(store.error());
  auto blobs = store::BlobStore::Open(dir / "blobs");
  if (!blobs) return Err(blobs.error());
  opened.store = std::move(*store);
  opened.blobs = std::make_unique<store::BlobStore>(std::move(*blobs));
  return opened;
}

Result<std::unique_ptr<index::VectorIndex>> OpenVectorIndex(const Config& config,
                                                            store::Store& store) {
  index::VectorIndexOptions options;
  options.dir = std::filesystem::path(config.data.dir) / "vectors";
  options.hnsw_threshold = config.search.hnsw_threshold;
  options.embed_batch = config.search.embed_batch;
  return index::VectorIndex::Open(store, options);
}

index::RetrieverOptions RetrieverOptionsFrom(const Config& config) {
  index::RetrieverOptions options;
  options.rrf_k = config.search.rrf_k;
  options.lexical_weight = config.search.lexical_weight;
  options.dense_weight = config.search.dense_weight;
  return options;
}

Result<std::unique_ptr<llm::LocalEmbedder>> LoadEmbedder(const std::string& path, int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return llm::LocalEmbedder::Load(path, "", threads);
}

Result<std::unique_ptr<gguf::GgufFile>> OpenModelFile(const std::string& path) {
  auto file = gguf::OpenGguf(path);
  if (!file && file.error().code() == Status::Code::kInvalidArgument) {
    return Err(Status::Corruption(file.error().message()));
  }
  return file;
}

// "1,2, 3" -> {1, 2, 3}; InvalidArgument naming the bad item.
Result<std::vector<int32_t>> ParseTokenIds(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t begin = item.find_first_not_of(" \t");
    size_t end = item.find_last_not_of(" \t");
    if (begin == std::string::npos) {
      return Err(Status::InvalidArgument("empty token id in '" + text + "'"));
    }
    item = item.substr(begin, end - begin + 1);
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used != item.size() || value < 0 || value > INT32_MAX) {
      return Err(Status::InvalidArgument("'" + item + "' is not a token id"));
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

Status ActivateCpuPath() {
  Result<engine::CpuPath> path = engine::ActivateCpuPathFromEnv();
  if (!path) return Status::InvalidArgument(path.error().message());
  return Status::Ok();
}

void ApplyKvCacheChoice(const std::string& choice, engine::ModelOptions& options) {
  using engine::TensorType;
  if (choice == "f32") {
    options.key_cache_type = TensorType::kF32;
    options.value_cache_type = TensorType::kF32;
  } else if (choice == "q8_0") {
    options.key_cache_type = TensorType::kQ8_0;
    options.value_cache_type = TensorType::kF16;
  } else {
    options.key_cache_type = TensorType::kF16;
    options.value_cache_type = TensorType::kF16;
  }
}

}  // namespace xnai::cli
