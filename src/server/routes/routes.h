// Route registration, one function per group (internal to server/).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "server/app.h"
#include "server/http_types.h"
#include "server/router.h"
#include "store/store.h"

namespace xnai::server::routes {

void AddHealthRoutes(Router& router, AppContext& app);
void AddCollectionRoutes(Router& router, AppContext& app);
void AddDocumentRoutes(Router& router, AppContext& app);
void AddSearchRoutes(Router& router, AppContext& app);
void AddOpenAiRoutes(Router& router, AppContext& app);
// The embedded web UI: GET /, /assets/{file} and top-level files (web_routes.cc).
void AddWebRoutes(Router& router, AppContext& app);

// JSON views of store records (the API's wire format).
nlohmann::json CollectionJson(const store::Collection& c);
nlohmann::json DocumentJson(const store::Document& d);
nlohmann::json ChunkJson(const store::Chunk& c);
// A search hit; `snippet` already rendered (HTML for the API, plain for the CLI).
nlohmann::json SearchHitJson(const store::SearchHit& hit, const std::string& snippet);

// Parses a JSON object body; 400 "malformed JSON" / "body must be a JSON object".
Result<nlohmann::json> ParseJsonObject(const Request& request);
// Optional string field: absent/null -> default; wrong type -> 400 naming it.
Result<std::string> StringField(const nlohmann::json& body, const std::string& name,
                                const std::string& fallback, bool required = false);
// Parses an integer query parameter within [min, max]; absent -> fallback.
Result<int> IntQuery(const Request& request, const std::string& name, int fallback, int min,
                     int max);

// 503 while the store is still opening.
Response NotReady();

}  // namespace xnai::server::routes
