// SqliteStore: the embedded Store (see store.h for the contract), plus the
// schema migrations and a few TEST_ hooks. Most code should only use
// OpenSqliteStore() and the Store interface; this header is for tests and
// for modules that need the SQLite specifics.
//
// Connections: one writer connection, guarded by a mutex (SQLite allows one
// writer at a time anyway; writes use BEGIN IMMEDIATE so they wait up to the
// busy timeout for the lock instead of failing halfway), and a pool of
// reader connections handed to one thread at a time. In WAL mode readers see
// the last committed state and never block on the writer.
//
// Extra contract details of this implementation:
// - ListDocuments orders by updated_at DESC, id DESC; limit must be >= 1 and
//   offset >= 0 (else InvalidArgument).
// - SearchChunks: k must be in [1, kMaxSearchK] (else InvalidArgument). The
//   expression is matched against chunk text and section only. Ranking is
//   FTS5's bm25 (section weighted 0.25), computed by the store's own FTS5
//   function xnai_bm25 so that rows which cannot reach the top k are not
//   fully scored; results equal scoring every row (TEST_SearchChunksFullScan).
// - PutDocument: source and sha256 must be non-empty (else InvalidArgument).
// - Document and chunk ids are never reused (AUTOINCREMENT), so an id held
//   elsewhere (e.g. a vector index) can never point at a different chunk.
// - When opened read_only, every mutating call is FailedPrecondition.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace xnai::store {

inline constexpr int kMaxSearchK = 10000;

// One schema step. Versions are 1, 2, 3, ... in order; the database's
// version is kept in PRAGMA user_version.
struct SqliteMigration {
  int version;
  std::string_view description;
  const char* sql;
};

// All migrations this build knows, in order.
const std::vector<SqliteMigration>& SqliteMigrations();
// The schema version this build writes (the last migration's version).
int SqliteSchemaVersion();

class SqliteStore final : public Store {
 public:
  // See OpenSqliteStore() in store.h.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::filesystem::path& db_path,
                                                   const SqliteOptions& options);
  ~SqliteStore() override;

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Result<Collection> CreateCollection(const std::string& name,
                                      const std::string& description) override;
  Result<Collection> EnsureCollection(const std::string& name) override;
  Result<Collection> GetCollection(const std::string& name) override;
  Result<std::vector<Collection>> ListCollections() override;
  Result<std::vector<std::string>> DeleteCollection(const std::string& name) override;

  Result<PutResult> PutDocument(const DocumentInput& input) override;
  Result<std::optional<Document>> FindDocument(const std::string& collection,
                                               const std::string& source) override;
  Result<Document> GetDocument(int64_t id) override;
  Result<std::vector<Document>> ListDocuments(const std::optional<std::string>& collection,
                                              int limit, int offset) override;
  Result<std::vector<Chunk>> GetChunks(int64_t document_id) override;
  Result<Document> DeleteDocument(int64_t id) override;
  Result<int64_t> CountDocumentsWithSha(const std::string& sha256) override;

  Result<std::vector<SearchHit>> SearchChunks(const SearchQuery& query) override;

  Result<std::vector<SearchHit>> GetHits(const std::vector<int64_t>& chunk_ids) override;

  Result<std::optional<VectorSpace>> GetVectorSpace(const std::string& collection) override;
  Result<VectorSpace> SetVectorSpace(const std::string& collection, const std::string& model,
                                     int64_t dim) override;
  Result<std::vector<std::string>> CollectionsWithVectors() override;
  Result<int64_t> CountVectors(const std::string& collection) override;
  Result<std::vector<Chunk>> ChunksWithoutVectors(const std::string& collection,
                                                  int64_t after_chunk_id, int limit) override;
  Result<int64_t> PutVectors(const std::string& collection, const std::string& model,
                             const std::vector<ChunkVector>& vectors) override;
  Result<std::vector<ChunkVector>> ListVectors(const std::string& collection,
                                               int64_t after_chunk_id, int limit) override;
  Result<std::vector<ChunkVector>> GetVectors(const std::vector<int64_t>& chunk_ids) override;
  Result<std::vector<VectorChange>> VectorChanges(const std::string& collection,
                                                  int64_t after_seq, int limit) override;
  Status TrimVectorLog(const std::string& collection, int64_t up_to_seq) override;

  Result<Conversation> CreateConversation(const std::string& title) override;
  Result<Conversation> GetConversation(int64_t id) override;
  Result<std::vector<Conversation>> ListConversations(int limit, int offset) override;
  Result<Conversation> RenameConversation(int64_t id, const std::string& title) override;
  Result<Conversation> DeleteConversation(int64_t id) override;
  Result<Message> AddMessage(const Message& message) override;
  Result<std::vector<Message>> GetMessages(int64_t conversation_id) override;

  Result<StoreStats> Stats() override;

  const std::filesystem::path& path() const { return path_; }

  // --- test hooks -----------------------------------------------------------
  // How many migrations this Open() applied (0 when the schema was current).
  int TEST_MigrationsApplied() const { return migrations_applied_; }
  // Caps the writer connection's database size (PRAGMA max_page_count) to
  // simulate a full disk. Returns the cap SQLite accepted (never below the
  // current page count). Pass a large value to lift it again.
  Result<int64_t> TEST_SetMaxPageCount(int64_t pages);
  Result<int64_t> TEST_PageCount();
  // Number of chunks the FTS index itself (not the content table) holds for
  // `term` (an already-tokenized term, e.g. "zebra"); proves delete triggers
  // really removed index entries.
  Result<int64_t> TEST_IndexedChunksWithTerm(const std::string& term);
  // SearchChunks done the straightforward way (every matching row scored
  // without pruning, joined, filtered by collection through the join, with a
  // snippet; ORDER BY score, id LIMIT k): the oracle the top-k-first query
  // must agree with exactly.
  Result<std::vector<SearchHit>> TEST_SearchChunksFullScan(const SearchQuery& query);
  // Runs FTS5's integrity-check and PRAGMA integrity_check.
  Status TEST_CheckIntegrity();
  // Replaces the clock (unix seconds) used for created_at/updated_at. Call
  // before the store is shared between threads.
  void TEST_SetClock(std::function<int64_t()> now) { now_ = std::move(now); }

 private:
  // A reader connection borrowed from the pool, returned on destruction.
  class ReaderLease {
   public:
    ReaderLease(SqliteStore* owner, sqlite3* db) : owner_(owner), db_(db) {}
    ReaderLease(ReaderLease&& other) noexcept
        : owner_(other.owner_), db_(std::exchange(other.db_, nullptr)) {}
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    ReaderLease& operator=(ReaderLease&&) = delete;
    ~ReaderLease() {
      if (db_ != nullptr) owner_->ReleaseReader(db_);
    }
    sqlite3* db() const { return db_; }

   private:
    SqliteStore* owner_;
    sqlite3* db_;
  };

  SqliteStore(std::filesystem::path path, SqliteOptions options);

  Status OpenWriterAndMigrate();
  Status CheckSchemaReadOnly();
  Status Migrate();
  Result<sqlite3*> OpenConnection(bool writer) const;
  Result<ReaderLease> AcquireReader();
  void ReleaseReader(sqlite3* db);
  Status CheckWritable() const;
  int64_t Now() const { return now_(); }

  const std::filesystem::path path_;
  const SqliteOptions options_;
  std::function<int64_t()> now_;
  int migrations_applied_ = 0;

  std::mutex writer_mu_;
  sqlite3* writer_ = nullptr;  // null when read_only

  std::mutex readers_mu_;
  std::vector<sqlite3*> idle_readers_;
};

}  // namespace xnai::store
