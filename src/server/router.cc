#include "server/router.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string_view>

namespace xnai::server {
namespace {

// "/a/b" -> {"a", "b"}; "/" -> {}; "/a/" -> {"a", ""}.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.empty() || path == "/") return parts;
  path.remove_prefix(1);  // leading '/'
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(path.substr(start));
      break;
    }
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string Upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The order methods are listed in Allow headers.
int MethodRank(const std::string& method) {
  static const char* kOrder[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  for (int i = 0; i < 7; ++i) {
    if (method == kOrder[i]) return i;
  }
  return 100;
}

}  // namespace

void Router::Add(RouteInfo info, Handler handler) {
  info.method = Upper(std::move(info.method));
  std::vector<Segment> segments;
  for (std::string_view part : SplitPath(info.pattern)) {
    Segment segment;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      segment.is_param = true;
      segment.text = std::string(part.substr(1, part.size() - 2));
    } else {
      segment.text = std::string(part);
    }
    segments.push_back(std::move(segment));
  }
  infos_.push_back(std::move(info));
  handlers_.push_back(std::move(handler));
  segments_.push_back(std::move(segments));
}

Router::Match Router::Find(Request& request) const {
  Match match;
  match.status = 404;

  // Decode segment by segment so an escaped '/' stays inside its segment.
  std::vector<std::string> parts;
  std::string_view raw = request.target;
  if (!raw.empty() && raw.front() == '/') {
    raw = raw.substr(0, raw.find_first_of("?#"));
    for (std::string_view part : SplitPath(raw)) {
      auto decoded = PercentDecode(part, false);
      if (!decoded) return match;  // undecodable path: no route can match
      parts.push_back(std::move(*decoded));
    }
  } else {
    if (request.path.empty() || request.path.front() != '/') return match;
    for (std::string_view part : SplitPath(request.path)) parts.emplace_back(part);
  }

  const bool is_head = request.method == "HEAD";
  std::set<std::string> allowed;
  int best = -1;
  bool best_exact_method = false;
  std::vector<bool> best_shape;  // literal (true) / param (false) per segment
  for (size_t r = 0; r < infos_.size(); ++r) {
    const auto& segments = segments_[r];
    if (segments.size() != parts.size()) continue;
    bool path_ok = true;
    std::vector<bool> shape(segments.size());
    for (size_t i = 0; i < segments.size() && path_ok; ++i) {
      shape[i] = !segments[i].is_param;
      path_ok = segments[i].is_param ? !parts[i].empty() : segments[i].text == parts[i];
    }
    if (!path_ok) continue;
    const std::string& method = infos_[r].method;
    allowed.insert(method);
    if (method == "GET") allowed.insert("HEAD");
    bool exact_method = method == request.method;
    if (!exact_method && !(is_head && method == "GET")) continue;
    // Prefer the more literal shape, then an explicit HEAD route over GET.
    bool better = best < 0 || shape > best_shape ||
                  (shape == best_shape && exact_method && !best_exact_method);
    if (better) {
      best = static_cast<int>(r);
      best_shape = std::move(shape);
      best_exact_method = exact_method;
    }
  }

  if (best >= 0) {
    const auto& segments = segments_[best];
    request.path_params.clear();
    for (size_t i = 0; i < segments.size(); ++i) {
      if (segments[i].is_param) request.path_params[segments[i].text] = parts[i];
    }
    match.handler = &handlers_[best];
    match.route = infos_[best].pattern;
    match.status = 200;
    return match;
  }
  if (!allowed.empty()) {
    std::vector<std::string> methods(allowed.begin(), allowed.end());
    std::stable_sort(methods.begin(), methods.end(),
                     [](const auto& a, const auto& b) { return MethodRank(a) < MethodRank(b); });
    for (const auto& method : methods) {
      if (!match.allow.empty()) match.allow += ", ";
      match.allow += method;
    }
    match.status = 405;
  }
  return match;
}

namespace {

// get + "/api/documents/{id}" -> "get_api_documents_by_id"; "/" -> "get_root".
std::string OperationId(const std::string& method, const std::string& pattern) {
  std::string id = Lower(method);
  std::vector<std::string_view> parts = SplitPath(pattern);
  if (parts.empty()) return id + "_root";
  for (std::string_view part : parts) {
    bool param = part.size() >= 2 && part.front() == '{' && part.back() == '}';
    if (param) part = part.substr(1, part.size() - 2);
    id += param ? "_by_" : "_";
    for (char c : part) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  return id;
}

}  // namespace

nlohmann::json Router::OpenApi(const std::string& title, const std::string& version) const {
  using json = nlohmann::json;
  static const std::set<std::string> kOpenApiMethods = {"get",     "put",  "post",  "delete",
                                                        "options", "head", "patch", "trace"};
  json paths = json::object();
  std::set<std::string> used_ids;
  for (size_t r = 0; r < infos_.size(); ++r) {
    const RouteInfo& info = infos_[r];
    std::string method = Lower(info.method);
    if (!kOpenApiMethods.count(method)) continue;
    json& path_item = paths[info.pattern];
    if (path_item.contains(method)) continue;  // the first of duplicate routes wins

    std::string operation_id = OperationId(method, info.pattern);
    for (int n = 2; used_ids.count(operation_id); ++n) {
      operation_id = OperationId(method, info.pattern) + "_" + std::to_string(n);
    }
    used_ids.insert(operation_id);

    json operation = json::object();
    operation["summary"] = info.summary;
    operation["operationId"] = operation_id;
    json parameters = json::array();
    for (const Segment& segment : segments_[r]) {
      if (!segment.is_param) continue;
      parameters.push_back({{"name", segment.text},
                            {"in", "path"},
                            {"required", true},
                            {"schema", {{"type", "string"}}}});
    }
    json responses = {
        {"200", {{"description", "Success"}}},
        {"default",
         {{"description", "Error"},
          {"content",
           {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}}}};

    if (info.openapi.is_object()) {
      for (auto it = info.openapi.begin(); it != info.openapi.end(); ++it) {
        if (it.key() == "parameters" && it.value().is_array()) {
          for (const json& param : it.value()) {
            bool duplicate = std::any_of(parameters.begin(), parameters.end(), [&](const json& p) {
              return param.is_object() && p.value("name", "") == param.value("name", "") &&
                     p.value("in", "") == param.value("in", "");
            });
            if (!duplicate) parameters.push_back(param);
          }
        } else if (it.key() == "responses" && it.value().is_object()) {
          // Given responses replace the generic 200; the error default stays
          // unless overridden.
          json merged = it.value();
          if (!merged.contains("default")) merged["default"] = responses["default"];
          responses = std::move(merged);
        } else {
          operation[it.key()] = it.value();
        }
      }
    }
    if (!parameters.empty()) operation["parameters"] = std::move(parameters);
    operation["responses"] = std::move(responses);
    path_item[method] = std::move(operation);
  }

  json error_schema = {{"type", "object"},
                       {"required", {"error"}},
                       {"properties",
                        {{"error",
                          {{"type", "object"},
                           {"required", {"message", "type"}},
                           {"properties",
                            {{"message", {{"type", "string"}}},
                             {"type", {{"type", "string"}}},
                             {"code", {{"type", "string"}, {"nullable", true}}}}}}}}}};
  return {{"openapi", "3.0.3"},
          {"info", {{"title", title}, {"version", version}}},
          {"paths", std::move(paths)},
          {"components", {{"schemas", {{"Error", std::move(error_schema)}}}}}};
}

}  // namespace xnai::server
