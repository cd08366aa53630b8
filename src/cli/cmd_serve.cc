// xnai serve: the HTTP server over the data directory.
#include <cstdio>
#include <filesystem>
#include <thread>

#include <CLI/CLI.hpp>

#include "base/log.h"
#include "cli/common.h"
#include "ingest/ingester.h"
#include "llm/local_llm.h"
#include "llm/remote_llm.h"
#include "obs/metrics.h"
#include "server/app.h"
#include "server/http_server.h"

namespace xnai::cli {
namespace {

struct ServeOptions {
  std::string listen;
  std::string seed_docs;            // on first start (new database), ingest this folder into "docs"
  std::vector<std::string> models;  // chat models (GGUF)
  std::vector<std::string> aliases;  // ids for them, in order
  std::string embed_model;           // embedding model (GGUF)
  int parallel = 4;
  int64_t context = 4096;
  std::string memory_budget;  // "6G"; empty: 70% of RAM
  int threads = 0;            // engine threads; 0: hardware threads
  int max_queue = 64;
  int64_t batch_tokens = 256;
  std::string kv_cache = "f16";
  // A remote OpenAI-compatible model server (served beside the local models).
  std::string remote_url;  // e.g. http://127.0.0.1:8080/v1; empty: none
  std::string remote_model;
  std::string remote_alias;
  std::string remote_key_file;
  double remote_timeout_s = 600;
  int remote_max_concurrent = 16;
  int breaker_failures = 5;
  double breaker_open_s = 30;
  // A remote embedding server (instead of --embed-model).
  std::string remote_embed_url;
  std::string remote_embed_model;
  std::string remote_embed_alias;
  std::string remote_embed_key_file;
};

// The models of `xnai serve --model/--embed-model`, loaded before serving.
struct LoadedModels {
  std::vector<std::unique_ptr<llm::LocalLlm>> chat;
  std::unique_ptr<llm::LocalEmbedder> embedder;
};

Result<LoadedModels> LoadModels(const ServeOptions& options, obs::Registry& metrics) {
  LoadedModels loaded;
  if (options.models.empty() && options.embed_model.empty()) return loaded;
  if (Status cpu = ActivateCpuPath(); !cpu.ok()) return Err(cpu);
  if (options.aliases.size() > options.models.size()) {
    return Err(Status::InvalidArgument("more --alias values than --model values"));
  }
  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  int64_t budget = llm::DefaultMemoryBudget();
  if (!options.memory_budget.empty()) {
    XNAI_ASSIGN_OR_RETURN(budget, llm::ParseByteSize(options.memory_budget));
  }
  int64_t left = budget;
  if (!options.embed_model.empty()) {
    XNAI_ASSIGN_OR_RETURN(loaded.embedder,
                          llm::LocalEmbedder::Load(options.embed_model, "", threads));
    left -= loaded.embedder->file_bytes();
    log::Info("llm.embedder_loaded",
              {{"id", loaded.embedder->id()}, {"dim", loaded.embedder->dim()}});
  }
  for (size_t idx = 0; idx < options.models.size(); ++idx) {
    llm::LocalLlmOptions llm_options;
    llm_options.alias = idx < options.aliases.size() ? options.aliases[idx] : "";
    llm_options.threads = threads;
    llm_options.parallel = options.parallel;
    llm_options.max_queue = options.max_queue;
    llm_options.context = options.context;
    llm_options.batch_tokens = options.batch_tokens;
    // Several chat models share what is left equally.
    llm_options.memory_budget =
        std::max<int64_t>(1, left / static_cast<int64_t>(options.models.size()));
    engine::ModelOptions kv;
    ApplyKvCacheChoice(options.kv_cache, kv);
    llm_options.key_cache_type = kv.key_cache_type;
    llm_options.metrics = &metrics;
    XNAI_ASSIGN_OR_RETURN(auto model, llm::LocalLlm::Load(options.models[idx], llm_options));
    const llm::MemoryPlan& plan = model->memory();
    log::Info("llm.loaded", {{"id", model->id()},
                             {"context", model->context_length()},
                             {"parallel", options.parallel},
                             {"kv_pages", plan.kv_pages},
                             {"template_fallback", model->template_fallback()}});
    for (const auto& other : loaded.chat) {
      if (other->id() == model->id()) {
        return Err(Status::InvalidArgument("two models have the id '" + model->id() +
                                           "': name them with --alias"));
      }
    }
    loaded.chat.push_back(std::move(model));
  }
  return loaded;
}

// The model of --remote-url (null without one), checked against the local
// ids.
Result<std::unique_ptr<llm::RemoteLlm>> CreateRemote(const ServeOptions& options,
                                                     const LoadedModels& local,
                                                     obs::Registry& metrics) {
  if (options.remote_url.empty()) return std::unique_ptr<llm::RemoteLlm>();
  llm::RemoteLlmOptions remote_options;
  remote_options.base_url = options.remote_url;
  remote_options.model = options.remote_model;
  remote_options.alias = options.remote_alias;
  remote_options.api_key_file = options.remote_key_file;
  remote_options.request_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(options.remote_timeout_s * 1000));
  remote_options.max_concurrent = options.remote_max_concurrent;
  remote_options.breaker.failure_threshold = options.breaker_failures;
  remote_options.breaker.open_duration =
      std::chrono::milliseconds(static_cast<int64_t>(options.breaker_open_s * 1000));
  remote_options.metrics = &metrics;
  XNAI_ASSIGN_OR_RETURN(auto remote, llm::RemoteLlm::Create(remote_options));
  for (const auto& other : local.chat) {
    if (other->id() == remote->id()) {
      return Err(Status::InvalidArgument("the remote model and a local one have the id '" +
                                         remote->id() +
                                         "': name one with --remote-alias or --alias"));
    }
  }
  return remote;
}

// The embedder of --remote-embed-url (null without one).
Result<std::unique_ptr<llm::RemoteEmbedder>> CreateRemoteEmbedder(const ServeOptions& options,
                                                                  obs::Registry& metrics) {
  if (options.remote_embed_url.empty()) return std::unique_ptr<llm::RemoteEmbedder>();
  if (!options.embed_model.empty()) {
    return Err(
        Status::InvalidArgument("--embed-model and --remote-embed-url both name an "
                                "embedding model; give one"));
  }
  llm::RemoteEmbedderOptions embed_options;
  embed_options.base_url = options.remote_embed_url;
  embed_options.model = options.remote_embed_model;
  embed_options.alias = options.remote_embed_alias;
  embed_options.api_key_file = options.remote_embed_key_file;
  embed_options.breaker.failure_threshold = options.breaker_failures;
  embed_options.breaker.open_duration =
      std::chrono::milliseconds(static_cast<int64_t>(options.breaker_open_s * 1000));
  embed_options.metrics = &metrics;
  XNAI_ASSIGN_OR_RETURN(auto embedder, llm::RemoteEmbedder::Create(embed_options));
  log::Info("llm.remote_embedder",
            {{"id", embedder->id()}, {"dim", embedder->dim()}, {"url", embedder->url()}});
  return embedder;
}

// GET /health's "models": each chat model, and for a remote one its server
// and circuit breaker.
nlohmann::json ModelsStatus(const LoadedModels& local, const llm::RemoteLlm* remote) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& model : local.chat) {
    const engine::Scheduler::Stats stats = model->stats();
    const llm::MemoryPlan& plan = model->memory();
    models.push_back({{"id", model->id()},
                      {"kind", "local"},
                      {"context", model->context_length()},
                      {"queued", stats.queued},
                      {"active", stats.active},
                      {"gen_tok_s", stats.gen_tok_s},
                      {"prompt_tok_s", stats.prompt_tok_s},
                      {"memory_budget_bytes", plan.budget},
                      {"weights_bytes", plan.weights},
                      {"kv_pages_used", stats.kv_pages_used},
                      {"kv_pages_max", stats.kv_pages_max},
                      {"kv_page_bytes", stats.kv_page_bytes}});
  }
  if (local.embedder) {
    models.push_back({{"id", local.embedder->id()},
                      {"kind", "local-embedding"},
                      {"dim", local.embedder->dim()}});
  }
  if (remote != nullptr) {
    const llm::RemoteLlmStatus status = remote->status();
    models.push_back({{"id", status.id},
                      {"kind", "remote"},
                      {"url", status.url},
                      {"remote_model", status.remote_model},
                      {"breaker", std::string(resilience::BreakerStateName(status.breaker_state))},
                      {"consecutive_failures", status.breaker.consecutive_failures},
                      {"failures", status.breaker.failures},
                      {"opens", status.breaker.opens},
                      {"rejections", status.breaker.rejections},
                      {"retry_in_seconds", status.retry_in_seconds},
                      {"active_requests", status.active},
                      {"max_concurrent", status.max_concurrent}});
  }
  return models;
}

// First start with an empty data directory: make the seed folder searchable
// at once, so a new user has something to ask about.
void SeedDocs(const Config& config, ingest::Ingester& ingester, const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) {
    log::Warn("seed.skipped", {{"reason", "not a directory"}, {"path", dir}});
    return;
  }
  auto options = ingest::IngestOptionsFromConfig(config.ingest, "docs");
  auto summary = ingester.IngestPaths({dir}, options);
  if (!summary) {
    log::Error("seed.failed", {{"path", dir}, {"error", summary.error().ToString()}});
    return;
  }
  log::Info("seed.done", {{"collection", "docs"},
                          {"files", summary->files},
                          {"chunks", summary->chunks},
                          {"skipped", summary->skipped}});
}

int RunServe(const GlobalOptions& global, const ServeOptions& options) {
  std::vector<std::pair<std::string, std::string>> extra;
  if (!options.listen.empty()) extra.emplace_back("server.listen", options.listen);
  auto config = LoadConfig(global, extra);
  if (!config) return Fail(config.error());

  obs::Registry metrics;
  obs::RegisterProcessMetrics(metrics);
  auto models = LoadModels(options, metrics);
  if (!models) return Fail(models.error());
  auto remote = CreateRemote(options, *models, metrics);
  if (!remote) return Fail(remote.error());
  auto remote_embedder = CreateRemoteEmbedder(options, metrics);
  if (!remote_embedder) return Fail(remote_embedder.error());
  server::AppContext app;
  app.config = &*config;
  app.metrics = &metrics;
  for (const auto& model : models->chat) app.chat_models.push_back(model.get());
  if (*remote) app.chat_models.push_back(remote->get());
  if (!models->chat.empty() || models->embedder || *remote || *remote_embedder) {
    app.models_status = [&models, &remote, &remote_embedder] {
      nlohmann::json status = ModelsStatus(*models, remote->get());
      if (llm::RemoteEmbedder* embedder = remote_embedder->get()) {
        status.push_back(
            {{"id", embedder->id()},
             {"kind", "remote-embedding"},
             {"url", embedder->url()},
             {"dim", embedder->dim()},
             {"breaker", std::string(resilience::BreakerStateName(embedder->breaker_state()))}});
      }
      return status;
    };
  }
  app.embedder = models->embedder ? static_cast<llm::Embedder*>(models->embedder.get())
                                  : remote_embedder->get();
  server::Router router;
  server::BuildRouter(router, app);
  server::HttpServer http(config->server, router, metrics);
  if (Status s = http.Bind(); !s.ok()) return Fail(s);
  http.HandleSignals();

  // The store opens while the server already answers /health (and 503 on
  // /ready), so orchestrators see the process alive at once.
  OpenedStore opened;
  std::unique_ptr<ingest::Ingester> ingester;
  std::unique_ptr<index::VectorIndex> vectors;
  std::unique_ptr<index::Retriever> retriever;
  std::unique_ptr<index::EmbeddingWorker> embedding_worker;
  Status open_status;
  std::thread opener([&] {
    auto result = OpenDataDir(*config);
    if (!result) {
      open_status = result.error();
      log::Error("store.open_failed", {{"error", open_status.ToString()}});
      http.Shutdown();
      return;
    }
    opened = std::move(*result);
    ingester = std::make_unique<ingest::Ingester>(*opened.store, *opened.blobs);
    auto opened_vectors = OpenVectorIndex(*config, *opened.store);
    if (!opened_vectors) {
      open_status = opened_vectors.error();
      log::Error("store.open_failed", {{"error", open_status.ToString()}});
      http.Shutdown();
      return;
    }
    vectors = std::move(*opened_vectors);
    retriever = std::make_unique<index::Retriever>(*opened.store, vectors.get(), app.embedder,
                                                   RetrieverOptionsFrom(*config));
    if (opened.created && !options.seed_docs.empty())
      SeedDocs(*config, *ingester, options.seed_docs);
    if (app.embedder) {
      embedding_worker =
          std::make_unique<index::EmbeddingWorker>(*opened.store, *vectors, *app.embedder);
      embedding_worker->Start();
      app.embedding_worker = embedding_worker.get();
    }
    app.retriever = retriever.get();
    app.blobs = opened.blobs.get();
    app.ingester = ingester.get();
    app.store = opened.store.get();
    log::Info("store.ready", {{"data_dir", config->data.dir}});
  });

  const uint16_t port = http.port();
  auto hp = ParseHostPort(config->server.listen);
  std::string host = hp->host.find(':') != std::string::npos ? "[" + hp->host + "]" : hp->host;
  http.OnReady([&] {
    std::printf("xnai: serving on http://%s:%u\n", host.c_str(), static_cast<unsigned>(port));
    std::fflush(stdout);
  });
  log::Info("server.start",
            {{"listen", config->server.listen}, {"port", port}, {"version", server::Version()}});
  http.Run();  // after its drain, SIGINT/SIGTERM are ignored: the exit stays clean
  for (const auto& model : models->chat) model->Drain();
  if (*remote) (*remote)->Drain();
  opener.join();
  // Routes may still hold pointers until Run returns; now it is safe to close.
  app.embedding_worker = nullptr;
  app.retriever = nullptr;
  if (embedding_worker) embedding_worker->Stop();  // saves the index files
  if (vectors) {
    if (Status saved = vectors->Save(); !saved.ok()) {
      log::Warn("vectors.save_failed", {{"error", saved.ToString()}});
    }
  }
  app.store = nullptr;
  if (!open_status.ok()) return Fail(open_status);
  return kExitOk;
}

}  // namespace

void AddServeCommand(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve the HTTP API (default 127.0.0.1:8000)");
  cmd->add_option("--listen", options->listen, "Address to listen on, host:port");
  cmd->add_option("--seed-docs", options->seed_docs,
                  "On first start with an empty data directory, ingest this folder into the "
                  "collection 'docs'");
  cmd->add_option("--model", options->models,
                  "A chat model (GGUF) for /v1/chat/completions and /v1/completions; repeat for "
                  "several");
  cmd->add_option("--alias", options->aliases,
                  "The id of the --model at the same position (default: file name without .gguf)");
  cmd->add_option("--embed-model", options->embed_model,
                  "An embedding model (GGUF, BERT family): /v1/embeddings, and dense and hybrid "
                  "search over the documents (new chunks are embedded in the background)");
  cmd->add_option("--parallel", options->parallel, "Sequences decoded together per model")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--ctx", options->context,
                  "Context (tokens per sequence); 0 = the model's (default 4096)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd->add_option("--memory-budget", options->memory_budget,
                  "Memory for weights, KV cache and scratch, e.g. 6G (default: 70% of RAM)");
  cmd->add_option("--threads", options->threads, "Engine threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-queue", options->max_queue,
                  "Requests that may wait beyond --parallel before 429")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--batch-tokens", options->batch_tokens,
                  "Tokens per forward pass (long prompts are processed in chunks of this)")
      ->check(CLI::Range(int64_t{16}, int64_t{8192}));
  cmd->add_option("--kv-cache", options->kv_cache, kKvCacheHelp)
      ->check(CLI::IsMember(kKvCacheChoices));
  CLI::Option* remote_url =
      cmd->add_option("--remote-url", options->remote_url,
                      "A remote OpenAI-compatible server (e.g. http://127.0.0.1:8080/v1) whose "
                      "model is served beside the local ones");
  cmd->add_option("--remote-model", options->remote_model,
                  "The model to ask the remote server for (default: the first of its /models)")
      ->needs(remote_url);
  cmd->add_option("--remote-alias", options->remote_alias,
                  "The id the remote model is served under here (default: its remote name)")
      ->needs(remote_url);
  cmd->add_option("--remote-key-file", options->remote_key_file,
                  "A file holding the remote server's API key (sent as a Bearer token)")
      ->needs(remote_url)
      ->check(CLI::ExistingFile);
  cmd->add_option("--remote-timeout", options->remote_timeout_s,
                  "Seconds a remote request may take in all, streaming included (default 600)")
      ->needs(remote_url)
      ->check(CLI::Range(1.0, 86400.0));
  cmd->add_option("--remote-max-concurrent", options->remote_max_concurrent,
                  "Requests in flight to the remote server before 429 (default 16)")
      ->needs(remote_url)
      ->check(CLI::Range(1, 4096));
  CLI::Option* breaker_failures =
      cmd->add_option("--breaker-failures", options->breaker_failures,
                      "Consecutive remote failures that open a circuit breaker (default 5)")
          ->check(CLI::Range(1, 1000000));
  CLI::Option* breaker_open =
      cmd->add_option(
             "--breaker-open-seconds", options->breaker_open_s,
             "Seconds an open circuit breaker fails fast before probing again (default 30)")
          ->check(CLI::Range(0.0, 86400.0));
  CLI::Option* remote_embed_url = cmd->add_option(
      "--remote-embed-url", options->remote_embed_url,
      "A remote OpenAI-compatible server for /v1/embeddings (instead of --embed-model)");
  cmd->add_option("--remote-embed-model", options->remote_embed_model,
                  "The embedding model to ask it for (default: the first of its /models)")
      ->needs(remote_embed_url);
  cmd->add_option("--remote-embed-alias", options->remote_embed_alias,
                  "The id the remote embedding model is served under here")
      ->needs(remote_embed_url);
  cmd->add_option("--remote-embed-key-file", options->remote_embed_key_file,
                  "A file holding the remote embedding server's API key")
      ->needs(remote_embed_url)
      ->check(CLI::ExistingFile);
  cmd->callback([&global, &exit_code, options, breaker_failures, breaker_open] {
    if ((breaker_failures->count() > 0 || breaker_open->count() > 0) &&
        options->remote_url.empty() && options->remote_embed_url.empty()) {
      exit_code = Fail(Status::InvalidArgument(
          "--breaker-failures and --breaker-open-seconds need --remote-url or --remote-embed-url"));
      return;
    }
    exit_code = RunServe(global, *options);
  });
}

}  // namespace xnai::cli
