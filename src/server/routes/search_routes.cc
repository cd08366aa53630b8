// GET /api/search: lexical (BM25), dense (embeddings) or hybrid retrieval
// over chunks, with highlighted snippets.
#include "index/lexical.h"
#include "index/retriever.h"
#include "server/routes/routes.h"

namespace xnai::server::routes {

void AddSearchRoutes(Router& router, AppContext& app) {
  nlohmann::json doc = {
      {"parameters",
       {{{"name", "q"}, {"in", "query"}, {"required", true}, {"schema", {{"type", "string"}}}},
        {{"name", "collection"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
        {{"name", "k"}, {"in", "query"}, {"schema", {{"type", "integer"}}}}}}};
  router.Add({"GET", "/api/search", "Lexical (BM25) search over chunks", doc},
             [&app](Request& req) -> Response {
               index::Retriever* retriever = app.retriever.load();
               if (!retriever) return NotReady();
               const SearchConfig& limits = app.config->search;
               std::string q = req.Query("q").value_or("");
               if (q.find_first_not_of(" \t\r\n") == std::string::npos) {
                 return ErrorResponse(400, "query parameter 'q' is required and must not be empty",
                                      "invalid_request_error", "empty_query");
               }
               if (static_cast<int>(q.size()) > limits.max_query_chars) {
                 return ErrorResponse(400,
                                      "query is too long (limit " +
                                          std::to_string(limits.max_query_chars) + " bytes)",
                                      "invalid_request_error", "query_too_long");
               }
               auto k = IntQuery(req, "k", limits.default_k, 1, limits.max_k);
               if (!k) return ErrorResponse(k.error());
               index::RetrievalQuery query;
               query.text = q;
               query.k = *k;
               if (auto c = req.Query("collection"); c && !c->empty()) query.collection = *c;
               query.source_prefix = req.Query("source_prefix").value_or("");
               if (auto m = req.Query("mode"); m && !m->empty()) {
                 auto mode = index::ParseRetrievalMode(*m);
                 if (!mode) return ErrorResponse(mode.error());
                 if (*mode != index::RetrievalMode::kLexical && !retriever->dense_available()) {
                   return ErrorResponse(400,
                                        std::string(index::RetrievalModeName(*mode)) +
                                            " search needs an embedding model: start the server "
                                            "with --embed-model (or --remote-embed-url)",
                                        "invalid_request_error", "no_embedding_model");
                 }
                 query.mode = *mode;
               }
               auto result = retriever->Retrieve(query);
               if (!result) return ErrorResponse(result.error());
               nlohmann::json out = nlohmann::json::array();
               for (const auto& r : result->chunks) {
                 nlohmann::json hit = SearchHitJson(r.hit, index::SnippetToHtml(r.hit.snippet));
                 if (result->mode == index::RetrievalMode::kHybrid) {
                   hit["lexical_rank"] = r.lexical_rank;
                   hit["dense_rank"] = r.dense_rank;
                 }
                 out.push_back(std::move(hit));
               }
               return JsonResponse({{"hits", out},
                                    {"mode", index::RetrievalModeName(result->mode)},
                                    {"timings",
                                     {{"embed_ms", result->embed_ms},
                                      {"search_ms", result->search_ms}}}});
             });
}

}  // namespace xnai::server::routes
