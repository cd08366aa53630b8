#include "store/sqlite_store.h"

#include <chrono>
#include <system_error>
#include <utility>

#include "store/sqlite_util.h"

namespace xnai::store {

using sqlite::RollbackIfActive;
using sqlite::Stmt;
using sqlite::WriteTransaction;

// --- schema ------------------------------------------------------------------

namespace {

// Migration 1: collections, documents, chunks and the FTS5 index.
//
// chunks_fts is an external-content FTS5 table over chunks(text, section):
// the text is stored once (in chunks) and the triggers keep the index in step
// with every insert, update and delete, including the deletes that ON DELETE
// CASCADE performs when a document or collection goes away. `text` is column
// 0 (snippet() is taken from it); the section heading is column 1, weighted
// lower in bm25().
//
// AUTOINCREMENT so ids are never reused: other indexes (vectors) refer to
// chunks by id and must never silently point at a different chunk.
constexpr const char* kMigration1 = R"sql(
CREATE TABLE collections (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL
);

CREATE TABLE documents (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
  source        TEXT NOT NULL,
  title         TEXT NOT NULL DEFAULT '',
  media_type    TEXT NOT NULL DEFAULT '',
  sha256        TEXT NOT NULL,
  size_bytes    INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  UNIQUE (collection_id, source)
);
CREATE INDEX documents_by_sha256 ON documents(sha256);
CREATE INDEX documents_by_updated ON documents(updated_at, id);

CREATE TABLE chunks (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  ordinal     INTEGER NOT NULL,
  text        TEXT NOT NULL,
  char_begin  INTEGER NOT NULL DEFAULT 0,
  char_end    INTEGER NOT NULL DEFAULT 0,
  token_count INTEGER NOT NULL DEFAULT 0,
  section     TEXT NOT NULL DEFAULT '',
  page        INTEGER NOT NULL DEFAULT 0,
  UNIQUE (document_id, ordinal)
);

CREATE VIRTUAL TABLE chunks_fts USING fts5(
  text, section,
  content='chunks', content_rowid='id',
  tokenize='porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER chunks_fts_after_insert AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, text, section) VALUES (new.id, new.text, new.section);
END;
CREATE TRIGGER chunks_fts_after_delete AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text, section)
    VALUES ('delete', old.id, old.text, old.section);
END;
CREATE TRIGGER chunks_fts_after_update AFTER UPDATE OF text, section ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text, section)
    VALUES ('delete', old.id, old.text, old.section);
  INSERT INTO chunks_fts(rowid, text, section) VALUES (new.id, new.text, new.section);
END;
)sql";

// The section column counts a quarter as much as the body text.
constexpr const char* kBm25 = "bm25(chunks_fts, 1.0, 0.25)";

constexpr size_t kMaxIdleReaders = 8;

constexpr const char* kCollectionSelect =
    "SELECT c.id, c.name, c.description, c.created_at,"
    " (SELECT count(*) FROM documents d WHERE d.collection_id = c.id),"
    " (SELECT count(*) FROM chunks k JOIN documents d ON d.id = k.document_id"
    "   WHERE d.collection_id = c.id)"
    " FROM collections c ";

constexpr const char* kDocumentSelect =
    "SELECT d.id, c.name, d.source, d.title, d.media_type, d.sha256, d.size_bytes,"
    " d.created_at, d.updated_at,"
    " (SELECT count(*) FROM chunks k WHERE k.document_id = d.id)"
    " FROM documents d JOIN collections c ON c.id = d.collection_id ";

Collection ReadCollection(const Stmt& stmt) {
  Collection c;
  c.id = stmt.ColumnInt(0);
  c.name = stmt.ColumnText(1);
  c.description = stmt.ColumnText(2);
  c.created_at = stmt.ColumnInt(3);
  c.document_count = stmt.ColumnInt(4);
  c.chunk_count = stmt.ColumnInt(5);
  return c;
}

Document ReadDocument(const Stmt& stmt) {
  Document d;
  d.id = stmt.ColumnInt(0);
  d.collection = stmt.ColumnText(1);
  d.source = stmt.ColumnText(2);
  d.title = stmt.ColumnText(3);
  d.media_type = stmt.ColumnText(4);
  d.sha256 = stmt.ColumnText(5);
  d.size_bytes = stmt.ColumnInt(6);
  d.created_at = stmt.ColumnInt(7);
  d.updated_at = stmt.ColumnInt(8);
  d.chunk_count = stmt.ColumnInt(9);
  return d;
}

Status CollectionNotFound(const std::string& name) {
  return Status::NotFound("collection '" + name + "' does not exist");
}

Status DocumentNotFound(int64_t id) {
  return Status::NotFound("document " + std::to_string(id) + " does not exist");
}

Result<std::optional<Collection>> LoadCollection(sqlite3* db, const std::string& name) {
  XNAI_STORE_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(db, std::string(kCollectionSelect) + "WHERE c.name = ?1"));
  stmt.BindText(1, name);
  XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Collection>();
  return std::optional<Collection>(ReadCollection(stmt));
}

// The collection's id, or NotFound.
Result<int64_t> CollectionId(sqlite3* db, const std::string& name) {
  XNAI_STORE_ASSIGN_OR_RETURN(Stmt stmt,
                              Stmt::Prepare(db, "SELECT id FROM collections WHERE name = ?1"));
  stmt.BindText(1, name);
  XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Err(CollectionNotFound(name));
  return stmt.ColumnInt(0);
}

Result<std::optional<Document>> LoadDocument(sqlite3* db, int64_t id) {
  XNAI_STORE_ASSIGN_OR_RETURN(Stmt stmt,
                              Stmt::Prepare(db, std::string(kDocumentSelect) + "WHERE d.id = ?1"));
  stmt.BindInt(1, id);
  XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Document>();
  return std::optional<Document>(ReadDocument(stmt));
}

Status InvalidCollectionName(const std::string& name) {
  return Status::InvalidArgument(
      "invalid collection name '" + name +
      "': use 1 to 64 of A-Z a-z 0-9 _ . -, starting with a letter or digit");
}

bool HasCollectionFilter(const std::optional<std::string>& collection) {
  return collection.has_value() && !collection->empty();
}

// A deferred read transaction on a reader connection, so that several
// statements see one snapshot. Ends (rolled back; it wrote nothing) when the
// lease returns the connection to the pool.
Status BeginRead(sqlite3* db) { return sqlite::ExecScript(db, "BEGIN", "begin read"); }

}  // namespace

const std::vector<SqliteMigration>& SqliteMigrations() {
  static const std::vector<SqliteMigration> kMigrations = {
      {1, "collections, documents, chunks, chunks_fts", kMigration1},
  };
  return kMigrations;
}

int SqliteSchemaVersion() { return SqliteMigrations().back().version; }

// --- open / close ------------------------------------------------------------

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& db_path,
                                               const SqliteOptions& options) {
  XNAI_STORE_ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store,
                              SqliteStore::Open(db_path, options));
  return std::unique_ptr<Store>(std::move(store));
}

SqliteStore::SqliteStore(std::filesystem::path path, SqliteOptions options)
    : path_(std::move(path)), options_(options), now_([] {
        return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
      }) {}

SqliteStore::~SqliteStore() {
  for (sqlite3* db : idle_readers_) sqlite3_close_v2(db);
  if (writer_ != nullptr) sqlite3_close_v2(writer_);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::filesystem::path& db_path,
                                                       const SqliteOptions& options) {
  if (db_path.empty()) return Err(Status::InvalidArgument("database path is empty"));
  if (options.busy_timeout_ms < 0) {
    return Err(Status::InvalidArgument("busy_timeout_ms must be >= 0"));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db_path, options));
  std::error_code ec;
  if (options.read_only) {
    if (!std::filesystem::exists(db_path, ec)) {
      return Err(Status::NotFound("database '" + db_path.string() + "' does not exist"));
    }
    XNAI_STORE_RETURN_IF_ERROR(store->CheckSchemaReadOnly());
  } else {
    if (db_path.has_parent_path()) {
      std::filesystem::create_directories(db_path.parent_path(), ec);
      if (ec) {
        return Err(Status::IOError("create directory '" + db_path.parent_path().string() +
                                   "': " + ec.message()));
      }
    }
    XNAI_STORE_RETURN_IF_ERROR(store->OpenWriterAndMigrate());
  }
  return store;
}

Result<sqlite3*> SqliteStore::OpenConnection(bool writer) const {
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options_.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE | (writer ? SQLITE_OPEN_CREATE : 0);
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status status = sqlite::StatusFromSqlite(rc, db, "open database '" + path_.string() + "'");
    sqlite3_close_v2(db);
    return Err(std::move(status));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options_.busy_timeout_ms);
  if (!writer && !options_.read_only) {
    // Readers never write; make a mistake loud instead of a lock fight.
    Status s = sqlite::ExecScript(db, "PRAGMA query_only = ON", "configure reader");
    if (!s.ok()) {
      sqlite3_close_v2(db);
      return Err(std::move(s));
    }
  }
  return db;
}

namespace {

Status NewerSchema(int64_t version) {
  return Status::FailedPrecondition("database schema version " + std::to_string(version) +
                                    " is newer than this xnai (" +
                                    std::to_string(SqliteSchemaVersion()) + ")");
}

}  // namespace

Status SqliteStore::OpenWriterAndMigrate() {
  auto writer = OpenConnection(/*writer=*/true);
  if (!writer) return writer.error();
  writer_ = *writer;

  // The first read of the file: a file that is not a database fails here
  // with SQLITE_NOTADB, which maps to Corruption naming the path.
  auto version = sqlite::QueryInt(writer_, "PRAGMA user_version", "read schema version");
  if (!version) return version.error();
  if (*version > SqliteSchemaVersion()) return NewerSchema(*version);
  if (*version == 0) {
    // A fresh file, or a SQLite database some other program made: refuse to
    // scribble our tables into the latter.
    auto tables =
        sqlite::QueryInt(writer_, "SELECT count(*) FROM sqlite_schema", "inspect database");
    if (!tables) return tables.error();
    if (*tables > 0) {
      return Status::FailedPrecondition("'" + path_.string() +
                                        "' is a SQLite database that xnai did not create");
    }
  }

  {
    auto stmt = Stmt::Prepare(writer_, "PRAGMA journal_mode = WAL");
    if (!stmt) return stmt.error();
    auto row = stmt->Step();
    if (!row) return row.error().WithContext("enable WAL");
    if (!*row || stmt->ColumnText(0) != "wal") {
      return Status::IOError("could not enable WAL mode on '" + path_.string() +
                             "' (journal mode is '" + (*row ? stmt->ColumnText(0) : "") + "')");
    }
  }
  XNAI_RETURN_IF_ERROR(sqlite::ExecScript(
      writer_, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;", "configure writer"));
  return Migrate();
}

Status SqliteStore::Migrate() {
  for (const SqliteMigration& migration : SqliteMigrations()) {
    auto version = sqlite::QueryInt(writer_, "PRAGMA user_version", "read schema version");
    if (!version) return version.error();
    if (migration.version <= *version) continue;

    auto txn = WriteTransaction::Begin(writer_);
    if (!txn) return txn.error().WithContext("migrate");
    // Re-read under the write lock: another process may have migrated
    // between our check and the lock.
    version = sqlite::QueryInt(writer_, "PRAGMA user_version", "read schema version");
    if (!version) return version.error();
    if (*version > SqliteSchemaVersion()) return NewerSchema(*version);
    if (migration.version <= *version) continue;  // txn rolls back: nothing written
    if (migration.version != *version + 1) {
      return Status::Internal("schema migration " + std::to_string(migration.version) +
                              " does not follow version " + std::to_string(*version));
    }
    std::string context = "schema migration " + std::to_string(migration.version) + " (" +
                          std::string(migration.description) + ")";
    XNAI_RETURN_IF_ERROR(sqlite::ExecScript(writer_, migration.sql, context));
    // user_version lives in the database header and is transactional.
    std::string set_version = "PRAGMA user_version = " + std::to_string(migration.version);
    XNAI_RETURN_IF_ERROR(sqlite::ExecScript(writer_, set_version.c_str(), context));
    XNAI_RETURN_IF_ERROR(txn->Commit());
    ++migrations_applied_;
  }
  return Status::Ok();
}

Status SqliteStore::CheckSchemaReadOnly() {
  auto reader = AcquireReader();
  if (!reader) return reader.error();
  auto version = sqlite::QueryInt(reader->db(), "PRAGMA user_version", "read schema version");
  if (!version) return version.error();
  if (*version > SqliteSchemaVersion()) return NewerSchema(*version);
  if (*version < SqliteSchemaVersion()) {
    return Status::FailedPrecondition(
        "database schema version " + std::to_string(*version) + " is older than this xnai (" +
        std::to_string(SqliteSchemaVersion()) + "); open it once read-write to upgrade it");
  }
  return Status::Ok();
}

Result<SqliteStore::ReaderLease> SqliteStore::AcquireReader() {
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (!idle_readers_.empty()) {
      sqlite3* db = idle_readers_.back();
      idle_readers_.pop_back();
      return ReaderLease(this, db);
    }
  }
  XNAI_STORE_ASSIGN_OR_RETURN(sqlite3 * db, OpenConnection(/*writer=*/false));
  return ReaderLease(this, db);
}

void SqliteStore::ReleaseReader(sqlite3* db) {
  RollbackIfActive(db);  // end any read transaction: it must not pin an old snapshot
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (idle_readers_.size() < kMaxIdleReaders) {
      idle_readers_.push_back(db);
      return;
    }
  }
  sqlite3_close_v2(db);
}

Status SqliteStore::CheckWritable() const {
  if (writer_ == nullptr) {
    return Status::FailedPrecondition("store '" + path_.string() + "' is open read-only");
  }
  return Status::Ok();
}

// --- collections -------------------------------------------------------------

Result<Collection> SqliteStore::CreateCollection(const std::string& name,
                                                 const std::string& description) {
  if (!IsValidCollectionName(name)) return Err(InvalidCollectionName(name));
  XNAI_STORE_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_STORE_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_STORE_ASSIGN_OR_RETURN(
      Stmt insert,
      Stmt::Prepare(writer_,
                    "INSERT INTO collections (name, description, created_at) VALUES (?1, ?2, ?3)"));
  insert.BindText(1, name).BindText(2, description).BindInt(3, Now());
  Status s = insert.Exec();
  if (s.code() == Status::Code::kAlreadyExists) {
    return Err(Status::AlreadyExists("collection '" + name + "' already exists"));
  }
  XNAI_STORE_RETURN_IF_ERROR(s);
  XNAI_STORE_ASSIGN_OR_RETURN(std::optional<Collection> created, LoadCollection(writer_, name));
  if (!created) return Err(Status::Internal("collection vanished after insert"));
  XNAI_STORE_RETURN_IF_ERROR(txn.Commit());
  return *created;
}

Result<Collection> SqliteStore::EnsureCollection(const std::string& name) {
  if (!IsValidCollectionName(name)) return Err(InvalidCollectionName(name));
  XNAI_STORE_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  // Look first without the write lock, so an existing collection does not
  // need the lock (another process may hold it for a while).
  XNAI_STORE_ASSIGN_OR_RETURN(std::optional<Collection> existing, LoadCollection(writer_, name));
  if (existing) return *existing;
  XNAI_STORE_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_STORE_ASSIGN_OR_RETURN(
      Stmt insert, Stmt::Prepare(writer_,
                                 "INSERT OR IGNORE INTO collections (name, description, created_at)"
                                 " VALUES (?1, '', ?2)"));
  insert.BindText(1, name).BindInt(2, Now());
  XNAI_STORE_RETURN_IF_ERROR(insert.Exec());
  XNAI_STORE_ASSIGN_OR_RETURN(std::optional<Collection> created, LoadCollection(writer_, name));
  if (!created) return Err(Status::Internal("collection vanished after insert"));
  XNAI_STORE_RETURN_IF_ERROR(txn.Commit());
  return *created;
}

Result<Collection> SqliteStore::GetCollection(const std::string& name) {
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_STORE_ASSIGN_OR_RETURN(std::optional<Collection> found, LoadCollection(reader.db(), name));
  if (!found) return Err(CollectionNotFound(name));
  return *found;
}

Result<std::vector<Collection>> SqliteStore::ListCollections() {
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_STORE_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(), std::string(kCollectionSelect) + "ORDER BY c.name"));
  std::vector<Collection> out;
  while (true) {
    XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(ReadCollection(stmt));
  }
  return out;
}

Result<std::vector<std::string>> SqliteStore::DeleteCollection(const std::string& name) {
  XNAI_STORE_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_STORE_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_STORE_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(writer_, name));
  std::vector<std::string> shas;
  {
    XNAI_STORE_ASSIGN_OR_RETURN(
        Stmt select,
        Stmt::Prepare(writer_,
                      "SELECT sha256 FROM documents WHERE collection_id = ?1 ORDER BY id"));
    select.BindInt(1, collection_id);
    while (true) {
      XNAI_STORE_ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      shas.push_back(select.ColumnText(0));
    }
  }
  // Documents and chunks go by ON DELETE CASCADE; the chunk delete trigger
  // removes their FTS entries.
  XNAI_STORE_ASSIGN_OR_RETURN(Stmt del,
                              Stmt::Prepare(writer_, "DELETE FROM collections WHERE id = ?1"));
  del.BindInt(1, collection_id);
  XNAI_STORE_RETURN_IF_ERROR(del.Exec());
  XNAI_STORE_RETURN_IF_ERROR(txn.Commit());
  return shas;
}

// --- documents ---------------------------------------------------------------

Result<PutResult> SqliteStore::PutDocument(const DocumentInput& input) {
  if (input.source.empty()) return Err(Status::InvalidArgument("document source is empty"));
  if (input.sha256.empty()) return Err(Status::InvalidArgument("document sha256 is empty"));
  if (input.size_bytes < 0) return Err(Status::InvalidArgument("document size_bytes is negative"));
  XNAI_STORE_RETURN_IF_ERROR(CheckWritable());

  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_STORE_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_STORE_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(writer_, input.collection));

  std::optional<int64_t> existing_id;
  {
    XNAI_STORE_ASSIGN_OR_RETURN(Stmt find,
                                Stmt::Prepare(writer_,
                                              "SELECT id, sha256 FROM documents"
                                              " WHERE collection_id = ?1 AND source = ?2"));
    find.BindInt(1, collection_id).BindText(2, input.source);
    XNAI_STORE_ASSIGN_OR_RETURN(bool row, find.Step());
    if (row) {
      existing_id = find.ColumnInt(0);
      if (find.ColumnText(1) == input.sha256) {
        XNAI_STORE_ASSIGN_OR_RETURN(std::optional<Document> doc,
                                    LoadDocument(writer_, *existing_id));
        if (!doc) return Err(Status::Internal("document vanished inside a transaction"));
        return PutResult{*doc, PutOutcome::kUnchanged};  // txn rolls back: nothing written
      }
    }
  }

  const int64_t now = Now();
  int64_t document_id = 0;
  PutOutcome outcome;
  if (existing_id) {
    document_id = *existing_id;
    outcome = PutOutcome::kReplaced;
    XNAI_STORE_ASSIGN_OR_RETURN(
        Stmt del_chunks, Stmt::Prepare(writer_, "DELETE FROM chunks WHERE document_id = ?1"));
    del_chunks.BindInt(1, document_id);
    XNAI_STORE_RETURN_IF_ERROR(del_chunks.Exec());
    XNAI_STORE_ASSIGN_OR_RETURN(
        Stmt update, Stmt::Prepare(writer_,
                                   "UPDATE documents SET title = ?1, media_type = ?2, sha256 = ?3,"
                                   " size_bytes = ?4, updated_at = ?5 WHERE id = ?6"));
    update.BindText(1, input.title)
        .BindText(2, input.media_type)
        .BindText(3, input.sha256)
        .BindInt(4, input.size_bytes)
        .BindInt(5, now)
        .BindInt(6, document_id);
    XNAI_STORE_RETURN_IF_ERROR(update.Exec());
  } else {
    outcome = PutOutcome::kCreated;
    XNAI_STORE_ASSIGN_OR_RETURN(
        Stmt insert,
        Stmt::Prepare(
            writer_,
            "INSERT INTO documents (collection_id, source, title, media_type, sha256,"
            " size_bytes, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"));
    insert.BindInt(1, collection_id)
        .BindText(2, input.source)
        .BindText(3, input.title)
        .BindText(4, input.media_type)
        .BindText(5, input.sha256)
        .BindInt(6, input.size_bytes)
        .BindInt(7, now);
    XNAI_STORE_RETURN_IF_ERROR(insert.Exec());
    document_id = sqlite3_last_insert_rowid(writer_);
  }

  {
    XNAI_STORE_ASSIGN_OR_RETURN(
        Stmt insert_chunk,
        Stmt::Prepare(writer_,
                      "INSERT INTO chunks (document_id, ordinal, text, char_begin, char_end,"
                      " token_count, section, page) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    int64_t ordinal = 0;
    for (const ChunkInput& chunk : input.chunks) {
      insert_chunk.Reset();
      insert_chunk.BindInt(1, document_id)
          .BindInt(2, ordinal++)
          .BindText(3, chunk.text)
          .BindInt(4, chunk.char_begin)
          .BindInt(5, chunk.char_end)
          .BindInt(6, chunk.token_count)
          .BindText(7, chunk.section)
          .BindInt(8, chunk.page);
      XNAI_STORE_RETURN_IF_ERROR(insert_chunk.Exec());
    }
  }

  XNAI_STORE_ASSIGN_OR_RETURN(std::optional<Document> doc, LoadDocument(writer_, document_id));
  if (!doc) return Err(Status::Internal("document vanished inside a transaction"));
  XNAI_STORE_RETURN_IF_ERROR(txn.Commit());
  return PutResult{*doc, outcome};
}

Result<std::optional<Document>> SqliteStore::FindDocument(const std::string& collection,
                                                          const std::string& source) {
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_STORE_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_STORE_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(reader.db(), collection));
  XNAI_STORE_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(), std::string(kDocumentSelect) +
                                                "WHERE d.collection_id = ?1 AND d.source = ?2"));
  stmt.BindInt(1, collection_id).BindText(2, source);
  XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Document>();
  return std::optional<Document>(ReadDocument(stmt));
}

Result<Document> SqliteStore::GetDocument(int64_t id) {
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_STORE_ASSIGN_OR_RETURN(std::optional<Document> doc, LoadDocument(reader.db(), id));
  if (!doc) return Err(DocumentNotFound(id));
  return *doc;
}

Result<std::vector<Document>> SqliteStore::ListDocuments(
    const std::optional<std::string>& collection, int limit, int offset) {
  if (limit < 1) return Err(Status::InvalidArgument("limit must be at least 1"));
  if (offset < 0) return Err(Status::InvalidArgument("offset must not be negative"));
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_STORE_RETURN_IF_ERROR(BeginRead(reader.db()));
  std::optional<int64_t> collection_id;
  if (HasCollectionFilter(collection)) {
    XNAI_STORE_ASSIGN_OR_RETURN(collection_id, CollectionId(reader.db(), *collection));
  }
  XNAI_STORE_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(), std::string(kDocumentSelect) +
                                                "WHERE (?1 IS NULL OR d.collection_id = ?1)"
                                                " ORDER BY d.updated_at DESC, d.id DESC"
                                                " LIMIT ?2 OFFSET ?3"));
  if (collection_id) {
    stmt.BindInt(1, *collection_id);
  } else {
    stmt.BindNull(1);
  }
  stmt.BindInt(2, limit).BindInt(3, offset);
  std::vector<Document> out;
  while (true) {
    XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(ReadDocument(stmt));
  }
  return out;
}

Result<std::vector<Chunk>> SqliteStore::GetChunks(int64_t document_id) {
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_STORE_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_STORE_ASSIGN_OR_RETURN(std::optional<Document> doc, LoadDocument(reader.db(), document_id));
  if (!doc) return Err(DocumentNotFound(document_id));
  XNAI_STORE_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(),
                               "SELECT id, document_id, ordinal, text, char_begin, char_end,"
                               " token_count, section, page FROM chunks"
                               " WHERE document_id = ?1 ORDER BY ordinal"));
  stmt.BindInt(1, document_id);
  std::vector<Chunk> out;
  while (true) {
    XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    Chunk c;
    c.id = stmt.ColumnInt(0);
    c.document_id = stmt.ColumnInt(1);
    c.ordinal = static_cast<int32_t>(stmt.ColumnInt(2));
    c.text = stmt.ColumnText(3);
    c.char_begin = stmt.ColumnInt(4);
    c.char_end = stmt.ColumnInt(5);
    c.token_count = static_cast<int32_t>(stmt.ColumnInt(6));
    c.section = stmt.ColumnText(7);
    c.page = static_cast<int32_t>(stmt.ColumnInt(8));
    out.push_back(std::move(c));
  }
  return out;
}

Result<Document> SqliteStore::DeleteDocument(int64_t id) {
  XNAI_STORE_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_STORE_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_STORE_ASSIGN_OR_RETURN(std::optional<Document> doc, LoadDocument(writer_, id));
  if (!doc) return Err(DocumentNotFound(id));
  XNAI_STORE_ASSIGN_OR_RETURN(Stmt del,
                              Stmt::Prepare(writer_, "DELETE FROM documents WHERE id = ?1"));
  del.BindInt(1, id);
  XNAI_STORE_RETURN_IF_ERROR(del.Exec());
  XNAI_STORE_RETURN_IF_ERROR(txn.Commit());
  return *doc;
}

Result<int64_t> SqliteStore::CountDocumentsWithSha(const std::string& sha256) {
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_STORE_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(), "SELECT count(*) FROM documents WHERE sha256 = ?1"));
  stmt.BindText(1, sha256);
  XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.ColumnInt(0) : int64_t{0};
}

// --- search ------------------------------------------------------------------

Result<std::vector<SearchHit>> SqliteStore::SearchChunks(const SearchQuery& query) {
  if (query.fts_expression.empty()) {
    return Err(Status::InvalidArgument("search expression is empty"));
  }
  if (query.k < 1 || query.k > kMaxSearchK) {
    return Err(Status::InvalidArgument("k must be between 1 and " + std::to_string(kMaxSearchK)));
  }
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  sqlite3* db = reader.db();
  XNAI_STORE_RETURN_IF_ERROR(BeginRead(db));
  std::optional<int64_t> collection_id;
  if (HasCollectionFilter(query.collection)) {
    XNAI_STORE_ASSIGN_OR_RETURN(collection_id, CollectionId(db, *query.collection));
  }
  // snippet(): column 0 (text), the match markers, "…" where text was cut,
  // at most 24 tokens.
  std::string sql = std::string() +
                    "SELECT k.id, k.document_id, col.name, d.source, d.title, k.section, k.page,"
                    " k.text, snippet(chunks_fts, 0, ?4, ?5, '…', 24), " +
                    kBm25 +
                    " AS score"
                    " FROM chunks_fts"
                    " JOIN chunks k ON k.id = chunks_fts.rowid"
                    " JOIN documents d ON d.id = k.document_id"
                    " JOIN collections col ON col.id = d.collection_id"
                    " WHERE chunks_fts MATCH ?1 AND (?2 IS NULL OR d.collection_id = ?2)"
                    " ORDER BY score, k.id LIMIT ?3";
  XNAI_STORE_ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db, sql));
  stmt.BindText(1, query.fts_expression);
  if (collection_id) {
    stmt.BindInt(2, *collection_id);
  } else {
    stmt.BindNull(2);
  }
  stmt.BindInt(3, query.k)
      .BindText(4, std::string_view(&kMarkBegin, 1))
      .BindText(5, std::string_view(&kMarkEnd, 1));
  std::vector<SearchHit> hits;
  while (true) {
    auto row = stmt.Step();
    if (!row) {
      // FTS5 reports a malformed MATCH expression as a plain SQLITE_ERROR.
      if (stmt.last_rc() == SQLITE_ERROR) {
        return Err(Status::InvalidArgument(std::string("invalid search expression: ") +
                                           sqlite3_errmsg(db)));
      }
      return Err(row.error());
    }
    if (!*row) break;
    SearchHit hit;
    hit.chunk_id = stmt.ColumnInt(0);
    hit.document_id = stmt.ColumnInt(1);
    hit.collection = stmt.ColumnText(2);
    hit.source = stmt.ColumnText(3);
    hit.title = stmt.ColumnText(4);
    hit.section = stmt.ColumnText(5);
    hit.page = static_cast<int32_t>(stmt.ColumnInt(6));
    hit.text = stmt.ColumnText(7);
    hit.snippet = stmt.ColumnText(8);
    hit.score = -stmt.ColumnDouble(9);
    hits.push_back(std::move(hit));
  }
  return hits;
}

Result<StoreStats> SqliteStore::Stats() {
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_STORE_ASSIGN_OR_RETURN(Stmt stmt,
                              Stmt::Prepare(reader.db(),
                                            "SELECT (SELECT count(*) FROM collections),"
                                            " (SELECT count(*) FROM documents),"
                                            " (SELECT count(*) FROM chunks),"
                                            " (SELECT page_count FROM pragma_page_count()) *"
                                            " (SELECT page_size FROM pragma_page_size())"));
  XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Err(Status::Internal("stats query returned no row"));
  StoreStats stats;
  stats.collections = stmt.ColumnInt(0);
  stats.documents = stmt.ColumnInt(1);
  stats.chunks = stmt.ColumnInt(2);
  stats.db_bytes = stmt.ColumnInt(3);
  return stats;
}

// --- test hooks --------------------------------------------------------------

Result<int64_t> SqliteStore::TEST_SetMaxPageCount(int64_t pages) {
  XNAI_STORE_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  std::string sql = "PRAGMA max_page_count = " + std::to_string(pages);
  return sqlite::QueryInt(writer_, sql.c_str(), "set max_page_count");
}

Result<int64_t> SqliteStore::TEST_PageCount() {
  XNAI_STORE_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  return sqlite::QueryInt(reader.db(), "PRAGMA page_count", "page_count");
}

Result<int64_t> SqliteStore::TEST_IndexedChunksWithTerm(const std::string& term) {
  XNAI_STORE_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_STORE_RETURN_IF_ERROR(
      sqlite::ExecScript(writer_,
                         "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_vocab"
                         " USING fts5vocab(main, chunks_fts, row)",
                         "create fts5vocab"));
  XNAI_STORE_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(writer_, "SELECT doc FROM temp.chunks_fts_vocab WHERE term = ?1"));
  stmt.BindText(1, term);
  XNAI_STORE_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.ColumnInt(0) : int64_t{0};
}

Status SqliteStore::TEST_CheckIntegrity() {
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_RETURN_IF_ERROR(sqlite::ExecScript(
      writer_, "INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')", "fts integrity"));
  auto stmt = Stmt::Prepare(writer_, "PRAGMA integrity_check");
  if (!stmt) return stmt.error();
  auto row = stmt->Step();
  if (!row) return row.error();
  if (!*row || stmt->ColumnText(0) != "ok") {
    return Status::Corruption("integrity_check: " + (*row ? stmt->ColumnText(0) : ""));
  }
  return Status::Ok();
}

}  // namespace xnai::store
