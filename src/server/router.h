// Router: the route table. Each route has a method, a pattern with "{name}"
// path segments, a name (used as the metrics label), a summary (for
// /openapi.json) and a handler. Matching: unknown path -> 404, known path
// with another method -> 405 (with an Allow header).
//
// Matching rules:
//  - Segments match exactly (case-sensitive); "{name}" matches one non-empty
//    segment. "/a" and "/a/" are different paths.
//  - Segments are taken from the raw path of `request.target` and
//    percent-decoded one by one, so "/docs/a%2Fb" gives {id} = "a/b"; when
//    `target` is empty (requests built in tests) `request.path` is used.
//  - When several routes match, the one with a literal segment at the first
//    position where they differ wins ("/docs/search" beats "/docs/{id}");
//    among identical patterns the first added wins.
//  - HEAD is served by the GET route when no HEAD route exists.
//
// Thread safety: Add() must not be called once the router is in use; Find()
// and OpenApi() are const and may be called from any number of threads.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/http_types.h"

namespace xnai::server {

using Handler = std::function<Response(Request&)>;

struct RouteInfo {
  std::string method;
  std::string pattern;  // "/api/documents/{id}"
  std::string summary;
  // Optional OpenAPI fragments (parameters, requestBody, responses); may be empty.
  nlohmann::json openapi = nlohmann::json::object();
};

class Router {
 public:
  // `info.pattern` must start with '/'; `info.method` is uppercased.
  void Add(RouteInfo info, Handler handler);

  struct Match {
    const Handler* handler = nullptr;  // null when no route matched
    std::string route;                 // the pattern, "" when none; used as metrics label
    int status = 200;                  // 404 or 405 when handler is null
    std::string allow;                 // for 405: "GET, DELETE"
  };
  // Fills request.path_params on success.
  Match Find(Request& request) const;

  // OpenAPI 3.0.3 document built from the route table: paths keyed by
  // pattern, one operation per route (summary, operationId derived from
  // method and pattern, path parameters for "{name}" segments, a default
  // error response), with RouteInfo.openapi merged in (its "parameters" are
  // appended, its "responses" override the defaults, other keys are set).
  nlohmann::json OpenApi(const std::string& title, const std::string& version) const;

  const std::vector<RouteInfo>& routes() const { return infos_; }

 private:
  struct Segment {
    std::string text;  // literal text, or the parameter name
    bool is_param = false;
  };
  std::vector<RouteInfo> infos_;
  std::vector<Handler> handlers_;
  std::vector<std::vector<Segment>> segments_;  // parallel to infos_
};

}  // namespace xnai::server
