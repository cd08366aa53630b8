// /api/collections: create, list, get, delete.
#include "server/routes/routes.h"

namespace xnai::server::routes {
namespace {

// Drops blobs no longer referenced by any document. Best effort: a failure
// leaves an orphan file (harmless, reported in the log), never a dangling row.
void DropUnreferencedBlobs(AppContext& app, const std::vector<std::string>& shas) {
  store::Store* store = app.store.load();
  store::BlobStore* blobs = app.blobs.load();
  for (const auto& sha : shas) {
    auto refs = store->CountDocumentsWithSha(sha);
    if (refs && *refs == 0) (void)blobs->Remove(sha);
  }
}

}  // namespace

void AddCollectionRoutes(Router& router, AppContext& app) {
  nlohmann::json create_doc = {
      {"requestBody",
       {{"required", true},
        {"content",
         {{"application/json",
           {{"schema",
             {{"type", "object"},
              {"required", {"name"}},
              {"properties",
               {{"name", {{"type", "string"}, {"pattern", "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}}},
                {"description", {{"type", "string"}}}}}}}}}}}}}};
  router.Add({"POST", "/api/collections", "Create a collection", create_doc},
             [&app](Request& req) -> Response {
               store::Store* store = app.store.load();
               if (!store) return NotReady();
               auto body = ParseJsonObject(req);
               if (!body) return ErrorResponse(body.error());
               auto name = StringField(*body, "name", "", true);
               if (!name) return ErrorResponse(name.error());
               auto description = StringField(*body, "description", "");
               if (!description) return ErrorResponse(description.error());
               auto created = store->CreateCollection(*name, *description);
               if (!created) return ErrorResponse(created.error());
               return JsonResponse(CollectionJson(*created), 201);
             });

  router.Add({"GET", "/api/collections", "List collections with document and chunk counts"},
             [&app](Request&) -> Response {
               store::Store* store = app.store.load();
               if (!store) return NotReady();
               auto list = store->ListCollections();
               if (!list) return ErrorResponse(list.error());
               nlohmann::json out = nlohmann::json::array();
               for (const auto& c : *list) out.push_back(CollectionJson(c));
               return JsonResponse({{"collections", out}});
             });

  router.Add({"GET", "/api/collections/{name}", "Get one collection"},
             [&app](Request& req) -> Response {
               store::Store* store = app.store.load();
               if (!store) return NotReady();
               auto c = store->GetCollection(req.path_params["name"]);
               if (!c) return ErrorResponse(c.error());
               return JsonResponse(CollectionJson(*c));
             });

  router.Add({"DELETE", "/api/collections/{name}",
              "Delete a collection with its documents and chunks"},
             [&app](Request& req) -> Response {
               store::Store* store = app.store.load();
               if (!store) return NotReady();
               const std::string& name = req.path_params["name"];
               auto shas = store->DeleteCollection(name);
               if (!shas) return ErrorResponse(shas.error());
               DropUnreferencedBlobs(app, *shas);
               return JsonResponse({{"deleted", name}, {"documents_deleted", shas->size()}});
             });
}

}  // namespace xnai::server::routes
