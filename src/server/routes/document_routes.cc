// /api/documents: upload (multipart or JSON text), ingest by path (inside
// ingest.allowed_roots), list, get with chunks, delete.
#include <limits>

#include "base/files.h"
#include "ingest/ingester.h"
#include "server/multipart.h"
#include "server/routes/routes.h"

namespace xnai::server::routes {
namespace {

const char* OutcomeName(ingest::FileOutcome::Kind kind) {
  switch (kind) {
    case ingest::FileOutcome::Kind::kAdded: return "created";
    case ingest::FileOutcome::Kind::kUpdated: return "updated";
    case ingest::FileOutcome::Kind::kUnchanged: return "unchanged";
    case ingest::FileOutcome::Kind::kSkipped: return "skipped";
  }
  return "skipped";
}

// One ingested file as returned to the client: the document plus the outcome.
Result<nlohmann::json> OutcomeJson(store::Store& store, const ingest::FileOutcome& outcome) {
  auto doc = store.GetDocument(outcome.document_id);
  if (!doc) return Err(doc.error());
  nlohmann::json j = DocumentJson(*doc);
  j["outcome"] = OutcomeName(outcome.kind);
  return j;
}

Response Ingested(store::Store& store, const std::vector<ingest::FileOutcome>& outcomes,
                  const std::vector<ingest::FileOutcome>& skipped) {
  nlohmann::json docs = nlohmann::json::array();
  bool changed = false;
  for (const auto& outcome : outcomes) {
    auto j = OutcomeJson(store, outcome);
    if (!j) return ErrorResponse(j.error());
    docs.push_back(*j);
    changed |= outcome.kind != ingest::FileOutcome::Kind::kUnchanged;
  }
  nlohmann::json skipped_json = nlohmann::json::array();
  for (const auto& s : skipped) skipped_json.push_back({{"source", s.source}, {"reason", s.reason}});
  return JsonResponse({{"documents", docs}, {"skipped", skipped_json}}, changed ? 201 : 200);
}

// New chunks get their vectors in the background.
void NotifyEmbedder(AppContext& app, const std::string& collection) {
  if (index::EmbeddingWorker* worker = app.embedding_worker.load()) worker->Notify(collection);
}

Response UploadMultipart(AppContext& app, Request& req) {
  store::Store& store = *app.store.load();
  auto boundary = MultipartBoundary(req.Header("content-type"));
  if (!boundary) return ErrorResponse(boundary.error());
  auto parts = ParseMultipart(req.body, *boundary);
  if (!parts) return ErrorResponse(parts.error());
  std::string collection = "default";
  std::string title;
  std::vector<const FormPart*> files;
  for (const auto& part : *parts) {
    if (!part.filename.empty()) {
      files.push_back(&part);
    } else if (part.name == "collection") {
      collection = std::string(part.data);
    } else if (part.name == "title") {
      title = std::string(part.data);
    }
  }
  if (files.empty()) {
    return ErrorResponse(400, "multipart upload has no file part (a part with a filename)",
                         "invalid_request_error", "no_file");
  }
  if (!store::IsValidCollectionName(collection)) {
    return ErrorResponse(Status::InvalidArgument("invalid collection name '" + collection + "'"));
  }
  auto options = ingest::IngestOptionsFromConfig(app.config->ingest, collection);
  std::vector<ingest::FileOutcome> outcomes;
  for (const FormPart* file : files) {
    auto outcome = app.ingester.load()->IngestBytes(options, file->filename, file->data,
                                                    files.size() == 1 ? title : "");
    if (!outcome) {
      std::string done = outcomes.empty()
                             ? ""
                             : " (" + std::to_string(outcomes.size()) +
                                   " earlier file(s) of this upload were stored)";
      return ErrorResponse(outcome.error().WithContext("file '" + file->filename + "'" + done));
    }
    outcomes.push_back(*outcome);
    NotifyEmbedder(app, collection);
  }
  return Ingested(store, outcomes, {});
}

Response UploadJson(AppContext& app, Request& req) {
  store::Store& store = *app.store.load();
  auto body = ParseJsonObject(req);
  if (!body) return ErrorResponse(body.error());
  auto collection = StringField(*body, "collection", "default");
  if (!collection) return ErrorResponse(collection.error());
  if (!store::IsValidCollectionName(*collection)) {
    return ErrorResponse(Status::InvalidArgument("invalid collection name '" + *collection + "'"));
  }
  auto options = ingest::IngestOptionsFromConfig(app.config->ingest, *collection);
  auto path = StringField(*body, "path", "");
  if (!path) return ErrorResponse(path.error());
  if (!path->empty()) {
    auto resolved = ingest::ResolveAllowedPath(*path, app.config->ingest.allowed_roots);
    if (!resolved) return ErrorResponse(resolved.error());
    std::vector<ingest::FileOutcome> outcomes;
    auto summary = app.ingester.load()->IngestPaths(
        {*resolved}, options, [&](int64_t, int64_t, const ingest::FileOutcome& o) {
          if (o.kind != ingest::FileOutcome::Kind::kSkipped) outcomes.push_back(o);
        });
    NotifyEmbedder(app, *collection);
    if (!summary) return ErrorResponse(summary.error());
    return Ingested(store, outcomes, summary->skipped_files);
  }
  auto text = StringField(*body, "text", "", true);
  if (!text) {
    return ErrorResponse(Status::InvalidArgument(
        "field 'text' (or 'path') is required; to upload a file use multipart/form-data"));
  }
  auto title = StringField(*body, "title", "");
  if (!title) return ErrorResponse(title.error());
  auto filename = StringField(*body, "filename", "");
  if (!filename) return ErrorResponse(filename.error());
  // Text posted with a title is identified by that title: posting it again
  // with new text replaces the document. Without a title, by its content.
  std::string source = "text:" + (title->empty() ? Sha256Hex(*text).substr(0, 16) : *title);
  std::string name = filename->empty() ? "text.txt" : *filename;
  auto outcome = app.ingester.load()->IngestBytes(options, name, *text, *title, source);
  if (!outcome) return ErrorResponse(outcome.error());
  NotifyEmbedder(app, *collection);
  return Ingested(store, {*outcome}, {});
}

// The {id} path parameter; anything but a positive integer is simply not found.
Result<int64_t> DocumentId(Request& req) {
  const std::string& text = req.path_params["id"];
  int64_t id = 0;
  size_t used = 0;
  try {
    id = std::stoll(text, &used);
  } catch (...) {
    used = 0;
  }
  if (used != text.size() || id <= 0) {
    return Err(Status::NotFound("document '" + text + "' not found"));
  }
  return id;
}

}  // namespace

void AddDocumentRoutes(Router& router, AppContext& app) {
  nlohmann::json upload_doc = {
      {"requestBody",
       {{"required", true},
        {"content",
         {{"multipart/form-data",
           {{"schema",
             {{"type", "object"},
              {"properties",
               {{"file", {{"type", "string"}, {"format", "binary"}}},
                {"collection", {{"type", "string"}}},
                {"title", {{"type", "string"}}}}}}}}},
          {"application/json",
           {{"schema",
             {{"type", "object"},
              {"properties",
               {{"collection", {{"type", "string"}}},
                {"text", {{"type", "string"}}},
                {"title", {{"type", "string"}}},
                {"filename", {{"type", "string"}}},
                {"path", {{"type", "string"}}}}}}}}}}}}}};
  router.Add({"POST", "/api/documents",
              "Add documents: multipart file upload, JSON text, or JSON path inside "
              "ingest.allowed_roots",
              upload_doc},
             [&app](Request& req) -> Response {
               if (!app.store.load()) return NotReady();
               std::string type = req.Header("content-type");
               if (type.rfind("multipart/", 0) == 0) return UploadMultipart(app, req);
               return UploadJson(app, req);
             });

  nlohmann::json list_doc = {
      {"parameters",
       {{{"name", "collection"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
        {{"name", "limit"}, {"in", "query"}, {"schema", {{"type", "integer"}}}},
        {{"name", "offset"}, {"in", "query"}, {"schema", {{"type", "integer"}}}}}}};
  router.Add({"GET", "/api/documents", "List documents, newest first", list_doc},
             [&app](Request& req) -> Response {
               store::Store* store = app.store.load();
               if (!store) return NotReady();
               auto limit = IntQuery(req, "limit", 100, 1, 1000);
               if (!limit) return ErrorResponse(limit.error());
               auto offset = IntQuery(req, "offset", 0, 0, std::numeric_limits<int>::max());
               if (!offset) return ErrorResponse(offset.error());
               std::optional<std::string> collection = req.Query("collection");
               if (collection && collection->empty()) collection.reset();
               auto docs = store->ListDocuments(collection, *limit, *offset);
               if (!docs) return ErrorResponse(docs.error());
               nlohmann::json out = nlohmann::json::array();
               for (const auto& d : *docs) out.push_back(DocumentJson(d));
               return JsonResponse({{"documents", out}});
             });

  router.Add({"GET", "/api/documents/{id}", "Get a document with its chunks"},
             [&app](Request& req) -> Response {
               store::Store* store = app.store.load();
               if (!store) return NotReady();
               auto id = DocumentId(req);
               if (!id) return ErrorResponse(id.error());
               auto doc = store->GetDocument(*id);
               if (!doc) return ErrorResponse(doc.error());
               auto chunks = store->GetChunks(*id);
               if (!chunks) return ErrorResponse(chunks.error());
               nlohmann::json j = DocumentJson(*doc);
               j["chunks"] = nlohmann::json::array();
               for (const auto& c : *chunks) j["chunks"].push_back(ChunkJson(c));
               return JsonResponse(j);
             });

  router.Add({"DELETE", "/api/documents/{id}", "Delete a document and its chunks"},
             [&app](Request& req) -> Response {
               store::Store* store = app.store.load();
               if (!store) return NotReady();
               auto id = DocumentId(req);
               if (!id) return ErrorResponse(id.error());
               auto doc = store->DeleteDocument(*id);
               if (!doc) return ErrorResponse(doc.error());
               auto refs = store->CountDocumentsWithSha(doc->sha256);
               if (refs && *refs == 0) (void)app.blobs.load()->Remove(doc->sha256);
               return JsonResponse({{"deleted", *id}});
             });
}

}  // namespace xnai::server::routes
