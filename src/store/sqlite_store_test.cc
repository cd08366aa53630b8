// SQLite specifics of the Store: files, migrations, locking, disk full, and
// that the FTS index itself (not just query results) follows every change.
#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "store/store_test_util.h"

namespace xnai::store {
namespace {

using testing::MakeDocument;
using testing::TempDir;

// A raw connection, as another process would hold one.
class RawConnection {
 public:
  explicit RawConnection(const std::filesystem::path& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
  }
  ~RawConnection() { sqlite3_close_v2(db_); }
  int Exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  int64_t QueryInt(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
    int64_t value = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
  }
  std::string QueryText(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
    std::string value;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return value;
  }

 private:
  sqlite3* db_ = nullptr;
};

Result<std::unique_ptr<SqliteStore>> Open(const std::filesystem::path& path,
                                          SqliteOptions options = {}) {
  return SqliteStore::Open(path, options);
}

TEST(SqliteStoreTest, CreatesWalDatabaseAtCurrentSchemaVersion) {
  TempDir dir;
  auto path = dir.path() / "sub" / "dir" / "xnai.db";  // parent directories are created
  ASSERT_OK_AND_ASSIGN(auto store, Open(path));
  EXPECT_EQ(store->TEST_MigrationsApplied(), static_cast<int>(SqliteMigrations().size()));
  EXPECT_TRUE(std::filesystem::exists(path));
  RawConnection raw(path);
  EXPECT_EQ(raw.QueryText("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.QueryInt("PRAGMA user_version"), SqliteSchemaVersion());
  ASSERT_OK(store->TEST_CheckIntegrity());
}

TEST(SqliteStoreTest, MigrationsAreOrderedAndContiguous) {
  const auto& migrations = SqliteMigrations();
  ASSERT_FALSE(migrations.empty());
  for (size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<int>(i) + 1);
    EXPECT_FALSE(migrations[i].description.empty());
  }
  EXPECT_EQ(SqliteSchemaVersion(), migrations.back().version);
}

TEST(SqliteStoreTest, ReopenKeepsDataAndDoesNotRerunMigrations) {
  TempDir dir;
  auto path = dir.path() / "xnai.db";
  int64_t doc_id = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto store, Open(path));
    ASSERT_OK(store->CreateCollection("docs", "kept"));
    ASSERT_OK_AND_ASSIGN(auto put,
                         store->PutDocument(MakeDocument("docs", "/a", {"persistent wombat"})));
    doc_id = put.document.id;
  }
  ASSERT_OK_AND_ASSIGN(auto store, Open(path));
  EXPECT_EQ(store->TEST_MigrationsApplied(), 0);
  ASSERT_OK_AND_ASSIGN(Collection docs, store->GetCollection("docs"));
  EXPECT_EQ(docs.description, "kept");
  EXPECT_EQ(docs.document_count, 1);
  ASSERT_OK_AND_ASSIGN(Document doc, store->GetDocument(doc_id));
  EXPECT_EQ(doc.source, "/a");
  SearchQuery q;
  q.fts_expression = "\"wombat\"";
  ASSERT_OK_AND_ASSIGN(auto hits, store->SearchChunks(q));
  EXPECT_EQ(hits.size(), 1u);
}

TEST(SqliteStoreTest, NewerSchemaVersionIsRefused) {
  TempDir dir;
  auto path = dir.path() / "xnai.db";
  { ASSERT_OK(Open(path)); }
  {
    RawConnection raw(path);
    ASSERT_EQ(raw.Exec("PRAGMA user_version = 999"), SQLITE_OK);
  }
  auto store = Open(path);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(store.error().message(), "database schema version 999 is newer than this xnai (" +
                                         std::to_string(SqliteSchemaVersion()) + ")");
  // Read-only opens refuse it too.
  SqliteOptions read_only;
  read_only.read_only = true;
  EXPECT_CODE(Open(path, read_only), kFailedPrecondition);
  // Nothing was changed.
  RawConnection raw(path);
  EXPECT_EQ(raw.QueryInt("PRAGMA user_version"), 999);
}

TEST(SqliteStoreTest, GarbageFileIsCorruptionNamingThePath) {
  TempDir dir;
  auto path = dir.path() / "garbage.db";
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 200; ++i) out << "this is definitely not a database file ";
  }
  auto store = Open(path);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), Status::Code::kCorruption) << store.error().ToString();
  EXPECT_NE(store.error().message().find(path.string()), std::string::npos)
      << store.error().message();
}

TEST(SqliteStoreTest, CorruptedDatabaseIsReportedNotCrashed) {
  TempDir dir;
  auto path = dir.path() / "xnai.db";
  {
    ASSERT_OK_AND_ASSIGN(auto store, Open(path));
    ASSERT_OK(store->CreateCollection("docs", ""));
  }
  // Overwrite the header's magic string.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << "XXXXXXXXXXXXXXXX";
  }
  EXPECT_CODE(Open(path), kCorruption);
}

TEST(SqliteStoreTest, ForeignSqliteDatabaseIsRefused) {
  TempDir dir;
  auto path = dir.path() / "other.db";
  {
    RawConnection raw(path);
    ASSERT_EQ(raw.Exec("CREATE TABLE something_else (x INTEGER)"), SQLITE_OK);
  }
  EXPECT_CODE(Open(path), kFailedPrecondition);
  RawConnection raw(path);
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM sqlite_schema WHERE name = 'collections'"), 0);
}

TEST(SqliteStoreTest, DirectoryAsDatabaseIsAnError) {
  TempDir dir;
  auto store = Open(dir.path());
  ASSERT_FALSE(store.has_value());
  EXPECT_NE(store.error().code(), Status::Code::kInternal) << store.error().ToString();
  EXPECT_CODE(Open(""), kInvalidArgument);
}

TEST(SqliteStoreTest, ReadOnlyStoreReadsButRefusesWrites) {
  TempDir dir;
  auto path = dir.path() / "xnai.db";
  {
    ASSERT_OK_AND_ASSIGN(auto store, Open(path));
    ASSERT_OK(store->CreateCollection("docs", ""));
    ASSERT_OK(store->PutDocument(MakeDocument("docs", "/a", {"readable tapir"})));
  }
  SqliteOptions options;
  options.read_only = true;
  ASSERT_OK_AND_ASSIGN(auto store, Open(path, options));
  ASSERT_OK_AND_ASSIGN(auto docs, store->ListDocuments(std::nullopt, 10, 0));
  EXPECT_EQ(docs.size(), 1u);
  SearchQuery q;
  q.fts_expression = "\"tapir\"";
  ASSERT_OK_AND_ASSIGN(auto hits, store->SearchChunks(q));
  EXPECT_EQ(hits.size(), 1u);
  EXPECT_CODE(store->CreateCollection("new", ""), kFailedPrecondition);
  EXPECT_CODE(store->EnsureCollection("docs"), kFailedPrecondition);
  EXPECT_CODE(store->PutDocument(MakeDocument("docs", "/b", {"x"})), kFailedPrecondition);
  EXPECT_CODE(store->DeleteDocument(docs[0].id), kFailedPrecondition);
  EXPECT_CODE(store->DeleteCollection("docs"), kFailedPrecondition);

  EXPECT_CODE(Open(dir.path() / "missing.db", options), kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "missing.db"));
}

TEST(SqliteStoreTest, LockedDatabaseIsUnavailableWithinTheBusyTimeout) {
  TempDir dir;
  auto path = dir.path() / "xnai.db";
  SqliteOptions options;
  options.busy_timeout_ms = 200;
  ASSERT_OK_AND_ASSIGN(auto store, Open(path, options));
  ASSERT_OK(store->CreateCollection("docs", ""));
  ASSERT_OK(store->PutDocument(MakeDocument("docs", "/before", {"visible quokka"})));

  RawConnection other(path);
  ASSERT_EQ(other.Exec("BEGIN EXCLUSIVE"), SQLITE_OK);

  auto start = std::chrono::steady_clock::now();
  auto put = store->PutDocument(MakeDocument("docs", "/during", {"blocked"}));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), Status::Code::kUnavailable);
  EXPECT_EQ(put.error().message(), "database is locked by another process; retry later");
  EXPECT_GE(elapsed, std::chrono::milliseconds(150));
  EXPECT_LT(elapsed, std::chrono::milliseconds(3000));
  EXPECT_CODE(store->CreateCollection("other", ""), kUnavailable);
  EXPECT_CODE(store->DeleteCollection("docs"), kUnavailable);
  // An existing collection does not need the lock.
  ASSERT_OK(store->EnsureCollection("docs"));

  // WAL: readers are not blocked by the other writer.
  SearchQuery q;
  q.fts_expression = "\"quokka\"";
  ASSERT_OK_AND_ASSIGN(auto hits, store->SearchChunks(q));
  EXPECT_EQ(hits.size(), 1u);

  ASSERT_EQ(other.Exec("COMMIT"), SQLITE_OK);
  ASSERT_OK(store->PutDocument(MakeDocument("docs", "/after", {"unblocked"})));
  ASSERT_OK_AND_ASSIGN(auto stats, store->Stats());
  EXPECT_EQ(stats.documents, 2);  // /before and /after, never /during
  ASSERT_OK(store->TEST_CheckIntegrity());
}

TEST(SqliteStoreTest, FullDiskIsResourceExhaustedAndStoreStaysUsable) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, Open(dir.path() / "xnai.db"));
  ASSERT_OK(store->CreateCollection("docs", ""));
  ASSERT_OK_AND_ASSIGN(auto kept,
                       store->PutDocument(MakeDocument("docs", "/kept", {"surviving narwhal"})));

  ASSERT_OK_AND_ASSIGN(int64_t pages, store->TEST_PageCount());
  ASSERT_OK(store->TEST_SetMaxPageCount(pages + 2));
  std::vector<std::string> big_chunks;
  for (int i = 0; i < 50; ++i) {
    std::string text;
    for (int w = 0; w < 2000; ++w) text += "word" + std::to_string(i * 2000 + w) + " ";
    big_chunks.push_back(text);
  }
  auto put = store->PutDocument(MakeDocument("docs", "/too-big", big_chunks));
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), Status::Code::kResourceExhausted) << put.error().ToString();
  EXPECT_NE(put.error().message().find("disk full"), std::string::npos);

  // Replacing the kept document with too much data fails as well and leaves
  // the old version fully in place.
  auto replace = store->PutDocument(MakeDocument("docs", "/kept", big_chunks));
  EXPECT_CODE(replace, kResourceExhausted);

  // Consistent and readable: the failed writes left nothing behind.
  ASSERT_OK_AND_ASSIGN(auto stats, store->Stats());
  EXPECT_EQ(stats.documents, 1);
  EXPECT_EQ(stats.chunks, 1);
  ASSERT_OK_AND_ASSIGN(auto found, store->FindDocument("docs", "/too-big"));
  EXPECT_FALSE(found.has_value());
  ASSERT_OK_AND_ASSIGN(Document doc, store->GetDocument(kept.document.id));
  EXPECT_EQ(doc.sha256, kept.document.sha256);
  SearchQuery q;
  q.fts_expression = "\"narwhal\"";
  ASSERT_OK_AND_ASSIGN(auto hits, store->SearchChunks(q));
  EXPECT_EQ(hits.size(), 1u);
  q.fts_expression = "\"word5\"";
  ASSERT_OK_AND_ASSIGN(auto none, store->SearchChunks(q));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(int64_t indexed, store->TEST_IndexedChunksWithTerm("word5"));
  EXPECT_EQ(indexed, 0);

  // Once space is back, writes work again.
  ASSERT_OK(store->TEST_SetMaxPageCount(1 << 30));
  ASSERT_OK_AND_ASSIGN(auto later,
                       store->PutDocument(MakeDocument("docs", "/too-big", big_chunks)));
  EXPECT_EQ(later.outcome, PutOutcome::kCreated);
  ASSERT_OK(store->TEST_CheckIntegrity());
}

TEST(SqliteStoreTest, FtsIndexEntriesFollowReplaceAndDeletes) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, Open(dir.path() / "xnai.db"));
  ASSERT_OK(store->CreateCollection("docs", ""));
  ASSERT_OK(store->CreateCollection("other", ""));
  auto indexed = [&](const std::string& term) {
    auto n = store->TEST_IndexedChunksWithTerm(term);
    EXPECT_TRUE(n.has_value()) << n.error().ToString();
    return n.value_or(-1);
  };
  ASSERT_OK_AND_ASSIGN(auto a,
                       store->PutDocument(MakeDocument("docs", "/a", {"zebra one", "zebra two"})));
  ASSERT_OK(store->PutDocument(MakeDocument("other", "/b", {"zebra three", "yak"})));
  EXPECT_EQ(indexed("zebra"), 3);

  // Replace: the old chunks' entries go, the new ones come.
  ASSERT_OK(store->PutDocument(MakeDocument("docs", "/a", {"okapi"})));
  EXPECT_EQ(indexed("zebra"), 1);
  EXPECT_EQ(indexed("okapi"), 1);
  // Section titles are indexed too ("Section 1").
  EXPECT_GE(indexed("section"), 2);

  // Delete document: cascade through chunks fires the FTS delete trigger.
  ASSERT_OK(store->DeleteDocument(a.document.id));
  EXPECT_EQ(indexed("okapi"), 0);
  // Delete collection: cascades two levels.
  ASSERT_OK(store->DeleteCollection("other"));
  EXPECT_EQ(indexed("zebra"), 0);
  EXPECT_EQ(indexed("yak"), 0);
  ASSERT_OK(store->TEST_CheckIntegrity());
}

TEST(SqliteStoreTest, ReplaceBumpsUpdatedAtAndListOrder) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, Open(dir.path() / "xnai.db"));
  int64_t now = 1700000000;
  store->TEST_SetClock([&] { return now; });
  ASSERT_OK(store->CreateCollection("docs", ""));
  ASSERT_OK_AND_ASSIGN(auto first, store->PutDocument(MakeDocument("docs", "/first", {"v1"})));
  now += 10;
  ASSERT_OK(store->PutDocument(MakeDocument("docs", "/second", {"v1"})));
  now += 10;
  ASSERT_OK_AND_ASSIGN(auto replaced, store->PutDocument(MakeDocument("docs", "/first", {"v2"})));
  EXPECT_EQ(replaced.outcome, PutOutcome::kReplaced);
  EXPECT_EQ(replaced.document.created_at, 1700000000);
  EXPECT_EQ(replaced.document.updated_at, 1700000020);
  EXPECT_EQ(first.document.updated_at, 1700000000);
  ASSERT_OK_AND_ASSIGN(auto list, store->ListDocuments(std::nullopt, 10, 0));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].source, "/first");  // most recently updated first
  EXPECT_EQ(list[1].source, "/second");
  // Unchanged does not bump.
  now += 10;
  ASSERT_OK_AND_ASSIGN(auto unchanged, store->PutDocument(MakeDocument("docs", "/second", {"v1"})));
  EXPECT_EQ(unchanged.outcome, PutOutcome::kUnchanged);
  EXPECT_EQ(unchanged.document.updated_at, 1700000010);
}

TEST(SqliteStoreTest, IdsAreNeverReused) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, Open(dir.path() / "xnai.db"));
  ASSERT_OK(store->CreateCollection("docs", ""));
  ASSERT_OK_AND_ASSIGN(auto a, store->PutDocument(MakeDocument("docs", "/a", {"x"})));
  ASSERT_OK_AND_ASSIGN(auto chunks_a, store->GetChunks(a.document.id));
  ASSERT_OK(store->DeleteDocument(a.document.id));
  ASSERT_OK_AND_ASSIGN(auto b, store->PutDocument(MakeDocument("docs", "/b", {"x"})));
  ASSERT_OK_AND_ASSIGN(auto chunks_b, store->GetChunks(b.document.id));
  EXPECT_GT(b.document.id, a.document.id);
  EXPECT_GT(chunks_b[0].id, chunks_a[0].id);
}

TEST(SqliteStoreTest, TwoStoresOnOneFileSeeEachOther) {
  // Two processes (here: two SqliteStore objects) sharing one database.
  TempDir dir;
  auto path = dir.path() / "xnai.db";
  ASSERT_OK_AND_ASSIGN(auto first, Open(path));
  ASSERT_OK_AND_ASSIGN(auto second, Open(path));
  EXPECT_EQ(second->TEST_MigrationsApplied(), 0);
  ASSERT_OK(first->CreateCollection("docs", ""));
  ASSERT_OK(second->PutDocument(MakeDocument("docs", "/from-second", {"shared"})));
  ASSERT_OK_AND_ASSIGN(auto docs, first->ListDocuments(std::string("docs"), 10, 0));
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].source, "/from-second");
}

}  // namespace
}  // namespace xnai::store
