// Liveness, readiness, metrics and the API description.
#include <chrono>

#include "server/routes/routes.h"

namespace xnai::server::routes {

void AddHealthRoutes(Router& router, AppContext& app) {
  router.Add({"GET", "/health", "Liveness: status, version and uptime"}, [&app](Request&) {
    double uptime =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - app.started).count();
    nlohmann::json body = {{"status", "ok"},
                           {"version", Version()},
                           {"uptime_seconds", uptime},
                           {"ready", app.store.load() != nullptr}};
    // Liveness stays "ok" while a remote model is down: restarting this
    // process would not bring it back. The models say what is degraded.
    if (app.models_status) body["models"] = app.models_status();
    if (store::Store* store = app.store.load()) {
      if (auto stats = store->Stats()) {
        nlohmann::json index = {{"collections", stats->collections},
                                {"documents", stats->documents},
                                {"chunks", stats->chunks},
                                {"vectors", stats->vectors},
                                {"db_bytes", stats->db_bytes},
                                {"embedding_model", nullptr}};
        if (app.embedder) index["embedding_model"] = app.embedder->id();
        if (index::EmbeddingWorker* worker = app.embedding_worker.load()) {
          const auto w = worker->status();
          index["embedding"] = {{"busy", w.busy},
                                {"collection", w.collection},
                                {"queued", w.queued},
                                {"embedded", w.embedded},
                                {"last_error", w.last_error}};
        }
        body["index"] = std::move(index);
      }
    }
    return JsonResponse(body);
  });

  router.Add({"GET", "/ready", "Readiness: 200 once the store is open, 503 before"},
             [&app](Request&) {
               if (app.store.load() == nullptr) return NotReady();
               return JsonResponse({{"status", "ready"}});
             });

  router.Add({"GET", "/metrics", "Prometheus metrics (text exposition format)"}, [&app](Request&) {
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = app.metrics->RenderPrometheus();
    return r;
  });

  router.Add({"GET", "/openapi.json", "This API description (OpenAPI 3)"},
             [&router](Request&) { return JsonResponse(router.OpenApi("xnai", Version())); });
}

}  // namespace xnai::server::routes
