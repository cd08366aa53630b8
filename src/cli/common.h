// Shared pieces of the subcommands: global options, config loading, exit codes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/status.h"
#include "engine/model.h"
#include "gguf/gguf_reader.h"
#include "index/retriever.h"
#include "index/vector_index.h"
#include "llm/local_llm.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace CLI {
class App;
}

namespace xnai::cli {

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntimeError = 1;
inline constexpr int kExitUsageError = 2;

// Options every subcommand accepts.
struct GlobalOptions {
  std::string data_dir;                // --data DIR (overrides data.dir)
  std::string config_file;             // --config FILE
  std::vector<std::string> overrides;  // --set section.key=value
  std::string log_level;               // --log-level
};

void AddGlobalOptions(CLI::App& app, GlobalOptions& options);

// Defaults -> --config FILE (or ./xnai.toml when present) -> XNAI_* env ->
// flags. `extra` are flag-level overrides ("server.listen" -> value) applied
// last. Validates the result and configures logging.
Result<Config> LoadConfig(const GlobalOptions& options,
                          const std::vector<std::pair<std::string, std::string>>& extra = {});

// Prints "xnai: <message>" to stderr and returns the exit code for the Status
// (InvalidArgument -> usage error 2, anything else -> runtime error 1).
int Fail(const Status& status);

// The data directory's store and blob store, created on first use.
struct OpenedStore {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::BlobStore> blobs;
  bool created = false;  // the database did not exist before
};
Result<OpenedStore> OpenDataDir(const Config& config);

// The vector index of the data directory (`<data>/vectors`), with the
// [search] settings; and the Retriever settings from [search].
Result<std::unique_ptr<index::VectorIndex>> OpenVectorIndex(const Config& config,
                                                            store::Store& store);
index::RetrieverOptions RetrieverOptionsFrom(const Config& config);
// An embedding model (GGUF) for a CLI command; threads 0 = every core.
Result<std::unique_ptr<llm::LocalEmbedder>> LoadEmbedder(const std::string& path,
                                                         int threads = 0);

// Opens a GGUF file for the engine commands; a file that is not GGUF is a
// runtime error (Corruption, exit 1), not a usage error.
Result<std::unique_ptr<gguf::GgufFile>> OpenModelFile(const std::string& path);
Result<std::vector<int32_t>> ParseTokenIds(const std::string& text);  // "1,2, 3"

// Makes XNAI_CPU (scalar | avx2 | avx512, see engine/cpu.h) the engine's CPU
// path before an engine command runs. An unknown name, or a path this CPU
// lacks, is the caller's mistake: InvalidArgument (exit 2) naming it, found
// before any work (the engine alone would fall back with a warning).
Status ActivateCpuPath();

// The KV cache choices of --kv-cache: "f16" (default: keys and values F16),
// "q8_0" (keys Q8_0, values F16), "f32" (both F32, exact). Sets the cache
// types of `options`.
inline const std::vector<std::string> kKvCacheChoices = {"f16", "q8_0", "f32"};
inline constexpr const char* kKvCacheHelp =
    "KV cache: f16 (default), q8_0 (keys Q8_0, values F16), f32 (exact)";
void ApplyKvCacheChoice(const std::string& choice, engine::ModelOptions& options);

// Subcommand registration (one file each).
void AddServeCommand(CLI::App& app, GlobalOptions& global, int& exit_code);
void AddIngestCommand(CLI::App& app, GlobalOptions& global, int& exit_code);
void AddSearchCommand(CLI::App& app, GlobalOptions& global, int& exit_code);
void AddReindexCommand(CLI::App& app, GlobalOptions& global, int& exit_code);
void AddConfigCommand(CLI::App& app, GlobalOptions& global, int& exit_code);
void AddVersionCommand(CLI::App& app, int& exit_code);
void AddModelCommand(CLI::App& app, int& exit_code);
void AddTokenizeCommands(CLI::App& app, int& exit_code);
void AddGenerateCommands(CLI::App& app, int& exit_code);
void AddEmbedCommand(CLI::App& app, int& exit_code);
void AddBenchCommand(CLI::App& app, int& exit_code);

}  // namespace xnai::cli
