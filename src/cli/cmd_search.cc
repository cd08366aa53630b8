// xnai search QUERY [--collection NAME] [-k N] [--json] [--mode M --embed-model PATH]
#include <unistd.h>

#include <cstdio>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "index/lexical.h"
#include "index/retriever.h"
#include "server/routes/routes.h"

namespace xnai::cli {
namespace {

struct SearchCliOptions {
  std::string query;
  std::string collection;
  int k = 0;  // 0 = search.default_k
  bool json = false;
  std::string mode;         // empty: hybrid with --embed-model, else lexical
  std::string embed_model;  // for dense and hybrid
};

// One line per hit on the terminal: runs of whitespace become one space.
std::string OneLine(const std::string& text) {
  std::string out;
  bool space = false;
  for (char ch : text) {
    if (ch == '\n' || ch == '\r' || ch == '\t' || ch == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  return out;
}

int RunSearch(const GlobalOptions& global, const SearchCliOptions& options) {
  auto config = LoadConfig(global);
  if (!config) return Fail(config.error());
  if (options.query.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Fail(Status::InvalidArgument("the query must not be empty"));
  }
  int k = options.k == 0 ? config->search.default_k : options.k;
  if (k < 1 || k > config->search.max_k) {
    return Fail(Status::InvalidArgument("-k must be between 1 and " +
                                        std::to_string(config->search.max_k)));
  }
  if (!std::filesystem::exists(std::filesystem::path(config->data.dir) / "xnai.db")) {
    return Fail(Status::NotFound("no data in '" + config->data.dir +
                                 "' yet: add documents with 'xnai ingest PATH'"));
  }
  auto opened = OpenDataDir(*config);
  if (!opened) return Fail(opened.error());
  index::RetrievalQuery query;
  query.text = options.query;
  query.k = k;
  if (!options.collection.empty()) query.collection = options.collection;
  if (!options.mode.empty()) {
    auto mode = index::ParseRetrievalMode(options.mode);
    if (!mode) return Fail(mode.error());
    query.mode = *mode;
  }
  std::unique_ptr<llm::LocalEmbedder> embedder;
  if (!options.embed_model.empty()) {
    auto loaded = LoadEmbedder(options.embed_model);
    if (!loaded) return Fail(loaded.error());
    embedder = std::move(*loaded);
  } else if (query.mode && *query.mode != index::RetrievalMode::kLexical) {
    return Fail(Status::InvalidArgument("--mode " + options.mode + " needs --embed-model"));
  }
  auto vectors = OpenVectorIndex(*config, *opened->store);
  if (!vectors) return Fail(vectors.error());
  index::Retriever retriever(*opened->store, vectors->get(), embedder.get(),
                             RetrieverOptionsFrom(*config));
  auto result = retriever.Retrieve(query);
  if (!result) return Fail(result.error());
  std::vector<store::SearchHit> hits_list;
  for (auto& r : result->chunks) hits_list.push_back(std::move(r.hit));
  auto* hits = &hits_list;

  if (options.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& h : *hits) {
      out.push_back(server::routes::SearchHitJson(h, index::SnippetToPlain(h.snippet)));
    }
    std::printf("%s\n", nlohmann::json({{"hits", out}}).dump(2).c_str());
    return kExitOk;
  }
  if (hits->empty()) {
    std::printf("no results\n");
    return kExitOk;
  }
  const bool tty = isatty(STDOUT_FILENO);
  int rank = 1;
  for (const auto& h : *hits) {
    std::string where = h.source;
    if (!h.section.empty()) where += " § " + h.section;
    if (h.page > 0) where += " (page " + std::to_string(h.page) + ")";
    std::printf("%d. %s  [%.2f]\n   %s\n   %s\n\n", rank++,
                h.title.empty() ? "(untitled)" : h.title.c_str(), h.score, where.c_str(),
                OneLine(tty ? index::SnippetToAnsi(h.snippet) : index::SnippetToPlain(h.snippet)).c_str());
  }
  return kExitOk;
}

}  // namespace

void AddSearchCommand(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto options = std::make_shared<SearchCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "search", "Search the ingested documents (BM25, embeddings or both)");
  cmd->add_option("query", options->query, "What to look for")->required();
  cmd->add_option("--collection,-c", options->collection, "Only this collection");
  cmd->add_option("-k", options->k, "Number of results (default search.default_k)");
  cmd->add_flag("--json", options->json, "Print hits as JSON");
  cmd->add_option("--mode", options->mode,
                  "lexical, dense or hybrid (default: hybrid with --embed-model, else lexical)");
  cmd->add_option("--embed-model", options->embed_model,
                  "The embedding model (GGUF) the documents' vectors were made with");
  cmd->callback([&global, &exit_code, options] { exit_code = RunSearch(global, *options); });
}

}  // namespace xnai::cli
