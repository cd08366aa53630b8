#include "store/sqlite_store.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
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

// Migration 2: the collection filter without a join per matching row.
//
// chunks gets a copy of its document's collection_id (a document never
// changes collection), and chunks_fts indexes it as a third column, so a
// collection filter is one more phrase in the MATCH expression
// (`... AND collection_id : "17"`) that FTS5 intersects with the term
// doclists while iterating, instead of a chunks -> documents lookup for each
// of the (up to tens of thousands) matching rows. User expressions are always
// restricted to {text section} (see SearchChunks), so a query for "17" never
// matches the id column. Scores ignore the column (xnai_bm25 counts only text
// and section tokens), so ranking is unchanged from migration 1.
constexpr const char* kMigration2 = R"sql(
DROP TRIGGER chunks_fts_after_insert;
DROP TRIGGER chunks_fts_after_delete;
DROP TRIGGER chunks_fts_after_update;
DROP TABLE chunks_fts;

ALTER TABLE chunks ADD COLUMN collection_id INTEGER NOT NULL DEFAULT 0;
UPDATE chunks SET collection_id =
  (SELECT d.collection_id FROM documents d WHERE d.id = chunks.document_id);

CREATE VIRTUAL TABLE chunks_fts USING fts5(
  text, section, collection_id,
  content='chunks', content_rowid='id',
  tokenize='porter unicode61 remove_diacritics 2'
);
INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');

CREATE TRIGGER chunks_fts_after_insert AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, text, section, collection_id)
    VALUES (new.id, new.text, new.section, new.collection_id);
END;
CREATE TRIGGER chunks_fts_after_delete AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text, section, collection_id)
    VALUES ('delete', old.id, old.text, old.section, old.collection_id);
END;
CREATE TRIGGER chunks_fts_after_update AFTER UPDATE OF text, section, collection_id ON chunks
BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text, section, collection_id)
    VALUES ('delete', old.id, old.text, old.section, old.collection_id);
  INSERT INTO chunks_fts(rowid, text, section, collection_id)
    VALUES (new.id, new.text, new.section, new.collection_id);
END;
)sql";

// Migration 3: embeddings. One vector space (model, dim) per collection;
// vectors as little-endian float32 blobs, one per chunk, gone with the chunk
// (ON DELETE CASCADE, which also fires the log trigger); the change log the
// in-memory vector indexes replay (see VectorSpace in store.h).
constexpr const char* kMigration3 = R"sql(
CREATE TABLE vector_spaces (
  collection_id INTEGER PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
  model         TEXT NOT NULL,
  dim           INTEGER NOT NULL,
  log_floor     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE chunk_vectors (
  chunk_id      INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
  collection_id INTEGER NOT NULL,
  vector        BLOB NOT NULL
);
CREATE INDEX chunk_vectors_by_collection ON chunk_vectors(collection_id, chunk_id);
CREATE TABLE vector_log (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  collection_id INTEGER NOT NULL,
  chunk_id      INTEGER NOT NULL,
  added         INTEGER NOT NULL
);
CREATE INDEX vector_log_by_collection ON vector_log(collection_id, seq);
CREATE TRIGGER chunk_vectors_log_insert AFTER INSERT ON chunk_vectors BEGIN
  INSERT INTO vector_log(collection_id, chunk_id, added) VALUES (new.collection_id, new.chunk_id, 1);
END;
CREATE TRIGGER chunk_vectors_log_delete AFTER DELETE ON chunk_vectors BEGIN
  INSERT INTO vector_log(collection_id, chunk_id, added) VALUES (old.collection_id, old.chunk_id, 0);
END;
CREATE TRIGGER collections_vector_log_delete AFTER DELETE ON collections BEGIN
  DELETE FROM vector_log WHERE collection_id = old.id;
END;
)sql";

// Migration 4: conversations and their messages (the history of /api/ask).
constexpr const char* kMigration4 = R"sql(
CREATE TABLE conversations (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  title      TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX conversations_by_updated ON conversations(updated_at, id);
CREATE TABLE messages (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  role            TEXT NOT NULL,
  content         TEXT NOT NULL,
  sources         TEXT NOT NULL DEFAULT '[]',
  status          TEXT NOT NULL DEFAULT 'complete',
  created_at      INTEGER NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
)sql";

// --- ranking -------------------------------------------------------------------
//
// xnai_bm25(chunks_fts, k, skip_phrases, w_text, w_section): FTS5's bm25()
// (k1 = 1.2, b = 0.75, IDF = ln((N - n + 0.5) / (n + 0.5)) clamped to 1e-6,
// the column weights applied to term frequencies), negated like bm25() so
// that ascending order is best first, with two differences:
//
// - It scores only the first (phrase count - skip_phrases) phrases and
//   counts only the text and section columns in the row length, so the
//   collection filter phrase and column change nothing.
// - With k > 0 it prunes (MaxScore): from its term frequencies alone (no
//   length lookup) a row's score has an upper bound (see RankFunction); once
//   k rows are scored, a row whose bound is no more than the k-th best score
//   so far cannot enter the top k and gets kPrunedScore (worse than any real
//   score) without the row length lookup (a b-tree search in the docsize
//   table), which is most of the cost of scoring. Only valid under
//   `ORDER BY score LIMIT k` over the same rows the function sees (filters
//   must be inside the MATCH).
//
// Results are identical to scoring every row (see the oracle test).

constexpr double kBm25K1 = 1.2;
constexpr double kBm25B = 0.75;
// Positive: every real score is negative, so pruned rows sort last.
constexpr double kPrunedScore = 1.0;
constexpr int kRankedColumns = 2;  // text, section

struct RankState {
  int phrases = 0;  // scored phrases
  std::vector<double> idf;
  std::vector<double> bound;  // idf * (k1 + 1): the most a phrase can add
  double avgdl = 0;
  std::vector<double> best;  // min-heap of the best (positive) scores so far
  std::vector<double> freq;
  bool has_last = false;
  int64_t last_rowid = 0;
  double last_result = 0;
};

int CountHits(const Fts5ExtensionApi*, Fts5Context*, void* user_data) {
  ++*static_cast<int64_t*>(user_data);
  return SQLITE_OK;
}

int InitRankState(const Fts5ExtensionApi* api, Fts5Context* fts, int skip, RankState* state) {
  state->phrases = std::max(0, api->xPhraseCount(fts) - skip);
  sqlite3_int64 rows = 0;
  int rc = api->xRowCount(fts, &rows);
  if (rc != SQLITE_OK) return rc;
  sqlite3_int64 tokens = 0;
  for (int col = 0; col < kRankedColumns; ++col) {
    sqlite3_int64 n = 0;
    rc = api->xColumnTotalSize(fts, col, &n);
    if (rc != SQLITE_OK) return rc;
    tokens += n;
  }
  state->avgdl = rows > 0 ? static_cast<double>(tokens) / static_cast<double>(rows) : 1.0;
  if (state->avgdl <= 0) state->avgdl = 1.0;
  for (int i = 0; i < state->phrases; ++i) {
    int64_t hits = 0;
    rc = api->xQueryPhrase(fts, i, &hits, CountHits);
    if (rc != SQLITE_OK) return rc;
    double idf = std::log((static_cast<double>(rows) - static_cast<double>(hits) + 0.5) /
                          (static_cast<double>(hits) + 0.5));
    if (idf <= 0.0) idf = 1e-6;
    state->idf.push_back(idf);
    state->bound.push_back(idf * (kBm25K1 + 1.0));
  }
  state->freq.resize(state->phrases);
  return SQLITE_OK;
}

void RankFunction(const Fts5ExtensionApi* api, Fts5Context* fts, sqlite3_context* ctx, int argc,
                  sqlite3_value** argv) {
  if (argc != 2 + kRankedColumns) {
    sqlite3_result_error(ctx, "xnai_bm25: wrong number of arguments", -1);
    return;
  }
  const int64_t k = sqlite3_value_int64(argv[0]);
  double weights[kRankedColumns];
  for (int col = 0; col < kRankedColumns; ++col) weights[col] = sqlite3_value_double(argv[2 + col]);

  auto* state = static_cast<RankState*>(api->xGetAuxdata(fts, 0));
  if (state == nullptr) {
    auto fresh = std::make_unique<RankState>();
    int rc = InitRankState(api, fts, static_cast<int>(sqlite3_value_int64(argv[1])), fresh.get());
    if (rc == SQLITE_OK) {
      state = fresh.get();
      rc = api->xSetAuxdata(fts, fresh.release(),
                            [](void* p) { delete static_cast<RankState*>(p); });
    }
    if (rc != SQLITE_OK) {
      sqlite3_result_error_code(ctx, rc);
      return;
    }
  }
  // SQLite may evaluate the function twice for one row (result column and
  // sort key); the row must enter the heap once.
  const int64_t rowid = api->xRowid(fts);
  if (state->has_last && state->last_rowid == rowid) {
    sqlite3_result_double(ctx, state->last_result);
    return;
  }

  // Term frequencies first: cheap, the position lists are in memory once
  // the iteration is on this row. Then the row's bound: with D >= 0 the
  // length factor is at least k1 * (1 - b), so phrase i adds at most
  // idf * f * (k1 + 1) / (f + k1 * (1 - b)) < idf * (k1 + 1).
  double bound = 0;
  for (int i = 0; i < state->phrases; ++i) {
    Fts5PhraseIter iter;
    int col = -1;
    int offset = 0;
    int rc = api->xPhraseFirst(fts, i, &iter, &col, &offset);
    if (rc != SQLITE_OK) {
      sqlite3_result_error_code(ctx, rc);
      return;
    }
    double f = 0;
    while (col >= 0) {
      if (col < kRankedColumns) f += weights[col];
      api->xPhraseNext(fts, &iter, &col, &offset);
    }
    state->freq[i] = f;
    if (f > 0) bound += state->idf[i] * ((f * (kBm25K1 + 1.0)) / (f + kBm25K1 * (1 - kBm25B)));
  }
  // Once k rows are scored, the k-th best score so far is a threshold the
  // final k-th best can only exceed. The relative slack covers rounding: the
  // real score is below the bound by far more (the row has a length).
  const bool heap_full = k > 0 && static_cast<int64_t>(state->best.size()) >= k;
  double result;
  if (heap_full && bound * (1.0 + 1e-9) <= state->best.front()) {
    result = kPrunedScore;
  } else {
    int length = 0;
    for (int col = 0; col < kRankedColumns; ++col) {
      int n = 0;
      int rc = api->xColumnSize(fts, col, &n);
      if (rc != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
      }
      length += n;
    }
    const double d = static_cast<double>(length);
    double score = 0;
    for (int i = 0; i < state->phrases; ++i) {
      const double f = state->freq[i];
      score += state->idf[i] *
               ((f * (kBm25K1 + 1.0)) / (f + kBm25K1 * (1 - kBm25B + kBm25B * d / state->avgdl)));
    }
    if (k > 0) {
      auto& best = state->best;
      if (!heap_full) {
        best.push_back(score);
        std::push_heap(best.begin(), best.end(), std::greater<double>());
      } else if (score > best.front()) {
        std::pop_heap(best.begin(), best.end(), std::greater<double>());
        best.back() = score;
        std::push_heap(best.begin(), best.end(), std::greater<double>());
      }
    }
    result = -1.0 * score;
  }
  state->has_last = true;
  state->last_rowid = rowid;
  state->last_result = result;
  sqlite3_result_double(ctx, result);
}

// Registers xnai_bm25 on `db` (per connection, like every SQL function).
Status RegisterRankFunction(sqlite3* db) {
  fts5_api* api = nullptr;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_bind_pointer(stmt, 1, static_cast<void*>(&api), "fts5_api_ptr", nullptr);
    rc = sqlite3_step(stmt);
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK || api == nullptr || api->iVersion < 2) {
    return Status::Internal("this SQLite has no FTS5 extension API");
  }
  rc = api->xCreateFunction(api, "xnai_bm25", nullptr, RankFunction, nullptr);
  if (rc != SQLITE_OK) return sqlite::StatusFromSqlite(rc, db, "register xnai_bm25");
  return Status::Ok();
}

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
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(db, std::string(kCollectionSelect) + "WHERE c.name = ?1"));
  stmt.BindText(1, name);
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Collection>();
  return std::optional<Collection>(ReadCollection(stmt));
}

// The collection's id, or NotFound.
Result<int64_t> CollectionId(sqlite3* db, const std::string& name) {
  XNAI_ASSIGN_OR_RETURN(Stmt stmt,
                              Stmt::Prepare(db, "SELECT id FROM collections WHERE name = ?1"));
  stmt.BindText(1, name);
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Err(CollectionNotFound(name));
  return stmt.ColumnInt(0);
}

Result<std::optional<Document>> LoadDocument(sqlite3* db, int64_t id) {
  XNAI_ASSIGN_OR_RETURN(Stmt stmt,
                              Stmt::Prepare(db, std::string(kDocumentSelect) + "WHERE d.id = ?1"));
  stmt.BindInt(1, id);
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
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
      {2, "collection_id in chunks and chunks_fts", kMigration2},
      {3, "vector_spaces, chunk_vectors, vector_log", kMigration3},
      {4, "conversations, messages", kMigration4},
  };
  return kMigrations;
}

int SqliteSchemaVersion() { return SqliteMigrations().back().version; }

// --- open / close ------------------------------------------------------------

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& db_path,
                                               const SqliteOptions& options) {
  XNAI_ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store,
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
    XNAI_RETURN_IF_ERROR(store->CheckSchemaReadOnly());
  } else {
    if (db_path.has_parent_path()) {
      std::filesystem::create_directories(db_path.parent_path(), ec);
      if (ec) {
        return Err(Status::IOError("create directory '" + db_path.parent_path().string() +
                                   "': " + ec.message()));
      }
    }
    XNAI_RETURN_IF_ERROR(store->OpenWriterAndMigrate());
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
  if (Status s = RegisterRankFunction(db); !s.ok()) {
    sqlite3_close_v2(db);
    return Err(std::move(s));
  }
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
  XNAI_ASSIGN_OR_RETURN(sqlite3 * db, OpenConnection(/*writer=*/false));
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
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(
      Stmt insert,
      Stmt::Prepare(writer_,
                    "INSERT INTO collections (name, description, created_at) VALUES (?1, ?2, ?3)"));
  insert.BindText(1, name).BindText(2, description).BindInt(3, Now());
  Status s = insert.Exec();
  if (s.code() == Status::Code::kAlreadyExists) {
    return Err(Status::AlreadyExists("collection '" + name + "' already exists"));
  }
  XNAI_RETURN_IF_ERROR(s);
  XNAI_ASSIGN_OR_RETURN(std::optional<Collection> created, LoadCollection(writer_, name));
  if (!created) return Err(Status::Internal("collection vanished after insert"));
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return *created;
}

Result<Collection> SqliteStore::EnsureCollection(const std::string& name) {
  if (!IsValidCollectionName(name)) return Err(InvalidCollectionName(name));
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  // Look first without the write lock, so an existing collection does not
  // need the lock (another process may hold it for a while).
  XNAI_ASSIGN_OR_RETURN(std::optional<Collection> existing, LoadCollection(writer_, name));
  if (existing) return *existing;
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(
      Stmt insert, Stmt::Prepare(writer_,
                                 "INSERT OR IGNORE INTO collections (name, description, created_at)"
                                 " VALUES (?1, '', ?2)"));
  insert.BindText(1, name).BindInt(2, Now());
  XNAI_RETURN_IF_ERROR(insert.Exec());
  XNAI_ASSIGN_OR_RETURN(std::optional<Collection> created, LoadCollection(writer_, name));
  if (!created) return Err(Status::Internal("collection vanished after insert"));
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return *created;
}

Result<Collection> SqliteStore::GetCollection(const std::string& name) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_ASSIGN_OR_RETURN(std::optional<Collection> found, LoadCollection(reader.db(), name));
  if (!found) return Err(CollectionNotFound(name));
  return *found;
}

Result<std::vector<Collection>> SqliteStore::ListCollections() {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(), std::string(kCollectionSelect) + "ORDER BY c.name"));
  std::vector<Collection> out;
  while (true) {
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(ReadCollection(stmt));
  }
  return out;
}

Result<std::vector<std::string>> SqliteStore::DeleteCollection(const std::string& name) {
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(writer_, name));
  std::vector<std::string> shas;
  {
    XNAI_ASSIGN_OR_RETURN(
        Stmt select,
        Stmt::Prepare(writer_,
                      "SELECT sha256 FROM documents WHERE collection_id = ?1 ORDER BY id"));
    select.BindInt(1, collection_id);
    while (true) {
      XNAI_ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      shas.push_back(select.ColumnText(0));
    }
  }
  // Documents and chunks go by ON DELETE CASCADE; the chunk delete trigger
  // removes their FTS entries.
  XNAI_ASSIGN_OR_RETURN(Stmt del,
                              Stmt::Prepare(writer_, "DELETE FROM collections WHERE id = ?1"));
  del.BindInt(1, collection_id);
  XNAI_RETURN_IF_ERROR(del.Exec());
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return shas;
}

// --- documents ---------------------------------------------------------------

Result<PutResult> SqliteStore::PutDocument(const DocumentInput& input) {
  if (input.source.empty()) return Err(Status::InvalidArgument("document source is empty"));
  if (input.sha256.empty()) return Err(Status::InvalidArgument("document sha256 is empty"));
  if (input.size_bytes < 0) return Err(Status::InvalidArgument("document size_bytes is negative"));
  XNAI_RETURN_IF_ERROR(CheckWritable());

  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(writer_, input.collection));

  std::optional<int64_t> existing_id;
  {
    XNAI_ASSIGN_OR_RETURN(Stmt find,
                                Stmt::Prepare(writer_,
                                              "SELECT id, sha256 FROM documents"
                                              " WHERE collection_id = ?1 AND source = ?2"));
    find.BindInt(1, collection_id).BindText(2, input.source);
    XNAI_ASSIGN_OR_RETURN(bool row, find.Step());
    if (row) {
      existing_id = find.ColumnInt(0);
      if (find.ColumnText(1) == input.sha256) {
        XNAI_ASSIGN_OR_RETURN(std::optional<Document> doc,
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
    XNAI_ASSIGN_OR_RETURN(
        Stmt del_chunks, Stmt::Prepare(writer_, "DELETE FROM chunks WHERE document_id = ?1"));
    del_chunks.BindInt(1, document_id);
    XNAI_RETURN_IF_ERROR(del_chunks.Exec());
    XNAI_ASSIGN_OR_RETURN(
        Stmt update, Stmt::Prepare(writer_,
                                   "UPDATE documents SET title = ?1, media_type = ?2, sha256 = ?3,"
                                   " size_bytes = ?4, updated_at = ?5 WHERE id = ?6"));
    update.BindText(1, input.title)
        .BindText(2, input.media_type)
        .BindText(3, input.sha256)
        .BindInt(4, input.size_bytes)
        .BindInt(5, now)
        .BindInt(6, document_id);
    XNAI_RETURN_IF_ERROR(update.Exec());
  } else {
    outcome = PutOutcome::kCreated;
    XNAI_ASSIGN_OR_RETURN(
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
    XNAI_RETURN_IF_ERROR(insert.Exec());
    document_id = sqlite3_last_insert_rowid(writer_);
  }

  {
    XNAI_ASSIGN_OR_RETURN(
        Stmt insert_chunk,
        Stmt::Prepare(writer_,
                      "INSERT INTO chunks (document_id, ordinal, text, char_begin, char_end,"
                      " token_count, section, page, collection_id)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
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
          .BindInt(8, chunk.page)
          .BindInt(9, collection_id);
      XNAI_RETURN_IF_ERROR(insert_chunk.Exec());
    }
  }

  XNAI_ASSIGN_OR_RETURN(std::optional<Document> doc, LoadDocument(writer_, document_id));
  if (!doc) return Err(Status::Internal("document vanished inside a transaction"));
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return PutResult{*doc, outcome};
}

Result<std::optional<Document>> SqliteStore::FindDocument(const std::string& collection,
                                                          const std::string& source) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(reader.db(), collection));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(), std::string(kDocumentSelect) +
                                                "WHERE d.collection_id = ?1 AND d.source = ?2"));
  stmt.BindInt(1, collection_id).BindText(2, source);
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Document>();
  return std::optional<Document>(ReadDocument(stmt));
}

Result<Document> SqliteStore::GetDocument(int64_t id) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_ASSIGN_OR_RETURN(std::optional<Document> doc, LoadDocument(reader.db(), id));
  if (!doc) return Err(DocumentNotFound(id));
  return *doc;
}

Result<std::vector<Document>> SqliteStore::ListDocuments(
    const std::optional<std::string>& collection, int limit, int offset) {
  if (limit < 1) return Err(Status::InvalidArgument("limit must be at least 1"));
  if (offset < 0) return Err(Status::InvalidArgument("offset must not be negative"));
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  std::optional<int64_t> collection_id;
  if (HasCollectionFilter(collection)) {
    XNAI_ASSIGN_OR_RETURN(collection_id, CollectionId(reader.db(), *collection));
  }
  XNAI_ASSIGN_OR_RETURN(
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
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(ReadDocument(stmt));
  }
  return out;
}

namespace {

// Rows of (id, document_id, ordinal, text, char_begin, char_end, token_count,
// section, page).
Result<std::vector<Chunk>> ReadChunks(Stmt& stmt) {
  std::vector<Chunk> out;
  while (true) {
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
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

}  // namespace

Result<std::vector<Chunk>> SqliteStore::GetChunks(int64_t document_id) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(std::optional<Document> doc, LoadDocument(reader.db(), document_id));
  if (!doc) return Err(DocumentNotFound(document_id));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(),
                               "SELECT id, document_id, ordinal, text, char_begin, char_end,"
                               " token_count, section, page FROM chunks"
                               " WHERE document_id = ?1 ORDER BY ordinal"));
  stmt.BindInt(1, document_id);
  return ReadChunks(stmt);
}

Result<Document> SqliteStore::DeleteDocument(int64_t id) {
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(std::optional<Document> doc, LoadDocument(writer_, id));
  if (!doc) return Err(DocumentNotFound(id));
  XNAI_ASSIGN_OR_RETURN(Stmt del,
                              Stmt::Prepare(writer_, "DELETE FROM documents WHERE id = ?1"));
  del.BindInt(1, id);
  XNAI_RETURN_IF_ERROR(del.Exec());
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return *doc;
}

Result<int64_t> SqliteStore::CountDocumentsWithSha(const std::string& sha256) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(), "SELECT count(*) FROM documents WHERE sha256 = ?1"));
  stmt.BindText(1, sha256);
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.ColumnInt(0) : int64_t{0};
}

// --- search ------------------------------------------------------------------

namespace {

// True if `expression` is only FTS5 strings joined by " OR " (what
// index::BuildFtsQuery produces): such an expression is valid as it stands
// and inside parentheses, so it needs no separate syntax check.
bool IsQuotedDisjunction(std::string_view expression) {
  size_t pos = 0;
  while (true) {
    if (pos >= expression.size() || expression[pos] != '"') return false;
    ++pos;
    while (true) {  // to the closing quote; "" is an escaped quote
      if (pos >= expression.size()) return false;
      if (expression[pos] == '"') {
        if (pos + 1 < expression.size() && expression[pos + 1] == '"') {
          pos += 2;
          continue;
        }
        ++pos;
        break;
      }
      ++pos;
    }
    if (pos == expression.size()) return true;
    constexpr std::string_view kOr = " OR ";
    if (expression.substr(pos, kOr.size()) != kOr) return false;
    pos += kOr.size();
  }
}

Status InvalidExpression(sqlite3* db) {
  return Status::InvalidArgument(std::string("invalid search expression: ") + sqlite3_errmsg(db));
}

// Steps a search statement, mapping FTS5's plain SQLITE_ERROR for a bad
// MATCH expression to InvalidArgument.
Result<bool> StepSearch(Stmt& stmt, sqlite3* db) {
  auto row = stmt.Step();
  if (!row && stmt.last_rc() == SQLITE_ERROR) return Err(InvalidExpression(db));
  return row;
}

SearchHit ReadHit(const Stmt& stmt) {
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
  return hit;
}

Status CheckSearchQuery(const SearchQuery& query) {
  if (query.fts_expression.empty()) {
    return Status::InvalidArgument("search expression is empty");
  }
  if (query.k < 1 || query.k > kMaxSearchK) {
    return Status::InvalidArgument("k must be between 1 and " + std::to_string(kMaxSearchK));
  }
  return Status::Ok();
}

// The user's expression restricted to the text and section columns, so that
// it can never match the collection_id column (a search for "17" must not
// find every chunk of collection 17).
std::string RestrictToContent(const std::string& expression) {
  return "{text section} : (" + expression + ")";
}

}  // namespace

// Top k first: the inner query ranks with xnai_bm25 inside the FTS table
// alone (the collection filter is part of the MATCH, and pruning skips the
// scoring of rows that cannot reach the top k); only those k rows are joined
// with documents and collections and get a snippet, which needs an FTS5
// cursor positioned on the row: a second MATCH of the same expression
// restricted to that rowid.
Result<std::vector<SearchHit>> SqliteStore::SearchChunks(const SearchQuery& query) {
  XNAI_RETURN_IF_ERROR(CheckSearchQuery(query));
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  sqlite3* db = reader.db();
  XNAI_RETURN_IF_ERROR(BeginRead(db));
  std::optional<int64_t> collection_id;
  if (HasCollectionFilter(query.collection)) {
    XNAI_ASSIGN_OR_RETURN(collection_id, CollectionId(db, *query.collection));
  }
  const std::string filter =
      collection_id ? " AND collection_id : \"" + std::to_string(*collection_id) + "\"" : "";
  if (!IsQuotedDisjunction(query.fts_expression)) {
    // Check the expression as given: wrapped in parentheses, something like
    // `a) OR (b` would turn valid.
    XNAI_ASSIGN_OR_RETURN(
        Stmt check,
        Stmt::Prepare(db, "SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ?1 AND rowid = 0"));
    check.BindText(1, query.fts_expression);
    auto checked = StepSearch(check, db);
    if (!checked) return Err(checked.error());
  }
  const std::string match = RestrictToContent(query.fts_expression) + filter;

  // snippet(): column 0 (text), the match markers, "…" where text was cut,
  // at most 24 tokens.
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(
          db,
          "WITH top(id, score) AS MATERIALIZED ("
          "  SELECT rowid, xnai_bm25(chunks_fts, ?2, ?3, 1.0, 0.25) AS score FROM chunks_fts"
          "  WHERE chunks_fts MATCH ?1 ORDER BY score, rowid LIMIT ?2)"
          " SELECT k.id, k.document_id, col.name, d.source, d.title, k.section, k.page, k.text,"
          "  (SELECT snippet(chunks_fts, 0, ?4, ?5, '…', 24) FROM chunks_fts"
          "    WHERE chunks_fts MATCH ?1 AND rowid = top.id),"
          "  top.score"
          " FROM top"
          " JOIN chunks k ON k.id = top.id"
          " JOIN documents d ON d.id = k.document_id"
          " JOIN collections col ON col.id = d.collection_id"
          " ORDER BY top.score, top.id"));
  stmt.BindText(1, match)
      .BindInt(2, query.k)
      .BindInt(3, collection_id ? 1 : 0)
      .BindText(4, std::string_view(&kMarkBegin, 1))
      .BindText(5, std::string_view(&kMarkEnd, 1));
  std::vector<SearchHit> hits;
  while (true) {
    XNAI_ASSIGN_OR_RETURN(bool row, StepSearch(stmt, db));
    if (!row) break;
    hits.push_back(ReadHit(stmt));
    // Pruned rows never reach the top k (k real scores beat them); one here
    // would mean the pruning bound is wrong.
    if (hits.back().score <= -kPrunedScore) {
      return Err(Status::Internal("search returned a pruned row"));
    }
  }
  return hits;
}

Result<std::vector<SearchHit>> SqliteStore::TEST_SearchChunksFullScan(const SearchQuery& query) {
  XNAI_RETURN_IF_ERROR(CheckSearchQuery(query));
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  sqlite3* db = reader.db();
  XNAI_RETURN_IF_ERROR(BeginRead(db));
  std::optional<int64_t> collection_id;
  if (HasCollectionFilter(query.collection)) {
    XNAI_ASSIGN_OR_RETURN(collection_id, CollectionId(db, *query.collection));
  }
  // Every matching row scored without pruning, filtered by a join, with a
  // snippet: the straightforward form of the query.
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(db,
                    "SELECT k.id, k.document_id, col.name, d.source, d.title, k.section, k.page,"
                    " k.text, snippet(chunks_fts, 0, ?4, ?5, '…', 24),"
                    " xnai_bm25(chunks_fts, 0, 0, 1.0, 0.25) AS score"
                    " FROM chunks_fts"
                    " JOIN chunks k ON k.id = chunks_fts.rowid"
                    " JOIN documents d ON d.id = k.document_id"
                    " JOIN collections col ON col.id = d.collection_id"
                    " WHERE chunks_fts MATCH ?1 AND (?2 IS NULL OR d.collection_id = ?2)"
                    " ORDER BY score, k.id LIMIT ?3"));
  stmt.BindText(1, RestrictToContent(query.fts_expression));
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
    XNAI_ASSIGN_OR_RETURN(bool row, StepSearch(stmt, db));
    if (!row) break;
    hits.push_back(ReadHit(stmt));
  }
  return hits;
}

// --- hits by id and vectors ----------------------------------------------------

Result<std::vector<SearchHit>> SqliteStore::GetHits(const std::vector<int64_t>& chunk_ids) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(reader.db(),
                    "SELECT k.id, k.document_id, col.name, d.source, d.title, k.section, k.page,"
                    " k.text, '', 0.0 FROM chunks k"
                    " JOIN documents d ON d.id = k.document_id"
                    " JOIN collections col ON col.id = d.collection_id WHERE k.id = ?1"));
  std::vector<SearchHit> hits;
  hits.reserve(chunk_ids.size());
  for (int64_t id : chunk_ids) {
    stmt.Reset();
    stmt.BindInt(1, id);
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) hits.push_back(ReadHit(stmt));
  }
  return hits;
}

namespace {

Result<std::optional<VectorSpace>> LoadVectorSpace(sqlite3* db, int64_t collection_id) {
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(db,
                    "SELECT s.model, s.dim, s.log_floor,"
                    // A bare max() so SQLite reads it off the index's end.
                    " (SELECT max(seq) FROM vector_log l WHERE l.collection_id = ?1)"
                    " FROM vector_spaces s WHERE s.collection_id = ?1"));
  stmt.BindInt(1, collection_id);
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<VectorSpace>();
  VectorSpace space;
  space.collection_id = collection_id;
  space.model = stmt.ColumnText(0);
  space.dim = stmt.ColumnInt(1);
  space.log_floor = stmt.ColumnInt(2);
  space.log_head = std::max(stmt.ColumnIsNull(3) ? 0 : stmt.ColumnInt(3), space.log_floor);
  return std::optional<VectorSpace>(std::move(space));
}

// float32 little-endian (the only byte order xnai builds for: x86-64, arm64).
Result<std::vector<float>> DecodeVector(std::string_view blob, int64_t chunk_id) {
  if (blob.size() % sizeof(float) != 0) {
    return Err(Status::Corruption("vector of chunk " + std::to_string(chunk_id) + " has " +
                                  std::to_string(blob.size()) + " bytes"));
  }
  std::vector<float> values(blob.size() / sizeof(float));
  std::memcpy(values.data(), blob.data(), blob.size());
  return values;
}

}  // namespace

Result<std::optional<VectorSpace>> SqliteStore::GetVectorSpace(const std::string& collection) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(reader.db(), collection));
  return LoadVectorSpace(reader.db(), collection_id);
}

Result<VectorSpace> SqliteStore::SetVectorSpace(const std::string& collection,
                                                const std::string& model, int64_t dim) {
  if (model.empty()) return Err(Status::InvalidArgument("vector space model is empty"));
  if (dim < 1) return Err(Status::InvalidArgument("vector space dimension must be at least 1"));
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(writer_, collection));
  XNAI_ASSIGN_OR_RETURN(std::optional<VectorSpace> current,
                        LoadVectorSpace(writer_, collection_id));
  if (current && current->model == model && current->dim == dim) return *current;
  if (current) {
    XNAI_ASSIGN_OR_RETURN(
        Stmt del, Stmt::Prepare(writer_, "DELETE FROM chunk_vectors WHERE collection_id = ?1"));
    del.BindInt(1, collection_id);
    XNAI_RETURN_IF_ERROR(del.Exec());
  }
  XNAI_ASSIGN_OR_RETURN(
      Stmt put, Stmt::Prepare(writer_,
                              "INSERT INTO vector_spaces (collection_id, model, dim) VALUES"
                              " (?1, ?2, ?3) ON CONFLICT (collection_id) DO UPDATE SET"
                              " model = excluded.model, dim = excluded.dim"));
  put.BindInt(1, collection_id).BindText(2, model).BindInt(3, dim);
  XNAI_RETURN_IF_ERROR(put.Exec());
  XNAI_ASSIGN_OR_RETURN(std::optional<VectorSpace> space, LoadVectorSpace(writer_, collection_id));
  if (!space) return Err(Status::Internal("vector space vanished inside a transaction"));
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return *space;
}

Result<std::vector<std::string>> SqliteStore::CollectionsWithVectors() {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(reader.db(),
                                                 "SELECT c.name FROM vector_spaces s JOIN"
                                                 " collections c ON c.id = s.collection_id"
                                                 " ORDER BY c.name"));
  std::vector<std::string> names;
  while (true) {
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    names.push_back(stmt.ColumnText(0));
  }
  return names;
}

Result<int64_t> SqliteStore::CountVectors(const std::string& collection) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(reader.db(), collection));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(reader.db(), "SELECT count(*) FROM chunk_vectors WHERE collection_id = ?1"));
  stmt.BindInt(1, collection_id);
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Err(Status::Internal("count returned no row"));
  return stmt.ColumnInt(0);
}

Result<std::vector<Chunk>> SqliteStore::ChunksWithoutVectors(const std::string& collection,
                                                             int64_t after_chunk_id, int limit) {
  if (limit < 1) return Err(Status::InvalidArgument("limit must be at least 1"));
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(reader.db(), collection));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(),
                               "SELECT k.id, k.document_id, k.ordinal, k.text, k.char_begin,"
                               " k.char_end, k.token_count, k.section, k.page FROM chunks k"
                               " WHERE k.collection_id = ?1 AND k.id > ?2 AND NOT EXISTS"
                               " (SELECT 1 FROM chunk_vectors v WHERE v.chunk_id = k.id)"
                               " ORDER BY k.id LIMIT ?3"));
  stmt.BindInt(1, collection_id).BindInt(2, after_chunk_id).BindInt(3, limit);
  return ReadChunks(stmt);
}

Result<int64_t> SqliteStore::PutVectors(const std::string& collection, const std::string& model,
                                        const std::vector<ChunkVector>& vectors) {
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(writer_, collection));
  XNAI_ASSIGN_OR_RETURN(std::optional<VectorSpace> space, LoadVectorSpace(writer_, collection_id));
  if (!space || space->model != model) {
    return Err(Status::FailedPrecondition(
        "collection '" + collection + "' holds vectors of " +
        (space ? "model '" + space->model + "'" : std::string("no model yet")) +
        ", not of '" + model + "'"));
  }
  for (const ChunkVector& v : vectors) {
    if (static_cast<int64_t>(v.values.size()) != space->dim) {
      return Err(Status::InvalidArgument("vector of chunk " + std::to_string(v.chunk_id) +
                                         " has " + std::to_string(v.values.size()) +
                                         " values; the space has " + std::to_string(space->dim)));
    }
  }
  // Replacing deletes first so the log records the old vector's removal.
  XNAI_ASSIGN_OR_RETURN(Stmt del,
                        Stmt::Prepare(writer_, "DELETE FROM chunk_vectors WHERE chunk_id = ?1"));
  XNAI_ASSIGN_OR_RETURN(
      Stmt insert,
      Stmt::Prepare(writer_,
                    "INSERT INTO chunk_vectors (chunk_id, collection_id, vector)"
                    " SELECT id, collection_id, ?2 FROM chunks WHERE id = ?1 AND collection_id = ?3"));
  int64_t stored = 0;
  for (const ChunkVector& v : vectors) {
    del.Reset();
    del.BindInt(1, v.chunk_id);
    XNAI_RETURN_IF_ERROR(del.Exec());
    insert.Reset();
    insert.BindInt(1, v.chunk_id)
        .BindBlob(2, v.values.data(), v.values.size() * sizeof(float))
        .BindInt(3, collection_id);
    XNAI_RETURN_IF_ERROR(insert.Exec());
    stored += sqlite3_changes(writer_);
  }
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return stored;
}

Result<std::vector<ChunkVector>> SqliteStore::ListVectors(const std::string& collection,
                                                          int64_t after_chunk_id, int limit) {
  if (limit < 1) return Err(Status::InvalidArgument("limit must be at least 1"));
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(reader.db(), collection));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(),
                               "SELECT chunk_id, vector FROM chunk_vectors"
                               " WHERE collection_id = ?1 AND chunk_id > ?2"
                               " ORDER BY chunk_id LIMIT ?3"));
  stmt.BindInt(1, collection_id).BindInt(2, after_chunk_id).BindInt(3, limit);
  std::vector<ChunkVector> out;
  while (true) {
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ChunkVector v;
    v.chunk_id = stmt.ColumnInt(0);
    XNAI_ASSIGN_OR_RETURN(v.values, DecodeVector(stmt.ColumnBlob(1), v.chunk_id));
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<ChunkVector>> SqliteStore::GetVectors(const std::vector<int64_t>& chunk_ids) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(), "SELECT vector FROM chunk_vectors WHERE chunk_id = ?1"));
  std::vector<ChunkVector> out;
  for (int64_t id : chunk_ids) {
    stmt.Reset();
    stmt.BindInt(1, id);
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) continue;
    ChunkVector v;
    v.chunk_id = id;
    XNAI_ASSIGN_OR_RETURN(v.values, DecodeVector(stmt.ColumnBlob(0), id));
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<VectorChange>> SqliteStore::VectorChanges(const std::string& collection,
                                                             int64_t after_seq, int limit) {
  if (limit < 1) return Err(Status::InvalidArgument("limit must be at least 1"));
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(reader.db(), collection));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(),
                               "SELECT seq, chunk_id, added FROM vector_log"
                               " WHERE collection_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"));
  stmt.BindInt(1, collection_id).BindInt(2, after_seq).BindInt(3, limit);
  std::vector<VectorChange> out;
  while (true) {
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back({stmt.ColumnInt(0), stmt.ColumnInt(1), stmt.ColumnInt(2) != 0});
  }
  return out;
}

Status SqliteStore::TrimVectorLog(const std::string& collection, int64_t up_to_seq) {
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(int64_t collection_id, CollectionId(writer_, collection));
  XNAI_ASSIGN_OR_RETURN(
      Stmt del, Stmt::Prepare(writer_,
                              "DELETE FROM vector_log WHERE collection_id = ?1 AND seq <= ?2"));
  del.BindInt(1, collection_id).BindInt(2, up_to_seq);
  XNAI_RETURN_IF_ERROR(del.Exec());
  XNAI_ASSIGN_OR_RETURN(
      Stmt floor, Stmt::Prepare(writer_,
                                "UPDATE vector_spaces SET log_floor = max(log_floor, ?2)"
                                " WHERE collection_id = ?1"));
  floor.BindInt(1, collection_id).BindInt(2, up_to_seq);
  XNAI_RETURN_IF_ERROR(floor.Exec());
  return txn.Commit();
}

// --- conversations ---------------------------------------------------------------

namespace {

constexpr size_t kMaxTitleBytes = 200;
constexpr const char* kConversationSelect =
    "SELECT c.id, c.title, c.created_at, c.updated_at,"
    " (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) FROM conversations c ";

Conversation ReadConversation(const Stmt& stmt) {
  Conversation c;
  c.id = stmt.ColumnInt(0);
  c.title = stmt.ColumnText(1);
  c.created_at = stmt.ColumnInt(2);
  c.updated_at = stmt.ColumnInt(3);
  c.message_count = stmt.ColumnInt(4);
  return c;
}

Status ConversationNotFound(int64_t id) {
  return Status::NotFound("conversation " + std::to_string(id) + " does not exist");
}

Result<std::optional<Conversation>> LoadConversation(sqlite3* db, int64_t id) {
  XNAI_ASSIGN_OR_RETURN(Stmt stmt,
                        Stmt::Prepare(db, std::string(kConversationSelect) + "WHERE c.id = ?1"));
  stmt.BindInt(1, id);
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Conversation>();
  return std::optional<Conversation>(ReadConversation(stmt));
}

// A title cut to kMaxTitleBytes on a UTF-8 boundary; InvalidArgument when empty.
Result<std::string> CleanTitle(const std::string& title) {
  if (title.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Err(Status::InvalidArgument("conversation title is empty"));
  }
  if (title.size() <= kMaxTitleBytes) return title;
  size_t cut = kMaxTitleBytes;
  while (cut > 0 && (static_cast<unsigned char>(title[cut]) & 0xC0) == 0x80) --cut;
  return title.substr(0, cut);
}

}  // namespace

Result<Conversation> SqliteStore::CreateConversation(const std::string& title) {
  XNAI_ASSIGN_OR_RETURN(std::string clean, CleanTitle(title));
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(Stmt insert,
                        Stmt::Prepare(writer_,
                                      "INSERT INTO conversations (title, created_at, updated_at)"
                                      " VALUES (?1, ?2, ?2)"));
  insert.BindText(1, clean).BindInt(2, Now());
  XNAI_RETURN_IF_ERROR(insert.Exec());
  XNAI_ASSIGN_OR_RETURN(std::optional<Conversation> c,
                        LoadConversation(writer_, sqlite3_last_insert_rowid(writer_)));
  if (!c) return Err(Status::Internal("conversation vanished inside a transaction"));
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return *c;
}

Result<Conversation> SqliteStore::GetConversation(int64_t id) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_ASSIGN_OR_RETURN(std::optional<Conversation> c, LoadConversation(reader.db(), id));
  if (!c) return Err(ConversationNotFound(id));
  return *c;
}

Result<std::vector<Conversation>> SqliteStore::ListConversations(int limit, int offset) {
  if (limit < 1 || offset < 0) {
    return Err(Status::InvalidArgument("limit must be >= 1 and offset >= 0"));
  }
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(), std::string(kConversationSelect) +
                                                "ORDER BY c.updated_at DESC, c.id DESC"
                                                " LIMIT ?1 OFFSET ?2"));
  stmt.BindInt(1, limit).BindInt(2, offset);
  std::vector<Conversation> out;
  while (true) {
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(ReadConversation(stmt));
  }
  return out;
}

Result<Conversation> SqliteStore::RenameConversation(int64_t id, const std::string& title) {
  XNAI_ASSIGN_OR_RETURN(std::string clean, CleanTitle(title));
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(
      Stmt update,
      Stmt::Prepare(writer_, "UPDATE conversations SET title = ?1, updated_at = ?2 WHERE id = ?3"));
  update.BindText(1, clean).BindInt(2, Now()).BindInt(3, id);
  XNAI_RETURN_IF_ERROR(update.Exec());
  XNAI_ASSIGN_OR_RETURN(std::optional<Conversation> c, LoadConversation(writer_, id));
  if (!c) return Err(ConversationNotFound(id));
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return *c;
}

Result<Conversation> SqliteStore::DeleteConversation(int64_t id) {
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(std::optional<Conversation> c, LoadConversation(writer_, id));
  if (!c) return Err(ConversationNotFound(id));
  XNAI_ASSIGN_OR_RETURN(Stmt del,
                        Stmt::Prepare(writer_, "DELETE FROM conversations WHERE id = ?1"));
  del.BindInt(1, id);
  XNAI_RETURN_IF_ERROR(del.Exec());
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return *c;
}

Result<Message> SqliteStore::AddMessage(const Message& message) {
  if (message.role != "user" && message.role != "assistant") {
    return Err(Status::InvalidArgument("message role must be user or assistant"));
  }
  const std::string status = message.status.empty() ? "complete" : message.status;
  if (status != "complete" && status != "interrupted") {
    return Err(Status::InvalidArgument("message status must be complete or interrupted"));
  }
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_ASSIGN_OR_RETURN(WriteTransaction txn, WriteTransaction::Begin(writer_));
  XNAI_ASSIGN_OR_RETURN(std::optional<Conversation> c,
                        LoadConversation(writer_, message.conversation_id));
  if (!c) return Err(ConversationNotFound(message.conversation_id));
  const int64_t now = Now();
  XNAI_ASSIGN_OR_RETURN(
      Stmt insert,
      Stmt::Prepare(writer_,
                    "INSERT INTO messages (conversation_id, role, content, sources, status,"
                    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  insert.BindInt(1, message.conversation_id)
      .BindText(2, message.role)
      .BindText(3, message.content)
      .BindText(4, message.sources.empty() ? "[]" : message.sources)
      .BindText(5, status)
      .BindInt(6, now);
  XNAI_RETURN_IF_ERROR(insert.Exec());
  Message stored = message;
  stored.id = sqlite3_last_insert_rowid(writer_);
  stored.status = status;
  if (stored.sources.empty()) stored.sources = "[]";
  stored.created_at = now;
  XNAI_ASSIGN_OR_RETURN(
      Stmt touch, Stmt::Prepare(writer_, "UPDATE conversations SET updated_at = ?1 WHERE id = ?2"));
  touch.BindInt(1, now).BindInt(2, message.conversation_id);
  XNAI_RETURN_IF_ERROR(touch.Exec());
  XNAI_RETURN_IF_ERROR(txn.Commit());
  return stored;
}

Result<std::vector<Message>> SqliteStore::GetMessages(int64_t conversation_id) {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_RETURN_IF_ERROR(BeginRead(reader.db()));
  XNAI_ASSIGN_OR_RETURN(std::optional<Conversation> c,
                        LoadConversation(reader.db(), conversation_id));
  if (!c) return Err(ConversationNotFound(conversation_id));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(reader.db(),
                               "SELECT id, role, content, sources, status, created_at FROM"
                               " messages WHERE conversation_id = ?1 ORDER BY id"));
  stmt.BindInt(1, conversation_id);
  std::vector<Message> out;
  while (true) {
    XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    Message m;
    m.id = stmt.ColumnInt(0);
    m.conversation_id = conversation_id;
    m.role = stmt.ColumnText(1);
    m.content = stmt.ColumnText(2);
    m.sources = stmt.ColumnText(3);
    m.status = stmt.ColumnText(4);
    m.created_at = stmt.ColumnInt(5);
    out.push_back(std::move(m));
  }
  return out;
}

Result<StoreStats> SqliteStore::Stats() {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  XNAI_ASSIGN_OR_RETURN(Stmt stmt,
                              Stmt::Prepare(reader.db(),
                                            "SELECT (SELECT count(*) FROM collections),"
                                            " (SELECT count(*) FROM documents),"
                                            " (SELECT count(*) FROM chunks),"
                                            " (SELECT count(*) FROM chunk_vectors),"
                                            " (SELECT page_count FROM pragma_page_count()) *"
                                            " (SELECT page_size FROM pragma_page_size())"));
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Err(Status::Internal("stats query returned no row"));
  StoreStats stats;
  stats.collections = stmt.ColumnInt(0);
  stats.documents = stmt.ColumnInt(1);
  stats.chunks = stmt.ColumnInt(2);
  stats.vectors = stmt.ColumnInt(3);
  stats.db_bytes = stmt.ColumnInt(4);
  return stats;
}

// --- test hooks --------------------------------------------------------------

Result<int64_t> SqliteStore::TEST_SetMaxPageCount(int64_t pages) {
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  std::string sql = "PRAGMA max_page_count = " + std::to_string(pages);
  return sqlite::QueryInt(writer_, sql.c_str(), "set max_page_count");
}

Result<int64_t> SqliteStore::TEST_PageCount() {
  XNAI_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  return sqlite::QueryInt(reader.db(), "PRAGMA page_count", "page_count");
}

Result<int64_t> SqliteStore::TEST_IndexedChunksWithTerm(const std::string& term) {
  XNAI_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(writer_mu_);
  XNAI_RETURN_IF_ERROR(
      sqlite::ExecScript(writer_,
                         "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_vocab"
                         " USING fts5vocab(main, chunks_fts, row)",
                         "create fts5vocab"));
  XNAI_ASSIGN_OR_RETURN(
      Stmt stmt, Stmt::Prepare(writer_, "SELECT doc FROM temp.chunks_fts_vocab WHERE term = ?1"));
  stmt.BindText(1, term);
  XNAI_ASSIGN_OR_RETURN(bool row, stmt.Step());
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
