// xnai ingest PATH... [--collection NAME]: files and folders into the store.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "ingest/ingester.h"

namespace xnai::cli {
namespace {

struct IngestCliOptions {
  std::vector<std::string> paths;
  std::string collection = "default";
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  bool json = false;
  std::string embed_model;  // embed the new chunks with it
};

std::string HumanBytes(int64_t bytes) {
  char buf[32];
  if (bytes < 1024) std::snprintf(buf, sizeof(buf), "%lld B", static_cast<long long>(bytes));
  else if (bytes < (1 << 20)) std::snprintf(buf, sizeof(buf), "%.1f KiB", bytes / 1024.0);
  else std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
  return buf;
}

// "[=========>          ]  12/40  docs/quickstart.md" on one redrawn line.
void DrawProgress(int64_t done, int64_t total, const std::string& source) {
  constexpr int kWidth = 28;
  int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
  std::string bar(filled, '=');
  if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
  std::string name = std::filesystem::path(source).filename().string();
  if (name.size() > 40) name = name.substr(0, 37) + "...";
  std::fprintf(stderr, "\r\x1b[2K[%s] %lld/%lld %s", bar.c_str(), static_cast<long long>(done),
               static_cast<long long>(total), name.c_str());
  std::fflush(stderr);
}

int RunIngest(const GlobalOptions& global, const IngestCliOptions& options) {
  auto config = LoadConfig(global);
  if (!config) return Fail(config.error());
  if (!store::IsValidCollectionName(options.collection)) {
    return Fail(Status::InvalidArgument("invalid collection name '" + options.collection +
                                        "' (letters, digits, '_', '.', '-'; up to 64)"));
  }
  auto opened = OpenDataDir(*config);
  if (!opened) return Fail(opened.error());
  ingest::Ingester ingester(*opened->store, *opened->blobs);
  auto ingest_options = ingest::IngestOptionsFromConfig(config->ingest, options.collection);
  if (!options.include.empty()) ingest_options.include = options.include;
  if (!options.exclude.empty()) ingest_options.exclude = options.exclude;
  std::vector<std::filesystem::path> paths(options.paths.begin(), options.paths.end());

  const bool tty = isatty(STDERR_FILENO) && !options.json;
  ingest::ProgressFn progress;
  if (tty) {
    progress = [](int64_t done, int64_t total, const ingest::FileOutcome& o) {
      DrawProgress(done, total, o.source);
    };
  }
  // Loaded before ingesting: a bad model path fails before any work.
  std::unique_ptr<llm::LocalEmbedder> embedder;
  if (!options.embed_model.empty()) {
    auto loaded = LoadEmbedder(options.embed_model);
    if (!loaded) return Fail(loaded.error());
    embedder = std::move(*loaded);
  }
  auto summary = ingester.IngestPaths(paths, ingest_options, progress);
  if (tty) std::fprintf(stderr, "\r\x1b[2K");
  if (!summary) return Fail(summary.error());
  int64_t embedded = -1;
  if (embedder) {
    auto vectors = OpenVectorIndex(*config, *opened->store);
    if (!vectors) return Fail(vectors.error());
    auto embed_summary = (*vectors)->EmbedPending(
        options.collection, *embedder, [tty](int64_t done, int64_t total) {
          if (tty) {
            std::fprintf(stderr, "\r\x1b[2Kembedding: %lld/%lld chunks",
                         static_cast<long long>(done), static_cast<long long>(total));
          }
        });
    if (tty) std::fprintf(stderr, "\r\x1b[2K");
    if (!embed_summary) return Fail(embed_summary.error());
    if (Status saved = (*vectors)->Save(); !saved.ok()) return Fail(saved);
    embedded = embed_summary->chunks;
  }

  if (options.json) {
    nlohmann::json skipped = nlohmann::json::array();
    for (const auto& s : summary->skipped_files) {
      skipped.push_back({{"source", s.source}, {"reason", s.reason}});
    }
    nlohmann::json out = {{"collection", options.collection}, {"files", summary->files},
                          {"added", summary->added},         {"updated", summary->updated},
                          {"unchanged", summary->unchanged}, {"skipped", summary->skipped},
                          {"chunks", summary->chunks},       {"bytes", summary->bytes},
                          {"skipped_files", skipped}};
    if (embedded >= 0) out["embedded"] = embedded;
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::printf("ingested %lld file(s) into collection '%s': %lld added, %lld updated, "
              "%lld unchanged, %lld skipped\n",
              static_cast<long long>(summary->files), options.collection.c_str(),
              static_cast<long long>(summary->added), static_cast<long long>(summary->updated),
              static_cast<long long>(summary->unchanged), static_cast<long long>(summary->skipped));
  std::printf("%lld chunk(s) written, %s read\n", static_cast<long long>(summary->chunks),
              HumanBytes(summary->bytes).c_str());
  if (embedded >= 0) {
    std::printf("%lld chunk(s) embedded with %s\n", static_cast<long long>(embedded),
                embedder->id().c_str());
  }
  if (!summary->skipped_files.empty()) {
    std::printf("skipped:\n");
    for (const auto& s : summary->skipped_files) {
      std::printf("  %s: %s\n", s.source.c_str(), s.reason.c_str());
    }
  }
  return kExitOk;
}

}  // namespace

void AddIngestCommand(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto options = std::make_shared<IngestCliOptions>();
  CLI::App* cmd = app.add_subcommand("ingest", "Add files and folders to a collection");
  cmd->add_option("paths", options->paths, "Files or folders (folders are walked recursively)")
      ->required();
  cmd->add_option("--collection,-c", options->collection, "Collection name (default: default)");
  cmd->add_option("--include", options->include, "Only files matching these globs");
  cmd->add_option("--exclude", options->exclude, "Skip files matching these globs");
  cmd->add_flag("--json", options->json, "Print the summary as JSON");
  cmd->add_option("--embed-model", options->embed_model,
                  "Also embed the new chunks with this model (GGUF) for dense and hybrid search");
  cmd->callback([&global, &exit_code, options] { exit_code = RunIngest(global, *options); });
}

}  // namespace xnai::cli
