// GET /api/search: BM25 over chunks with highlighted snippets.
#include "index/lexical.h"
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
               store::Store* store = app.store.load();
               if (!store) return NotReady();
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
               index::LexicalQuery query;
               query.text = q;
               query.k = *k;
               if (auto c = req.Query("collection"); c && !c->empty()) query.collection = *c;
               auto hits = index::LexicalSearch(*store, query);
               if (!hits) return ErrorResponse(hits.error());
               nlohmann::json out = nlohmann::json::array();
               for (const auto& h : *hits) {
                 out.push_back(SearchHitJson(h, index::SnippetToHtml(h.snippet)));
               }
               return JsonResponse({{"hits", out}});
             });
}

}  // namespace xnai::server::routes
