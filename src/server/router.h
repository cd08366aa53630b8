// Router: the route table. Each route has a method, a pattern with "{name}"
// path segments, a name (used as the metrics label), a summary (for
// /openapi.json) and a handler. Matching: unknown path -> 404, known path
// with another method -> 405 (with an Allow header).
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
  void Add(RouteInfo info, Handler handler);

  struct Match {
    const Handler* handler = nullptr;  // null when no route matched
    std::string route;                 // the pattern, "" when none; used as metrics label
    int status = 200;                  // 404 or 405 when handler is null
    std::string allow;                 // for 405: "GET, DELETE"
  };
  // Fills request.path_params on success.
  Match Find(Request& request) const;

  // OpenAPI 3.0 document built from the route table.
  nlohmann::json OpenApi(const std::string& title, const std::string& version) const;

  const std::vector<RouteInfo>& routes() const { return infos_; }

 private:
  std::vector<RouteInfo> infos_;
  std::vector<Handler> handlers_;
};

}  // namespace xnai::server
