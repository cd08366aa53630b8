#include "server/router.h"

#include <gtest/gtest.h>

#include "server/http_types.h"

namespace xnai::server {
namespace {

Handler Named(const std::string& name) {
  return [name](Request& request) {
    nlohmann::json params = request.path_params;
    return JsonResponse({{"handler", name}, {"params", params}});
  };
}

Request Make(const std::string& method, const std::string& target) {
  Request request;
  request.method = method;
  request.target = target;
  request.path = target.substr(0, target.find('?'));
  return request;
}

std::string Call(const Router::Match& match, Request& request) {
  if (match.handler == nullptr) return "";
  return nlohmann::json::parse((*match.handler)(request).body)["handler"];
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add({"GET", "/health", "Liveness"}, Named("health"));
    router_.Add({"GET", "/", "Root"}, Named("root"));
    router_.Add({"GET", "/api/documents/{id}", "Get a document"}, Named("get_doc"));
    router_.Add({"DELETE", "/api/documents/{id}", "Delete a document"}, Named("delete_doc"));
    router_.Add({"get", "/api/documents/search", "Search"}, Named("search"));
    router_.Add({"POST", "/api/collections/{name}/documents/{id}", "Attach"}, Named("attach"));
  }
  Router router_;
};

TEST_F(RouterTest, MatchesLiteralAndRoot) {
  Request request = Make("GET", "/health");
  auto match = router_.Find(request);
  EXPECT_EQ(match.status, 200);
  EXPECT_EQ(match.route, "/health");
  EXPECT_EQ(Call(match, request), "health");

  Request root = Make("GET", "/");
  EXPECT_EQ(Call(router_.Find(root), root), "root");
}

TEST_F(RouterTest, ExtractsPathParams) {
  Request request = Make("POST", "/api/collections/books/documents/42");
  auto match = router_.Find(request);
  ASSERT_NE(match.handler, nullptr);
  EXPECT_EQ(match.route, "/api/collections/{name}/documents/{id}");
  EXPECT_EQ(request.path_params.at("name"), "books");
  EXPECT_EQ(request.path_params.at("id"), "42");
}

TEST_F(RouterTest, PercentDecodesEachSegmentSeparately) {
  Request request = Make("GET", "/api/documents/a%2Fb%20c?x=1");
  auto match = router_.Find(request);
  ASSERT_NE(match.handler, nullptr);
  EXPECT_EQ(request.path_params.at("id"), "a/b c");

  // Without a target (requests built by hand) the decoded path is used.
  Request manual;
  manual.method = "GET";
  manual.path = "/api/documents/x y";
  ASSERT_NE(router_.Find(manual).handler, nullptr);
  EXPECT_EQ(manual.path_params.at("id"), "x y");

  Request bad = Make("GET", "/api/documents/%zz");
  EXPECT_EQ(router_.Find(bad).status, 404);
}

TEST_F(RouterTest, LiteralSegmentBeatsParameter) {
  Request request = Make("GET", "/api/documents/search");
  auto match = router_.Find(request);
  EXPECT_EQ(match.route, "/api/documents/search");
  EXPECT_EQ(Call(match, request), "search");
  EXPECT_TRUE(request.path_params.empty());
}

TEST_F(RouterTest, UnknownPathIs404) {
  for (const char* target : {"/nope", "/api/documents", "/api/documents/1/extra", "/api/documents/",
                             "/health/", "//health", "/HEALTH"}) {
    Request request = Make("GET", target);
    auto match = router_.Find(request);
    EXPECT_EQ(match.status, 404) << target;
    EXPECT_EQ(match.handler, nullptr) << target;
    EXPECT_EQ(match.route, "") << target;
  }
}

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  Request request = Make("PUT", "/api/documents/7");
  auto match = router_.Find(request);
  EXPECT_EQ(match.status, 405);
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_EQ(match.allow, "GET, HEAD, DELETE");

  Request post_health = Make("POST", "/health");
  auto health = router_.Find(post_health);
  EXPECT_EQ(health.status, 405);
  EXPECT_EQ(health.allow, "GET, HEAD");
}

TEST_F(RouterTest, HeadUsesGetRoute) {
  Request request = Make("HEAD", "/api/documents/9");
  auto match = router_.Find(request);
  EXPECT_EQ(match.status, 200);
  EXPECT_EQ(Call(match, request), "get_doc");
  EXPECT_EQ(request.path_params.at("id"), "9");
  Request head_post = Make("HEAD", "/api/collections/a/documents/b");
  EXPECT_EQ(router_.Find(head_post).status, 405);
}

TEST_F(RouterTest, OpenApiDocumentDescribesRoutes) {
  router_.Add(
      {"POST",
       "/api/search",
       "Search everything",
       {{"requestBody", {{"required", true}}},
        {"parameters", {{{"name", "k"}, {"in", "query"}, {"schema", {{"type", "integer"}}}}}},
        {"responses", {{"200", {{"description", "Hits"}}}}}}},
      Named("search_all"));
  nlohmann::json doc = router_.OpenApi("xnai", "1.2.3");
  EXPECT_EQ(doc["openapi"], "3.0.3");
  EXPECT_EQ(doc["info"]["title"], "xnai");
  EXPECT_EQ(doc["info"]["version"], "1.2.3");
  const auto& paths = doc["paths"];
  ASSERT_TRUE(paths.contains("/api/documents/{id}"));
  const auto& get_doc = paths["/api/documents/{id}"]["get"];
  EXPECT_EQ(get_doc["summary"], "Get a document");
  EXPECT_EQ(get_doc["operationId"], "get_api_documents_by_id");
  ASSERT_EQ(get_doc["parameters"].size(), 1u);
  EXPECT_EQ(get_doc["parameters"][0]["name"], "id");
  EXPECT_EQ(get_doc["parameters"][0]["in"], "path");
  EXPECT_EQ(get_doc["parameters"][0]["required"], true);
  EXPECT_TRUE(get_doc["responses"].contains("200"));
  EXPECT_TRUE(paths["/api/documents/{id}"].contains("delete"));
  EXPECT_EQ(paths["/"]["get"]["operationId"], "get_root");

  const auto& attach = paths["/api/collections/{name}/documents/{id}"]["post"];
  ASSERT_EQ(attach["parameters"].size(), 2u);
  EXPECT_EQ(attach["parameters"][0]["name"], "name");
  EXPECT_EQ(attach["parameters"][1]["name"], "id");

  const auto& search = paths["/api/search"]["post"];
  EXPECT_EQ(search["requestBody"]["required"], true);
  ASSERT_EQ(search["parameters"].size(), 1u);
  EXPECT_EQ(search["parameters"][0]["in"], "query");
  EXPECT_EQ(search["responses"]["200"]["description"], "Hits");
  EXPECT_TRUE(search["responses"].contains("default"));
  EXPECT_EQ(search["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error");
  EXPECT_TRUE(doc["components"]["schemas"].contains("Error"));

  // Every operationId is unique, every operation has responses.
  std::set<std::string> ids;
  for (auto& [path, item] : paths.items()) {
    for (auto& [method, operation] : item.items()) {
      EXPECT_TRUE(ids.insert(operation["operationId"].get<std::string>()).second);
      EXPECT_FALSE(operation["responses"].empty()) << path << " " << method;
    }
  }
}

TEST(HttpTypesTest, StatusMapping) {
  using Code = Status::Code;
  EXPECT_EQ(HttpStatusFor(Code::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(Code::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(Code::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(Code::kFailedPrecondition), 409);
  EXPECT_EQ(HttpStatusFor(Code::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(Code::kTooLarge), 413);
  EXPECT_EQ(HttpStatusFor(Code::kUnsupported), 415);
  EXPECT_EQ(HttpStatusFor(Code::kUnprocessable), 422);
  EXPECT_EQ(HttpStatusFor(Code::kResourceExhausted), 507);
  EXPECT_EQ(HttpStatusFor(Code::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(Code::kCorruption), 500);
  EXPECT_EQ(HttpStatusFor(Code::kIOError), 500);
  EXPECT_EQ(HttpStatusFor(Code::kInternal), 500);

  EXPECT_EQ(ErrorTypeFor(400), "invalid_request_error");
  EXPECT_EQ(ErrorTypeFor(401), "authentication_error");
  EXPECT_EQ(ErrorTypeFor(403), "permission_error");
  EXPECT_EQ(ErrorTypeFor(404), "not_found_error");
  EXPECT_EQ(ErrorTypeFor(405), "invalid_request_error");
  EXPECT_EQ(ErrorTypeFor(409), "conflict_error");
  EXPECT_EQ(ErrorTypeFor(413), "invalid_request_error");
  EXPECT_EQ(ErrorTypeFor(415), "invalid_request_error");
  EXPECT_EQ(ErrorTypeFor(422), "invalid_request_error");
  EXPECT_EQ(ErrorTypeFor(429), "rate_limit_error");
  EXPECT_EQ(ErrorTypeFor(500), "server_error");
  EXPECT_EQ(ErrorTypeFor(503), "server_error");
  EXPECT_EQ(ErrorTypeFor(507), "server_error");
}

TEST(HttpTypesTest, ErrorResponseFromStatus) {
  Response response = ErrorResponse(Status::NotFound("collection 'x' does not exist"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["error"]["message"], "collection 'x' does not exist");
  EXPECT_EQ(body["error"]["type"], "not_found_error");
  EXPECT_EQ(body["error"]["code"], "not_found");

  auto conflict = nlohmann::json::parse(ErrorResponse(Status::AlreadyExists("dup")).body);
  EXPECT_EQ(conflict["error"]["type"], "conflict_error");
  EXPECT_EQ(conflict["error"]["code"], "already_exists");

  Response internal = ErrorResponse(Status::IOError("disk"));
  EXPECT_EQ(internal.status, 500);
  EXPECT_EQ(nlohmann::json::parse(internal.body)["error"]["type"], "server_error");

  // An OK status is a caller bug, never a 200 with an error body.
  EXPECT_EQ(ErrorResponse(Status::Ok()).status, 500);
}

TEST(HttpTypesTest, ExplicitErrorAndJsonResponses) {
  Response response = ErrorResponse(413, "too big", "invalid_request_error", "body_too_large");
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(
      response.body,
      R"({"error":{"code":"body_too_large","message":"too big","type":"invalid_request_error"}})");
  Response created = JsonResponse({{"id", 1}}, 201);
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(created.body, R"({"id":1})");
  // Invalid UTF-8 is replaced, not thrown.
  Response odd = JsonResponse({{"text", std::string("a\xff"
                                                    "b")}});
  EXPECT_EQ(odd.status, 200);
  EXPECT_NE(odd.body.find("a\xef\xbf\xbd"
                          "b"),
            std::string::npos);
}

TEST(HttpTypesTest, RequestAccessors) {
  Request request;
  request.query.emplace("q", "first");
  request.query.emplace("q", "second");
  request.headers["content-type"] = "text/plain";
  EXPECT_EQ(request.Query("q"), "first");
  EXPECT_EQ(request.Query("missing"), std::nullopt);
  EXPECT_EQ(request.Header("content-type"), "text/plain");
  EXPECT_EQ(request.Header("x-nope"), "");
}

TEST(HttpTypesTest, PercentDecode) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc", false), "a b/c");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("a+b%2B", true), "a b+");
  EXPECT_EQ(PercentDecode("%e2%82%ac", false), "\xe2\x82\xac");
  EXPECT_EQ(PercentDecode("", false), "");
  EXPECT_EQ(PercentDecode("%", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%4", false), std::nullopt);
  EXPECT_EQ(PercentDecode("ab%", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%zz", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%00", false), std::nullopt);
}

}  // namespace
}  // namespace xnai::server
