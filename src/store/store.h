// The Store: collections, documents, chunks and the lexical (FTS5) index over
// chunks. One interface; SQLite is the embedded implementation (PostgreSQL
// comes later and must pass the same contract tests).
//
// Thread safety: every method may be called from any thread concurrently.
// Reads may run in parallel; writes are serialized. A database locked by
// another process for longer than the busy timeout is Status::Unavailable.
// Disk full is Status::ResourceExhausted. A failed write leaves the store as
// it was (every mutating call is one transaction).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace xnai::store {

struct Collection {
  int64_t id = 0;
  std::string name;  // [A-Za-z0-9][A-Za-z0-9_.-]{0,63}
  std::string description;
  int64_t created_at = 0;  // unix seconds
  int64_t document_count = 0;
  int64_t chunk_count = 0;
};

struct ChunkInput {
  std::string text;
  int64_t char_begin = 0;  // offsets in code points into the document's extracted text
  int64_t char_end = 0;
  int32_t token_count = 0;  // estimate until a tokenizer is configured
  std::string section;      // heading path, e.g. "Install > Debian"
  int32_t page = 0;         // 1-based PDF page, 0 when not paged
};

struct Chunk : ChunkInput {
  int64_t id = 0;
  int64_t document_id = 0;
  int32_t ordinal = 0;  // 0-based position within the document
};

struct Document {
  int64_t id = 0;
  std::string collection;
  std::string source;  // where it came from: absolute path, URL, or "upload:NAME"
  std::string title;
  std::string media_type;
  std::string sha256;  // of the original bytes; the blob's name
  int64_t size_bytes = 0;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  int64_t chunk_count = 0;
};

struct DocumentInput {
  std::string collection;  // must exist
  std::string source;      // (collection, source) identifies the document
  std::string title;
  std::string media_type;
  std::string sha256;
  int64_t size_bytes = 0;
  std::vector<ChunkInput> chunks;
};

enum class PutOutcome { kCreated, kReplaced, kUnchanged };

struct PutResult {
  Document document;
  PutOutcome outcome = PutOutcome::kCreated;
};

struct SearchQuery {
  std::string fts_expression;  // a valid FTS5 MATCH expression (see index/lexical.h)
  std::optional<std::string> collection;
  int k = 10;
};

struct SearchHit {
  int64_t chunk_id = 0;
  int64_t document_id = 0;
  std::string collection;
  std::string source;
  std::string title;
  std::string section;
  int32_t page = 0;
  std::string text;
  // Text around the matches with each match between kMarkBegin and kMarkEnd.
  std::string snippet;
  double score = 0;  // higher is better (negated FTS5 bm25)
};

// Snippet match markers (ASCII STX/ETX: never in ingested text, which the
// parsers strip of control characters). The HTTP layer HTML-escapes the
// snippet and turns these into <mark></mark>; the CLI into bold.
inline constexpr char kMarkBegin = '\x02';
inline constexpr char kMarkEnd = '\x03';

// --- vectors ---------------------------------------------------------------
//
// Each collection's embeddings live in one vector space: the embedding model
// that made them and its dimension. Every vector added or removed (also by
// deleting or replacing a document) is recorded in a change log, which the
// in-memory vector indexes replay to follow the database; entries up to a
// collection's log floor may have been trimmed (an index that has not seen
// them must be rebuilt from ListVectors).

struct VectorSpace {
  int64_t collection_id = 0;
  std::string model;  // the embedding model's id
  int64_t dim = 0;
  int64_t log_head = 0;   // highest change sequence number of the collection, 0 if none
  int64_t log_floor = 0;  // changes with seq <= this may be gone from the log
};

struct ChunkVector {
  int64_t chunk_id = 0;
  std::vector<float> values;  // dim floats
};

struct VectorChange {
  int64_t seq = 0;
  int64_t chunk_id = 0;
  bool added = false;  // false: removed
};

// --- conversations (the answers' history) ---------------------------------

struct Conversation {
  int64_t id = 0;
  std::string title;
  int64_t created_at = 0;
  int64_t updated_at = 0;  // last message or rename
  int64_t message_count = 0;
};

struct Message {
  int64_t id = 0;
  int64_t conversation_id = 0;
  std::string role;      // "user" | "assistant"
  std::string content;
  std::string sources;   // JSON array of the sources an answer cited from ("[]" for none)
  std::string status;    // "complete" | "interrupted" (an answer that stopped midway)
  int64_t created_at = 0;
};

struct StoreStats {
  int64_t collections = 0;
  int64_t documents = 0;
  int64_t chunks = 0;
  int64_t vectors = 0;
  int64_t db_bytes = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // AlreadyExists if present; InvalidArgument for a bad name.
  virtual Result<Collection> CreateCollection(const std::string& name,
                                              const std::string& description) = 0;
  // Creates it if missing, else returns the existing one.
  virtual Result<Collection> EnsureCollection(const std::string& name) = 0;
  virtual Result<Collection> GetCollection(const std::string& name) = 0;  // NotFound
  virtual Result<std::vector<Collection>> ListCollections() = 0;
  // Deletes the collection with its documents and chunks. Returns the sha256
  // of each deleted document, so the caller can drop unreferenced blobs.
  virtual Result<std::vector<std::string>> DeleteCollection(const std::string& name) = 0;

  // Inserts or replaces the document (collection, source) with its chunks in
  // one transaction. Same sha256 as stored -> kUnchanged and nothing written.
  // NotFound for an unknown collection; InvalidArgument for an empty source
  // or sha256. Chunk ordinals are the positions in input.chunks.
  virtual Result<PutResult> PutDocument(const DocumentInput& input) = 0;
  // nullopt when the collection has no such source; NotFound for an unknown
  // collection.
  virtual Result<std::optional<Document>> FindDocument(const std::string& collection,
                                                       const std::string& source) = 0;
  virtual Result<Document> GetDocument(int64_t id) = 0;  // NotFound
  // Newest first (by updated_at). collection empty = all. NotFound for an
  // unknown collection; InvalidArgument for limit < 1 or offset < 0.
  virtual Result<std::vector<Document>> ListDocuments(const std::optional<std::string>& collection,
                                                      int limit, int offset) = 0;
  virtual Result<std::vector<Chunk>> GetChunks(int64_t document_id) = 0;  // by ordinal; NotFound
  // Returns the deleted document (its sha256 tells which blob may be dropped).
  virtual Result<Document> DeleteDocument(int64_t id) = 0;
  // How many documents (in any collection) reference this blob.
  virtual Result<int64_t> CountDocumentsWithSha(const std::string& sha256) = 0;

  // BM25-ranked chunks, best first, at most k. NotFound for an unknown
  // collection; InvalidArgument for k outside [1, 10000] or an expression
  // FTS5 rejects (callers build it with index::BuildFtsQuery).
  virtual Result<std::vector<SearchHit>> SearchChunks(const SearchQuery& query) = 0;

  // Chunks by id with their document's source and title (as search hits with
  // empty snippet and zero score), in the order asked; ids that do not exist
  // (deleted meanwhile) are left out.
  virtual Result<std::vector<SearchHit>> GetHits(const std::vector<int64_t>& chunk_ids) = 0;

  // --- vectors (see VectorSpace above) ---
  // nullopt when the collection has no vector space yet; NotFound for an
  // unknown collection.
  virtual Result<std::optional<VectorSpace>> GetVectorSpace(const std::string& collection) = 0;
  // Makes (model, dim) the collection's vector space. When it had another
  // model or dimension, its vectors are all deleted first (a reindex).
  // InvalidArgument for an empty model or dim < 1.
  virtual Result<VectorSpace> SetVectorSpace(const std::string& collection,
                                             const std::string& model, int64_t dim) = 0;
  // The names of the collections that have a vector space, by name.
  virtual Result<std::vector<std::string>> CollectionsWithVectors() = 0;
  // How many vectors the collection holds (a count: not for every query).
  virtual Result<int64_t> CountVectors(const std::string& collection) = 0;
  // Up to `limit` chunks of the collection that have no vector, by id,
  // with id > after_chunk_id.
  virtual Result<std::vector<Chunk>> ChunksWithoutVectors(const std::string& collection,
                                                          int64_t after_chunk_id, int limit) = 0;
  // Stores vectors made by `model` (one transaction). FailedPrecondition
  // when that is not the collection's vector space; InvalidArgument for a
  // vector of the wrong size. Chunks deleted meanwhile (or in another
  // collection) are skipped; an existing vector is replaced. Returns how
  // many were stored.
  virtual Result<int64_t> PutVectors(const std::string& collection, const std::string& model,
                                     const std::vector<ChunkVector>& vectors) = 0;
  // The collection's vectors by chunk id, id > after_chunk_id, at most limit.
  virtual Result<std::vector<ChunkVector>> ListVectors(const std::string& collection,
                                                       int64_t after_chunk_id, int limit) = 0;
  // The vectors of these chunks (any collection), in the order asked; chunks
  // without a vector are left out.
  virtual Result<std::vector<ChunkVector>> GetVectors(const std::vector<int64_t>& chunk_ids) = 0;
  // The collection's vector log after `after_seq`, oldest first, at most limit.
  virtual Result<std::vector<VectorChange>> VectorChanges(const std::string& collection,
                                                          int64_t after_seq, int limit) = 0;
  // Forgets the collection's log entries up to `up_to_seq` (raising its floor).
  virtual Status TrimVectorLog(const std::string& collection, int64_t up_to_seq) = 0;

  // --- conversations ---
  // InvalidArgument for an empty title (titles are cut to 200 bytes).
  virtual Result<Conversation> CreateConversation(const std::string& title) = 0;
  virtual Result<Conversation> GetConversation(int64_t id) = 0;  // NotFound
  // Most recently updated first; InvalidArgument for limit < 1 or offset < 0.
  virtual Result<std::vector<Conversation>> ListConversations(int limit, int offset) = 0;
  virtual Result<Conversation> RenameConversation(int64_t id, const std::string& title) = 0;
  // Deletes it with its messages; returns what it was. NotFound.
  virtual Result<Conversation> DeleteConversation(int64_t id) = 0;
  // Appends a message (id, created_at set here) and bumps the conversation's
  // updated_at. NotFound for an unknown conversation; InvalidArgument for a
  // role or status outside the sets above.
  virtual Result<Message> AddMessage(const Message& message) = 0;
  // Oldest first. NotFound for an unknown conversation.
  virtual Result<std::vector<Message>> GetMessages(int64_t conversation_id) = 0;

  virtual Result<StoreStats> Stats() = 0;
};

struct SqliteOptions {
  int busy_timeout_ms = 5000;  // wait this long for another process's lock
  bool read_only = false;
};

// Opens (creating if needed) the SQLite database at `db_path`, in WAL mode,
// applying pending migrations. A database from a newer xnai is
// FailedPrecondition; an unreadable/corrupt file is Corruption.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& db_path,
                                               const SqliteOptions& options = {});

// True if `name` is a valid collection name.
bool IsValidCollectionName(const std::string& name);

}  // namespace xnai::store
