// The xnai application on top of the HTTP server: what `xnai serve` runs.
// AppContext holds the services the routes use; BuildRouter registers every
// route. Services are owned by the caller (the serve command).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "base/config.h"
#include "index/embedding_worker.h"
#include "index/retriever.h"
#include "ingest/ingester.h"
#include "llm/llm.h"
#include "obs/metrics.h"
#include "server/router.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace xnai::server {

struct AppContext {
  const Config* config = nullptr;
  obs::Registry* metrics = nullptr;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // Set (once) when the store is open; until then /ready is 503 and the
  // routes that need the store answer 503 too.
  std::atomic<store::Store*> store{nullptr};
  std::atomic<store::BlobStore*> blobs{nullptr};
  std::atomic<ingest::Ingester*> ingester{nullptr};
  // Lexical, dense and hybrid retrieval over the store: set with the store.
  std::atomic<index::Retriever*> retriever{nullptr};
  // Embeds newly ingested chunks in the background; null without an
  // embedding model. Set with the store.
  std::atomic<index::EmbeddingWorker*> embedding_worker{nullptr};
  // Models for /v1/*: set before the server starts, owned by the caller.
  std::vector<llm::Llm*> chat_models;
  llm::Embedder* embedder = nullptr;
  // The "models" array of GET /health ([{"id", "kind", ...}]); null: none
  // shown. Set before the server starts; called on a handler thread.
  std::function<nlohmann::json()> models_status;
};

// Registers /health, /ready, /metrics, /openapi.json, the /api routes and
// the OpenAI-compatible /v1 routes.
void BuildRouter(Router& router, AppContext& app);

// The version string shown by /health and `xnai version`.
const char* Version();

}  // namespace xnai::server
