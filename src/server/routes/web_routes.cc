// The embedded web UI: GET / (index.html), GET /assets/{file} (hashed,
// immutable) and the other top-level files of the build (favicon.svg).
//
// Caching: hashed assets never change under a name, so they are cached for a
// year; index.html names the current assets and is revalidated on every
// load (no-cache + ETag, answered 304 when unchanged). index.html carries a
// strict Content-Security-Policy: scripts, styles and connections from this
// origin only, no inline script, no framing.
#include "server/web_assets.h"

#include <algorithm>

#include "server/routes/routes.h"

namespace xnai::server {

const WebAsset* FindWebAsset(std::string_view path) {
  for (const WebAsset& asset : WebAssets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

namespace routes {
namespace {

constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

// Whether an If-None-Match header ("\"a\", W/\"b\"" or "*") names `etag`.
bool EtagMatches(std::string_view header, std::string_view quoted_etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.rfind("W/", 0) == 0) item.remove_prefix(2);  // weak comparison, as for GET
    if (item == "*" || item == quoted_etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

enum class Caching { kRevalidate, kImmutable };

Response Serve(const WebAsset& asset, const Request& request, Caching caching) {
  Response r;
  std::string etag = "\"" + std::string(asset.etag) + "\"";
  r.headers = {
      {"ETag", etag},
      {"Cache-Control",
       caching == Caching::kImmutable ? "public, max-age=31536000, immutable" : "no-cache"},
      {"X-Content-Type-Options", "nosniff"}};
  if (asset.path == "index.html") {
    r.headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    r.headers.emplace_back("X-Frame-Options", "DENY");
  }
  r.content_type = std::string(asset.content_type);
  if (EtagMatches(request.Header("if-none-match"), etag)) {
    r.status = 304;
    return r;
  }
  r.body = std::string(asset.body);
  return r;
}

Response UiNotBuilt() {
  return ErrorResponse(404,
                       "the web UI is not built into this binary (configured with XNAI_WEB_UI=OFF)",
                       "not_found_error", "web_ui_not_built");
}

}  // namespace

void AddWebRoutes(Router& router, AppContext& /*app*/) {
  nlohmann::json html_doc = {{"responses",
                              {{"200",
                                {{"description", "the web UI (index.html)"},
                                 {"content", {{"text/html", nlohmann::json::object()}}}}},
                               {"304", {{"description", "not modified (If-None-Match)"}}}}}};
  router.Add({"GET", "/", "The web UI (served from the binary)", html_doc},
             [](Request& request) -> Response {
               const WebAsset* index = FindWebAsset("index.html");
               if (!index) return UiNotBuilt();
               return Serve(*index, request, Caching::kRevalidate);
             });

  nlohmann::json asset_doc = {
      {"responses",
       {{"200", {{"description", "a hashed UI asset, cacheable for a year"}}},
        {"304", {{"description", "not modified (If-None-Match)"}}}}}};
  router.Add(
      {"GET", "/assets/{file}", "A web UI asset (JavaScript, CSS) by its hashed name", asset_doc},
      [](Request& request) -> Response {
        const std::string& file = request.path_params["file"];
        const WebAsset* asset = FindWebAsset("assets/" + file);
        if (!asset) {
          return ErrorResponse(404, "asset '" + file + "' not found", "not_found_error",
                               "asset_not_found");
        }
        return Serve(*asset, request, Caching::kImmutable);
      });

  // Other top-level files of the build (favicon.svg, ...): fixed names, so
  // revalidated like index.html.
  for (const WebAsset& asset : WebAssets()) {
    if (asset.path == "index.html" || asset.path.find('/') != std::string_view::npos) continue;
    const WebAsset* found = &asset;
    router.Add({"GET", "/" + std::string(asset.path), "A web UI file"},
               [found](Request& request) { return Serve(*found, request, Caching::kRevalidate); });
  }
}

}  // namespace routes
}  // namespace xnai::server
