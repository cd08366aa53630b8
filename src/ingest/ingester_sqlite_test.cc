// The Ingester against the real SQLite store and blob store: what the CLI and
// server will actually run.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "base/files.h"
#include "ingest/ingester.h"
#include "ingest/test_pdf.h"

namespace xnai::ingest {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& path, std::string_view data) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

class SqliteIngesterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "xnai-ingest-sqlite-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = fs::canonical(tmpl);
    docs_ = root_ / "docs";
    fs::create_directories(docs_);
    auto store = store::OpenSqliteStore(root_ / "xnai.db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    auto blobs = store::BlobStore::Open(root_ / "blobs");
    ASSERT_TRUE(blobs) << blobs.error().ToString();
    blobs_.emplace(std::move(*blobs));
    ingester_.emplace(*store_, *blobs_);
  }
  void TearDown() override {
    ingester_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::vector<store::SearchHit> Search(const std::string& expression) {
    store::SearchQuery query;
    query.fts_expression = expression;
    query.collection = "kb";
    auto hits = store_->SearchChunks(query);
    EXPECT_TRUE(hits) << hits.error().ToString();
    return hits ? *hits : std::vector<store::SearchHit>();
  }

  fs::path root_;
  fs::path docs_;
  std::unique_ptr<store::Store> store_;
  std::optional<store::BlobStore> blobs_;
  std::optional<Ingester> ingester_;
};

TEST_F(SqliteIngesterTest, IngestReingestModifyAndSearch) {
  WriteFile(docs_ / "fruit.txt", "Fruit\n\nApples are crunchy and sweet.\n");
  WriteFile(docs_ / "guide.md", "# Guide\n\n## Setup\n\nInstall the zebra package.\n");
  WriteFile(docs_ / "manual.pdf",
            testing::MakePdf({testing::PdfPage{{"Intro page."}},
                              testing::PdfPage{{"The kangaroo section is on page two."}}},
                             "Manual"));
  WriteFile(docs_ / "noise.bin", std::string("\0\1\2\3\4", 5));
  IngestOptions options;
  options.collection = "kb";

  auto first = ingester_->IngestPaths({docs_}, options);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->files, 4);
  EXPECT_EQ(first->added, 3);
  EXPECT_EQ(first->skipped, 1);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->documents, 3);
  EXPECT_EQ(stats->chunks, first->chunks);

  auto hits = Search("apples");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].source, (docs_ / "fruit.txt").string());
  EXPECT_EQ(hits[0].title, "Fruit");
  hits = Search("zebra");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].section, "Guide > Setup");
  hits = Search("kangaroo");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].page, 2);
  EXPECT_EQ(hits[0].title, "Manual");

  // Unchanged: nothing written.
  auto second = ingester_->IngestPaths({docs_}, options);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->unchanged, 3);
  EXPECT_EQ(second->added + second->updated, 0);
  EXPECT_EQ(second->chunks, 0);

  // Modified: the document is replaced, its chunks too, the old blob goes.
  auto before = store_->FindDocument("kb", (docs_ / "fruit.txt").string());
  ASSERT_TRUE(before && before->has_value());
  const std::string old_sha = (*before)->sha256;
  EXPECT_TRUE(blobs_->Has(old_sha));
  WriteFile(docs_ / "fruit.txt", "Fruit\n\nPears are soft and juicy.\n");
  auto third = ingester_->IngestPaths({docs_}, options);
  ASSERT_TRUE(third) << third.error().ToString();
  EXPECT_EQ(third->updated, 1);
  EXPECT_EQ(third->unchanged, 2);
  auto after = store_->FindDocument("kb", (docs_ / "fruit.txt").string());
  ASSERT_TRUE(after && after->has_value());
  EXPECT_EQ((*after)->id, (*before)->id);
  EXPECT_NE((*after)->sha256, old_sha);
  EXPECT_FALSE(blobs_->Has(old_sha));
  EXPECT_TRUE(blobs_->Has((*after)->sha256));
  EXPECT_TRUE(Search("apples").empty());
  EXPECT_EQ(Search("pears").size(), 1u);
  auto chunks = store_->GetChunks((*after)->id);
  ASSERT_TRUE(chunks);
  ASSERT_EQ(chunks->size(), 1u);
  EXPECT_EQ((*chunks)[0].text, "Fruit\n\nPears are soft and juicy.");
  EXPECT_EQ((*chunks)[0].char_begin, 0);
}

TEST_F(SqliteIngesterTest, SharedBlobSurvivesWhileReferenced) {
  WriteFile(docs_ / "one.txt", "identical content");
  WriteFile(docs_ / "two.txt", "identical content");
  IngestOptions options;
  options.collection = "kb";
  ASSERT_TRUE(ingester_->IngestPaths({docs_}, options));
  const std::string sha = Sha256Hex("identical content");
  auto refs = store_->CountDocumentsWithSha(sha);
  ASSERT_TRUE(refs);
  EXPECT_EQ(*refs, 2);
  WriteFile(docs_ / "one.txt", "different now");
  ASSERT_TRUE(ingester_->IngestPaths({docs_}, options));
  EXPECT_TRUE(blobs_->Has(sha)) << "two.txt still references it";
  WriteFile(docs_ / "two.txt", "also different");
  ASSERT_TRUE(ingester_->IngestPaths({docs_}, options));
  EXPECT_FALSE(blobs_->Has(sha));
}

TEST_F(SqliteIngesterTest, UploadsAndBadCollectionName) {
  IngestOptions options;
  options.collection = "kb";
  auto up = ingester_->IngestBytes(options, "report.html",
                                   "<title>Report</title><h1>Results</h1><p>Walrus count up.</p>");
  ASSERT_TRUE(up) << up.error().ToString();
  EXPECT_EQ(up->kind, FileOutcome::Kind::kAdded);
  auto hits = Search("walrus");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].source, "upload:report.html");
  EXPECT_EQ(hits[0].title, "Report");
  EXPECT_EQ(hits[0].section, "Results");

  options.collection = "bad name!";
  auto bad = ingester_->IngestBytes(options, "x.txt", "text");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Status::Code::kInvalidArgument);
  WriteFile(docs_ / "x.txt", "text");
  auto bad_paths = ingester_->IngestPaths({docs_}, options);
  ASSERT_FALSE(bad_paths);
  EXPECT_EQ(bad_paths.error().code(), Status::Code::kInvalidArgument);
}

TEST_F(SqliteIngesterTest, ReadOnlyStoreStopsTheRun) {
  WriteFile(docs_ / "a.txt", "alpha");
  WriteFile(docs_ / "b.txt", "beta");
  IngestOptions options;
  options.collection = "kb";
  ASSERT_TRUE(ingester_->IngestBytes(options, "seed.txt", "seed"));  // creates the collection
  store::SqliteOptions read_only;
  read_only.read_only = true;
  auto ro = store::OpenSqliteStore(root_ / "xnai.db", read_only);
  ASSERT_TRUE(ro) << ro.error().ToString();
  Ingester ro_ingester(**ro, *blobs_);
  auto result = ro_ingester.IngestPaths({docs_}, options);
  ASSERT_FALSE(result) << "a store that refuses writes stops the run";
  auto stats = store_->Stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->documents, 1);
  // The blob written before the refused PutDocument was cleaned up.
  EXPECT_FALSE(blobs_->Has(Sha256Hex("alpha")));
}

TEST_F(SqliteIngesterTest, ConcurrentUploadsOfEveryFormat) {
  IngestOptions options;
  options.collection = "kb";
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        std::string id = std::to_string(t) + "-" + std::to_string(i);
        std::vector<std::pair<std::string, std::string>> files = {
            {"n" + id + ".md", "# Doc " + id + "\n\nMarkdown body ~~x~~ | a |\n"},
            {"p" + id + ".html", "<title>T" + id + "</title><p>Html body " + id + "</p>"},
            {"d" + id + ".pdf", testing::MakePdf({testing::PdfPage{{"Pdf body " + id}}})},
            {"t" + id + ".txt", "Text body " + id},
        };
        for (const auto& [name, bytes] : files) {
          auto r = ingester_->IngestBytes(options, name, bytes);
          if (!r || r->kind != FileOutcome::Kind::kAdded) ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->documents, 4 * 8 * 4);
}

}  // namespace
}  // namespace xnai::ingest
