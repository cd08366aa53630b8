// xnai serve: the HTTP server over the data directory.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <CLI/CLI.hpp>

#include "base/log.h"
#include "cli/common.h"
#include "ingest/ingester.h"
#include "obs/metrics.h"
#include "server/app.h"
#include "server/http_server.h"

namespace xnai::cli {
namespace {

struct ServeOptions {
  std::string listen;
  std::string seed_docs;  // on first start (new database), ingest this folder into "docs"
};

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
  server::AppContext app;
  app.config = &*config;
  app.metrics = &metrics;
  server::Router router;
  server::BuildRouter(router, app);
  server::HttpServer http(config->server, router, metrics);
  if (Status s = http.Bind(); !s.ok()) return Fail(s);
  http.HandleSignals();

  // The store opens while the server already answers /health (and 503 on
  // /ready), so orchestrators see the process alive at once.
  OpenedStore opened;
  std::unique_ptr<ingest::Ingester> ingester;
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
    if (opened.created && !options.seed_docs.empty()) SeedDocs(*config, *ingester, options.seed_docs);
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
  log::Info("server.start", {{"listen", config->server.listen}, {"port", port},
                             {"version", server::Version()}});
  http.Run();
  // The drain is over; a second SIGTERM arriving during the last milliseconds
  // of teardown must not turn a clean exit into death by signal.
  std::signal(SIGTERM, SIG_IGN);
  std::signal(SIGINT, SIG_IGN);
  opener.join();
  // Routes may still hold pointers until Run returns; now it is safe to close.
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
  cmd->callback([&global, &exit_code, options] { exit_code = RunServe(global, *options); });
}

}  // namespace xnai::cli
