#include <limits>

#include "server/routes/routes.h"

namespace xnai::server::routes {

nlohmann::json CollectionJson(const store::Collection& c) {
  return {{"name", c.name},
          {"description", c.description},
          {"created_at", c.created_at},
          {"document_count", c.document_count},
          {"chunk_count", c.chunk_count}};
}

nlohmann::json DocumentJson(const store::Document& d) {
  return {{"id", d.id},
          {"collection", d.collection},
          {"source", d.source},
          {"title", d.title},
          {"media_type", d.media_type},
          {"sha256", d.sha256},
          {"size_bytes", d.size_bytes},
          {"created_at", d.created_at},
          {"updated_at", d.updated_at},
          {"chunk_count", d.chunk_count}};
}

nlohmann::json ChunkJson(const store::Chunk& c) {
  return {{"id", c.id},
          {"ordinal", c.ordinal},
          {"text", c.text},
          {"char_begin", c.char_begin},
          {"char_end", c.char_end},
          {"token_count", c.token_count},
          {"section", c.section},
          {"page", c.page}};
}

nlohmann::json SearchHitJson(const store::SearchHit& h, const std::string& snippet) {
  return {{"chunk_id", h.chunk_id}, {"document_id", h.document_id}, {"collection", h.collection},
          {"source", h.source},     {"title", h.title},             {"section", h.section},
          {"page", h.page},         {"text", h.text},               {"snippet", snippet},
          {"score", h.score}};
}

Result<nlohmann::json> ParseJsonObject(const Request& request) {
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    // Re-parse with exceptions to get the position for the message.
    try {
      nlohmann::json ignored = nlohmann::json::parse(request.body);
    (void)ignored;
    } catch (const nlohmann::json::parse_error& e) {
      return Err(Status::InvalidArgument("malformed JSON body at byte " +
                                         std::to_string(e.byte)));
    }
    return Err(Status::InvalidArgument("malformed JSON body"));
  }
  if (!body.is_object()) return Err(Status::InvalidArgument("request body must be a JSON object"));
  return body;
}

Result<std::string> StringField(const nlohmann::json& body, const std::string& name,
                                const std::string& fallback, bool required) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) return Err(Status::InvalidArgument("field '" + name + "' is required"));
    return fallback;
  }
  if (!it->is_string()) {
    return Err(Status::InvalidArgument("field '" + name + "' must be a string, got " +
                                       std::string(it->type_name())));
  }
  return it->get<std::string>();
}

Result<int> IntQuery(const Request& request, const std::string& name, int fallback, int min,
                     int max) {
  auto value = request.Query(name);
  if (!value || value->empty()) return fallback;
  long long parsed = 0;
  size_t used = 0;
  try {
    parsed = std::stoll(*value, &used);
  } catch (...) {
    used = 0;
  }
  if (used != value->size()) {
    return Err(Status::InvalidArgument("query parameter '" + name + "' must be an integer"));
  }
  if (parsed < min || parsed > max) {
    return Err(Status::InvalidArgument("query parameter '" + name + "' must be between " +
                                       std::to_string(min) + " and " + std::to_string(max)));
  }
  return static_cast<int>(parsed);
}

Response NotReady() {
  Response r = ErrorResponse(503, "the store is still opening; retry shortly", "server_error",
                             "not_ready");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

}  // namespace xnai::server::routes
