// xnai reindex --embed-model PATH [--collection NAME]: embeds every chunk of
// a collection (or of all) again with this model, after a model change.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace xnai::cli {
namespace {

struct ReindexOptions {
  std::string embed_model;
  std::string collection;  // empty: every collection
  int threads = 0;
};

int RunReindex(const GlobalOptions& global, const ReindexOptions& options) {
  auto config = LoadConfig(global);
  if (!config) return Fail(config.error());
  if (!std::filesystem::exists(std::filesystem::path(config->data.dir) / "xnai.db")) {
    return Fail(Status::NotFound("no data in '" + config->data.dir +
                                 "' yet: add documents with 'xnai ingest PATH'"));
  }
  auto embedder = LoadEmbedder(options.embed_model, options.threads);
  if (!embedder) return Fail(embedder.error());
  auto opened = OpenDataDir(*config);
  if (!opened) return Fail(opened.error());
  auto vectors = OpenVectorIndex(*config, *opened->store);
  if (!vectors) return Fail(vectors.error());
  std::vector<std::string> names;
  if (!options.collection.empty()) {
    names.push_back(options.collection);
  } else {
    auto all = opened->store->ListCollections();
    if (!all) return Fail(all.error());
    for (const auto& c : *all) names.push_back(c.name);
  }
  for (const std::string& name : names) {
    auto summary = (*vectors)->Reindex(name, **embedder, [&](int64_t done, int64_t total) {
      std::fprintf(stderr, "\r%s: %lld/%lld chunks embedded", name.c_str(),
                   static_cast<long long>(done), static_cast<long long>(total));
    });
    if (!summary) {
      std::fprintf(stderr, "\n");
      return Fail(summary.error().WithContext("collection '" + name + "'"));
    }
    std::fprintf(stderr, "\n");
    std::printf("%s: %lld chunk(s) embedded with %s (%lld tokens, %.1f s)\n", name.c_str(),
                static_cast<long long>(summary->chunks), (*embedder)->id().c_str(),
                static_cast<long long>(summary->tokens), summary->seconds);
  }
  if (Status saved = (*vectors)->Save(); !saved.ok()) return Fail(saved);
  return kExitOk;
}

}  // namespace

void AddReindexCommand(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto options = std::make_shared<ReindexOptions>();
  CLI::App* cmd = app.add_subcommand(
      "reindex", "Embed every chunk again with an embedding model (after a model change)");
  cmd->add_option("--embed-model", options->embed_model, "The embedding model (GGUF)")
      ->required();
  cmd->add_option("--collection,-c", options->collection, "Only this collection (default: all)");
  cmd->add_option("--threads", options->threads, "Threads (default: all cores)");
  cmd->callback([&global, &exit_code, options] { exit_code = RunReindex(global, *options); });
}

}  // namespace xnai::cli
