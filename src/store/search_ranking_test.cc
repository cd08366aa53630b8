// SearchChunks ranks the top k first (pruned xnai_bm25 inside the FTS table,
// collection filter inside the MATCH) and joins and snippets only those rows.
// These tests pin that down against two oracles on random corpora:
// - the straightforward query (every row scored, joined, filtered through
//   the join, snippeted), which must give exactly the same hits;
// - SQLite's own bm25() over a plain two-column FTS5 table of the same
//   chunks, so the ranking is that of migration 1.
// And migration 2 upgrades a migration-1 database in place.
#include <sqlite3.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/sqlite_store.h"
#include "store/store_test_util.h"

namespace xnai::store {
namespace {

using testing::MakeDocument;
using testing::TempDir;

// Zipf-like word choice so that terms range from in-every-chunk to rare,
// which is what exercises the pruning.
class Corpus {
 public:
  explicit Corpus(uint32_t seed) : rng_(seed) {
    for (int i = 0; i < 120; ++i) words_.push_back("w" + std::to_string(i));
    // Numbers collide with collection ids, which must not match.
    for (int i = 1; i <= 5; ++i) words_.push_back(std::to_string(i));
    words_.push_back("running");
    words_.push_back("runs");
    for (size_t i = 0; i < words_.size(); ++i) weights_.push_back(1.0 / std::pow(i + 1.0, 1.1));
  }

  std::string Word() {
    std::discrete_distribution<size_t> pick(weights_.begin(), weights_.end());
    return words_[pick(rng_)];
  }
  std::string Text(int min_words, int max_words) {
    std::uniform_int_distribution<int> n(min_words, max_words);
    std::string out;
    for (int i = n(rng_); i > 0; --i) {
      if (!out.empty()) out += ' ';
      out += Word();
    }
    return out;
  }
  // A BuildFtsQuery-style expression of 1-6 random words (duplicates kept:
  // the store must cope with them too).
  std::string Expression() {
    std::uniform_int_distribution<int> n(1, 6);
    std::string out;
    for (int i = n(rng_); i > 0; --i) {
      if (!out.empty()) out += " OR ";
      out += "\"" + Word() + "\"";
    }
    return out;
  }
  int Between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

 private:
  std::mt19937 rng_;
  std::vector<std::string> words_;
  std::vector<double> weights_;
};

// Fills `store` with documents in collections a, b, c; returns the chunks as
// (id -> text, section) for the bm25() oracle.
struct ChunkRow {
  std::string text;
  std::string section;
};
std::map<int64_t, ChunkRow> Fill(SqliteStore* store, Corpus* corpus, int documents) {
  std::map<int64_t, ChunkRow> rows;
  const char* collections[] = {"a", "b", "c"};
  for (const char* name : collections) EXPECT_TRUE(store->CreateCollection(name, "").has_value());
  for (int d = 0; d < documents; ++d) {
    std::vector<std::string> texts;
    for (int c = corpus->Between(1, 8); c > 0; --c) texts.push_back(corpus->Text(3, 60));
    DocumentInput doc =
        MakeDocument(collections[corpus->Between(0, 2)], "/doc" + std::to_string(d), texts);
    for (ChunkInput& chunk : doc.chunks) chunk.section = corpus->Text(0, 3);
    auto put = store->PutDocument(doc);
    EXPECT_TRUE(put.has_value()) << put.error().ToString();
    if (!put) continue;
    auto chunks = store->GetChunks(put->document.id);
    EXPECT_TRUE(chunks.has_value());
    if (!chunks) continue;
    for (const Chunk& chunk : *chunks) rows[chunk.id] = {chunk.text, chunk.section};
  }
  return rows;
}

void ExpectSameHits(const std::vector<SearchHit>& got, const std::vector<SearchHit>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(what + " hit " + std::to_string(i));
    EXPECT_EQ(got[i].chunk_id, want[i].chunk_id);
    EXPECT_EQ(got[i].score, want[i].score);  // the same arithmetic: exactly equal
    EXPECT_EQ(got[i].document_id, want[i].document_id);
    EXPECT_EQ(got[i].collection, want[i].collection);
    EXPECT_EQ(got[i].source, want[i].source);
    EXPECT_EQ(got[i].title, want[i].title);
    EXPECT_EQ(got[i].section, want[i].section);
    EXPECT_EQ(got[i].page, want[i].page);
    EXPECT_EQ(got[i].text, want[i].text);
    EXPECT_EQ(got[i].snippet, want[i].snippet);
  }
}

TEST(SearchRankingTest, TopKFirstMatchesTheFullScanOnRandomCorpora) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    TempDir dir;
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(dir.path() / "xnai.db", {}));
    Corpus corpus(seed);
    Fill(store.get(), &corpus, 120);
    int nonempty = 0;
    for (int q = 0; q < 150; ++q) {
      SearchQuery query;
      query.fts_expression = corpus.Expression();
      const int ks[] = {1, 2, 3, 5, 10, 40};
      query.k = ks[q % 6];
      const int filter = corpus.Between(0, 4);  // 0-2: a collection; else all
      if (filter <= 2) query.collection = std::string(1, static_cast<char>('a' + filter));
      const std::string what = "seed " + std::to_string(seed) + " query '" + query.fts_expression +
                               "' k=" + std::to_string(query.k) + " in '" +
                               query.collection.value_or("") + "'";
      ASSERT_OK_AND_ASSIGN(auto got, store->SearchChunks(query));
      ASSERT_OK_AND_ASSIGN(auto want, store->TEST_SearchChunksFullScan(query));
      ExpectSameHits(got, want, what);
      if (!got.empty()) ++nonempty;
      for (const SearchHit& hit : got) {
        EXPECT_GT(hit.score, 0) << what;
        if (query.collection) {
          EXPECT_EQ(hit.collection, *query.collection) << what;
        }
      }
    }
    EXPECT_GT(nonempty, 100);  // the comparison compared something
  }
}

TEST(SearchRankingTest, ScoresAreSqliteBm25OfTextAndSection) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(dir.path() / "xnai.db", {}));
  Corpus corpus(11);
  std::map<int64_t, ChunkRow> rows = Fill(store.get(), &corpus, 80);

  // The reference: migration 1's index, a plain FTS5 table of text and
  // section with the same tokenizer, ranked by SQLite's bm25().
  sqlite3* ref = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &ref), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(ref,
                         "CREATE VIRTUAL TABLE ref USING fts5(text, section,"
                         " tokenize='porter unicode61 remove_diacritics 2')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(ref, "INSERT INTO ref(rowid, text, section) VALUES (?1, ?2, ?3)", -1,
                               &insert, nullptr),
            SQLITE_OK);
  for (const auto& [id, row] : rows) {
    sqlite3_bind_int64(insert, 1, id);
    sqlite3_bind_text(insert, 2, row.text.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 3, row.section.c_str(), -1, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  sqlite3_stmt* rank = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(ref,
                               "SELECT rowid, bm25(ref, 1.0, 0.25) AS s FROM ref"
                               " WHERE ref MATCH ?1 ORDER BY s, rowid LIMIT ?2",
                               -1, &rank, nullptr),
            SQLITE_OK);

  for (int q = 0; q < 100; ++q) {
    SearchQuery query;
    query.fts_expression = corpus.Expression();
    query.k = 1 + q % 12;
    ASSERT_OK_AND_ASSIGN(auto hits, store->SearchChunks(query));
    sqlite3_bind_text(rank, 1, query.fts_expression.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(rank, 2, query.k);
    std::vector<std::pair<int64_t, double>> want;
    while (sqlite3_step(rank) == SQLITE_ROW) {
      want.emplace_back(sqlite3_column_int64(rank, 0), -sqlite3_column_double(rank, 1));
    }
    sqlite3_reset(rank);
    ASSERT_EQ(hits.size(), want.size()) << query.fts_expression;
    for (size_t i = 0; i < hits.size(); ++i) {
      EXPECT_EQ(hits[i].chunk_id, want[i].first) << query.fts_expression << " hit " << i;
      EXPECT_NEAR(hits[i].score, want[i].second, 1e-12 * std::abs(want[i].second))
          << query.fts_expression << " hit " << i;
    }
  }
  sqlite3_finalize(rank);
  sqlite3_close_v2(ref);
}

TEST(SearchRankingTest, CollectionIdsAreNotSearchableWords) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(dir.path() / "xnai.db", {}));
  ASSERT_OK(store->CreateCollection("a", ""));
  ASSERT_OK(store->CreateCollection("b", ""));  // id 2
  ASSERT_OK(store->PutDocument(MakeDocument("b", "/b", {"nothing numeric here"})));
  ASSERT_OK(store->PutDocument(MakeDocument("a", "/a", {"chapter 2 begins"})));
  for (const char* expression : {"\"2\"", "collection_id : \"2\"", "\"2\" OR \"here\""}) {
    SearchQuery query;
    query.fts_expression = expression;
    ASSERT_OK_AND_ASSIGN(auto hits, store->SearchChunks(query));
    std::vector<std::string> sources;
    for (const SearchHit& hit : hits) sources.push_back(hit.source);
    if (std::string(expression) == "\"2\"") {
      EXPECT_EQ(sources, std::vector<std::string>{"/a"});
    } else if (std::string(expression) == "collection_id : \"2\"") {
      EXPECT_TRUE(sources.empty());
    } else {
      EXPECT_EQ(sources.size(), 2u);
    }
  }
  // Parentheses that only balance once wrapped are still rejected.
  SearchQuery bad;
  bad.fts_expression = "\"a\") OR (\"b\"";
  EXPECT_CODE(store->SearchChunks(bad), kInvalidArgument);
}

TEST(SearchRankingTest, MigrationTwoUpgradesAVersionOneDatabase) {
  TempDir dir;
  const auto path = dir.path() / "xnai.db";
  {
    // A database as migration 1 left it, with data.
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, SqliteMigrations().at(0).sql, nullptr, nullptr, nullptr),
              SQLITE_OK);
    const char* data =
        "INSERT INTO collections(id, name, created_at) VALUES (1, 'one', 0), (2, 'two', 0);"
        "INSERT INTO documents(id, collection_id, source, sha256, created_at, updated_at)"
        " VALUES (1, 1, '/x', 'aa', 0, 0), (2, 2, '/y', 'bb', 0, 0);"
        "INSERT INTO chunks(document_id, ordinal, text, section) VALUES"
        " (1, 0, 'the quokka smiles', 'Intro'), (2, 0, 'a quokka and a wombat', ''),"
        " (2, 1, 'only a wombat', '');"
        "PRAGMA user_version = 1;";
    ASSERT_EQ(sqlite3_exec(raw, data, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close_v2(raw);
  }
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(path, {}));
  EXPECT_EQ(store->TEST_MigrationsApplied(), SqliteSchemaVersion() - 1);
  ASSERT_OK(store->TEST_CheckIntegrity());
  SearchQuery query;
  query.fts_expression = "\"quokka\"";
  ASSERT_OK_AND_ASSIGN(auto all, store->SearchChunks(query));
  EXPECT_EQ(all.size(), 2u);
  query.collection = "two";
  ASSERT_OK_AND_ASSIGN(auto in_two, store->SearchChunks(query));
  ASSERT_EQ(in_two.size(), 1u);
  EXPECT_EQ(in_two[0].source, "/y");
  EXPECT_NE(in_two[0].snippet.find(std::string(1, kMarkBegin) + "quokka"), std::string::npos);
  // New chunks get their collection id; deletes still clean the index.
  ASSERT_OK(store->PutDocument(MakeDocument("one", "/z", {"quokka again"})));
  query.collection = "one";
  ASSERT_OK_AND_ASSIGN(auto in_one, store->SearchChunks(query));
  EXPECT_EQ(in_one.size(), 2u);
  ASSERT_OK(store->DeleteCollection("two"));
  ASSERT_OK_AND_ASSIGN(int64_t wombats, store->TEST_IndexedChunksWithTerm("wombat"));
  EXPECT_EQ(wombats, 0);
  ASSERT_OK(store->TEST_CheckIntegrity());
}

}  // namespace
}  // namespace xnai::store
